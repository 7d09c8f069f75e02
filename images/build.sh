#!/usr/bin/env bash
# images/build.sh — build the local base images that compound's examples,
# tests and benchmarks use, from Debian packages only (no registry needed).
#
# Usage:
#   images/build.sh all              build every image below (skips up-to-date ones)
#   images/build.sh busybox python   build just these
#   images/build.sh --force busybox  rebuild even if up to date
#   images/build.sh list             print "name tag recipe-hash status" for each image
#   images/build.sh benchnet         an image outside `all` (EXTRA_IMAGES), built on demand
#
# Every image carries the label  org.compound.recipe=<sha256 of its recipe inputs>.
# An image whose tag already exists with the same label is skipped, so a second
# run costs one `docker image inspect` per image. Intermediate root filesystem
# tarballs are cached in ${COMPOUND_IMAGE_CACHE:-~/.cache/compound/images}, keyed
# by the same hash.
#
# Images and how to build each one by hand (what this script automates):
#
#   local/busybox:latest — host package busybox-static (apt-get install busybox-static)
#       mkdir -p rootfs/bin rootfs/etc rootfs/tmp rootfs/var/www rootfs/root
#       cp /bin/busybox rootfs/bin/busybox
#       for a in $(rootfs/bin/busybox --list); do ln -s busybox rootfs/bin/$a; done
#       printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > rootfs/etc/passwd
#       printf 'root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\n' > rootfs/etc/group
#       chmod 1777 rootfs/tmp; echo 'hello from local/busybox' > rootfs/var/www/index.html
#       tar -C rootfs -c . | docker import --change 'CMD ["sh"]' - local/busybox:latest
#     (everything lives in /bin like the upstream busybox image; /usr/bin/env is a
#     symlink too so "#!/usr/bin/env sh" works.)
#
#   local/python:3 — Debian 12 minbase + python3 (apt-get install mmdebstrap)
#       mmdebstrap --variant=minbase --include=python3,ca-certificates \
#           --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
#           --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
#           --dpkgopt='path-exclude=/usr/share/locale/*' (and info, lintian) \
#           --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
#           bookworm python.tar "deb http://deb.debian.org/debian bookworm main" ...
#       docker import --change 'CMD ["python3"]' --change 'ENV LANG=C.UTF-8' python.tar local/python:3
#     The mirror lines are taken from this machine's apt sources (sources.list,
#     sources.list.d/*.list or deb822 *.sources) for bookworm, bookworm-updates and
#     bookworm-security; set COMPOUND_DEBIAN_MIRROR=URL to override the main mirror.
#     The merged-usr hook sets up merged /usr itself; without it apt satisfies
#     init-system-helpers' "usrmerge | usr-is-merged" with usrmerge, which drags
#     perl into the image (+30 MB).
#     mmdebstrap needs a minute or a few the first time; the tarball is then cached.
#
# Adding an image: write recipe_<name> (prints every input that determines the
# result), build_<name> <tag> <hash> and add "<name> <tag>" to IMAGES.

set -euo pipefail

LABEL_KEY=org.compound.recipe
CACHE_DIR=${COMPOUND_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compound/images}
DEFAULT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
SUITE=bookworm

# name tag
IMAGES=(
  "busybox local/busybox:latest"
  "python local/python:3"
  "postgres local/postgres:15"
)

# Built only when named (not by `all`, so not by `make images`): bench/vm_dataplane.py asks for it.
EXTRA_IMAGES=(
  "benchnet local/compound-bench-net:1"
)

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

need() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found — install it with: apt-get install $pkg (or run: make deps)"
}

recipe_hash() { # name -> sha256 of the recipe inputs
  "recipe_$1" | sha256sum | cut -d' ' -f1
}

image_label() { # tag -> recipe label of an existing image, or nothing
  docker image inspect --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true
}

tar_rootfs() { # dir -> tar stream on stdout, reproducible-ish
  tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c .
}

# Replace the tag, then drop the image that the tag pointed to before, if nothing uses it.
import_image() { # tag hash tarball|- change...
  local tag=$1 hash=$2 src=$3
  shift 3
  local old
  old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  local args=(--change "LABEL $LABEL_KEY=$hash" --message "compound images/build.sh recipe $hash")
  local c later=()
  for c in "$@"; do
    # `docker import --change` knows no STOPSIGNAL: applied by a one-line build on top
    if [[ $c == STOPSIGNAL* ]]; then later+=("$c"); else args+=(--change "$c"); fi
  done
  if ((${#later[@]})); then
    local tmp="$tag-import-$hash"
    docker import "${args[@]}" "$src" "$tmp" >/dev/null
    # the legacy builder: FROM a local image, metadata only, nothing pulled
    local out
    out=$(printf 'FROM %s\n%s\n' "$tmp" "$(printf '%s\n' "${later[@]}")" \
      | DOCKER_BUILDKIT=0 docker build -q -t "$tag" - 2>&1) || { printf '%s\n' "$out" >&2; docker rmi "$tmp" >/dev/null; die "docker build of $tag (${later[*]}) failed"; }
    docker rmi "$tmp" >/dev/null
  else
    docker import "${args[@]}" "$src" "$tag" >/dev/null
  fi
  if [[ -n $old && $old != "$(docker image inspect --format '{{.Id}}' "$tag")" ]]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- busybox

busybox_bin() {
  local b=/bin/busybox
  [[ -x $b ]] || die "/bin/busybox missing — apt-get install busybox-static"
  if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    die "busybox-static is not installed (a dynamic busybox would not run in an empty image) — apt-get install busybox-static"
  fi
  echo "$b"
}

recipe_busybox() {
  echo "recipe v1"
  declare -f build_busybox
  sha256sum <"$(busybox_bin)"
}

build_busybox() { # tag hash
  local tag=$1 hash=$2 bb root a
  bb=$(busybox_bin)
  root=$(mktemp -d "${TMPDIR:-/tmp}/compound-busybox.XXXXXX")
  mkdir -p "$root"/{bin,etc,root,tmp,var/www,var/run,usr/bin,proc,sys,dev,home}
  echo 'hello from local/busybox' >"$root/var/www/index.html"
  cp "$bb" "$root/bin/busybox"
  for a in $("$bb" --list); do
    [[ $a == busybox ]] && continue
    ln -s busybox "$root/bin/$a"
  done
  ln -s ../../bin/env "$root/usr/bin/env"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nogroup:x:65534:' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  local rc=0
  tar_rootfs "$root" | import_image "$tag" "$hash" - \
    'CMD ["sh"]' "ENV PATH=$DEFAULT_PATH" || rc=$?
  rm -rf "$root"
  return "$rc"
}

# ---------------------------------------------------------------- python

# Print "deb URI SUITE main" lines for the Debian suites apt on this machine uses.
debian_sources() {
  if [[ -n ${COMPOUND_DEBIAN_MIRROR:-} ]]; then
    echo "deb $COMPOUND_DEBIAN_MIRROR $SUITE main"
    echo "deb $COMPOUND_DEBIAN_MIRROR $SUITE-updates main"
    return
  fi
  local files=() f
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  local out=""
  if ((${#files[@]})); then
    out=$(awk -v suite="$SUITE" '
      function want(s) { return s == suite || s == suite "-updates" || s == suite "-security" }
      function hasmain(c,   n, a, i) { n = split(c, a, /[ \t]+/); for (i = 1; i <= n; i++) if (a[i] == "main") return 1; return 0 }
      function emit(   nu, ns, u, s, i, j) {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && hasmain(comps)) {
          nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
          for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
            if (u[i] != "" && want(s[j])) print "deb " u[i] " " s[j] " main"
        }
        types = uris = suites = comps = ""; enabled = "yes"
      }
      FILENAME ~ /\.sources$/ {
        if (FNR == 1) emit()
        if ($0 ~ /^[ \t]*$/) { emit(); next }
        if ($0 ~ /^[ \t]*#/) next
        key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        if (key == "types") types = val; else if (key == "uris") uris = val
        else if (key == "suites") suites = val; else if (key == "components") comps = val
        else if (key == "enabled") enabled = tolower(val)
        next
      }
      FILENAME !~ /\.sources$/ {
        if (FNR == 1) emit()
        line = $0; sub(/#.*/, "", line); sub(/\[[^]]*\]/, "", line)
        n = split(line, w, /[ \t]+/); k = 1; while (k <= n && w[k] == "") k++
        if (w[k] != "deb") next
        uri = w[k + 1]; s = w[k + 2]; c = ""
        for (i = k + 3; i <= n; i++) c = c " " w[i]
        if (want(s) && hasmain(c)) print "deb " uri " " s " main"
      }
      END { emit() }
    ' "${files[@]}" | awk '!seen[$0]++')
  fi
  if ! grep -q " $SUITE main\$" <<<"$out"; then
    log "warning: no apt source for '$SUITE main' found on this machine; using http://deb.debian.org/debian"
    out=$(printf '%s\n%s\n' "deb http://deb.debian.org/debian $SUITE main" "$out" | awk 'NF && !seen[$0]++')
  fi
  printf '%s\n' "$out"
}

# apt proxy settings of this machine, forwarded to mmdebstrap's apt
apt_proxy_opts() {
  command -v apt-config >/dev/null 2>&1 || return 0
  apt-config dump 2>/dev/null | grep -iE '^Acquire::(http|https|ftp)::Proxy ' || true
}

# Options every Debian image shares: minbase, merged /usr, no docs/man/locales,
# no apt lists or logs left behind.
debian_common_args() {
  # shellcheck disable=SC2016  # "$1" in the hooks is for mmdebstrap's shell
  printf '%s\n' \
    --variant=minbase \
    --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/log/bootstrap.log' \
    --customize-hook='rm -f "$1"/etc/machine-id; touch "$1"/etc/machine-id'
}

# Build one image from `mmdebstrap <args>` (cached tarball keyed by the recipe
# hash, log beside it, no half-written tarball on failure) and docker-import it.
build_debian() { # name tag hash what args-function changes-function
  local name=$1 tag=$2 hash=$3 what=$4 args_fn=$5 changes_fn=$6
  need mmdebstrap mmdebstrap
  local stem="$CACHE_DIR/$name-$hash"
  local tarball="$stem.tar"
  if [[ ! -s $tarball ]]; then
    local args=() mirrors=() line
    mapfile -t args < <("$args_fn")
    while IFS= read -r line; do [[ -n $line ]] && args+=(--aptopt="$line"); done < <(apt_proxy_opts)
    mapfile -t mirrors < <(debian_sources)
    log "mmdebstrap $SUITE ($what) from: $(printf '%s; ' "${mirrors[@]}")"
    log "this takes a few minutes the first time; log: $stem.log"
    local t0=$SECONDS
    if ! mmdebstrap "${args[@]}" "$SUITE" "$tarball.tmp" "${mirrors[@]}" >"$stem.log" 2>&1; then
      tail -n 30 "$stem.log" >&2
      rm -f "$tarball.tmp"
      die "mmdebstrap failed (full log: $stem.log)"
    fi
    mv "$tarball.tmp" "$tarball"
    log "mmdebstrap done in $((SECONDS - t0))s ($(du -h "$tarball" | cut -f1))"
    # drop tarballs of older recipes
    find "$CACHE_DIR" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$hash.tar" -delete
    find "$CACHE_DIR" -maxdepth 1 -name "$name-*.log" ! -name "$name-$hash.log" -delete
  else
    log "using cached rootfs $tarball"
  fi
  local changes=()
  mapfile -t changes < <("$changes_fn")
  import_image "$tag" "$hash" "$tarball" "${changes[@]}"
}

debian_recipe_common() {
  debian_sources
  echo "suite $SUITE"
  dpkg-query -W -f='${Package} ${Version}\n' mmdebstrap 2>/dev/null || echo "mmdebstrap ?"
}

# python3-psycopg2: the PostgreSQL driver the shop example's api uses to reach
# its database VM. Debian's package (C extension over libpq, +4 MB) because
# images are built from Debian packages only: no pip, no compiler, no PyPI at
# build time, and the version is the one Debian patches.
python_mmdebstrap_args() {
  debian_common_args
  echo --include=python3,ca-certificates,python3-psycopg2
}

# image config applied by docker import
python_changes() {
  printf '%s\n' 'CMD ["python3"]' "ENV PATH=$DEFAULT_PATH" 'ENV LANG=C.UTF-8'
}

recipe_python() {
  echo "recipe v2"
  python_mmdebstrap_args
  python_changes
  debian_recipe_common
}

build_python() { # tag hash
  # the cache file stem stays python-3-<hash> as before
  build_debian python-3 "$1" "$2" "minbase + python3" python_mmdebstrap_args python_changes
}

# ---------------------------------------------------------------- postgres

POSTGRES_MAJOR=15
POSTGRES_ENTRYPOINT=$(dirname "${BASH_SOURCE[0]}")/postgres/docker-entrypoint.sh

# Debian's postgresql-15 (server, client, postgresql-common) on minbase, with
# the official image's layout: entrypoint that initialises an empty PGDATA,
# listen_addresses='*' in the sample config, no cluster made by the package.
# Left out: the locale sources (initdb uses glibc's built-in C.UTF-8; nothing
# runs locale-gen) and the JIT: llvmjit.so with libLLVM and libz3 are 133 MB of
# the 352 MB, every VM's base disk would carry them, and JIT only pays off for
# long analytic queries; without llvmjit.so postgres runs with jit unavailable
# (`SHOW jit_provider` still says llvmjit, `pg_jit_available()` is false), as a
# build --without-llvm does. The packages stay installed; only those files are
# not unpacked (dpkg path-exclude, as for the docs).
# (its man pages stay: postgresql-client-15 registers them with update-alternatives)
postgres_mmdebstrap_args() {
  debian_common_args
  # shellcheck disable=SC2016  # "$1" in the hooks is for mmdebstrap's shell
  printf '%s\n' \
    --include=postgresql-$POSTGRES_MAJOR \
    --essential-hook='mkdir -p "$1"/etc/postgresql-common && echo "create_main_cluster = false" > "$1"/etc/postgresql-common/createcluster.conf' \
    --dpkgopt='path-exclude=/usr/share/i18n/locales/*' \
    --dpkgopt='path-exclude=/usr/share/i18n/charmaps/*' \
    --dpkgopt="path-exclude=/usr/lib/postgresql/$POSTGRES_MAJOR/lib/llvmjit*" \
    --dpkgopt="path-exclude=/usr/lib/postgresql/$POSTGRES_MAJOR/lib/bitcode/*" \
    --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM-*' \
    --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libz3.so*' \
    --customize-hook='rm -rf "$1"/var/lib/postgresql/'$POSTGRES_MAJOR' "$1"/etc/postgresql/'$POSTGRES_MAJOR \
    --customize-hook='sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '"'*'"'!" "$1"/usr/share/postgresql/'$POSTGRES_MAJOR'/postgresql.conf.sample' \
    --customize-hook='grep -q "^listen_addresses = '"'*'"'" "$1"/usr/share/postgresql/'$POSTGRES_MAJOR'/postgresql.conf.sample' \
    --customize-hook="upload $POSTGRES_ENTRYPOINT /usr/local/bin/docker-entrypoint.sh" \
    --customize-hook='chmod 755 "$1"/usr/local/bin/docker-entrypoint.sh' \
    --customize-hook='mkdir -p "$1"/docker-entrypoint-initdb.d "$1"/var/lib/postgresql/data "$1"/var/run/postgresql' \
    --customize-hook='chroot "$1" chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql' \
    --customize-hook='chmod 700 "$1"/var/lib/postgresql/data; chmod 3775 "$1"/var/run/postgresql'
}

# No VOLUME (unlike the official image): compound's VM runtime does not make
# anonymous volumes, so data goes where the compose file mounts a volume, in
# both runtimes alike.  EXPOSE 5432 as the official image.
postgres_changes() {
  printf '%s\n' \
    'ENTRYPOINT ["docker-entrypoint.sh"]' \
    'CMD ["postgres"]' \
    "ENV PATH=$DEFAULT_PATH:/usr/lib/postgresql/$POSTGRES_MAJOR/bin" \
    'ENV LANG=C.UTF-8' \
    'ENV PGDATA=/var/lib/postgresql/data' \
    'STOPSIGNAL SIGINT' \
    'EXPOSE 5432'
}

recipe_postgres() {
  echo "recipe v1"
  postgres_mmdebstrap_args
  postgres_changes
  sha256sum <"$POSTGRES_ENTRYPOINT"
  debian_recipe_common
}

build_postgres() { # tag hash
  build_debian "postgres-$POSTGRES_MAJOR" "$1" "$2" "minbase + postgresql-$POSTGRES_MAJOR" \
    postgres_mmdebstrap_args postgres_changes
}

# ---------------------------------------------------------------- benchnet

# The data-plane benchmark's image (bench/vm_dataplane.py), the same in a
# container and in a VM: iperf3 (TCP/UDP throughput, UDP loss), lighttpd (an
# event-driven HTTP server: one process, no fork per request), wrk (the
# HTTP load generator, latency percentiles), and minbase's sh/coreutils for
# the volume work.
benchnet_mmdebstrap_args() {
  debian_common_args
  echo --include=iperf3,lighttpd,wrk
}

benchnet_changes() {
  printf '%s\n' 'CMD ["sleep", "infinity"]' "ENV PATH=$DEFAULT_PATH" 'ENV LANG=C.UTF-8'
}

recipe_benchnet() {
  echo "recipe v1"
  benchnet_mmdebstrap_args
  benchnet_changes
  debian_recipe_common
}

build_benchnet() { # tag hash
  build_debian benchnet "$1" "$2" "minbase + iperf3, lighttpd, wrk" benchnet_mmdebstrap_args benchnet_changes
}

# ---------------------------------------------------------------- main

tag_of() {
  local e
  for e in "${IMAGES[@]}" "${EXTRA_IMAGES[@]}"; do
    [[ ${e%% *} == "$1" ]] && { echo "${e#* }"; return 0; }
  done
  return 1
}

ensure_image() { # name force
  local name=$1 force=$2 tag hash t0
  tag=$(tag_of "$name") || die "unknown image '$name' (known: $(names))"
  hash=$(recipe_hash "$name")
  if [[ $force != 1 && $(image_label "$tag") == "$hash" ]]; then
    log "$tag is up to date (recipe ${hash:0:12})"
    return 0
  fi
  t0=$SECONDS
  log "building $tag (recipe ${hash:0:12})"
  "build_$name" "$tag" "$hash"
  [[ $(image_label "$tag") == "$hash" ]] || die "built $tag but its $LABEL_KEY label is not $hash"
  log "built $tag in $((SECONDS - t0))s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
}

names() { local e; for e in "${IMAGES[@]}"; do printf '%s ' "${e%% *}"; done; }

main() {
  local force=0 targets=() a
  for a in "$@"; do
    case $a in
      -f | --force) force=1 ;;
      -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; return 0 ;;
      all) read -r -a targets <<<"$(names)" ;;
      list)
        local e n t h l
        for e in "${IMAGES[@]}"; do
          n=${e%% *}; t=${e#* }; h=$(recipe_hash "$n"); l=$(image_label "$t")
          printf '%-8s %-22s %s %s\n' "$n" "$t" "${h:0:12}" "$([[ $l == "$h" ]] && echo up-to-date || echo missing/stale)"
        done
        return 0 ;;
      *) targets+=("$a") ;;
    esac
  done
  ((${#targets[@]})) || { echo "usage: $0 [--force] all|list|$(names | sed 's/ $//; s/ /|/g')..." >&2; return 2; }
  need docker docker.io
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "Docker Engine is not answering — run: make engine (scripts/ensure-engine.sh)"
  mkdir -p "$CACHE_DIR"
  # one builder at a time (parallel make/test runs)
  exec 9>"$CACHE_DIR/.lock"
  flock 9
  for a in "${targets[@]}"; do ensure_image "$a" "$force"; done
}

main "$@"
