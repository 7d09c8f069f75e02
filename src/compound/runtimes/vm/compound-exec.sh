#!/bin/busybox sh
# compound-exec USER WORKDIR [K=V ...] -- CMD [ARG...]
#
# Run CMD the way Docker runs a container process: chrooted into the
# service's root filesystem (/newroot), as USER (name|uid[:group|gid],
# resolved in the image's /etc/passwd and /etc/group), in WORKDIR, with
# exactly the image+service environment (COMPOUND_ENV from
# /compound/config) plus the K=V overrides. Used for the entrypoint by /init
# and for `exec` through qemu-guest-agent's guest-exec.
PATH=/bin:/sbin
. /compound/config
# Empty USER/WORKDIR: the service's own (from the config), as `docker exec`.
user=${1:-$COMPOUND_USER}
wd=${2:-${COMPOUND_WORKDIR:-/}}
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
[ -d "/newroot$wd" ] || mkdir -p "/newroot$wd"
# busybox nsenter changes directory before chroot, so enter the working
# directory from outside first: after the chroot it is the cwd inside.
cd "/newroot$wd" || exit 126
eval "exec env -i $base $extra /bin/nsenter -F -r/newroot -S \"\$uid\" -G \"\$gid\" -- \"\$@\""
