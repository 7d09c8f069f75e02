#!/usr/bin/env bash
# The flagship demo behind `make demo`: start the shop, prove the traffic
# works across services and the shared volume, show what runs where.
set -euo pipefail
cd "$(dirname "$0")/shop"
compound=${COMPOUND:-../../.venv/bin/compound}
api="http://127.0.0.1:${API_PORT:-8081}"
web="http://127.0.0.1:${WEB_PORT:-8080}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "compound up -d --wait  (reconcile: only what differs from the file changes)"
"$compound" up -d --wait

step "compound ps: which runtime and kernel each service runs on"
"$compound" ps

step "storefront (web container) answers on $web"
curl -fsS "$web/" | grep -o '<h1>.*</h1>'

step "order through api -> billing by service name; billing writes the shared ledger volume, api reads it"
for item in book lamp; do
  curl -fsS "$api/order?item=$item"; echo
done

step "compound up again: nothing to do"
"$compound" up -d --dry-run

step "compound history"
"$compound" history --limit 3

if [ "${KEEP:-0}" != 1 ]; then
  step "compound down (the ledger volume survives; add -v to remove it)"
  "$compound" down
fi
