"""Shared by the unit and integration tests of volume backups."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

from compound.volumes.archive import HEADER, MANIFEST, entry_of, member_path
from compound.volumes.manifest import Entry, Manifest

Member = tuple[tarfile.TarInfo, bytes | None]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a restore must reproduce, per path: mode (type and
    permissions), owner, link count, mtime (ms; not the root's), content."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            full = Path(dirpath) / name if name != "." else Path(dirpath)
            st = os.lstat(full)
            rel = str(full.relative_to(root))
            data = b""
            if full.is_symlink():
                data = os.readlink(full).encode()
            elif full.is_file():
                data = full.read_bytes()
            mtime = round(st.st_mtime, 3) if not full.is_dir() or full != root else None
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, mtime, data)
    return out


# --- crafted archives: what only the extractors' own checks can refuse ---


def write_archive(archive: Path, members: list[Member]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    archive.write_bytes(
        subprocess.run(["zstd", "-q", "-c"], input=buf.getvalue(), capture_output=True).stdout
    )


def craft_archive(archive: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    """An archive with a correct header and a manifest that matches its
    members exactly: only the extractor's own checks can refuse it."""
    entries = []
    for info, data in members:
        entry = entry_of(info, member_path(info.name, "x") if info.name.startswith("data") else ".")
        if data is not None:
            entry = Entry(**{**entry.__dict__, "sha256": hashlib.sha256(data).hexdigest()})
            entry = Entry(**{**entry.__dict__, "size": len(data)})
        entries.append(entry)
    header = json.dumps({"format": "compound-volume-backup", "format_version": 1}).encode()
    manifest = Manifest(meta={}, entries=tuple(entries)).to_bytes()
    write_archive(
        archive,
        [(tar_file(HEADER), header), *members, (tar_file(MANIFEST), manifest)],
    )


def tar_file(name: str, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info


def tar_dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o777
    return info
