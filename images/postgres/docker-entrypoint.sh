#!/bin/bash
# Entrypoint of local/postgres:15 (images/build.sh), modelled on the official
# postgres image for its common keys:
#   POSTGRES_PASSWORD           superuser password; required unless
#                               POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER               superuser name (default postgres)
#   POSTGRES_DB                 database created on first start (default = user)
#   POSTGRES_HOST_AUTH_METHOD   pg_hba.conf method for network clients
#                               (default scram-sha-256)
#   POSTGRES_INITDB_ARGS        extra initdb arguments
#   PGDATA                      data directory (default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql, *.sh   run once, after initdb
# Started as root, it creates PGDATA, gives it to the postgres user and
# re-executes itself as that user; an empty PGDATA is initialised; then it
# execs postgres (listen_addresses='*' comes from the image's sample config),
# so postgres is PID 1's child in a VM / PID 1 in a container and gets
# SIGINT (the image's STOPSIGNAL: fast shutdown) directly.
set -Eeuo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

log() { printf 'entrypoint: %s\n' "$*" >&2; }

# `docker run local/postgres:15 -c shared_buffers=64MB` means postgres with flags.
if [[ ${1:-} == -* ]]; then
  set -- postgres "$@"
fi

if [[ ${1:-} != postgres ]]; then
  exec "$@"
fi

if [[ $(id -u) == 0 ]]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  # A fresh named volume is root-owned; files restored by root are too.
  # Only what is not the postgres user's already is chowned (cheap on a big cluster).
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  chmod 700 "$PGDATA"
  chown postgres:postgres /var/run/postgresql
  chmod 3775 /var/run/postgresql
  # setpriv (util-linux, in every Debian image) execs in place: no extra
  # process between init and postgres, unlike su/runuser.
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

init_cluster() {
  local user=${POSTGRES_USER:-postgres}
  local db=${POSTGRES_DB:-$user}
  local method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [[ -z ${POSTGRES_PASSWORD:-} && $method != trust ]]; then
    cat >&2 <<'EOF'
entrypoint: error: the database is uninitialised and POSTGRES_PASSWORD is not set.
  Set POSTGRES_PASSWORD to a non-empty value for the superuser, or
  POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password
  (only for networks you trust completely).
EOF
    exit 1
  fi
  local args=(--username="$user" --auth-local=trust --auth-host="$method")
  local pwfile=""
  if [[ -n ${POSTGRES_PASSWORD:-} ]]; then
    # a private file, not <(...): /dev/fd is not there in every runtime
    pwfile=$(umask 077 && mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    args+=(--pwfile="$pwfile")
  fi
  log "initdb in $PGDATA (user $user, database $db, network auth $method)"
  local t0=$SECONDS
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as in the official image
  initdb "${args[@]}" ${POSTGRES_INITDB_ARGS:-} || { rm -f "$pwfile"; exit 1; }
  [[ -z $pwfile ]] || rm -f "$pwfile"
  printf '\n# network clients (local/postgres:15 entrypoint)\nhost all all all %s\n' "$method" \
    >>"$PGDATA/pg_hba.conf"
  if [[ $db != postgres ]]; then
    # single-user mode: no temporary server to start and stop
    printf 'CREATE DATABASE "%s";\n' "${db//\"/\"\"}" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  run_init_scripts "$user" "$db"
  log "database ready in $((SECONDS - t0))s"
}

run_init_scripts() { # user db
  local f files=()
  for f in /docker-entrypoint-initdb.d/*; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]})) || return 0
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
  for f in "${files[@]}"; do
    case $f in
      *.sh) log "running $f"; bash "$f" ;;
      *.sql) log "running $f"; psql -v ON_ERROR_STOP=1 --username "$1" --dbname "$2" -f "$f" ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
}

# Type of the mount that holds a path, from /proc/mounts (longest prefix).
# Not `stat -f`: over 9p statfs reports the host filesystem's type.
fstype_of() {
  awk -v d="$1" '
    (d == $2 || index(d, ($2 == "/" ? "/" : $2 "/")) == 1) && length($2) >= best { best = length($2); t = $3 }
    END { print t }' /proc/mounts
}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  if [[ $(fstype_of "$PGDATA") == 9p ]]; then
    # A volume shared into a VM over virtio-9p: initdb straight onto it had
    # not finished its bootstrap after 17 minutes under TCG (the guest
    # CPU-bound, hardly any 9p requests), against 49 s on the VM's own disk;
    # the server itself runs fine there. So the cluster is made on the root
    # disk, copied onto the volume and fsynced there (initdb --sync-only):
    # as durable as initdb in place.
    # The top PG_VERSION goes last, after everything else is on disk: a copy
    # cut short (VM killed) is found again at the next start and redone over
    # itself, never taken for a cluster.
    final=$PGDATA
    PGDATA=$(mktemp -d /var/lib/postgresql/initdb.XXXXXX)
    init_cluster
    log "copying the new cluster onto the volume at $final"
    local_f=
    for local_f in "$PGDATA"/* "$PGDATA"/.[!.]*; do
      [[ -e $local_f && ${local_f##*/} != PG_VERSION ]] && cp -a "$local_f" "$final"/
    done
    initdb --sync-only -D "$final" >/dev/null
    cp -a "$PGDATA/PG_VERSION" "$final/PG_VERSION"
    sync "$final/PG_VERSION" "$final"
    rm -rf "$PGDATA"
    PGDATA=$final
  else
    init_cluster
  fi
fi

exec "$@"
