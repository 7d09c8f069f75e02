#!/bin/busybox sh
# compound-exec USER WORKDIR [K=V ...] -- CMD [ARG...]
#
# Run CMD the way Docker runs a container process: chrooted into the
# service's root filesystem (/newroot), as USER (name|uid[:group|gid],
# resolved in the image's /etc/passwd and /etc/group), in WORKDIR, with
# exactly the image+service environment (COMPOUND_ENV from
# /compound/config) plus the K=V overrides. Used for the entrypoint by /init
# and for `exec` through qemu-guest-agent's guest-exec. The service's
# hardening (capabilities, no-new-privileges, ulimits: COMPOUND_CAPS,
# COMPOUND_NNP, COMPOUND_RLIMITS; pids_limit: COMPOUND_PIDS_MAX) applies to
# both, as a container's does to its exec'd processes.
PATH=/bin:/sbin
. /compound/config
# Empty USER/WORKDIR: the service's own (from the config), as `docker exec`.
user=${1:-$COMPOUND_USER}
wd=${2:-${COMPOUND_WORKDIR:-/}}
asked_wd=$2
shift 2
q() { printf "'%s' " "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
extra=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    extra="$extra$(q "$1")"
    shift
done
[ "$1" = -- ] && shift
[ $# -gt 0 ] || { echo "compound-exec: no command" >&2; exit 127; }

name=${user%%:*}
group=
case "$user" in *:*) group=${user#*:} ;; esac
pw=$(awk -F: -v u="$name" '$1 == u || $3 == u { print; exit }' /newroot/etc/passwd 2>/dev/null)
case "$name" in
    ''|*[!0-9]*)
        [ -n "$pw" ] || [ -z "$name" ] || { echo "unable to find user $name: no matching entries in passwd file" >&2; exit 126; }
        [ -z "$name" ] && pw=$(awk -F: '$3 == 0 { print; exit }' /newroot/etc/passwd 2>/dev/null)
        uid=$(echo "$pw" | cut -d: -f3)
        ;;
    *) uid=$name ;;
esac
uid=${uid:-0}
gid=$(echo "$pw" | cut -d: -f4)
home=$(echo "$pw" | cut -d: -f6)
if [ -n "$group" ]; then
    case "$group" in
        *[!0-9]*)
            gid=$(awk -F: -v g="$group" '$1 == g { print $3; exit }' /newroot/etc/group 2>/dev/null)
            [ -n "$gid" ] || { echo "unable to find group $group: no matching entries in group file" >&2; exit 126; }
            ;;
        *) gid=$group ;;
    esac
fi
gid=${gid:-0}
home=${home:-/}

# HOME only when neither the image nor the service set it (as Docker).
base="$(q "HOME=$home")$COMPOUND_ENV"
# The service's own working dir is made if missing (as Docker does for
# WORKDIR); one given to exec must exist. compound-enter enters it after the
# chroot, so ".." and symlinks cannot lead out of the root.
if [ -z "$asked_wd" ] && [ ! -d "/newroot$wd" ]; then
    case "$wd" in *..*) ;; *) mkdir -p "/newroot$wd" ;; esac
fi
# Every process of the service shares one pids cgroup (pids_limit).
[ -n "${COMPOUND_PIDS_MAX:-}" ] && echo $$ > /sys/fs/cgroup/service/cgroup.procs 2>/dev/null
eval "exec env -i $base $extra /sbin/compound-enter /newroot \"\$wd\" \"\$uid\" \"\$gid\" \
    \"\${COMPOUND_CAPS:-all}\" \"\${COMPOUND_NNP:-0}\" \"\${COMPOUND_RLIMITS:--}\" -- \"\$@\""
