#!/bin/busybox sh
# compound guest /init (PID 1 of the VM), runs from the initramfs.
#
# It never leaves the initramfs: the service's root filesystem is mounted at
# /newroot and the entrypoint runs chrooted there through `nsenter -r`, so
# our busybox, modules and qemu-guest-agent stay usable whatever the image
# contains (even an image without a shell). Per-instance settings come from
# /compound/config (shell, sourced), which the host passes with QEMU's
# fw_cfg (no kernel command line size limit, no extra disk).
#
# Markers on the console (ttyS0) that the host reads:
#   COMPOUND-START <uptime>   the entrypoint is about to be exec'd
#   COMPOUND-EXIT <code>      the entrypoint ended with <code>
#   COMPOUND-ERROR <text>     setup failed; the VM powers off with code 255
# Every command that is not a shell builtin is a fork+exec, ~10-30 ms
# under TCG, so builtins are used wherever one does the job.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
export PATH=/bin:/sbin  # applet symlinks are in the archive (initramfs.py)
. /compound/modules  # MODULES_CONFIG, MODULES_BASE, MODULES_9P, MODULES_VIRTIOFS, MODULES_PCI
CONSOLE=/dev/ttyS0
[ -c "$CONSOLE" ] || CONSOLE=/dev/console
read -r CMDLINE < /proc/cmdline
CMDLINE=" $CMDLINE "

say() { echo "$*" > "$CONSOLE"; }
uptime_s() { read -r UPTIME _ < /proc/uptime; }

# compound.debug=1 on the kernel command line: timestamps of each step.
case "$CMDLINE" in
    *" compound.debug=1 "*) trace() { uptime_s; say "T $UPTIME $*"; } ;;
    *) trace() { :; } ;;
esac
trace init

# Accelerator probe (accel.py): reaching here proves the kernel ran.
case "$CMDLINE" in
    *" compound.probe=1 "*) say "COMPOUND-PROBE-OK"; poweroff -f ;;
esac

finish() {
    # Report, flush, power off. The marker is what the launcher turns into
    # its own exit code, so it is written before anything that could hang.
    say "COMPOUND-EXIT $1"
    sync
    /bin/busybox poweroff -f
    echo o > /proc/sysrq-trigger
}

fail() {
    say "COMPOUND-ERROR $*"
    finish 255
}

load() {
    # One process for the whole list; modprobe follows our modules.dep.
    # compound's own kernel has everything built in: its lists are empty
    # and nothing is loaded (Debian's kernel: x-compound.vm.kernel: debian).
    [ $# -gt 0 ] && { modprobe -a "$@" || say "compound: modprobe $* failed"; }
}

# --- configuration -----------------------------------------------------------
trace "configuration"
# fw_cfg (for the config) and the base devices in one modprobe.
load $MODULES_CONFIG $MODULES_BASE
CFG=/sys/firmware/qemu_fw_cfg/by_name/opt/compound/config/raw
i=0
while [ ! -r "$CFG" ] && [ $i -lt 200 ]; do usleep 10000; i=$((i + 1)); done
[ -r "$CFG" ] || fail "no configuration (fw_cfg opt/compound/config)"
cat "$CFG" > /compound/config
. /compound/config

# --- devices ----------------------------------------------------------------
trace "devices"
case "$CMDLINE" in *" compound.pci=1 "*) load $MODULES_PCI ;; esac
# Volumes go over virtio-fs when the launcher's virtiofsd runs (tags listed
# in COMPOUND_VIRTIOFS_TAGS), else over 9p: load what the mounts need.
NEED_9P= NEED_VFS=
if [ -n "$COMPOUND_MOUNTS" ]; then
    while IFS='	' read -r tag _; do
        case "${COMPOUND_VIRTIOFS_TAGS:-}" in
            *" $tag "*) NEED_VFS=1 ;;
            *) NEED_9P=1 ;;
        esac
    done <<MOUNTS
$COMPOUND_MOUNTS
MOUNTS
fi
load ${NEED_9P:+$MODULES_9P} ${NEED_VFS:+$MODULES_VIRTIOFS}
# Every devtmpfs mount is the same filesystem, so what is made here also
# appears in the service's /dev below. Ports are found by name (no udev).
mkdir -p /dev/pts /dev/shm /dev/mqueue
PORT_AGENT= PORT_OUT= PORT_ERR= PORT_CTL=
for p in /sys/class/virtio-ports/*; do
    [ -r "$p/name" ] || continue
    read -r name < "$p/name"
    case "$name" in
        org.qemu.guest_agent.0) PORT_AGENT=/dev/${p##*/} ;;
        compound.stdout) PORT_OUT=/dev/${p##*/} ;;
        compound.stderr) PORT_ERR=/dev/${p##*/} ;;
        compound.ctl) PORT_CTL=/dev/${p##*/} ;;
    esac
done
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr

# --- root filesystem ---------------------------------------------------------
trace "root filesystem"
# vda is the per-instance qcow2 overlay over the read-only ext4 base disk.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do usleep 10000; i=$((i + 1)); done
[ -b /dev/vda ] || fail "no root disk (/dev/vda)"
ROOT_OPTS=rw
[ "$COMPOUND_READ_ONLY" = 1 ] && ROOT_OPTS=ro
mount -t ext4 -o "$ROOT_OPTS,noatime" /dev/vda /newroot || fail "cannot mount the root disk"
# What Docker gives every container: proc, sysfs (ro), dev with pts/shm/mqueue.
for d in proc sys dev run tmp etc; do
    [ -d "/newroot/$d" ] || mkdir -p "/newroot/$d" 2>/dev/null
done
# One process for all of them: /etc/fstab of the initramfs lists them.
mount -a 2>/dev/null || say "compound: some of /newroot's proc/sys/dev mounts failed"

# --- volumes (virtio-fs or virtio-9p) and tmpfs -------------------------------------
trace "volumes"
# COMPOUND_MOUNTS: one "tag<TAB>target<TAB>ro|rw" per line.
TAB='	'
[ -n "$COMPOUND_MOUNTS" ] && echo "$COMPOUND_MOUNTS" | while IFS="$TAB" read -r tag target mode; do
    [ -n "$tag" ] || continue
    mkdir -p "/newroot$target"
    case "${COMPOUND_VIRTIOFS_TAGS:-}" in
        *" $tag "*) mount -t virtiofs -o "$mode" "$tag" "/newroot$target" ;;
        *) mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,access=client,posixacl,$mode" \
            "$tag" "/newroot$target" ;;
    esac || say "COMPOUND-ERROR cannot mount volume $tag at $target"
done
[ -n "$COMPOUND_TMPFS" ] && echo "$COMPOUND_TMPFS" | while IFS="$TAB" read -r target opts; do
    [ -n "$target" ] || continue
    mkdir -p "/newroot$target"
    mount -t tmpfs -o "${opts:-mode=1777}" tmpfs "/newroot$target"
done

# --- network -------------------------------------------------------------------
trace "network"
echo "$COMPOUND_HOSTNAME" > /proc/sys/kernel/hostname
ip link set lo up
if [ -n "$COMPOUND_IP" ]; then  # QEMU user networking (slirp)
    ip link set eth0 up
    ip addr add "$COMPOUND_IP" dev eth0
    [ -n "$COMPOUND_GATEWAY" ] && ip route add default via "$COMPOUND_GATEWAY"
fi
# tap: one NIC per launcher interface, found by the MAC the launcher gave it
# (the order of virtio-mmio devices is not the order of the interfaces).
nic_of() {  # mac -> NIC; waits up to 2 s for the driver to bind
    j=0
    while [ $j -lt 200 ]; do
        for n in /sys/class/net/*; do
            read -r a < "$n/address" && [ "$a" = "$1" ] && { NIC=${n##*/}; return 0; }
        done
        usleep 10000
        j=$((j + 1))
    done
    return 1
}
if [ -n "${COMPOUND_NICS:-}" ]; then
    # "mac<TAB>mtu<TAB>addr/prefix ..." per line
    while IFS="$TAB" read -r mac mtu addrs; do
        [ -n "$mac" ] || continue
        nic_of "$mac" || fail "network: no NIC with MAC $mac (virtio_net missing?)"
        # Docker gives the address to one container only: no DAD wait.
        echo 0 > "/proc/sys/net/ipv6/conf/$NIC/accept_dad" 2>/dev/null
        ip link set dev "$NIC" mtu "$mtu" up || fail "network: cannot bring $NIC ($mac) up"
        for a in $addrs; do
            ip addr add "$a" dev "$NIC" || fail "network: cannot give $a to $NIC"
        done
    done <<NICS
$COMPOUND_NICS
NICS
    # "dest<TAB>gateway<TAB>mac" per line, as the launcher had them
    while IFS="$TAB" read -r dest gw mac; do
        [ -n "$dest" ] || continue
        nic_of "$mac" || continue
        case "$gw" in *:*) fam=-6 ;; *) fam=-4 ;; esac
        ip "$fam" route add "$dest" via "$gw" dev "$NIC" \
            || fail "network: cannot add route $dest via $gw"
    done <<ROUTES
$COMPOUND_ROUTES
ROUTES
    # The nameserver (the launcher's forwarder to Docker's DNS) is on-link.
    set -- ${COMPOUND_DNS_VIA:-}
    if [ $# = 2 ] && nic_of "$2"; then
        ip route add "$1/32" dev "$NIC" || fail "network: cannot reach the nameserver $1"
    fi
fi
# resolv.conf, hosts, hostname as Docker writes them into a container.
if [ "$COMPOUND_READ_ONLY" != 1 ]; then
    printf '%s\n' "$COMPOUND_RESOLV_CONF" > /newroot/etc/resolv.conf
    printf '%s\n' "$COMPOUND_HOSTS" > /newroot/etc/hosts
    echo "$COMPOUND_HOSTNAME" > /newroot/etc/hostname
fi
# Docker lets unprivileged processes bind any port in a container's netns.
echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start
[ -n "$COMPOUND_SYSCTLS" ] && echo "$COMPOUND_SYSCTLS" | while read -r kv; do
    [ -n "$kv" ] && sysctl -w "$kv" > /dev/null
done

# pids_limit: every process of the service (the entrypoint, exec'd ones)
# in one pids cgroup; compound-exec moves itself there.
if [ -n "${COMPOUND_PIDS_MAX:-}" ]; then
    mount -t cgroup2 cgroup2 /sys/fs/cgroup \
        && echo +pids > /sys/fs/cgroup/cgroup.subtree_control \
        && mkdir -p /sys/fs/cgroup/service \
        && echo "$COMPOUND_PIDS_MAX" > /sys/fs/cgroup/service/pids.max \
        || fail "cannot apply pids_limit $COMPOUND_PIDS_MAX (cgroup2 pids controller)"
fi

# --- the entrypoint ---------------------------------------------------------------
trace "the entrypoint"
OUT=${PORT_OUT:-$CONSOLE}
ERR=${PORT_ERR:-$OUT}

eval "set -- $COMPOUND_ARGV"
[ $# -gt 0 ] || fail "no command specified (the image has no ENTRYPOINT or CMD)"
APP_PID=
STOPPING=0
stop_app() {
    STOPPING=1
    [ -n "$APP_PID" ] && kill "-${COMPOUND_STOP_SIGNAL:-TERM}" "$APP_PID" 2>/dev/null
}
trap stop_app TERM INT
# The launcher's requests arrive on the control port: "stop", and
# "health NONCE" (its Docker healthcheck), answered on the same port with
# "health NONCE CODE OUTPUT" once the service's check has run. A virtio
# port opens once at a time, so one descriptor serves both directions.
health() {  # nonce
    n=$1
    eval "set -- $COMPOUND_HEALTH"
    if [ $# = 0 ]; then
        echo "health $n 0 no healthcheck"
        return
    fi
    timeout -s KILL "$COMPOUND_HEALTH_TIMEOUT" /sbin/compound-exec "" "" -- "$@" \
        < /dev/null > "/tmp/health.$n" 2>&1
    code=$?
    [ $code = 137 ] && echo "timed out after ${COMPOUND_HEALTH_TIMEOUT}s" >> "/tmp/health.$n"
    echo "health $n $code $(head -c 2000 "/tmp/health.$n" | tr '\r\n\t' '   ')"
    rm -f "/tmp/health.$n"
}
if [ -n "$PORT_CTL" ]; then
    (
        exec 3<> "$PORT_CTL"
        while read -r cmd arg _ <&3; do
            case "$cmd" in
                stop) kill -TERM 1 ;;
                health) health "$arg" >&3 & ;;
            esac
        done
    ) &
fi

uptime_s
say "COMPOUND-START $UPTIME"
/sbin/compound-exec "$COMPOUND_USER" "$COMPOUND_WORKDIR" -- "$@" < /dev/null > "$OUT" 2> "$ERR" &
APP_PID=$!

# The guest agent starts after the entrypoint: with one vCPU under TCG its
# start (dynamic linking of glib) would otherwise delay the entrypoint.
if [ -n "$PORT_AGENT" ]; then  # /run/qga is in the archive
    /sbin/qemu-ga -m virtio-serial -p "$PORT_AGENT" \
        -t /run/qga -f /run/qga/pid > /dev/null 2>&1 &
fi
while :; do
    wait "$APP_PID"
    CODE=$?
    # wait returns >128 when a trapped signal interrupts it; wait again
    # until the app itself has ended.
    kill -0 "$APP_PID" 2>/dev/null || break
done
finish "$CODE"
