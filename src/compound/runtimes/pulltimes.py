"""When each image reference was last pulled on this host, for the time-based
pull policies (``daily``, ``weekly``, ``every_<duration>``).

One empty file per reference under ``<cache>/pulls/``, named by the hash of
the reference; its mtime is the time of the last successful pull. A file's
mtime is written atomically by the kernel, so concurrent `up`s cannot leave a
half-written record, and a missing or unreadable record just means "pull".
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from compound.runtimes import hostops


def _record(ref: str) -> Path:
    digest = hashlib.sha256(ref.encode()).hexdigest()[:32]
    return hostops.cache_root() / "pulls" / digest


def last_pull(ref: str) -> float | None:
    """Seconds since the epoch of the last pull of ``ref`` here, or None."""
    try:
        return _record(ref).stat().st_mtime
    except OSError:
        return None


def record_pull(ref: str, when: float | None = None) -> None:
    path = _record(ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    stamp = time.time() if when is None else when
    os.utime(path, (stamp, stamp))


def pull_is_due(ref: str, interval: float, now: float | None = None) -> bool:
    last = last_pull(ref)
    return last is None or (time.time() if now is None else now) - last >= interval
