"""Shared by the unit and integration tests of volume backups."""

from __future__ import annotations

import os
from pathlib import Path


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
