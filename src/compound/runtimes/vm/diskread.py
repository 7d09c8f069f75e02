"""Reading a VM disk offline, without booting it: its format (``qemu-img
info``), partitions and filesystems, and the root filesystem of its OS.

How: ``qemu-storage-daemon`` exports the disk read-only over FUSE as a raw
file (any format QEMU reads, qcow2 backing chains included), a read-only
loop device with partition scanning gives its partitions, ``blkid`` names
their filesystems, and each Linux filesystem is mounted read-only without
journal replay. Chosen over libguestfs by measurement under TCG (NOTES.md,
"Legacy disks"): libguestfs boots an appliance VM per open, 20-60 s under
TCG; this takes well under a second and needs only root, loop devices and
/dev/fuse, which compound's VM runtime needs anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compound.errors import VMError

# Formats a user may hand us; qemu-img probes the rest.
LINUX_FS = ("ext4", "ext3", "ext2", "xfs", "btrfs")
WINDOWS_FS = ("ntfs",)
ESP_GUID = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"


class DiskError(VMError):
    """A disk compound cannot read or use as asked (message says which and why)."""


@dataclass(frozen=True)
class Partition:
    number: int  # 1.. (0: a bare filesystem, no partition table)
    fstype: str  # blkid TYPE ("" when unknown)
    part_type: str  # MBR type ("83") or GPT type GUID
    uuid: str
    offset: int  # bytes into the disk
    size: int


@dataclass(frozen=True)
class DiskInfo:
    path: Path
    format: str  # qemu-img's format name
    virtual_size: int
    table: str  # "gpt" | "dos" | "" (a bare filesystem)
    partitions: tuple[Partition, ...] = ()
    backing: str | None = None

    @property
    def uefi(self) -> bool:
        """An EFI system partition on a GPT disk: boot it with OVMF."""
        return self.table == "gpt" and any(p.part_type.lower() == ESP_GUID for p in self.partitions)


@dataclass(frozen=True)
class OSInfo:
    name: str  # "Debian GNU/Linux 12 (bookworm)"
    short: str  # "Debian 12"
    id: str  # "debian"
    version: str  # "12"
    root_partition: int
    facts: dict[str, str] = field(default_factory=dict)


def _run(argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def image_info(path: Path) -> tuple[str, int, str | None]:
    """(format, virtual size, backing file) of a disk image, or DiskError
    saying why it is not one qemu-img reads."""
    if not path.exists():
        raise DiskError(f"{path}: no such file", hint="give the path of a VM disk image")
    if not path.is_file() and not path.is_block_device():
        raise DiskError(f"{path} is not a file", hint="give the path of a VM disk image")
    # -U: read even while a VM has it open (we only read the header)
    res = _run(["qemu-img", "info", "-U", "--output=json", str(path)])
    if res.returncode != 0:
        why = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "unknown error"
        raise DiskError(
            f"{path} is in a format qemu-img does not know, or its header is damaged: {why}",
            hint="convert it to qcow2 or raw with the tool that made it"
            " (qemu-img reads qcow2, raw, vmdk, vdi, vhdx, vpc)",
        )
    data = json.loads(res.stdout)
    return str(data["format"]), int(data["virtual-size"]), data.get("backing-filename")


@contextlib.contextmanager
def raw_view(path: Path, fmt: str) -> Iterator[Path]:
    """The disk as a read-only raw file (a FUSE export of qemu-storage-daemon)."""
    with tempfile.TemporaryDirectory(prefix="compound-disk-") as tmp:
        point = Path(tmp) / "raw"
        point.touch()
        pidfile = Path(tmp) / "qsd.pid"
        argv = [
            "qemu-storage-daemon",
            "--blockdev",
            f"driver=file,node-name=file,filename={path},read-only=on,locking=off",
            "--blockdev",
            f"driver={fmt},node-name=disk,file=file,read-only=on",
            "--export",
            f"type=fuse,id=raw,node-name=disk,mountpoint={point},writable=off",
            "--pidfile",
            str(pidfile),
        ]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not _is_fuse(point):
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise DiskError(f"cannot read {path}: {err.strip()[-300:]}")
                if time.monotonic() > deadline:
                    raise DiskError(f"cannot read {path}: its FUSE export did not come up")
                time.sleep(0.02)
            yield point
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError):
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def _is_fuse(point: Path) -> bool:
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(point) for line in f)


def _blkid(raw: Path, offset: int = 0, size: int = 0) -> dict[str, str]:
    argv = ["blkid", "-p", "-o", "export"]
    if offset or size:
        argv += ["-O", str(offset), "-S", str(size)]
    res = _run([*argv, str(raw)])
    out: dict[str, str] = {}
    for line in res.stdout.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def partitions(raw: Path) -> tuple[str, tuple[Partition, ...]]:
    """(table type, partitions) of a raw disk view, read with sfdisk (MBR and
    GPT); a bare filesystem is one partition (the whole disk) with table ''.
    Partitions are reached through loop devices at their offsets, not
    partition scanning: /dev may have no udev to make loopNpM nodes."""
    res = _run(["sfdisk", "-J", str(raw)])
    if res.returncode != 0 or not res.stdout.strip():
        whole = _blkid(raw)
        if whole.get("TYPE"):
            size = raw.stat().st_size
            return "", (Partition(0, whole["TYPE"], "", whole.get("UUID", ""), 0, size),)
        return "", ()
    table = json.loads(res.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    parts = []
    for i, p in enumerate(table.get("partitions", []), start=1):
        offset, size = int(p["start"]) * sector, int(p["size"]) * sector
        info = _blkid(raw, offset, size)
        parts.append(
            Partition(
                i, info.get("TYPE", ""), str(p.get("type", "")), info.get("UUID", ""), offset, size
            )
        )
    return str(table.get("label", "")), tuple(parts)


@contextlib.contextmanager
def mounted(raw: Path, part: Partition) -> Iterator[Path]:
    """``part`` mounted read-only (no journal replay: the disk is never written)."""
    res = _run(
        [
            "losetup",
            "--find",
            "--show",
            "--read-only",
            "--offset",
            str(part.offset),
            "--sizelimit",
            str(part.size),
            str(raw),
        ]
    )
    if res.returncode != 0:
        raise DiskError(f"cannot attach a loop device: {res.stderr.strip()}")
    dev = res.stdout.strip()
    fstype = part.fstype
    opts = "ro,noload" if fstype in ("ext3", "ext4") else "ro"
    if fstype == "xfs":
        opts = "ro,norecovery"
    try:
        with tempfile.TemporaryDirectory(prefix="compound-mnt-") as point:
            res = _run(["mount", "-t", fstype, "-o", opts, dev, point])
            if res.returncode != 0:
                raise DiskError(
                    f"cannot mount {fstype} partition {part.number}: {res.stderr.strip()}"
                )
            try:
                yield Path(point)
            finally:
                _run(["umount", point])
    finally:
        _run(["losetup", "-d", dev])


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k.strip() and not k.startswith("#"):
            out[k.strip()] = v.strip().strip("\"'")
    return out


def read_os_release(root: Path) -> dict[str, str] | None:
    for rel in ("etc/os-release", "usr/lib/os-release"):
        p = root / rel
        # an absolute symlink points into the disk, not the host
        if p.is_symlink():
            target = os.readlink(p)
            p = root / target.lstrip("/") if target.startswith("/") else p.parent / target
        with contextlib.suppress(OSError):
            return parse_os_release(p.read_text(errors="replace"))
    return None


def os_short(release: dict[str, str]) -> str:
    name = release.get("NAME", release.get("ID", "Linux"))
    name = name.removesuffix(" GNU/Linux")
    version = release.get("VERSION_ID", "")
    return f"{name} {version}".strip()


@dataclass(frozen=True)
class OpenDisk:
    """An attached disk: its info and the mount of its OS root, if one."""

    info: DiskInfo
    os: OSInfo | None
    root: Path | None


def find_os(info: DiskInfo, path: Path, raw: Path) -> list[tuple[Partition, dict[str, str]]]:
    """Every Linux root on the disk (mounted briefly to read its os-release);
    raises for encrypted and Windows-only disks."""
    found = []
    for part in info.partitions:
        if part.fstype in LINUX_FS:
            with mounted(raw, part) as root:
                release = read_os_release(root)
            if release is not None:
                found.append((part, release))
    if not found:
        fstypes = {p.fstype for p in info.partitions}
        if "crypto_LUKS" in fstypes or "BitLocker" in fstypes:
            raise DiskError(
                f"{path} is encrypted (LUKS or BitLocker): its filesystems cannot be read offline",
                hint="run it as a VM (x-compound.vm.disk), or decrypt a copy of it first",
            )
        if fstypes & set(WINDOWS_FS):
            raise DiskError(
                f"{path} holds Windows (NTFS): a Linux container cannot carry it",
                hint="run it as a VM instead: x-compound: {runtime: vm, vm: {disk: ...}}",
            )
        if not info.partitions:
            raise DiskError(
                f"{path} is not a disk: it has no partition table and no filesystem",
                hint="give the path of a VM disk image (qcow2, raw, vmdk, vdi)",
            )
        raise DiskError(
            f"{path} has no Linux root filesystem compound can read"
            f" (found: {', '.join(sorted(t or '?' for t in fstypes))})",
            hint="run it as a VM (x-compound.vm.disk) instead",
        )
    return found


@contextlib.contextmanager
def open_disk(path: Path, *, need_os: bool = True) -> Iterator[OpenDisk]:
    """Attach ``path`` read-only; yields its info, OS and the OS root mounted
    read-only (when ``need_os``), and detaches everything afterwards."""
    path = path.resolve()
    fmt, size, backing = image_info(path)
    with raw_view(path, fmt) as raw:
        table, parts = partitions(raw)
        info = DiskInfo(path, fmt, size, table, parts, backing)
        if not need_os:
            yield OpenDisk(info, None, None)
            return
        found = find_os(info, path, raw)
        if len(found) > 1:
            names = ", ".join(f"{os_short(r)} on partition {p.number}" for p, r in found)
            raise DiskError(
                f"{path} holds several operating systems ({names}): compound cannot tell"
                " which one to take",
                hint="lift a disk with one OS, or copy the one you want to its own disk",
            )
        part, release = found[0]
        osinfo = OSInfo(
            name=release.get("PRETTY_NAME", os_short(release)),
            short=os_short(release),
            id=release.get("ID", ""),
            version=release.get("VERSION_ID", ""),
            root_partition=part.number,
            facts=release,
        )
        with mounted(raw, part) as root:
            yield OpenDisk(info, osinfo, root)


@dataclass(frozen=True)
class DiskFacts:
    """What a disk service's ``ps``/create needs, found once per disk."""

    format: str
    firmware: str  # "bios" | "uefi"
    os: str  # "Debian 12", or "unknown"
    guest_agent: bool  # qemu-guest-agent installed (exec/healthcheck possible)
    cloud_init: bool = False  # cloud-init installed and not disabled (gets a NoCloud seed)


def has_cloud_init(root: Path) -> bool:
    """cloud-init installed and not switched off (cloud-init.disabled, or
    ``cloud-init=disabled`` on the kernel command line of its bootloader
    config is not looked for: the seed is harmless to a guest that ignores it)."""
    installed = any((root / p).exists() for p in ("usr/bin/cloud-init", "usr/local/bin/cloud-init"))
    return installed and not (root / "etc/cloud/cloud-init.disabled").exists()


def disk_facts(path: Path) -> DiskFacts:
    """Format, firmware and OS of a disk to boot; an unreadable OS is not an
    error here (the disk may still boot), only an unknown format is."""
    fmt, _, _ = image_info(path)
    try:
        with open_disk(path) as disk:
            assert disk.os is not None and disk.root is not None
            agent = any((disk.root / p).exists() for p in ("usr/sbin/qemu-ga", "usr/bin/qemu-ga"))
            firmware = "uefi" if disk.info.uefi else "bios"
            return DiskFacts(fmt, firmware, disk.os.short, agent, has_cloud_init(disk.root))
    except DiskError:
        with contextlib.suppress(DiskError), open_disk(path, need_os=False) as disk:
            return DiskFacts(fmt, "uefi" if disk.info.uefi else "bios", "unknown", False)
        return DiskFacts(fmt, "bios", "unknown", False)
