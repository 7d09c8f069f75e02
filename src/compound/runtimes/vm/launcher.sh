#!/bin/sh
# compound-launcher: PID 1 of a VM's launcher container.
#
# Usage: compound-launcher QEMU-ARGV...   (argv built by compound's qemu.py,
#        without NICs and volumes: this script adds those, since only it
#        knows this container's interfaces and whether virtiofsd runs)
#
# Mounted by the host driver:
#   /compound/kernel, /compound/initramfs, /compound/base.ext4   read-only, shared
#   /compound/run      per-instance dir on the host: config.base (guest config
#                      written by the host), launcher.conf (settings for this
#                      script), qmp.sock, qga.sock, console.log, ctl.*
#   /compound/volumes/<n>  Docker volumes, exported to the guest with
#                      virtio-fs (one virtiofsd each) or virtio-9p
#   /compound/run/state  what a container would keep in its writable layer
#                      (the root filesystem is read-only): root.qcow2, the
#                      instance overlay over base.ext4, and config (config.base
#                      + facts only known in here). Gone with the instance,
#                      kept across restarts like a container's files.
#
# Confinement (launcher.py sets the container up): read-only root, tmpfs
# /tmp and /run, no-new-privileges, only the capabilities this VM's network
# and volumes need. QEMU itself runs as COMPOUND_QEMU_UID with no
# capabilities and its own seccomp sandbox; only when a volume goes over 9p
# does it stay root (QEMU's 9p server chowns for the guest).
#
# `compound-launcher --health` is the container's Docker healthcheck: it runs
# the service's check in the guest (through the control port) and exits
# with its verdict, so `docker ps` and any monitoring see the guest's health.
#
# Network (COMPOUND_NET=tap): the guest takes over this container's network
# identity. For every interface ethN: a tapN for QEMU, ethN's addresses
# removed here and given to the guest with ethN's MAC and routes, and tc
# redirecting every frame between ethN and tapN both ways. Docker's DNS
# (127.0.0.11, reachable only from in here) is served to the guest by a
# dnsmasq on a link-local address of tap0. A `docker restart` makes a new
# network namespace, and this script runs again and redoes all of it.
#
# SIGTERM/SIGINT (docker stop) asks the guest to stop its entrypoint through
# the control port; the guest reports COMPOUND-EXIT <code> on the console and
# powers off; this script exits with that code, like the container would.
set -u
RUN=/compound/run
STATE=$RUN/state
log() { echo "compound-launcher: $*" >&2; }
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
TAB=$(printf '\t')

# COMPOUND_NET, COMPOUND_NET_LINK, COMPOUND_DEVICE_SUFFIX, COMPOUND_SLIRP_NETDEV,
# COMPOUND_SHARE, COMPOUND_SHARES, COMPOUND_QEMU_UID, COMPOUND_HEALTH_TIMEOUT,
# COMPOUND_BOOT_TIMEOUT (written by the host driver, shell-quoted)
COMPOUND_NET=user COMPOUND_NET_LINK=tc COMPOUND_DEVICE_SUFFIX=device
COMPOUND_SLIRP_NETDEV=user,id=net0 COMPOUND_SHARE=9p COMPOUND_SHARES=
COMPOUND_QEMU_UID=0 COMPOUND_HEALTH_TIMEOUT=30 COMPOUND_BOOT_TIMEOUT=180
COMPOUND_LEGACY= COMPOUND_OVERLAY=$STATE/root.qcow2 COMPOUND_FIRMWARE=bios
[ -f "$RUN/launcher.conf" ] && . "$RUN/launcher.conf"

# --- the healthcheck ------------------------------------------------------------------
# Docker runs this beside PID 1. It waits for the guest's entrypoint (a
# check during boot is not a failure, as a container's first check only
# runs once its process does), asks the guest to run the check (control
# port: "health NONCE"), and reads "health NONCE CODE OUTPUT" back.
if [ "${1:-}" = --health ]; then
    i=0
    until grep -q '^COMPOUND-START' "$RUN/console.log" 2> /dev/null; do
        [ $i -ge $((COMPOUND_BOOT_TIMEOUT * 10)) ] && {
            echo "the guest has not started its entrypoint"
            exit 1
        }
        sleep 0.1
        i=$((i + 1))
    done
    nonce=$$$(date +%N)
    echo "health $nonce" > "$RUN/ctl.in"  # QEMU holds the FIFO open: no block
    reply=$(timeout $((COMPOUND_HEALTH_TIMEOUT + 5)) sh -c '
        while IFS= read -r line; do
            case "$line" in "health $1 "*) printf "%s" "${line#health $1 }"; exit 0 ;; esac
        done' sh "$nonce" < "$RUN/ctl.out") || {
        echo "the guest did not answer the healthcheck in $((COMPOUND_HEALTH_TIMEOUT + 5))s"
        exit 1
    }
    code=${reply%% *}
    out=${reply#"$code"}
    printf '%s\n' "${out# }"
    [ "$code" = 0 ]
    exit $?
fi

mkdir -p "$STATE"

[ -f "$RUN/config.base" ] || { log "no $RUN/config.base"; exit 125; }
# COMPOUND_LEGACY=<format>: a legacy VM disk at /compound/disk that boots
# its own bootloader; its overlay is COMPOUND_OVERLAY (on a volume when the
# service is persistent), it gets its address by DHCP (udhcpd below), and it
# stops by ACPI power-down from the host (QMP), or SIGTERM to QEMU here.
if [ -n "$COMPOUND_LEGACY" ]; then
    mkdir -p "$(dirname "$COMPOUND_OVERLAY")"
    if [ ! -f "$COMPOUND_OVERLAY" ]; then
        qemu-img create -q -f qcow2 -b /compound/disk -F "$COMPOUND_LEGACY" "$COMPOUND_OVERLAY.tmp" \
            && mv "$COMPOUND_OVERLAY.tmp" "$COMPOUND_OVERLAY" \
            || { log "cannot create the overlay over the disk"; exit 125; }
    fi
    if [ "$COMPOUND_FIRMWARE" = uefi ] && [ ! -f "$STATE/OVMF_VARS.fd" ]; then
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$STATE/OVMF_VARS.fd" \
            || { log "no OVMF firmware in the launcher image"; exit 125; }
    fi
elif [ ! -f "$STATE/root.qcow2" ]; then
    qemu-img create -q -f qcow2 -b /compound/base.ext4 -F raw "$STATE/root.qcow2" \
        || { log "cannot create the overlay"; exit 125; }
fi
# QEMU (COMPOUND_QEMU_UID) writes its overlay; the run dir and state dir are
# setgid to its group (the host made them so), so what is made here is too.
# (A legacy disk's QEMU stays root: its overlay may be on a volume.)
[ -n "$COMPOUND_LEGACY" ] || chmod 0660 "$STATE/root.qcow2"
: > "$STATE/effective"  # what was set up, for the host (ps, doctor)
rm -f "$STATE/virtiofsd-died"
EXTRA=  # QEMU arguments added here, shell-quoted
add() { for a in "$@"; do EXTRA="$EXTRA $(q "$a")"; done; }
DEV=virtio-net-$COMPOUND_DEVICE_SUFFIX

# --- network ---------------------------------------------------------------------
DNS_ADDR=169.254.53.1    # the guest's nameserver (dnsmasq on tap0)
DNS_HEX=0xa9fe3501
GUEST_CFG=               # lines appended to the guest config
net_tap() {
    [ -c /dev/net/tun ] || { log "no /dev/net/tun"; return 1; }
    NICS= ROUTES= n=0
    for path in /sys/class/net/*; do
        ifc=${path##*/}
        case "$ifc" in tap* | br*) continue ;; esac
        # Ethernet interfaces that are up: Docker's veths; not lo, nor the
        # tunl0/sit0/gretap0 that appear in every namespace when the host
        # has those modules loaded.
        read -r type < "$path/type"
        read -r mac < "$path/address"
        read -r state < "$path/operstate"
        [ "$type" = 1 ] && [ "$mac" != 00:00:00:00:00:00 ] && [ "$state" != down ] || continue
        read -r mtu < "$path/mtu"
        addrs=$(ip -o addr show dev "$ifc" scope global | awk '{print $4}' | tr '\n' ' ')
        tap=tap$n
        ip tuntap add dev "$tap" mode tap user "$COMPOUND_QEMU_UID" || return 1
        ip link set dev "$tap" mtu "$mtu" up || return 1
        # Routes through ifc, kept before its addresses go: "dest via gw".
        for fam in -4 -6; do
            ip "$fam" route show dev "$ifc" | grep -v 'proto kernel' | grep -v '^fe80' \
                | while read -r dest _via gw _; do
                    [ "$_via" = via ] && printf '%s\t%s\t%s\n' "$dest" "$gw" "$mac"
                done
        done > "$STATE/routes.$n"
        ROUTES="$ROUTES$(cat "$STATE/routes.$n")
"
        for a in $addrs; do ip addr del "$a" dev "$ifc" || return 1; done
        if [ "$COMPOUND_NET_LINK" = bridge ]; then
            # ifc becomes a port of brN and gives its MAC to the guest: a
            # port's own MAC is a local FDB entry, so it takes another one.
            ip link add "br$n" type bridge || return 1
            ip link set dev "$ifc" down
            ip link set dev "$ifc" address "$(printf '02:%02x:%02x:%02x:%02x:%02x' \
                $(od -An -N5 -tu1 /dev/urandom))" || return 1
            ip link set dev "$ifc" master "br$n" up || return 1
            ip link set dev "$tap" master "br$n" || return 1
            ip link set dev "br$n" mtu "$mtu" up || return 1
            local_dev=br$n
        else
            # Every frame in on ifc goes out to the guest and back; only what
            # the guest sends to the DNS forwarder stays here (tap0).
            tc qdisc add dev "$ifc" ingress || return 1
            tc filter add dev "$ifc" parent ffff: prio 3 protocol all u32 match u32 0 0 \
                action mirred egress redirect dev "$tap" || return 1
            tc qdisc add dev "$tap" ingress || return 1
            if [ $n = 0 ]; then
                # IP to DNS_ADDR, and ARP asking for it (target address at
                # 24): a match without an action ends the classification
                # and the frame goes up this stack (no act_gact needed).
                tc filter add dev "$tap" parent ffff: prio 1 protocol ip u32 \
                    match ip dst "$DNS_ADDR/32" flowid ffff:1 || return 1
                tc filter add dev "$tap" parent ffff: prio 2 protocol arp u32 \
                    match u32 "$DNS_HEX" 0xffffffff at 24 flowid ffff:1 || return 1
            fi
            tc filter add dev "$tap" parent ffff: prio 3 protocol all u32 match u32 0 0 \
                action mirred egress redirect dev "$ifc" || return 1
            local_dev=$tap
        fi
        if [ $n = 0 ]; then
            # The forwarder's side: DNS_ADDR here, the guest's v4 address
            # reachable through local_dev with a static neighbour (its ARP
            # would leave through the redirect).
            ip addr add "$DNS_ADDR/32" dev "$local_dev" || return 1
            for a in $addrs; do
                case "$a" in *:*) continue ;; esac
                ip route add "${a%/*}/32" dev "$local_dev" src "$DNS_ADDR" || return 1
                ip neigh replace "${a%/*}" lladdr "$mac" dev "$local_dev" nud permanent || return 1
            done
            GUEST_CFG="${GUEST_CFG}COMPOUND_DNS_VIA=$(q "$DNS_ADDR $mac")
"
        fi
        NICS="$NICS$mac$TAB$mtu$TAB$addrs
"
        add -netdev "tap,id=net$n,ifname=$tap,script=no,downscript=no" \
            -device "$DEV,netdev=net$n,mac=$mac"
        echo "net $ifc $tap $mac $addrs" >> "$STATE/effective"
        n=$((n + 1))
    done
    if [ $n -gt 0 ]; then
        dnsmasq --listen-address="$DNS_ADDR" --bind-interfaces --no-resolv --no-hosts \
            --server=127.0.0.11 --cache-size=0 --no-negcache --port=53 \
            --pid-file="$STATE/dnsmasq.pid" || { log "dnsmasq failed"; return 1; }
    fi
    GUEST_CFG="${GUEST_CFG}COMPOUND_IP=''
COMPOUND_GATEWAY=''
COMPOUND_NICS=$(q "$NICS")
COMPOUND_ROUTES=$(q "$ROUTES")
"
    NAMESERVER=$DNS_ADDR
}
NAMESERVER=10.0.2.3
# A legacy guest configures itself by DHCP: busybox udhcpd on tap0 offers it
# the first NIC's address (a static lease for its MAC), the gateway, and our
# DNS forwarder as nameserver with an on-link route to it (option 121, since
# it is outside the guest's subnet). DHCP from the guest stays here (tc).
legacy_dhcp() {
    first=$(printf '%s' "$NICS" | head -n 1)
    mac=$(printf '%s' "$first" | cut -f1)
    cidr=$(printf '%s' "$first" | cut -f3 | tr ' ' '\n' | grep -v : | head -n 1)
    [ -n "$cidr" ] || { log "no IPv4 address for the guest's DHCP"; return 1; }
    ip=${cidr%/*}
    gw=$(awk -F "$TAB" '$1 == "default" {print $2; exit}' "$STATE/routes.0")
    mask=$(busybox ipcalc -m "$cidr" | cut -d= -f2)
    tc filter add dev tap0 parent ffff: prio 1 protocol ip u32 \
        match ip protocol 17 0xff match ip dport 67 0xffff flowid ffff:1 || return 1
    {
        echo "interface tap0"
        echo "start $ip"
        echo "end $ip"
        echo "max_leases 1"
        echo "lease_file $STATE/udhcpd.leases"
        echo "pidfile $STATE/udhcpd.pid"
        echo "static_lease $mac $ip"
        echo "opt subnet $mask"
        echo "opt dns $DNS_ADDR"
        echo "opt lease 864000"
        if [ -n "$gw" ]; then
            echo "opt router $gw"
            echo "opt staticroutes $DNS_ADDR/32 0.0.0.0 0.0.0.0/0 $gw"
        else
            echo "opt staticroutes $DNS_ADDR/32 0.0.0.0"
        fi
        echo "opt hostname $(hostname)"
    } > "$STATE/udhcpd.conf"
    : > "$STATE/udhcpd.leases"
    busybox udhcpd -S "$STATE/udhcpd.conf" || return 1
    echo "dhcp $ip" >> "$STATE/effective"
    SEED_MAC=$mac SEED_IP=$ip
}
# A guest with cloud-init gets a NoCloud seed (cloudseed.py): the host wrote
# meta-data, user-data and network-config.in into $RUN/seed; the NIC to
# configure (by the MAC it has here) and its address are known only now.
SEED_MAC= SEED_IP=
legacy_seed() {
    seed=$RUN/seed
    [ -f "$seed/network-config.in" ] || return 0
    if [ -n "$SEED_MAC" ]; then match="macaddress: \"$SEED_MAC\""; else match='name: "e*"'; fi
    sed -e "s|@MATCH@|$match|" -e "s|@ADDRESS@|${SEED_IP:-its address}|" \
        "$seed/network-config.in" > "$seed/network-config" || return 1
    echo "seed ${SEED_IP:-dhcp}" >> "$STATE/effective"
}
slirp() { add -netdev "$COMPOUND_SLIRP_NETDEV" -device "$DEV,netdev=net0"; }
case "$COMPOUND_NET" in
    tap)
        if ! net_tap > "$STATE/net.log" 2>&1; then
            log "cannot give the guest this container's network (needs NET_ADMIN and" \
                "/dev/net/tun), falling back to QEMU user networking: $(tail -n 3 "$STATE/net.log")"
            GUEST_CFG= NAMESERVER=10.0.2.3 EXTRA=
            slirp
            echo "net user (fallback)" >> "$STATE/effective"
        elif [ -n "$COMPOUND_LEGACY" ] && ! legacy_dhcp >> "$STATE/net.log" 2>&1; then
            log "cannot serve DHCP to the guest: $(tail -n 3 "$STATE/net.log")"
        fi
        ;;
    user)
        slirp
        echo "net user" >> "$STATE/effective"
        ;;
esac
if [ -n "$COMPOUND_LEGACY" ] && ! legacy_seed; then
    log "cannot write the guest's cloud-init network-config"
    exit 125
fi

# --- volumes -----------------------------------------------------------------------
# COMPOUND_SHARES: one "tag<TAB>dir<TAB>ro|rw" per line. virtio-fs needs one
# virtiofsd per volume, started before QEMU connects to it; a volume whose
# virtiofsd does not come up goes over virtio-9p (QEMU's own server) instead.
# cache=none: no attribute/dentry caching in the guest, so a container's
# writes are visible in the VM at once, as with 9p (NOTES.md, "Volumes").
VIRTIOFSD=/usr/lib/qemu/virtiofsd
VFS_TAGS=' '
start_virtiofsd() {  # tag dir
    sock=$STATE/vfs-$1.sock
    rm -f "$sock"
    (
        "$VIRTIOFSD" --socket-path="$sock" -o source="$2" -o sandbox=chroot \
            -o cache="${COMPOUND_VIRTIOFS_CACHE:-none}" < /dev/null 2> "$STATE/virtiofsd-$1.log"
        rc=$?
        # It exits 0 when QEMU goes away; anything else while the guest runs
        # leaves the guest's file operations hanging, so end the VM and say so.
        if [ $rc != 0 ] && [ -f "$STATE/qemu.pid" ]; then
            echo "virtiofsd of volume $1 exited $rc: $(tail -n 3 "$STATE/virtiofsd-$1.log")" \
                > "$STATE/virtiofsd-died"
            kill -TERM "$(cat "$STATE/qemu.pid")" 2> /dev/null
        fi
    ) &
    i=0
    while [ ! -S "$sock" ] && [ $i -lt 300 ]; do
        sleep 0.01
        i=$((i + 1))
    done
    # QEMU connects as COMPOUND_QEMU_UID, through the group (setgid dir)
    [ -S "$sock" ] && chmod 0660 "$sock"
}
rm -f "$STATE/qemu.pid"
USES_9P=
if [ -n "$COMPOUND_SHARES" ]; then
    n=0
    while IFS="$TAB" read -r tag dir mode; do
        [ -n "$tag" ] || continue
        how=9p
        if [ "$COMPOUND_SHARE" = virtiofs ]; then
            if start_virtiofsd "$tag" "$dir"; then
                how=virtiofs
            else
                log "virtiofsd for $dir did not start, the volume goes over 9p:" \
                    "$(tail -n 3 "$STATE/virtiofsd-$tag.log")"
            fi
        fi
        if [ $how = virtiofs ]; then
            VFS_TAGS="$VFS_TAGS$tag "
            add -chardev "socket,id=vfs$n,path=$STATE/vfs-$tag.sock" \
                -device "vhost-user-fs-$COMPOUND_DEVICE_SUFFIX,chardev=vfs$n,tag=$tag"
        else
            # passthrough: owners and modes as they are on the volume (QEMU
            # runs as root here, so it can chown for the guest).
            USES_9P=1
            ro=
            [ "$mode" = ro ] && ro=,readonly=on
            add -fsdev "local,id=fs$n,path=$dir,security_model=passthrough$ro" \
                -device "virtio-9p-$COMPOUND_DEVICE_SUFFIX,fsdev=fs$n,mount_tag=$tag"
        fi
        echo "share $tag $how" >> "$STATE/effective"
        n=$((n + 1))
    done <<SHARES
$COMPOUND_SHARES
SHARES
fi
cp "$STATE/effective" "$RUN/effective" 2> /dev/null

# --- the guest's configuration ---------------------------------------------------------
# Facts of this container that the guest takes over: the hostname Docker
# gave us, our /etc/hosts (extra_hosts, our own name: our address, which
# the guest now owns), resolv.conf with the nameserver replaced by ours.
# The guest's environment is in here: readable by QEMU's group only.
umask 027
{
    cat "$RUN/config.base"
    echo "# appended by compound-launcher"
    grep -q "^COMPOUND_HOSTNAME=''" "$RUN/config.base" && echo "COMPOUND_HOSTNAME=$(q "$(hostname)")"
    echo "COMPOUND_HOSTS=$(q "$(cat /etc/hosts)")"
    echo "COMPOUND_RESOLV_CONF=$(q "$(grep -v '^nameserver' /etc/resolv.conf)
nameserver $NAMESERVER")"
    echo "COMPOUND_VIRTIOFS_TAGS=$(q "$VFS_TAGS")"
    printf '%s' "$GUEST_CFG"
} > "$STATE/config"
umask 022

for f in ctl.in ctl.out; do
    [ -p "$RUN/$f" ] || { rm -f "$RUN/$f"; mkfifo "$RUN/$f"; }
    chmod 0660 "$RUN/$f"
done
rm -f "$RUN/console.log"

stop() {
    if [ -n "$COMPOUND_LEGACY" ]; then
        # compound asks the guest to power down over QMP first; a plain
        # `docker stop` ends QEMU (the guest's disk is an overlay, its
        # writeback cache flushed by QEMU on SIGTERM)
        log "stopping QEMU"
        [ -f "$STATE/qemu.pid" ] && kill -TERM "$(cat "$STATE/qemu.pid")" 2> /dev/null
        return
    fi
    log "stopping the guest"
    # Non-blocking: the guest's reader may not be up yet; the FIFO keeps the
    # request until it is (QEMU holds the FIFO open, so this never blocks).
    echo stop > "$RUN/ctl.in" &
}
trap stop TERM INT

RC=255
eval "set -- \"\$@\" $EXTRA"
# QEMU without privileges: its own uid, no capabilities (the bounding set
# stays, but no-new-privileges and the uid change leave nothing effective),
# /dev/kvm through its group. A 9p volume needs root's chown: QEMU keeps it.
if [ "$COMPOUND_QEMU_UID" != 0 ] && [ -z "$USES_9P" ]; then
    if [ -c /dev/kvm ]; then
        set -- setpriv --reuid="$COMPOUND_QEMU_UID" --regid="$COMPOUND_QEMU_UID" \
            --groups="$(stat -c %g /dev/kvm)" --inh-caps=-all -- "$@"
    else
        set -- setpriv --reuid="$COMPOUND_QEMU_UID" --regid="$COMPOUND_QEMU_UID" \
            --clear-groups --inh-caps=-all -- "$@"
    fi
    echo "qemu uid $COMPOUND_QEMU_UID" >> "$STATE/effective"
else
    echo "qemu uid 0" >> "$STATE/effective"
fi
cp "$STATE/effective" "$RUN/effective" 2> /dev/null
"$@" 5>&1 6>&2 &  # STDOUT_FD, STDERR_FD (launcher.py)
QEMU=$!
echo "$QEMU" > "$STATE/qemu.pid"
# alive? (not kill -0: QEMU is another uid, and the launcher may lack CAP_KILL)
while [ -d "/proc/$QEMU" ]; do
    wait "$QEMU"
    RC=$?
done
rm -f "$STATE/qemu.pid"
if [ -n "$COMPOUND_LEGACY" ]; then
    # no entrypoint in a legacy guest: QEMU's own exit (0 after a power-down)
    [ "$RC" = 0 ] || { log "QEMU exited $RC; console tail:"; tail -n 20 "$RUN/console.log" >&2 2>/dev/null; }
    exit "$RC"
fi
CODE=$(tr -d '\r' < "$RUN/console.log" 2>/dev/null | sed -n 's/^COMPOUND-EXIT \([0-9][0-9]*\).*/\1/p' | tail -n 1)
if [ -f "$STATE/virtiofsd-died" ]; then
    log "$(cat "$STATE/virtiofsd-died"); console tail:"
    tail -n 20 "$RUN/console.log" >&2 2>/dev/null
    exit 255
fi
ERR=$(tr -d '\r' < "$RUN/console.log" 2>/dev/null | sed -n 's/^COMPOUND-ERROR //p' | tail -n 1)
if [ -n "$ERR" ] && [ "$CODE" = 255 ]; then
    # /init could not set the guest up (network, volumes, root): say why here,
    # where `docker logs` and compound's error reports look
    log "guest setup failed: $ERR; console tail:"
    tail -n 20 "$RUN/console.log" >&2 2>/dev/null
    exit 255
fi
if [ -z "$CODE" ]; then
    log "the guest ended without an exit code (QEMU exit $RC); console tail:"
    tail -n 20 "$RUN/console.log" >&2 2>/dev/null
    exit 255
fi
exit "$CODE"
