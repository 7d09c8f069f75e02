"""A volume read and written through the engine's archive API.

The fallback for when the volume's directory is not usable from here: a
remote engine, a driver other than plain local, a tmpfs/nfs local volume
(mounted only while a container uses it), or no root. A helper container
with the volume mounted is created (never started for a backup: the engine
mounts a container's volumes for ``GET /archive`` itself) and removed
afterwards. A restore verifies the archive, ``PUT /archive``s it into a
staging directory inside the volume and swaps it in by renames there (a
helper runs the swap), so a full volume or a failed upload loses nothing.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from compound.engine import Client, containers, engine_errors, images
from compound.engine.request import ContainerRequest, plain_config
from compound.errors import CompoundError, EngineError
from compound.volumes import tarstream
from compound.volumes.archive import CHUNK, ArchiveWriter, Meter, read_archive
from compound.volumes.localdir import STAGING_PREFIX, TRASH_PREFIX
from compound.volumes.manifest import Entry, Manifest, check_tree

HELPER_IMAGE = "local/busybox:latest"
HELPER_LABEL = "io.compound.helper"
MOUNT = "/v"


@contextlib.contextmanager
def helper(
    client: Client, volume: str, *, read_only: bool, command: list[str] | None = None
) -> Iterator[str]:
    """A container of HELPER_IMAGE with ``volume`` at /v; removed on exit."""
    if images.image_id(client, HELPER_IMAGE) is None:
        raise EngineError(
            f"reaching volume {volume!r} through the engine needs the image {HELPER_IMAGE}",
            hint="build it: `make images`",
        )
    config = plain_config(
        HELPER_IMAGE,
        command or ["true"],
        binds=[f"{volume}:{MOUNT}:{'ro' if read_only else 'rw'}"],
        network_mode="none",
        labels={HELPER_LABEL: "volume"},
    )
    cid = containers.create(
        client, ContainerRequest(config=config), kind=f"a helper container for volume {volume!r}"
    )
    try:
        yield cid
    finally:
        with contextlib.suppress(CompoundError):
            containers.remove(client, cid, volumes=False)


class _IterReader(io.RawIOBase):
    """A file over an iterator of byte chunks (the engine's archive stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def backup_engine(client: Client, volume: str, writer: ArchiveWriter, meter: Meter) -> None:
    """The volume's tree as the engine archives it, re-rooted at ``data``."""
    meter.total(None)
    with (
        helper(client, volume, read_only=True) as cid,
        engine_errors(f"read volume {volume!r} through the engine"),
    ):
        chunks = containers.get_archive(client, cid, MOUNT, CHUNK)
        stream = io.BufferedReader(_IterReader(chunks), CHUNK)
        with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK) as tar:
            for info in tar:
                rel = _relative(info.name)
                if info.islnk():
                    info.linkname = _relative(info.linkname)
                content = tar.extractfile(info) if info.isreg() else None
                writer.add(info, rel, content)


def _relative(name: str) -> str:
    # the engine names members after the archived directory: "v", "v/a", ...
    head, _, rest = name.strip("/").partition("/")
    if head != MOUNT.strip("/"):
        raise EngineError(f"unexpected member {name!r} in the engine's archive of {MOUNT}")
    return rest or "."


class _TarSink:
    """Re-emits verified archive members as a tar for ``PUT /archive``."""

    KINDS = {
        "dir": tarfile.DIRTYPE,
        "file": tarfile.REGTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
        "chardev": tarfile.CHRTYPE,
        "blockdev": tarfile.BLKTYPE,
    }

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.offset = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)

    def add(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        if entry.path == ".":
            return  # the mountpoint's own attributes are set by the helper
        info = tarfile.TarInfo(entry.path)
        info.mode, info.uid, info.gid = entry.mode, entry.uid, entry.gid
        info.mtime = entry.mtime
        info.type = self.KINDS[entry.type]
        info.linkname = entry.link or ""
        info.size = entry.size if entry.type == "file" else 0
        if entry.device:
            info.devmajor, info.devminor = entry.device
        self._write(tarstream.header(info))
        for data in chunks:
            self._write(data)
        self._write(tarstream.padding(info.size))

    def finish(self) -> None:
        self._write(tarstream.end(self.offset))


def restore_engine(client: Client, volume: str, archive: Path, meter: Meter) -> Manifest:
    """Verify the whole archive first (nothing is touched before), stream it
    into a staging directory inside the volume, and only then swap it in by
    renames: a full volume, a hostile archive or an interrupted upload leave
    the old contents as they were."""
    manifest = read_archive(archive, meter=meter)
    # the engine's extraction follows what it finds, so refuse here what the
    # mount path's extractor refuses as it goes (a write through a symlink)
    check_tree(manifest.entries, str(archive))
    root = next((e for e in manifest.entries if e.path == "."), None)
    tag = uuid.uuid4().hex[:8]
    staging = f"{MOUNT}/{STAGING_PREFIX}{tag}"
    _sh(client, volume, f"mkdir -m 700 {staging}", "prepare the restore")
    try:
        with helper(client, volume, read_only=False) as cid:
            _put(client, cid, archive, staging)
    except BaseException:
        with contextlib.suppress(CompoundError):
            _sh(client, volume, f"rm -rf {staging}", "remove the restore's staging directory")
        raise
    owner = f" && chown {root.uid}:{root.gid} /v && chmod {root.mode:o} /v" if root else ""
    _sh(
        client,
        volume,
        _SWAP.format(new=staging, old=f"{MOUNT}/{TRASH_PREFIX}{tag}") + owner,
        "swap the restored files in",
    )
    return manifest


# Old contents into a trash directory, new ones up from staging, both by
# renames inside the volume; undone if a rename fails; trash deleted last.
# Globs, not word lists, so any file name survives the undo too.
_SWAP = """set -u
mkdir -m 700 {old} || exit 1
phase=out
move_all() {{  # every entry of $1 but ours into $2
  for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    case "$f" in {new}|{old}) continue ;; esac
    mv -- "$f" "$2"/ || return 1
  done
}}
undo() {{
  [ "$phase" = in ] && move_all /v {new}
  move_all {old} /v
  rmdir {old}
  exit 1
}}
move_all /v {old} || undo
phase=in
move_all {new} /v || undo
rm -rf {old} {new}"""


def _sh(client: Client, volume: str, script: str, what: str) -> None:
    with helper(client, volume, read_only=False, command=["sh", "-c", script]) as cid:
        containers.start(client, cid, what=f"{what} in volume {volume!r}")
        code = containers.wait(client, cid, timeout=600)
        if code != 0:
            out = containers.output(client, cid)
            logs = (out.stdout + out.stderr).decode(errors="replace").strip()
            raise CompoundError(
                f"{what} in volume {volume!r} failed (exit {code}): {logs}",
                hint="the volume's previous contents were kept",
            )


def _put(client: Client, cid: str, archive: Path, path: str) -> None:
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as out:
                read_archive(archive, _TarSink(out))
        except BaseException as exc:  # reported by the caller's thread
            failure.append(exc)

    def chunks(f: io.BufferedReader) -> Iterator[bytes]:
        while data := f.read(CHUNK):
            yield data

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as f:
        try:
            containers.put_archive(
                client, cid, path, chunks(f), what="write the backup into the volume"
            )
        finally:
            f.close()  # a failed upload must not leave the producer blocked on the pipe
            thread.join()
    if failure:
        raise failure[0]
