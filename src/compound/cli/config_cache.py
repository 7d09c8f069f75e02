"""`compound config` (and `--help`) answered from a cache while nothing it
read has changed.

Most of `config`'s time is Python importing what a load needs (YAML, the
pydantic model, typer), not the load itself. So a successful `config` that
printed no warning is kept under ``~/.cache/compound/config/``, keyed by
everything that can change its answer: the command line, the working
directory, the whole environment and compound's version; the entry lists
every path the load read or looked for (``spec.files.recording_reads``:
Compose files, includes, extends, env and label files, the default files
that were absent) with a digest of each. The next identical `config` checks
those digests and prints the stored output without importing any of it; a
changed, new or vanished file is a miss and runs the load.

The top-level `--help` is kept the same way (its text depends only on
compound's code, the environment and the terminal's width, all in the key;
listing the commands otherwise imports every command module).

Only this module and the standard library are imported before the answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from compound import __version__

# global options that take a value (so their value is not the command)
_VALUED = {
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--project-directory",
    "--env-file",
    "--profile",
    "--progress",
}
_ABSENT = "-"


def cache_root() -> str:
    root = os.environ.get("COMPOUND_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "compound")
    return root


def cache_dir() -> str:
    return os.path.join(cache_root(), "config")


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list runs (the first word that is not a
    global option or its value)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _VALUED:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def key_for(argv: Sequence[str]) -> str | None:
    """The cache key of this invocation, or None when it is not cacheable:
    `config` (not of stdin, not its --help) and the top-level `--help`."""
    top_help = list(argv) in (["--help"], ["-h"])
    if not top_help and (
        command_of(argv) != "config" or "-" in argv or "--help" in argv or "-h" in argv
    ):
        return None
    if disabled():
        return None
    # help is wrapped to the terminal's width
    width = _terminal_width() if top_help else 0
    blob = json.dumps(
        [__version__, code_stamp(), list(argv), os.getcwd(), sorted(os.environ.items()), width],
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def disabled() -> bool:
    """COMPOUND_NO_CONFIG_CACHE=1: every load runs in full (this cache and the
    project cache, cli/project_cache.py)."""
    return bool(os.environ.get("COMPOUND_NO_CONFIG_CACHE"))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return 0


def code_stamp() -> list[float]:
    """The newest mtime and the number of compound's own source files: an
    edited checkout (an editable install) must not answer with old output.
    Read once a process (the config and project caches both ask)."""
    if not _STAMP:
        _STAMP.extend(_walk_code())
    return list(_STAMP)


_STAMP: list[float] = []


def _walk_code() -> list[float]:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    newest, count = 0.0, 0
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith((".py", ".json")):
                newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
                count += 1
    return [newest, count]


def digest(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except IsADirectoryError:
        return "dir"
    except OSError:
        return _ABSENT


def replay(key: str) -> bool:
    """Print the stored answer if every path it read is as it was."""
    try:
        with open(os.path.join(cache_dir(), key + ".json")) as fh:
            entry = json.load(fh)
    except (OSError, ValueError):
        return False
    reads = entry.get("reads")
    if not isinstance(reads, dict) or not isinstance(entry.get("stdout"), str):
        return False
    if any(digest(path) != kept for path, kept in reads.items()):
        return False
    sys.stdout.write(entry["stdout"])
    sys.stdout.flush()
    return True


def store(key: str, reads: Iterable[str], stdout: str) -> None:
    """Keep an answer; written whole or not at all (temp file + rename)."""
    import tempfile  # only a miss pays for it

    entry = {"reads": {p: digest(p) for p in sorted(reads)}, "stdout": stdout}
    directory = cache_dir()
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            json.dump(entry, fh)
        os.replace(tmp, os.path.join(directory, key + ".json"))
        prune(directory)
    except OSError:
        return  # a cache that cannot be written costs the next run its speed, nothing else


KEEP = 64  # answers kept (each environment and command line is its own)


def prune(directory: str, keep: int = KEEP, suffix: str = ".json") -> None:
    """Keep the ``keep`` newest entries of a cache directory."""
    entries = [e for e in os.scandir(directory) if e.name.endswith(suffix)]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda e: e.stat().st_mtime)
    for old in entries[: len(entries) - keep]:
        with contextlib.suppress(OSError):
            os.unlink(old.path)


class Tee(io.TextIOBase):
    """A text stream that also keeps what was written to it."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.kept = io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.real.write(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.real, "encoding", "utf-8")
