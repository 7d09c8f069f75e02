#!/usr/bin/env bash
# The flagship demo behind `make demo`: a hybrid shop. web and api are
# containers; billing (the legacy monolith) and db (PostgreSQL) are VMs
# booted from the same kind of OCI image. Prove they talk by name both ways,
# share the ledger volume, keep the database's rows on a volume across
# down/up and a rolling update of the database VM, and show which kernel each
# runs on.
set -euo pipefail
cd "$(dirname "$0")/shop"
compound=${COMPOUND:-../../.venv/bin/compound}
api="http://127.0.0.1:${API_PORT:-8081}"
web="http://127.0.0.1:${WEB_PORT:-8080}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "compound up -d --wait  (reconcile: only what differs from the file changes)"
"$compound" up -d --wait --wait-timeout 1200

step "compound ps: which runtime and kernel each service runs on"
"$compound" ps

step "storefront (web container) answers on $web"
curl -fsS "$web/" | grep -o '<h1>.*</h1>'

step "order: api (container) -> billing (VM) by service name; the VM writes the shared ledger volume, the container reads it"
for item in book lamp; do
  curl -fsS "$api/order?item=$item"; echo
done
out=$(curl -fsS "$api/order?item=proof")
vm_kernel=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["billing"]["kernel"])')
ct_kernel=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_kernel"])')
echo "billing answered from kernel $vm_kernel; api runs on the host kernel $ct_kernel"
[ "$vm_kernel" != "$ct_kernel" ] || { echo "expected billing to run its own kernel" >&2; exit 1; }

orders_count() { curl -fsS "$api/orders" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["orders"]))'; }

step "orders are rows in PostgreSQL, running in the db VM (api -> db:5432 by service name, data on the pgdata volume)"
curl -fsS "$api/orders" | python3 -c 'import json,sys
for o in json.load(sys.stdin)["orders"][-3:]: print(o["id"], o["item"], "charged by", o["charged_by"], "at", o["at"])'
"$compound" exec -T db sh -c 'echo "db runs on kernel $(uname -r): $(psql -U shop -d shop -Atc "select count(*) from orders") rows, PGDATA $PGDATA"'
rows=$(orders_count)

step "compound down + up: the instances go, the volumes stay; the rows are still there"
"$compound" down
"$compound" up -d --wait --wait-timeout 1200
after=$(orders_count)
echo "orders before down: $rows, after up: $after"
[ "$after" = "$rows" ] || { echo "expected the $rows rows to survive down/up" >&2; exit 1; }

step "rolling update of the database VM (stop-first: never two postmasters on one data directory)"
export DB_RELEASE=2
"$compound" up -d --wait --wait-timeout 1200
curl -fsS "$api/order?item=after-db-update" >/dev/null
after=$(orders_count)
echo "orders after the update of db: $after (the $rows from before + 1 new)"
[ "$after" = "$((rows + 1))" ] || { echo "expected $((rows + 1)) rows after the db update" >&2; exit 1; }

step "compound exec into the VM (through qemu-guest-agent): the ledger as the guest sees it"
"$compound" exec -T billing sh -c 'echo "kernel $(uname -r), $(wc -l < /ledger/entries.log) ledger entries"'

step "the VM reaches the containers by name too (DNS and HTTP from inside the guest)"
"$compound" exec -T billing sh -c 'nslookup api | grep -A1 "^Name:"; printf "GET /health HTTP/1.0\r\n\r\n" | nc api 8000 | head -1'

step "rolling update of web (2 replicas behind compound's HAProxy) while a client keeps asking"
ok=0; failed=0
( while :; do curl -fsS -o /dev/null "$web/" && echo ok || echo failed; sleep 0.02; done ) > /tmp/compound-demo-load.$$ &
load=$!
WEB_RELEASE=2 "$compound" up -d
sleep 0.5; kill "$load"; wait "$load" 2>/dev/null || true
ok=$(grep -c '^ok' /tmp/compound-demo-load.$$ || true); failed=$(grep -c '^failed' /tmp/compound-demo-load.$$ || true)
rm -f /tmp/compound-demo-load.$$
echo "requests during the update: $ok answered, $failed failed"
[ "$failed" = 0 ] || { echo "expected no failed request" >&2; exit 1; }

step "compound rollback web: back to the previous revision, batch by batch"
"$compound" rollback web

step "compound diff: no instance drifted from its image or the file (web still says release 1 there)"
"$compound" diff || true

step "consistent backup of the ledger: writers paused (the billing VM through QMP after a guest sync)"
backup=$(mktemp -d)/ledger.tar.zst
"$compound" volume backup ledger -o "$backup" --consistent
"$compound" volume ls

step "compound up: the file says web release 1 again (and db release 2), so nothing to do"
"$compound" up -d --dry-run

step "compound history"
"$compound" history --limit 3

if [ "${KEEP:-0}" != 1 ]; then
  step "compound down (the ledger and pgdata volumes survive; add -v to remove them)"
  "$compound" down
fi
