"""A small legacy VM disk that boots in seconds under TCG, for tests that
need a disk service's whole path (BIOS, bootloader, its own kernel, DHCP,
qemu-guest-agent, console) without the minutes a systemd distribution
takes (images/legacy-disk.sh's Debian 12 disk).

The disk, made from what compound already has on this machine (Debian's
kernel and the initramfs compound builds for it: busybox, its modules,
qemu-guest-agent with its libraries), without mounting anything:

- MBR (syslinux's mbr.bin); partition 1, FAT, bootable: syslinux, the
  kernel and a small initrd (busybox and the kernel's modules) whose /init
  loads virtio_pci, virtio_blk and ext4, mounts partition 2 and
  switch_roots into it;
- partition 2, ext4 (``mkfs.ext4 -d``): the root, an os-release, and
  /sbin/init: takes the address the launcher serves by DHCP (busybox
  udhcpc), reads a NoCloud seed (/usr/bin/cloud-init: the part of
  cloud-init this disk needs, in shell, with the kernel's FAT modules from
  its .deb), starts qemu-guest-agent and an HTTP server on :8080 serving
  /www, and says FASTDISK-READY on the console.

Cached by recipe hash under ``<cache>/legacy/fastdisk-<hash>.qcow2``,
built aside and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from compound.runtimes.hostops import cache_root, locked
from compound.runtimes.vm import debs
from compound.runtimes.vm._util import default_cache_dir
from compound.runtimes.vm.initramfs import ensure_initramfs
from compound.runtimes.vm.kernel import KernelArtifacts, ensure_kernel

RECIPE = 1
MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
BOOT_MIB, ROOT_MIB = 24, 48

EARLY_INIT = """#!/bin/busybox sh
# partition 2 is the root: load what reads it, mount it, hand over
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
modprobe -a virtio_pci virtio_blk crc32c_generic ext4 || echo "fastdisk: modprobe failed"
i=0
while [ ! -b /dev/vda2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 /dev/vda2 /newroot || { echo "fastdisk: no root"; exec sh; }
umount /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
"""

INIT = """#!/bin/busybox sh
# the disk's own init: network by DHCP, the guest agent, a web server
export PATH=/bin:/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs run /run
mkdir -p /run/qga /tmp
hostname fastdisk
modprobe -a virtio_net virtio_console
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 30 -T 1 -s /etc/udhcpc.script || echo "fastdisk: no DHCP lease"
cloud-init
agent=
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && agent=/dev/${p##*/}
done
[ -n "$agent" ] && qemu-ga -d -m virtio-serial -p "$agent" -t /run/qga -f /run/qga/pid
httpd -p 8080 -h /www
echo "FASTDISK-READY $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
exec sleep 2147483647
"""

# busybox udhcpc's hook: the lease's address, the routes of option 121
# (the launcher's DNS forwarder is off-subnet), else the router; DNS
UDHCPC_SCRIPT = """#!/bin/busybox sh
case "$1" in
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = 0.0.0.0 ]; then ip route add "$1" dev "$interface"
            else ip route add "$1" via "$2" dev "$interface"; fi
            shift 2
        done
    elif [ -n "$router" ]; then
        ip route add default via "${router%% *}" dev "$interface"
    fi
    : > /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    ;;
esac
"""

# NoCloud as cloud-init reads it: the volume labelled cidata, its meta-data
# (the hostname); the seed is kept in /var/lib/cloud/seed, as cloud-init does
CLOUD_INIT = """#!/bin/busybox sh
for m in fat vfat nls_cp437 nls_ascii nls_utf8; do insmod "/lib/fat/$m.ko" 2> /dev/null; done
dev=$(busybox findfs LABEL=cidata 2> /dev/null)
[ -n "$dev" ] || { echo "cloud-init: no NoCloud seed"; exit 0; }
mkdir -p /run/seed /var/lib/cloud/seed
mount -t vfat -o ro "$dev" /run/seed || exit 1
cp /run/seed/* /var/lib/cloud/seed/
umount /run/seed
name=$(sed -n 's/^local-hostname: *//p' /var/lib/cloud/seed/meta-data)
[ -n "$name" ] && hostname "$name" && echo "$name" > /etc/hostname
echo "cloud-init: NoCloud seed on $dev, hostname $name"
"""

SYSLINUX_CFG = """DEFAULT fast
PROMPT 0
TIMEOUT 0
LABEL fast
  KERNEL /vmlinuz
  INITRD /initrd
  APPEND console=ttyS0 quiet panic=-1
"""

OS_RELEASE = 'NAME="Fastdisk"\nID=fastdisk\nVERSION_ID=1\nPRETTY_NAME="Fastdisk 1"\n'


def _run(*argv: str, cwd: Path | None = None) -> None:
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def ensure_fast_disk() -> Path:
    kernel = ensure_kernel()
    initramfs = ensure_initramfs(kernel)
    inputs = (RECIPE, EARLY_INIT, INIT, UDHCPC_SCRIPT, CLOUD_INIT, SYSLINUX_CFG, OS_RELEASE)
    recipe = "\0".join([*map(str, inputs), str(kernel.vmlinuz), initramfs.key])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    out = cache_root() / "legacy" / f"fastdisk-{key}.qcow2"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out.parent / ".fastdisk.lock"):
        if out.exists():
            return out
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fastdisk-") as tmp:
            _build(Path(tmp), kernel, initramfs.path, out)
    return out


def _fat_modules(kernel: KernelArtifacts, dest: Path) -> None:
    """The kernel's FAT and codepage modules (compound's initramfs has no
    FAT), from its .deb in compound's cache."""
    version = kernel.version.partition("(")[2].rstrip(")")
    deb = debs.download(
        f"linux-image-{kernel.release}", default_cache_dir() / "kernel" / "debs", version
    )
    work = dest.parent / "deb"
    work.mkdir()
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb.path)], stdout=subprocess.PIPE)
    subprocess.run(
        ["tar", "-x", "-C", str(work), "--wildcards", "*/fs/fat/*.ko", "*/fs/nls/nls_*.ko"],
        stdin=tar.stdout,
        check=True,
    )
    assert tar.wait() == 0
    dest.mkdir(parents=True)
    for ko in work.rglob("*.ko"):
        shutil.copy(ko, dest / ko.name)


def _build(work: Path, kernel: KernelArtifacts, initramfs: Path, out: Path) -> None:
    vmlinuz = kernel.vmlinuz
    # the root: compound's initramfs tree (busybox, modules, qemu-ga and its libraries)
    root = work / "root"
    root.mkdir()
    with open(initramfs, "rb") as f:
        subprocess.run(["cpio", "-idm", "--quiet"], stdin=f, cwd=root, check=True)
    (root / "init").unlink()
    _write(root / "sbin" / "init", INIT, 0o755)
    _write(root / "etc" / "udhcpc.script", UDHCPC_SCRIPT, 0o755)
    _write(root / "etc" / "os-release", OS_RELEASE)
    _write(root / "etc" / "passwd", "root:x:0:0:root:/root:/bin/sh\n")
    _write(root / "etc" / "group", "root:x:0:\n")
    _write(root / "www" / "greeting", "from-disk\n")
    _write(root / "usr" / "bin" / "cloud-init", CLOUD_INIT, 0o755)
    _fat_modules(kernel, root / "lib" / "fat")
    (root / "usr" / "sbin").mkdir()
    os.symlink("../../sbin/qemu-ga", root / "usr" / "sbin" / "qemu-ga")  # where disks have it
    # the initrd: busybox, the modules and the early init
    early = work / "early"
    for d in ("proc", "dev", "newroot"):
        (early / d).mkdir(parents=True)
    shutil.copytree(root / "bin", early / "bin", symlinks=True)
    shutil.copytree(root / "lib" / "modules", early / "lib" / "modules")
    _write(early / "init", EARLY_INIT, 0o755)
    names = subprocess.run(["find", "."], cwd=early, check=True, capture_output=True).stdout
    initrd = work / "initrd"
    with open(initrd, "wb") as f:
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
            input=names,
            stdout=f,
            cwd=early,
            check=True,
        )
    # partition 1: FAT with syslinux, the kernel, the initrd
    boot = work / "boot.img"
    with open(boot, "wb") as f:
        f.truncate(BOOT_MIB << 20)
    _run("mkfs.vfat", "-n", "BOOT", str(boot))
    _write(work / "syslinux.cfg", SYSLINUX_CFG)
    for src, name in (
        (vmlinuz, "vmlinuz"),
        (initrd, "initrd"),
        (work / "syslinux.cfg", "syslinux.cfg"),
    ):
        _run("mcopy", "-i", str(boot), str(src), f"::/{name}")
    _run("syslinux", "--install", str(boot))
    # partition 2: the root, ext4, made from the tree without mounting it
    rootfs = work / "root.img"
    _run("mkfs.ext4", "-q", "-L", "root", "-d", str(root), str(rootfs), f"{ROOT_MIB}M")
    disk = work / "disk.raw"
    start1, start2 = 2048, 2048 + (BOOT_MIB << 11)
    with open(disk, "wb") as f:
        f.truncate((1 + BOOT_MIB + ROOT_MIB) << 20)
    table = f"start={start1}, size={BOOT_MIB << 11}, type=c, bootable\nstart={start2}, type=83\n"
    subprocess.run(["sfdisk", "-q", str(disk)], input=table.encode(), check=True)
    with open(disk, "r+b") as f:
        f.write(MBR.read_bytes()[:440])
        for offset, part in ((start1 * 512, boot), (start2 * 512, rootfs)):
            f.seek(offset)
            with open(part, "rb") as p:
                shutil.copyfileobj(p, f)
    tmp = out.with_suffix(".tmp")
    _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(disk), str(tmp))
    os.replace(tmp, out)
