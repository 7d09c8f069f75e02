"""The validated project of an unchanged file set, kept between commands.

A load is YAML parsing, interpolation, the schema check, normalisation and
pydantic's validation (and importing all of that): about half of what
`compound ps` or a repeated `compound up` cost before they reach the engine.
So a successful load is kept under ``~/.cache/compound/projects/``, keyed by
everything that can change it, as `config`'s output cache does
(cli/config_cache.py): the load's options, the working directory, the whole
environment, compound's version and source files, and Python's version. The
entry lists every path the load read or looked for (Compose files, includes,
extends, env and label files, the default files that were absent) with a
digest of each; a changed, new or vanished file is a miss and runs the load.

A hit returns the same ``LoadResult`` (warnings included) after importing
only the model (pydantic's validators are built on first use, so a kept
project costs none). COMPOUND_NO_CONFIG_CACHE=1 turns it off with `config`'s
cache. The entries are pickles, so the directory is owner-only and an entry
anyone else could have written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import stat
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from compound import __version__
from compound.cli import config_cache

if TYPE_CHECKING:
    from compound.spec import LoadOptions, LoadResult

KEEP = 32  # projects kept (each file set, command line and environment is its own)
_SUFFIX = ".pickle"


def cache_dir() -> str:
    return os.path.join(config_cache.cache_root(), "projects")


def key_for(opts: LoadOptions) -> str | None:
    """The cache key of this load, or None when it is not cacheable (stdin,
    a caller-supplied environment or directory, the cache turned off)."""
    if config_cache.disabled() or "-" in opts.files:
        return None
    if opts.environ is not None or opts.cwd is not None:
        return None
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # the loader says what is wrong
    blob = json.dumps(
        [
            __version__,
            config_cache.code_stamp(),
            sys.version,
            list(opts.files),
            opts.project_name,
            opts.project_directory,
            list(opts.env_files),
            list(opts.profiles),
            list(opts.target_services),
            cwd,
            sorted(os.environ.items()),
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def load(opts: LoadOptions) -> LoadResult:
    """``load_project(opts)``, answered from the cache while nothing it read changed."""
    from compound.spec.files import note_reads

    key = key_for(opts)
    kept = _replay(key) if key else None
    if kept is not None:
        note_reads(kept[0])  # an outer recording (config's cache) depends on them too
        return kept[1]
    from compound.spec import load_project
    from compound.spec.files import recording_reads

    with recording_reads() as reads:
        result = load_project(opts)
    if key:
        _store(key, reads, result)
    return result


def _replay(key: str) -> tuple[list[str], LoadResult] | None:
    try:
        with open(os.path.join(cache_dir(), key + _SUFFIX), "rb") as fh:
            info = os.fstat(fh.fileno())
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            header = pickle.load(fh)
            reads = header.get("reads") if isinstance(header, dict) else None
            if not isinstance(reads, dict):
                return None
            if any(config_cache.digest(path) != kept for path, kept in reads.items()):
                return None
            from pydantic import VERSION

            from compound.spec.options import LoadResult

            if header.get("pydantic") != VERSION:
                return None
            result = pickle.load(fh)
    # an entry that cannot be read back for any reason (truncated, written by
    # another model) is a miss: the load runs and replaces it
    except Exception:
        return None
    if not isinstance(result, LoadResult):
        return None
    return list(reads), result


def _store(key: str, reads: Iterable[str], result: LoadResult) -> None:
    """Keep a load; written whole or not at all (temp file + rename)."""
    import tempfile  # only a miss pays for it

    from pydantic import VERSION

    header = {"reads": {p: config_cache.digest(p) for p in sorted(reads)}, "pydantic": VERSION}
    directory = cache_dir()
    tmp = None
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(header, fh, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, os.path.join(directory, key + _SUFFIX))
        tmp = None
        config_cache.prune(directory, KEEP, _SUFFIX)
    except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
        pass  # a cache that cannot be written costs the next run its speed, nothing else
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
