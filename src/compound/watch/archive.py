"""Changed host files as tar archives to unpack at ``/`` in an instance.

Each archive stays below ``limit`` bytes (a VM's guest agent takes one
message of bounded size), so a large batch becomes several archives. A file
that vanished between the event and the read is reported as deleted.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_LIMIT = 8 << 20


@dataclass
class Packed:
    archives: list[bytes] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)  # instance paths
    vanished: list[str] = field(default_factory=list)  # instance paths to delete instead


def pack(files: Sequence[tuple[str, str]], limit: int = DEFAULT_LIMIT) -> Packed:
    """``files``: (host path, absolute instance path) pairs."""
    out = Packed()
    chunk: list[tuple[str, str, tarfile.TarInfo]] = []
    pending = 0
    probe = tarfile.TarFile(fileobj=io.BytesIO(), mode="w")  # gettarinfo needs an archive
    for host, target in files:
        try:
            info = probe.gettarinfo(host, arcname=target.lstrip("/"))
        except OSError:
            out.vanished.append(target)
            continue
        if info.isdir():
            continue  # a directory's files come as their own events
        size = (info.size if info.isreg() else 0) + 512
        if chunk and pending + size > limit:
            out.archives.append(_write(chunk, out))
            chunk, pending = [], 0
        chunk.append((host, target, info))
        pending += size
    if chunk:
        out.archives.append(_write(chunk, out))
    return out


def _write(chunk: list[tuple[str, str, tarfile.TarInfo]], out: Packed) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for host, target, info in chunk:
            try:
                if info.isreg():
                    with open(host, "rb") as fh:
                        data = fh.read(info.size)
                    info.size = len(data)  # it may have shrunk since
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.addfile(info)
            except OSError:
                out.vanished.append(target)
                continue
            out.copied.append(target)
    return buf.getvalue()
