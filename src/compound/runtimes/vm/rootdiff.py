"""Which files a running VM changed in its root filesystem, as `docker diff`
says for a container.

Measured alternatives (NOTES.md, "Drift"): the instance's qcow2 overlay
holds every block the guest wrote, but a fresh boot already writes four
64 KiB clusters (superblock, the first journal blocks, /etc/resolv.conf's
data), and a metadata-only change (delete, chmod, rename) lands in the ext4
journal, inside clusters a fresh boot has already allocated, and reaches its
home block only at a checkpoint. Allocated clusters can therefore neither
prove nor rule out a change, and they name no file.

What is exact instead: the guest agent walks the mounted root (``find
-xdev``: never into volumes, tmpfs, /proc or /dev) and reports type, mode,
owner, size and mtime of every entry; compound compares that with the
image's own listing (its export, read once per image id and cached next to
the base disk). Present only in the guest: added. Only in the image and not
under a mount point: deleted. Different type/mode/owner, or for files and
links a different size or mtime: changed. Limits, said in the README: a
change that keeps size and mtime (``touch -r``) is not seen, and a
directory is reported only when added, deleted or re-moded (its mtime moves
with every entry inside it, which is reported itself).
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import docker

from compound.errors import VMError
from compound.runtimes.base import Change, RootChanges

from ._util import locked
from .basedisk import DOCKERENV, EXPORT_TIMEOUT, exported_image

GUEST_ROOT = "/newroot"  # where the guest's /init mounts the service's root (init.sh)
# One line per entry: raw mode (hex), uid, gid, size, mtime, path; then the
# mount table. Run by busybox in the initramfs, so the image needs no tools.
LIST_SCRIPT = (
    f"cd {GUEST_ROOT} && find . -xdev -exec stat -c '%f %u %g %s %Y %n' {{}} + "
    "&& echo '#mounts' && cat /proc/mounts"
)
# Not the image's and never drift: what the guest's /init writes or creates
# at every boot (init.sh; Docker bind-mounts the same three files into a
# container), what Docker's init layer puts into every export with the time
# of that export (/etc/mtab), and mkfs's lost+found.
BOOT_MANAGED = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/mtab",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",
    "/lost+found",
)
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Entry:
    kind: str  # f d l c b p s
    perm: int  # permission bits incl. setuid/setgid/sticky
    uid: int
    gid: int
    size: int
    mtime: int  # seconds

    def differs(self, other: Entry) -> bool:
        if (self.kind, self.perm, self.uid, self.gid) != (
            other.kind,
            other.perm,
            other.uid,
            other.gid,
        ):
            return True
        # a directory's size and mtime move with its entries, reported themselves
        return self.kind in ("f", "l") and (self.size, self.mtime) != (other.size, other.mtime)


_KINDS = {
    stat.S_IFREG: "f",
    stat.S_IFDIR: "d",
    stat.S_IFLNK: "l",
    stat.S_IFCHR: "c",
    stat.S_IFBLK: "b",
    stat.S_IFIFO: "p",
    stat.S_IFSOCK: "s",
}
_TAR_KINDS = {
    tarfile.REGTYPE: "f",
    tarfile.AREGTYPE: "f",
    tarfile.CONTTYPE: "f",
    tarfile.DIRTYPE: "d",
    tarfile.SYMTYPE: "l",
    tarfile.CHRTYPE: "c",
    tarfile.BLKTYPE: "b",
    tarfile.FIFOTYPE: "p",
}


def _norm(name: str) -> str:
    """'./etc/x', 'etc/x/', '.' -> '/etc/x', '/etc/x', '/'."""
    name = name.strip("/")
    if name == "." or name.startswith("./"):
        name = name[1:].strip("/")
    return "/" + name if name else "/"


def manifest_from_tar(tar: tarfile.TarFile) -> dict[str, Entry]:
    """path -> Entry for every member of an image export (hard links take
    their target's attributes, as the file on disk does)."""
    out: dict[str, Entry] = {}
    for m in tar:
        path = _norm(m.name)
        if m.islnk():
            target = out.get(_norm(m.linkname))
            if target is not None:
                out[path] = target
            continue
        kind = _TAR_KINDS.get(m.type)
        if kind is None:
            continue
        size = len(m.linkname) if kind == "l" else (m.size if kind == "f" else 0)
        out[path] = Entry(kind, m.mode & 0o7777, m.uid, m.gid, size, int(m.mtime))
    out.pop("/" + DOCKERENV, None)  # removed from the base disk (basedisk.py)
    return out


def parse_listing(text: str) -> tuple[dict[str, Entry], tuple[str, ...]]:
    """The guest's answer to LIST_SCRIPT: entries and the mount points
    under the root (as paths inside it)."""
    entries: dict[str, Entry] = {}
    mounts: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line == "#mounts":
            break
        parts = line.split(" ", 5)
        if len(parts) != 6:
            continue  # a file name with a newline: not listed
        try:
            mode = int(parts[0], 16)
            uid, gid, size, mtime = (int(p) for p in parts[1:5])
        except ValueError:
            continue
        kind = _KINDS.get(stat.S_IFMT(mode))
        if kind is None:
            continue
        entries[_norm(parts[5])] = Entry(kind, mode & 0o7777, uid, gid, size, mtime)
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        target = _unescape(fields[1])
        if target.startswith(GUEST_ROOT + "/"):
            mounts.append(target.removeprefix(GUEST_ROOT))
    return entries, tuple(mounts)


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as \\ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def compare(
    base: Mapping[str, Entry], now: Mapping[str, Entry], mounts: Iterable[str] = ()
) -> RootChanges:
    """The changes from ``base`` (the image) to ``now`` (the guest). Paths
    under mount points are absent from ``now`` but not deleted: the mount
    points go into ``managed`` and drift.classify drops them."""
    changes: list[Change] = []
    for path, entry in now.items():
        if path == "/":
            continue  # the root itself: its mode is mkfs's, its mtime the boot's
        old = base.get(path)
        if old is None:
            changes.append(Change("A", path))
        elif entry.differs(old):
            changes.append(Change("C", path))
    changes.extend(Change("D", p) for p in base if p not in now and p != "/")
    return RootChanges(
        changes=tuple(sorted(changes, key=lambda c: c.path)),
        managed=(*mounts, *BOOT_MANAGED),
    )


# --- the image's listing, once per image id ------------------------------------------


class _ChunkReader:
    """A read()-able view of the export's chunks for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes], deadline: float) -> None:
        self._chunks, self._buf, self._deadline = chunks, b"", deadline

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            if time.monotonic() > self._deadline:
                raise VMError(f"reading an image export took more than {EXPORT_TIMEOUT:.0f}s")
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if size < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:size], self._buf[size:]
        return data


def image_manifest(client: docker.DockerClient, image_id: str, cache_dir: Path) -> dict[str, Entry]:
    """The listing of ``image_id``'s filesystem (cached in the disks dir)."""
    disks = cache_dir / "disks"
    path = disks / f"{image_id.removeprefix('sha256:')}.files.json"
    disks.mkdir(parents=True, exist_ok=True)
    with locked(disks / f".{path.name}.lock"):
        try:
            data = json.loads(path.read_text())
            if data.get("version") == MANIFEST_VERSION:
                return {p: Entry(*e) for p, e in data["entries"].items()}
        except (OSError, ValueError, TypeError, KeyError):
            pass
        with exported_image(client, image_id) as stream:
            reader = _ChunkReader(stream, time.monotonic() + EXPORT_TIMEOUT)
            with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|") as tar:
                entries = manifest_from_tar(tar)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "version": MANIFEST_VERSION,
                    "entries": {
                        p: [e.kind, e.perm, e.uid, e.gid, e.size, e.mtime]
                        for p, e in entries.items()
                    },
                }
            )
        )
        os.replace(tmp, path)
        return entries
