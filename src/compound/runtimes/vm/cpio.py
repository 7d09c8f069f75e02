"""A writer for the ``newc`` cpio format, which is what the kernel unpacks
as an initramfs. The format is 110 bytes of ASCII hex header, the name, the
data, each padded to 4 bytes. Entries are written in a stable order with
fixed mtimes so the same inputs give the same bytes (a content address)."""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass
class CpioWriter:
    out: BinaryIO
    mtime: int = 0
    _ino: int = 1
    _names: set[str] = field(default_factory=set)

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes = b"",
        nlink: int = 1,
        rdev: tuple[int, int] = (0, 0),
    ) -> None:
        name = name.lstrip("/") or "."
        encoded = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,
            0,
            nlink,
            self.mtime,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded),
            0,
        )
        self._ino += 1
        header = _MAGIC + b"".join(b"%08X" % f for f in fields)
        self.out.write(header + encoded)
        self.out.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 4))

    def _parents(self, name: str) -> None:
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, name: str, perm: int = 0o755) -> None:
        name = name.strip("/")
        if name in self._names:
            return
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFDIR | perm, nlink=2)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        name = name.strip("/")
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        name = name.strip("/")
        self._parents(name)
        self._names.add(name)
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def close(self) -> None:
        self._entry(_TRAILER, 0)
        # The kernel reads in 512-byte blocks; pad like cpio(1) does.
        pos = self.out.tell() if self.out.seekable() else 0
        self.out.write(b"\0" * (-pos % 512))


def build_image(entries: list[tuple[str, str, bytes | str, int]], *, compress: bool) -> bytes:
    """Build a whole archive from (kind, name, payload, perm) with kind in
    dir/file/symlink; gzip it (mtime 0, so reproducible) if asked."""
    buf = io.BytesIO()
    w = CpioWriter(buf)
    for kind, name, payload, perm in entries:
        if kind == "dir":
            w.dir(name, perm)
        elif kind == "file":
            w.file(name, payload if isinstance(payload, bytes) else payload.encode(), perm)
        elif kind == "symlink":
            w.symlink(name, payload if isinstance(payload, str) else payload.decode())
        else:
            raise ValueError(kind)
    w.close()
    raw = buf.getvalue()
    if not compress:
        return raw
    return gzip.compress(raw, compresslevel=6, mtime=0)


def add_tree(w: CpioWriter, src: Path, dest: str) -> None:
    """Copy a host directory tree into the archive under ``dest``."""
    for path in sorted(src.rglob("*")):
        rel = f"{dest.rstrip('/')}/{path.relative_to(src)}"
        if path.is_symlink():
            w.symlink(rel, str(path.readlink()))
        elif path.is_dir():
            w.dir(rel, path.stat().st_mode & 0o7777)
        else:
            w.file(rel, path.read_bytes(), path.stat().st_mode & 0o7777)
