#!/usr/bin/env bash
# images/legacy-disk.sh — build the "legacy VM" test disk: a bootable Debian 12
# qcow2 as a company would have it, made from Debian packages only.
#
# Usage: images/legacy-disk.sh            prints the path of the cached disk
#        images/legacy-disk.sh --force    rebuilds it
#
# The disk (2 GiB virtual, MBR, one ext4 partition, extlinux in the MBR):
#   - Debian 12 with systemd, linux-image-amd64 + initramfs, ifupdown +
#     isc-dhcp-client (DHCP on eth0: net.ifnames=0), console=ttyS0;
#   - app.service: a small Python key/value HTTP app on 127.0.0.1:8080, user
#     `app`, data in /var/lib/app/data.json (seeded with greeting=hello-legacy);
#   - nginx on :80 proxying to it; a cron job writing /var/lib/app/cron-stamp;
#   - qemu-guest-agent (for exec and healthchecks through compound);
#   - cloud-init (NoCloud only, as a company's cloud-ready image has it): it
#     brings eth0 up from the network-config of compound's seed, sets the
#     hostname and installs the SSH key (/etc/network/interfaces only
#     sources interfaces.d, where cloud-init writes eth0);
#   - an fstab with the root UUID and a swap line (for lift to drop).
#
# Cached by recipe hash (this script, runtimes/debian-root.sh with the mmdebstrap
# call both disks share, the mirrors and mmdebstrap's version) under
# ${COMPOUND_LEGACY_CACHE:-~/.cache/compound/legacy}/debian12-<hash>.qcow2;
# built into a temporary file and renamed, so a failed build leaves nothing.
# Needs root (loop devices, mount), mmdebstrap, sfdisk, extlinux, qemu-img.
# Mirrors: COMPOUND_DEBIAN_MIRROR, else deb.debian.org (Debian's own mirrors).
#
# By hand, what this automates:
#   mmdebstrap --include=<PACKAGES> --customize-hook=<guest_setup> bookworm root.tar
#   truncate -s 2G disk.raw; echo 'start=2048,type=83,bootable' | sfdisk disk.raw
#   losetup --offset 1M; mkfs.ext4; mount; tar -x; extlinux --install /boot/extlinux;
#   dd mbr.bin; umount; qemu-img convert -O qcow2 disk.raw disk.qcow2
set -euo pipefail
LOG_PREFIX=legacy-disk
# shellcheck source=../src/compound/runtimes/debian-root.sh
source "$(dirname "${BASH_SOURCE[0]}")/../src/compound/runtimes/debian-root.sh"

CACHE_DIR=${COMPOUND_LEGACY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compound/legacy}
SIZE=2G
PACKAGES=systemd,systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,extlinux,
PACKAGES+=ifupdown,isc-dhcp-client,iproute2,netbase,nginx-light,python3,cron,
PACKAGES+=qemu-guest-agent,procps,ca-certificates,cloud-init

FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

HASH=$(recipe_hash "${BASH_SOURCE[0]}")
OUT=$CACHE_DIR/debian12-$HASH.qcow2
if [[ -s $OUT && $FORCE == 0 ]]; then
  echo "$OUT"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root (loop devices and mount)"
for t in mmdebstrap sfdisk extlinux qemu-img losetup mkfs.ext4; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install mmdebstrap fdisk extlinux qemu-utils mount e2fsprogs)"
done
MBR=/usr/lib/syslinux/mbr/mbr.bin
[[ -f $MBR ]] || die "$MBR not found (apt-get install syslinux-common)"

mkdir -p "$CACHE_DIR"
WORK=$(mktemp -d "$CACHE_DIR/.build-XXXXXX")
MNT=$WORK/mnt
LOOP=
cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
  [[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# The guest's own configuration, run by mmdebstrap inside the new root ($1).
cat >"$WORK/guest-setup.sh" <<'GUEST'
#!/bin/sh
set -eu
R=$1
echo legacy > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 legacy\n' > "$R/etc/hosts"
cat > "$R/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF
mkdir -p "$R/etc/cloud/cloud.cfg.d"
# NoCloud only (no probing of cloud metadata services), C.UTF-8 (no locale-gen at boot)
printf 'datasource_list: [NoCloud, None]\nlocale: C.UTF-8\n' > "$R/etc/cloud/cloud.cfg.d/90-legacy.cfg"
chroot "$R" useradd --system --home-dir /var/lib/app --shell /usr/sbin/nologin app
mkdir -p "$R/opt/app" "$R/var/lib/app"
cat > "$R/opt/app/app.py" <<'EOF'
"""A small key/value service: GET/PUT /kv/<key>, GET /health. Data in /var/lib/app."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = os.environ.get("APP_DATA", "/var/lib/app/data.json")


def load():
    with open(DATA) as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, body):
        raw = (body + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, "ok")
        if self.path.startswith("/kv/"):
            data = load()
            key = self.path[4:]
            return self.reply(200, data[key]) if key in data else self.reply(404, "no such key")
        return self.reply(404, "not found")

    def do_PUT(self):
        if not self.path.startswith("/kv/"):
            return self.reply(404, "not found")
        value = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        data = load()
        data[self.path[4:]] = value
        with open(DATA + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(DATA + ".tmp", DATA)
        return self.reply(200, "stored")


ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("APP_PORT", "8080"))), Handler).serve_forever()
EOF
printf '{"greeting": "hello-legacy"}' > "$R/var/lib/app/data.json"
chroot "$R" chown -R app:app /var/lib/app
cat > "$R/etc/systemd/system/app.service" <<'EOF'
[Unit]
Description=Key/value app behind nginx
After=network.target

[Service]
User=app
Environment=APP_PORT=8080
ExecStart=/usr/bin/python3 /opt/app/app.py
Restart=always

[Install]
WantedBy=multi-user.target
EOF
chroot "$R" systemctl enable app.service
rm -f "$R/etc/nginx/sites-enabled/default"
cat > "$R/etc/nginx/sites-available/app" <<'EOF'
server {
    listen 80 default_server;
    location / {
        proxy_pass http://127.0.0.1:8080;
    }
}
EOF
ln -s ../sites-available/app "$R/etc/nginx/sites-enabled/app"
echo '* * * * * app date +\%s > /var/lib/app/cron-stamp' > "$R/etc/cron.d/app-stamp"
# Logins on the serial console (also what makes `logs` useful).
chroot "$R" systemctl enable serial-getty@ttyS0.service
echo 'root:legacy' | chroot "$R" chpasswd
# qemu-guest-agent waits for its virtio port (udev starts it); no timesyncd noise.
rm -rf "$R/var/lib/apt/lists"/* "$R/var/cache/apt"/*.bin
GUEST
chmod +x "$WORK/guest-setup.sh"

step "mmdebstrap $SUITE with a kernel, systemd, nginx, python3, cron (a few minutes the first time)"
debian_root "$PACKAGES" "$WORK/guest-setup.sh" "$WORK/root.tar"

step "partitioning a $SIZE disk (MBR, one bootable ext4 partition)"
truncate -s "$SIZE" "$WORK/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$WORK/disk.raw"
# the partition through a loop device at its offset (no partscan: /dev may
# have no udev to make loopNpM nodes)
LOOP=$(losetup --find --show --offset $((2048 * 512)) --sizelimit $(($(stat -c %s "$WORK/disk.raw") - 2048 * 512)) "$WORK/disk.raw")
PART=$LOOP
# extlinux reads ext4 without 64bit / metadata_csum_seed / orphan_file.
mkfs.ext4 -q -L root -O ^64bit,^metadata_csum_seed "$PART"
UUID=$(blkid -s UUID -o value "$PART")
mkdir -p "$MNT"
mount "$PART" "$MNT"

step "copying the root filesystem"
tar -C "$MNT" -xpf "$WORK/root.tar"
KVER=$(basename "$(ls "$MNT"/boot/vmlinuz-* | sort -V | tail -n 1)")
KVER=${KVER#vmlinuz-}
cat >"$MNT/etc/fstab" <<EOF
UUID=$UUID / ext4 errors=remount-ro 0 1
/swapfile none swap sw 0 0
EOF
mkdir -p "$MNT/boot/extlinux"
cat >"$MNT/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
LABEL debian
    KERNEL /boot/vmlinuz-$KVER
    INITRD /boot/initrd.img-$KVER
    APPEND root=UUID=$UUID ro console=tty0 console=ttyS0,115200 net.ifnames=0 quiet
EOF
step "installing extlinux (kernel $KVER)"
extlinux --install "$MNT/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
# a small swap file, as such disks have (lift drops it)
dd if=/dev/zero of="$MNT/swapfile" bs=1M count=16 status=none
chmod 600 "$MNT/swapfile"
mkswap -q "$MNT/swapfile"
umount "$MNT"
losetup -d "$LOOP"
LOOP=
dd if="$MBR" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none

step "converting to qcow2"
qemu-img convert -q -c -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
mv "$WORK/disk.qcow2" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
# disks of older recipes stay: another checkout may still use them (the cache is shared)
step "done: $OUT ($(du -h "$OUT" | cut -f1))"
echo "$OUT"
