"""What a volume backup promises: one entry per file with its checksum and
attributes, the totals, and where it came from; sealed by its own digest.

The manifest is written last in the archive (the checksums are computed while
the data streams past, so the volume is read once) and checked against what
the archive actually holds before a restore touches anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from compound.errors import CompoundError

FORMAT = "compound-volume-backup"
FORMAT_VERSION = 1

# Entry types, as tar knows them; sockets are not archivable (tar skips them too).
TYPES = ("dir", "file", "symlink", "hardlink", "fifo", "chardev", "blockdev")


class ArchiveError(CompoundError):
    """A backup archive that is not one, is damaged, or does not match its manifest."""

    def __init__(self, archive: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{archive}: {problem}",
            hint=hint or "nothing was changed; use another backup (`compound volume backup`)",
        )
        self.problem = problem


@dataclass(frozen=True)
class Entry:
    """One member of the volume: path relative to its root ("." is the root)."""

    path: str
    type: str
    mode: int
    uid: int
    gid: int
    mtime: float
    size: int = 0
    sha256: str | None = None  # regular files
    link: str | None = None  # symlink target, or the path a hardlink shares data with
    device: tuple[int, int] | None = None  # (major, minor) of device nodes

    def to_json(self) -> dict[str, Any]:
        # not dataclasses.asdict: its deep copy cost 1 s per 15,000 entries (measured)
        data = {f: getattr(self, f) for f in _FIELDS if getattr(self, f) is not None}
        if self.device is not None:
            data["device"] = list(self.device)
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Entry:
        device = data.get("device")
        return Entry(
            path=str(data["path"]),
            type=str(data["type"]),
            mode=int(data["mode"]),
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            mtime=float(data["mtime"]),
            size=int(data.get("size", 0)),
            sha256=data.get("sha256"),
            link=data.get("link"),
            device=(int(device[0]), int(device[1])) if device else None,
        )


_FIELDS = tuple(f.name for f in fields(Entry))


@dataclass(frozen=True)
class Manifest:
    """The whole promise. ``meta`` holds the origin: project, volume, services,
    compound version, time, whether writers were paused."""

    meta: dict[str, Any]
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries if e.type == "file")

    @property
    def file_count(self) -> int:
        return sum(1 for e in self.entries if e.type == "file")

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **self.meta,
            "total_size": self.total_size,
            "file_count": self.file_count,
            "entry_count": len(self.entries),
            "warnings": list(self.warnings),
            "entries": [e.to_json() for e in self.entries],
        }

    def to_bytes(self) -> bytes:
        body = self.body()
        # compact: with indent, json falls back to its pure-Python encoder (0.7 s / 15k entries)
        sealed = {**body, "digest": digest(body)}
        return json.dumps(sealed, separators=(",", ":")).encode() + b"\n"

    @staticmethod
    def from_bytes(data: bytes, archive: str) -> Manifest:
        """Parse and check the seal; any damage is an ArchiveError."""
        try:
            doc = json.loads(data)
            sealed = doc.pop("digest")
        except (ValueError, KeyError, AttributeError, TypeError):
            raise ArchiveError(archive, "the manifest is not readable JSON with a digest") from None
        check_format(doc, archive)
        if digest(doc) != sealed:
            raise ArchiveError(archive, "the manifest does not match its own digest (damaged)")
        try:
            entries = tuple(Entry.from_json(e) for e in doc["entries"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ArchiveError(archive, f"the manifest has a malformed entry: {exc}") from None
        meta = {k: v for k, v in doc.items() if k not in _DERIVED}
        return Manifest(meta=meta, entries=entries, warnings=tuple(doc.get("warnings", ())))


_DERIVED = (
    "format",
    "format_version",
    "total_size",
    "file_count",
    "entry_count",
    "warnings",
    "entries",
)


def digest(body: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def check_format(doc: Mapping[str, Any], archive: str) -> None:
    if doc.get("format") != FORMAT:
        raise ArchiveError(
            archive,
            "not a compound volume backup",
            hint="restore only archives made by `compound volume backup`",
        )
    if doc.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(
            archive,
            f"backup format version {doc.get('format_version')} is not supported"
            f" (this compound reads version {FORMAT_VERSION})",
            hint="restore it with the compound version that made it",
        )


def compare(expected: Iterable[Entry], actual: Iterable[Entry], archive: str) -> None:
    """The archive holds exactly the manifest's entries, byte for byte and
    attribute for attribute; otherwise an ArchiveError naming the first few
    differences."""
    want = {e.path: e for e in expected}
    have = {e.path: e for e in actual}
    problems = [f"missing {p}" for p in want if p not in have]
    problems += [f"not in the manifest: {p}" for p in have if p not in want]
    for path, w in want.items():
        h = have.get(path)
        if h is None or h == w:
            continue
        fields = [f for f in ("type", "size", "sha256", "mode", "uid", "gid", "mtime", "link")]
        diff = [f for f in fields if getattr(h, f) != getattr(w, f)]
        what = "content (sha256)" if "sha256" in diff or "size" in diff else ", ".join(diff)
        problems.append(f"{path}: {what} differs from the manifest")
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ArchiveError(archive, f"the archive does not match its manifest: {shown}{more}")


def check_tree(entries: Iterable[Entry], archive: str) -> None:
    """The entries form a tree that can be recreated without following
    anything the archive itself makes: every member's parent is a directory
    of the archive (so never a symlink it planted), no path twice, and a
    hardlink only to a regular file that comes before it. The extractors
    check the same as they go; this lets a restore refuse a hostile archive
    before it touches the volume, on paths where nothing checks as it goes
    (the engine's archive API)."""
    dirs = {"."}
    files: set[str] = set()
    seen: set[str] = set()
    for e in entries:
        if e.path in seen:
            raise ArchiveError(archive, f"{e.path} appears twice in the archive")
        seen.add(e.path)
        if e.path == ".":
            continue
        parent = e.path.rpartition("/")[0] or "."
        if parent not in dirs:
            raise ArchiveError(
                archive, f"{e.path}: its parent is not a directory of the archive (refused)"
            )
        if e.type == "dir":
            dirs.add(e.path)
        elif e.type == "file":
            files.add(e.path)
        elif e.type == "hardlink" and e.link not in files:
            raise ArchiveError(archive, f"{e.path}: hardlink to {e.link}, not an extracted file")
