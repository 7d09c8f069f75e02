#!/usr/bin/env bash
# scripts/install-deps.sh PKG... — install the Debian packages that are missing.
#
# Costs one dpkg-query when everything is installed. `apt-get update` runs only
# when needed: no package lists at all, a missing package without an install
# candidate, or an install that failed on stale lists. Output is quiet; on
# failure the apt log is shown. Uses sudo when not root.

set -euo pipefail

(($#)) || { echo "usage: $0 PKG..." >&2; exit 2; }

missing=()
while read -r pkg status; do
  [[ $status == installed ]] || missing+=("$pkg")
done < <(for p in "$@"; do printf '%s %s\n' "$p" "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || echo absent)"; done)

((${#missing[@]})) || exit 0

SUDO=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "[deps] need root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300)
log=$(mktemp "${TMPDIR:-/tmp}/compound-apt.XXXXXX")
trap 'rm -f "$log"' EXIT

updated=0
apt_update() {
  echo "[deps] apt-get update" >&2
  if ! "${APT[@]}" update >"$log" 2>&1; then
    cat "$log" >&2
    echo "[deps] apt-get update failed" >&2
    exit 1
  fi
  updated=1
}

needs_update=0
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  needs_update=1
else
  for p in "${missing[@]}"; do
    cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z $cand || $cand == "(none)" ]]; then needs_update=1; break; fi
  done
fi
((needs_update)) && apt_update

echo "[deps] installing: ${missing[*]}" >&2
install() { "${APT[@]}" install --no-install-recommends "${missing[@]}" >"$log" 2>&1; }
if ! install; then
  if ((updated == 0)); then
    apt_update
    install || { cat "$log" >&2; echo "[deps] apt-get install failed" >&2; exit 1; }
  else
    cat "$log" >&2
    echo "[deps] apt-get install failed" >&2
    exit 1
  fi
fi
grep -iE '^(W|E):' "$log" >&2 || true
echo "[deps] done" >&2
