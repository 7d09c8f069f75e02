"""Volumes: where a project's data lives, and what users back up.

archive.py    the backup format (tar + zstd, header first, manifest last)
manifest.py   entries with sha256s, sealed by a digest; comparison
tarstream.py  tar headers written and read fast through pipes
localdir.py   reading/restoring through the volume's directory (local driver, root)
enginedir.py  the same through the engine's archive API (any driver, remote engine)
writers.py    who uses a volume; pausing them for a consistent backup
ops.py        ls, inspect, backup, restore as the CLI calls them
"""

from __future__ import annotations

from .ops import Result, VolumeRef, backup, restore, volume_info, volume_rows

__all__ = ["Result", "VolumeRef", "backup", "restore", "volume_info", "volume_rows"]
