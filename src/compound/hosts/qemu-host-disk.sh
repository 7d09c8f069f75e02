#!/usr/bin/env bash
# qemu-host-disk.sh — the base disk of `compound host create --driver qemu`:
# Debian 12 with docker.io and openssh-server, made from Debian packages only.
#
# Usage: qemu-host-disk.sh            prints the cached entry's directory
#        qemu-host-disk.sh --force    rebuilds it
#
# The entry is a directory with three files, booted by QEMU directly (no
# bootloader: the kernel command line carries each host's settings):
#   disk.qcow2   one ext4 filesystem (8 GiB virtual, no partition table),
#                mounted as /dev/vda; every host gets a qcow2 overlay on it
#   vmlinuz      Debian's cloud kernel (what Docker needs, fewer modules)
#   initrd.img   its initramfs (virtio_blk and ext4 are modules)
# In the guest: systemd, sshd (keys only; host keys made on first boot, so
# no two hosts share one), docker.io, dbus (systemd-logind then powers the
# guest off on the ACPI button: `host stop`), and compound-host.service,
# which reads compound.{name,ip,gw,ssh} from the kernel command line: the
# hostname, a static address on eth0, and root's authorized key.
#
# Cached by recipe hash (this script, runtimes/debian-root.sh with the mmdebstrap
# call both disks share, the mirrors and mmdebstrap's version) under
# ${COMPOUND_QEMU_HOST_CACHE:-~/.cache/compound/qemu-host}/debian12-<hash>/;
# built in a temporary directory and renamed, so a failed build leaves
# nothing. Older entries are kept: existing hosts' overlays point at them.
# Needs root (the chroot keeps owners), mmdebstrap, mkfs.ext4, qemu-img.
# Mirrors: COMPOUND_DEBIAN_MIRROR, else deb.debian.org.
set -euo pipefail
LOG_PREFIX=qemu-host-disk
# shellcheck source=../runtimes/debian-root.sh
source "$(dirname "${BASH_SOURCE[0]}")/../runtimes/debian-root.sh"

CACHE_DIR=${COMPOUND_QEMU_HOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compound/qemu-host}
SIZE=8G
PACKAGES=systemd,systemd-sysv,udev,kmod,dbus,linux-image-cloud-amd64,initramfs-tools,
PACKAGES+=openssh-server,docker.io,iproute2,procps,
# the cloud kernel enables AppArmor: dockerd then needs apparmor_parser to
# load docker-default, the profile every container gets (else `run` fails)
PACKAGES+=apparmor

FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

HASH=$(recipe_hash "${BASH_SOURCE[0]}")
OUT=$CACHE_DIR/debian12-$HASH
if [[ -s $OUT/disk.qcow2 && $FORCE == 0 ]]; then
  echo "$OUT"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "needs root (the new root filesystem keeps its owners)"
for t in mmdebstrap mkfs.ext4 qemu-img; do
  command -v "$t" >/dev/null || die "$t not found (apt-get install mmdebstrap e2fsprogs qemu-utils)"
done

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.build.lock"
flock 9 # two first uses at once: one builds, the other waits and reuses
if [[ -s $OUT/disk.qcow2 && $FORCE == 0 ]]; then
  echo "$OUT"
  exit 0
fi
WORK=$(mktemp -d "$CACHE_DIR/.build-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/guest-setup.sh" <<'GUEST'
#!/bin/sh
set -eu
R=$1
echo dockerhost > "$R/etc/hostname"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
echo '/dev/vda / ext4 errors=remount-ro 0 1' > "$R/etc/fstab"
# each host makes its own machine id and SSH host key on its first boot
: > "$R/etc/machine-id"
rm -f "$R"/etc/ssh/ssh_host_*
cat > "$R/etc/ssh/sshd_config.d/compound.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
EOF
cat > "$R/usr/local/sbin/compound-host-setup" <<'EOF'
#!/bin/sh
# compound.name=, compound.ip=ADDR/LEN, compound.gw=, compound.ssh=<base64
# of root's authorized_keys line>, all from the kernel command line
set -eu
for arg in $(cat /proc/cmdline); do
  case $arg in
    compound.name=*) name=${arg#*=} ;;
    compound.ip=*) ip=${arg#*=} ;;
    compound.gw=*) gw=${arg#*=} ;;
    compound.ssh=*) key=${arg#*=} ;;
  esac
done
if [ -n "${name:-}" ]; then
  echo "$name" > /etc/hostname
  hostname "$name"
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" > /etc/hosts
fi
ip link set lo up
ip link set eth0 up
if [ -n "${ip:-}" ]; then
  ip addr replace "$ip" dev eth0
  [ -n "${gw:-}" ] && ip route replace default via "$gw"
fi
if [ -n "${key:-}" ]; then
  mkdir -p -m 700 /root/.ssh
  echo "$key" | base64 -d > /root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
fi
[ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
EOF
chmod 755 "$R/usr/local/sbin/compound-host-setup"
cat > "$R/etc/systemd/system/compound-host.service" <<'EOF'
[Unit]
Description=compound host settings from the kernel command line
DefaultDependencies=no
After=local-fs.target systemd-udev-settle.service sys-subsystem-net-devices-eth0.device
Wants=sys-subsystem-net-devices-eth0.device
Before=network.target ssh.service docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/compound-host-setup

[Install]
WantedBy=multi-user.target
EOF
chroot "$R" systemctl enable compound-host.service ssh.service docker.service
# nothing a Docker host needs, each a cost at every boot under TCG (measured:
# each modprobe@ unit 6-14 s at load 27)
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer getty@tty1.service systemd-timesyncd.service modprobe@drm.service \
  modprobe@efi_pstore.service modprobe@dm_mod.service modprobe@fuse.service \
  modprobe@loop.service systemd-journal-flush.service; do
  chroot "$R" systemctl mask "$unit" >/dev/null 2>&1 || true
done
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/compound.conf"
# an initramfs with only what finds the root disk: 15 MB -> a few, and
# decompressing it took 8 s of a TCG boot
echo MODULES=list > "$R/etc/initramfs-tools/conf.d/compound"
printf 'virtio_pci\nvirtio_blk\n' >> "$R/etc/initramfs-tools/modules"
chroot "$R" update-initramfs -u -k all >/dev/null
rm -rf "$R/var/lib/apt/lists"/* "$R/var/cache/apt"/*.bin
GUEST
chmod +x "$WORK/guest-setup.sh"

step "mmdebstrap $SUITE with a kernel, systemd, sshd, docker.io (a few minutes the first time)"
debian_root "$PACKAGES" "$WORK/guest-setup.sh" "$WORK/root"

step "kernel and initramfs"
mkdir -p "$WORK/out"
KERNEL=$(ls "$WORK"/root/boot/vmlinuz-* | sort -V | tail -n 1)
cp "$KERNEL" "$WORK/out/vmlinuz"
cp "$WORK/root/boot/initrd.img-${KERNEL##*/vmlinuz-}" "$WORK/out/initrd.img"

step "an ext4 filesystem of $SIZE from the root (mkfs.ext4 -d)"
truncate -s "$SIZE" "$WORK/disk.raw"
mkfs.ext4 -q -L root -d "$WORK/root" "$WORK/disk.raw"
rm -rf "$WORK/root"

step "converting to qcow2"
qemu-img convert -q -c -O qcow2 "$WORK/disk.raw" "$WORK/out/disk.qcow2"
rm -f "$WORK/disk.raw"
mv "$WORK/out" "$OUT"
step "done: $OUT ($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
