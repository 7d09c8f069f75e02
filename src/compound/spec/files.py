"""Reading the files a project names (Compose files, extends, env files)
with bounds: a regular file only (a device or FIFO named by `extends:
{file: /dev/zero}` would be read forever), and at most ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import os
import stat

from compound.errors import Location, SpecError

# Real Compose files are kilobytes; the largest in the Compose project's own
# fixtures is under 100 KiB. 16 MiB leaves room for generated ones.
MAX_FILE_BYTES = 16 * 1024 * 1024


def read_bounded(path: str, what: str, location: Location | None = None) -> bytes:
    """The bytes of ``path``, or a SpecError that says why not (located at
    ``location``, default the file itself)."""
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
