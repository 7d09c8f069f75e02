"""Reading the files a project names (Compose files, extends, env files)
with bounds: a regular file only (a device or FIFO named by `extends:
{file: /dev/zero}` would be read forever), and at most ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

from compound.errors import Location, SpecError

# Real Compose files are kilobytes; the largest in the Compose project's own
# fixtures is under 100 KiB. 16 MiB leaves room for generated ones.
MAX_FILE_BYTES = 16 * 1024 * 1024


# Every path a load read or looked for, while someone records them: `config`'s
# output cache (cli/config_cache.py) is valid while none of them changed.
_reads: ContextVar[set[str] | None] = ContextVar("compound_spec_reads", default=None)


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Every path read or looked for inside the block. Recordings nest: an
    outer one (config's output cache) also gets what an inner one (the
    project cache) saw."""
    outer = _reads.get()
    seen: set[str] = set()
    token = _reads.set(seen)
    try:
        yield seen
    finally:
        _reads.reset(token)
        if outer is not None:
            outer.update(seen)


def note_reads(paths: Iterable[str]) -> None:
    """Record paths a cached answer depends on as if they had been read."""
    for path in paths:
        _note(path)


def _note(path: str) -> None:
    seen = _reads.get()
    if seen is not None:
        seen.add(os.path.abspath(path))


def is_file(path: str) -> bool:
    """``os.path.isfile``, recorded: the answer shapes the project too."""
    _note(path)
    return os.path.isfile(path)


def exists(path: str) -> bool:
    _note(path)
    return os.path.exists(path)


def read_bounded(path: str, what: str, location: Location | None = None) -> bytes:
    """The bytes of ``path``, or a SpecError that says why not (located at
    ``location``, default the file itself)."""
    _note(path)
    where = location or Location(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpecError(f"{what} not found: {path}", location=where) from None
    except IsADirectoryError:
        raise SpecError(f"{what} {path} is a directory, not a file", location=where) from None
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror}", location=where) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SpecError(f"{what} {path} is a directory, not a file", location=where)
        if not stat.S_ISREG(st.st_mode):
            raise SpecError(
                f"{what} {path} is not a regular file (a device, FIFO or socket)",
                location=where,
                hint="name a file",
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise SpecError(
                    f"{what} {path} is larger than {MAX_FILE_BYTES >> 20} MiB",
                    location=where,
                    hint="a Compose or env file this large is almost certainly not one",
                )
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror}", location=where) from None
    finally:
        os.close(fd)


def read_text_bounded(path: str, what: str, location: Location | None = None) -> str:
    data = read_bounded(path, what, location)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(
            f"{what} {path} is not valid UTF-8", location=location or Location(path)
        ) from None
