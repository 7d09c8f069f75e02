"""Reading and writing tar streams through pipes, fast.

tarfile's streaming mode ("r|") re-buffers every byte through joins and
slices and parses pax records in pure Python per member; on a 1 GiB
volume that was two thirds of a restore's time (measured: 14.9 s against
5.4 s for GNU tar). This reader handles what compound's archives contain:
ustar headers (parsed by ``TarInfo.frombuf``, which checks each header's
checksum) with pax extended headers before them; file data is handed out
in large chunks straight from the pipe. :func:`header` writes the same
shape (tarfile's header code cost ~140 us a member, mostly building pax
records; this costs a tenth), readable by GNU tar, bsdtar and tarfile.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import IO

BLOCK = 512
RECORD = 20 * BLOCK  # archives end on a record boundary, as tar writes them
CHUNK = 1 << 20
_PAX = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)


class TarStreamError(tarfile.TarError):
    pass


def _exact(f: IO[bytes], n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise TarStreamError("unexpected end of data")
    return data


def _pax_records(data: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records; the length counts the whole record."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise TarStreamError("malformed pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarStreamError("malformed pax header length") from None
        record = data[space + 1 : pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise TarStreamError("malformed pax record")
        key, _, value = record[:-1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _apply(info: tarfile.TarInfo, pax: dict[str, str]) -> None:
    try:
        for key, value in pax.items():
            if key == "path":
                info.name = value
            elif key == "linkpath":
                info.linkname = value
            elif key == "size":
                info.size = int(value)
            elif key == "mtime":
                info.mtime = float(value)
            elif key == "uid":
                info.uid = int(value)
            elif key == "gid":
                info.gid = int(value)
            elif key.startswith("GNU.sparse"):
                raise TarStreamError("sparse members are not supported")
    except ValueError:
        raise TarStreamError(f"malformed pax value for {key!r}") from None


def members(f: IO[bytes]) -> Iterator[tuple[tarfile.TarInfo, Iterator[bytes]]]:
    """(member, its data in chunks) in order. A member's data must be consumed
    (or abandoned) before asking for the next one; whatever is left is skipped."""
    pending: Iterator[bytes] | None = None
    while True:
        if pending is not None:
            for _ in pending:
                pass
        block = _exact(f, BLOCK)
        if block == bytes(BLOCK):
            return  # end-of-archive marker (what follows is padding)
        info = _header(f, block)
        pending = _data(f, info.size if info.isreg() else 0)
        yield info, pending


def _header(f: IO[bytes], block: bytes) -> tarfile.TarInfo:
    pax: dict[str, str] = {}
    while True:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        if info.type in _PAX:
            pax.update(_pax_records(_exact(f, _padded(info.size))[: info.size]))
            block = _exact(f, BLOCK)
            continue
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XGLTYPE):
            raise TarStreamError(f"unsupported tar header type {info.type!r}")
        _apply(info, pax)
        return info


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK


def _data(f: IO[bytes], size: int) -> Iterator[bytes]:
    left = size
    while left:
        data = f.read(min(left, CHUNK))
        if not data:
            raise TarStreamError("unexpected end of data")
        left -= len(data)
        yield data
    pad = _padded(size) - size
    if pad:
        _exact(f, pad)


# --- writing -----------------------------------------------------------------------------


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode("utf-8", "surrogateescape")
    n = len(body) + 1
    while len(str(n)) + len(body) != n:  # the length counts its own digits
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _ustar(
    name: bytes, info: tarfile.TarInfo, kind: bytes, size: int, mtime: int, link: bytes
) -> bytes:
    head = b"".join(
        (
            name[:100].ljust(100, b"\0"),
            _octal(info.mode & 0o7777, 8),
            _octal(info.uid if info.uid < 0o7777777 else 0, 8),
            _octal(info.gid if info.gid < 0o7777777 else 0, 8),
            _octal(size if size < 0o77777777777 else 0, 12),
            _octal(mtime, 12),
            b" " * 8,  # checksum, computed over spaces
            kind,
            link[:100].ljust(100, b"\0"),
            b"ustar\x0000",
            b"\0" * 64,  # numeric owners only: no uname/gname
            _octal(info.devmajor, 8),
            _octal(info.devminor, 8),
            b"\0" * 167,
        )
    )
    checksum = b"%06o\0 " % sum(head)
    return head[:148] + checksum + head[156:]


def header(info: tarfile.TarInfo) -> bytes:
    """The header blocks of one member: a pax extended header carrying the
    sub-second mtime (and whatever does not fit ustar's fields), then ustar."""
    name = info.name.encode("utf-8", "surrogateescape")
    link = info.linkname.encode("utf-8", "surrogateescape")
    size = info.size if info.isreg() else 0
    records = [_pax_record("mtime", repr(float(info.mtime)))]
    if len(name) > 100 or not name.isascii():
        records.append(_pax_record("path", info.name))
    if len(link) > 100 or not link.isascii():
        records.append(_pax_record("linkpath", info.linkname))
    if size >= 0o77777777777:
        records.append(_pax_record("size", str(size)))
    for key, value in (("uid", info.uid), ("gid", info.gid)):
        if value >= 0o7777777:
            records.append(_pax_record(key, str(value)))
    pax = b"".join(records)
    mtime = int(info.mtime)
    return b"".join(
        (
            _ustar(b"././@PaxHeader", info, tarfile.XHDTYPE, len(pax), mtime, b""),
            pax.ljust(_padded(len(pax)), b"\0"),
            _ustar(name, info, info.type, size, mtime, link),
        )
    )


def padding(size: int) -> bytes:
    return bytes(_padded(size) - size)


def end(offset: int) -> bytes:
    """Two zero blocks, then zeros to the next record boundary."""
    total = offset + 2 * BLOCK
    return bytes(2 * BLOCK + (-total) % RECORD)
