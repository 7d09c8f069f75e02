"""``compound export IMAGE -o disk.qcow2``: a bootable disk from any image,
for any hypervisor, with no compound involved at boot.

The disk: an MBR with one bootable ext4 partition holding the image's
files, extlinux (syslinux's MBR + ldlinux), Debian's kernel (kernel.py; a
bzImage that extlinux can load: compound's own guest kernel is an ELF
vmlinux booted through QEMU's PVH entry, which no bootloader offers) with a
small initramfs (busybox-static + the virtio/ext4 modules, which mounts
/dev/vda1 and switches to it), and
/compound/init: a busybox-static shell script that mounts the API
filesystems, brings the network up by DHCP (udhcpc), and runs the image's
entrypoint + command with its environment, working directory and user;
when that ends, the VM powers off. Boots with a bare

    qemu-system-x86_64 -m 512 -nographic -drive file=disk.qcow2,if=virtio \
        -nic user,model=virtio-net-pci

(virtio disk and NIC: the initramfs carries only the virtio drivers).
Written to a temporary file in the output's directory and renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors
import requests.exceptions

from compound.errors import CompoundError

from ._util import default_cache_dir
from .cpio import build_image
from .kernel import KernelArtifacts, ensure_kernel

FORMATS = ("qcow2", "raw", "vmdk")
MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
BUSYBOX = Path("/bin/busybox")
PART_START = 1 << 20  # 1 MiB: the partition's offset (sector 2048)


class ExportError(CompoundError):
    """An image that cannot be exported, or a disk that cannot be written."""


def _run(argv: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    res = subprocess.run(argv, capture_output=True, check=False, **kw)
    if res.returncode != 0:
        raise ExportError(f"{what} failed: {res.stderr.decode(errors='replace').strip()[-400:]}")
    return res


UDHCPC_SCRIPT = """#!/compound/busybox sh
# udhcpc's event script: address, routes and nameservers from the lease
B=/compound/busybox
case "$1" in
    deconfig) $B ip -4 addr flush dev "$interface"; $B ip link set "$interface" up ;;
    bound|renew)
        $B ip -4 addr flush dev "$interface"
        $B ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do $B ip route replace default via "$r" dev "$interface"; break; done
        : > /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
exit 0
"""


INITRAMFS_INIT = """#!/bin/busybox sh
# compound export's initramfs: virtio + ext4 modules, then the root on vda1
B=/bin/busybox
$B mkdir -p /proc /sys /dev /newroot
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
for m in $($B cat /modules.order); do $B insmod /modules/$m 2>/dev/null; done
i=0
while [ ! -b /dev/vda1 ] && [ $i -lt 100 ]; do $B sleep 0.1; i=$((i + 1)); done
$B mount -t ext4 -o rw /dev/vda1 /newroot || { echo "no root on /dev/vda1 (virtio?)"; $B sh; }
$B umount /proc /sys; $B mount --move /dev /newroot/dev 2>/dev/null || $B umount /dev
exec $B switch_root /newroot /compound/init
"""


def initramfs(kernel: KernelArtifacts) -> bytes:
    entries: list[tuple[str, str, bytes | str, int]] = [
        ("dir", "bin", b"", 0o755),
        ("file", "bin/busybox", BUSYBOX.read_bytes(), 0o755),
        ("file", "init", INITRAMFS_INIT, 0o755),
        ("dir", "modules", b"", 0o755),
        ("file", "modules.order", "\n".join(kernel.modules) + "\n", 0o644),
    ]
    for m in kernel.modules:
        entries.append(("file", f"modules/{m}", (kernel.modules_dir / m).read_bytes(), 0o644))
    return build_image(entries, compress=True)


def init_script(config: dict[str, Any]) -> str:
    """/compound/init for the image's config (docker inspect .Config)."""
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        argv = ["/bin/sh"]
    env = [str(e) for e in config.get("Env") or []]
    workdir = config.get("WorkingDir") or "/"
    user = str(config.get("User") or "")
    hostname = "exported"
    lines = [
        "#!/compound/busybox sh",
        "# compound export: PID 1 of the exported image's VM",
        "B=/compound/busybox",
        "$B mount -t proc proc /proc; $B mount -t sysfs sys /sys",
        "$B mount -t devtmpfs dev /dev 2>/dev/null; $B mkdir -p /dev/pts /dev/shm",
        "$B mount -t devpts devpts /dev/pts; $B mount -t tmpfs tmpfs /dev/shm",
        "$B mount -t tmpfs tmpfs /run; $B mount -t tmpfs tmpfs /tmp",
        "$B mount -o remount,rw / 2>/dev/null",
        f"$B hostname {hostname}",
        "$B ip link set lo up",
        "for i in /sys/class/net/*; do n=${i##*/}; [ $n = lo ] && continue",
        "  $B udhcpc -i $n -s /compound/udhcpc -q -t 10 -n >/dev/console 2>&1; done",
        "echo 'compound-export: starting the entrypoint' > /dev/console",
        "env -i >/dev/null 2>&1",
    ]
    exports = " ".join(shlex.quote(e) for e in env)
    cmd = " ".join(shlex.quote(a) for a in argv)
    run = f"cd {shlex.quote(workdir)} && exec $B env -i HOME=/root {exports} {cmd}"
    if user and user not in ("0", "root"):
        name = user.split(":")[0]
        # busybox su: a name from the image's /etc/passwd
        run = (
            f"cd {shlex.quote(workdir)} && exec $B su -s /compound/sh {shlex.quote(name)} -c "
            + shlex.quote(f"exec /compound/busybox env {exports} {cmd}")
        )
    lines += [
        f"( {run} ) </dev/null >/dev/console 2>&1 &",
        "child=$!",
        "trap 'kill -TERM $child' TERM INT",
        'wait "$child"; code=$?',
        'echo "compound-export: the entrypoint exited $code" > /dev/console',
        "$B sync; $B poweroff -f",
    ]
    return "\n".join(lines) + "\n"


def export(
    client: docker.DockerClient,
    image: str,
    output: Path,
    fmt: str = "qcow2",
    progress: Callable[[str], None] = lambda _m: None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    t0 = time.monotonic()
    if fmt not in FORMATS:
        raise ExportError(f"unknown disk format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    for tool, pkg in (("extlinux", "extlinux"), ("sfdisk", "fdisk"), ("qemu-img", "qemu-utils")):
        if shutil.which(tool) is None:
            raise ExportError(f"{tool} is not installed", hint=f"apt-get install {pkg}")
    if not MBR.is_file() or not BUSYBOX.is_file():
        raise ExportError(
            "syslinux's MBR or busybox-static is missing",
            hint="apt-get install syslinux-common busybox-static",
        )
    try:
        img = client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise ExportError(f"no image {image!r}", hint="build or pull it first") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ExportError(f"cannot inspect {image}: {exc}") from exc
    config = dict(img.attrs.get("Config") or {})
    progress("Debian's kernel (fetched once, cached)")
    kernel = ensure_kernel(cache_dir or default_cache_dir())
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=output.parent))
    loop = ""
    mnt = work / "mnt"
    try:
        size = int(img.attrs.get("Size") or 0)
        disk_bytes = max(256 << 20, (size * 3 // 2 + (96 << 20)) // (1 << 20) * (1 << 20))
        raw = work / "disk.raw"
        with open(raw, "wb") as f:
            f.truncate(disk_bytes)
        _run(["sfdisk", "-q", str(raw)], "partitioning", input=b"start=2048, type=83, bootable\n")
        loop = (
            _run(
                [
                    "losetup",
                    "--find",
                    "--show",
                    "--offset",
                    str(PART_START),
                    "--sizelimit",
                    str(disk_bytes - PART_START),
                    str(raw),
                ],
                "attaching a loop device",
            )
            .stdout.decode()
            .strip()
        )
        _run(["mkfs.ext4", "-q", "-L", "root", "-O", "^64bit,^metadata_csum_seed", loop], "mkfs")
        mnt.mkdir()
        _run(["mount", loop, str(mnt)], "mounting the new filesystem")
        progress(f"copying the files of {image}")
        _copy_image(client, str(img.id), mnt)
        comp = mnt / "compound"
        comp.mkdir(exist_ok=True)
        shutil.copy2(BUSYBOX, comp / "busybox")
        (comp / "sh").symlink_to("busybox")
        (comp / "udhcpc").write_text(UDHCPC_SCRIPT)
        (comp / "init").write_text(init_script(config))
        (comp / "udhcpc").chmod(0o755)
        (comp / "init").chmod(0o755)
        (comp / "image.json").write_text(json.dumps({"image": image, "config": config}, indent=1))
        for d in ("proc", "sys", "dev", "run", "tmp", "etc"):
            (mnt / d).mkdir(exist_ok=True)
        boot = mnt / "boot" / "extlinux"
        boot.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kernel.vmlinuz, boot / "vmlinuz")
        (boot / "initrd.img").write_bytes(initramfs(kernel))
        (boot / "extlinux.conf").write_text(
            "DEFAULT compound\nTIMEOUT 1\nLABEL compound\n"
            "    KERNEL /boot/extlinux/vmlinuz\n"
            "    INITRD /boot/extlinux/initrd.img\n"
            "    APPEND rw console=ttyS0 quiet\n"
        )
        progress("installing extlinux")
        _run(["extlinux", "--install", str(boot)], "extlinux --install")
        _run(["umount", str(mnt)], "unmounting")
        _run(["losetup", "-d", loop], "detaching")
        loop = ""
        with open(raw, "r+b") as f:
            f.write(MBR.read_bytes()[:440])
        progress(f"writing {output.name} ({fmt})")
        tmp_out = work / ("disk." + fmt)
        if fmt == "raw":
            os.replace(raw, tmp_out)
        else:
            _run(["qemu-img", "convert", "-O", fmt, str(raw), str(tmp_out)], "qemu-img convert")
        os.replace(tmp_out, output)
    finally:
        # a plain umount first: a lazy one of a busy mount leaves the loop
        # device attached until the last user goes
        if (
            mnt.exists()
            and os.path.ismount(mnt)
            and subprocess.run(["umount", str(mnt)], capture_output=True, check=False).returncode
        ):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        if loop:
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "image": image,
        "disk": str(output),
        "format": fmt,
        "kernel": kernel.version,
        "seconds": round(time.monotonic() - t0, 1),
        "boot": f"qemu-system-x86_64 -m 512 -nographic -drive file={output},if=virtio,"
        f"format={fmt} -nic user,model=virtio-net-pci",
    }


def _copy_image(client: docker.DockerClient, image_id: str, dest: Path) -> None:
    """The image's flattened filesystem (docker export of a created, never
    started container) unpacked into ``dest``."""
    try:
        container = client.containers.create(image_id, command=["/bin/true"], entrypoint=[])
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ExportError(f"cannot create a container of {image_id}: {exc}") from exc
    try:
        proc = subprocess.Popen(
            ["tar", "-x", "--numeric-owner", "-p", "-C", str(dest)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        try:
            for chunk in cast(Iterator[bytes], container.export()):
                proc.stdin.write(chunk)
        except BaseException:
            # interrupted: tar must be gone before the caller unmounts, or its
            # open files keep the filesystem and its loop device busy
            with contextlib.suppress(OSError):  # a broken pipe must not hide the cause
                proc.stdin.close()
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdin.close()
        if proc.wait() != 0:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise ExportError(f"unpacking the image failed: {err.strip()[-300:]}")
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
