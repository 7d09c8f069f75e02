#!/bin/sh
# compound-launcher: PID 1 of a VM's launcher container.
#
# Usage: compound-launcher QEMU-ARGV...   (argv built by compound's qemu.py)
#
# Mounted by the host driver:
#   /compound/kernel, /compound/initramfs, /compound/base.ext4   read-only, shared
#   /compound/run      per-instance dir on the host: config.base (guest config
#                      written by the host), qmp.sock, qga.sock, console.log, ctl.*
#   /compound/volumes/<n>  Docker volumes, exported to the guest with virtio-9p
# In the container's own writable layer (gone with the container, kept across
# restarts like a container's files):
#   /var/lib/compound/root.qcow2   the instance overlay over base.ext4
#   /var/lib/compound/config       config.base + facts only known in here
#
# SIGTERM/SIGINT (docker stop) asks the guest to stop its entrypoint through
# the control port; the guest reports COMPOUND-EXIT <code> on the console and
# powers off; this script exits with that code, like the container would.
set -u
RUN=/compound/run
STATE=/var/lib/compound
mkdir -p "$STATE"
log() { echo "compound-launcher: $*" >&2; }
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

[ -f "$RUN/config.base" ] || { log "no $RUN/config.base"; exit 125; }
if [ ! -f "$STATE/root.qcow2" ]; then
    qemu-img create -q -f qcow2 -b /compound/base.ext4 -F raw "$STATE/root.qcow2" \
        || { log "cannot create the overlay"; exit 125; }
fi

# Facts of this container that the guest takes over: the hostname Docker
# gave us, our /etc/hosts (extra_hosts, our own name), and resolv.conf with
# the nameserver replaced by slirp's, which forwards to ours (127.0.0.11,
# Docker's embedded DNS: service names resolve in the guest).
{
    cat "$RUN/config.base"
    echo "# appended by compound-launcher"
    grep -q "^COMPOUND_HOSTNAME=''" "$RUN/config.base" && echo "COMPOUND_HOSTNAME=$(q "$(hostname)")"
    echo "COMPOUND_HOSTS=$(q "$(cat /etc/hosts)")"
    echo "COMPOUND_RESOLV_CONF=$(q "$(grep -v '^nameserver' /etc/resolv.conf)
nameserver ${COMPOUND_GUEST_DNS:-10.0.2.3}")"
} > "$STATE/config"

for f in ctl.in ctl.out; do
    [ -p "$RUN/$f" ] || { rm -f "$RUN/$f"; mkfifo "$RUN/$f"; }
done
rm -f "$RUN/console.log"

stop() {
    log "stopping the guest"
    # Non-blocking: the guest's reader may not be up yet; the FIFO keeps the
    # request until it is (QEMU holds the FIFO open, so this never blocks).
    echo stop > "$RUN/ctl.in" &
}
trap stop TERM INT

RC=255
"$@" &
QEMU=$!
while kill -0 "$QEMU" 2>/dev/null; do
    wait "$QEMU"
    RC=$?
done
CODE=$(tr -d '\r' < "$RUN/console.log" 2>/dev/null | sed -n 's/^COMPOUND-EXIT \([0-9][0-9]*\).*/\1/p' | tail -n 1)
if [ -z "$CODE" ]; then
    log "the guest ended without an exit code (QEMU exit $RC); console tail:"
    tail -n 20 "$RUN/console.log" >&2 2>/dev/null
    exit 255
fi
exit "$CODE"
