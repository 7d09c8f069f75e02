# debian-root.sh — sourced by the scripts that build a bootable Debian disk
# from Debian packages (images/legacy-disk.sh, hosts/qemu-host-disk.sh): the
# mirrors, the messages, the recipe hash and the one mmdebstrap call.
#
# The caller sets LOG_PREFIX before sourcing, then calls
#   recipe_hash SCRIPT          16 hex digits naming the cached result
#   debian_root PACKAGES HOOK TARGET
#                               a Debian $SUITE root with PACKAGES, HOOK run
#                               on it (mmdebstrap's customize hook, the root
#                               as $1), written to TARGET (a directory, or
#                               a tarball if TARGET ends in .tar)
# Mirrors: COMPOUND_DEBIAN_MIRROR / COMPOUND_DEBIAN_SECURITY, else Debian's own.

SUITE=bookworm
MIRROR=${COMPOUND_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${COMPOUND_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
T0=$SECONDS

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
step() { log "[$((SECONDS - T0))s] $*"; }

# What the result depends on: the calling script, this file, the mirrors and
# mmdebstrap's version (a changed one may lay the root out differently).
recipe_hash() {
  {
    cat "$1" "${BASH_SOURCE[0]}"
    echo "$MIRROR $SECURITY $SUITE"
    dpkg-query -W -f='${Package} ${Version}\n' mmdebstrap 2>/dev/null || echo "mmdebstrap ?"
  } | sha256sum | cut -c1-16
}

# No docs, manuals or translations: a disk, not a workstation. The log stays
# in the target's directory and its tail is shown on failure.
debian_root() {
  local packages=$1 hook=$2 target=$3
  local logfile
  logfile="$(dirname "$target")/mmdebstrap.log"
  if ! mmdebstrap --variant=minbase --include="$packages" \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="$hook \"\$1\"" \
    "$SUITE" "$target" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY $SUITE-security main" >"$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    die "mmdebstrap failed"
  fi
}
