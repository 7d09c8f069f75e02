"""The projects a server serves: each one a Compose file set, loaded per request.

Loaded again on every request (so an edited file is what the next `up`
applies, as on the command line), but only re-parsed when one of its
files changed since the last load.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from compound.errors import CompoundError
from compound.spec import LoadOptions, LoadResult, load_project


class NoSuchProjectError(CompoundError):
    """An unknown project (404)."""


@dataclass(frozen=True)
class ProjectRef:
    options: LoadOptions
    name: str
    files: tuple[str, ...]


def _stamp(files: Sequence[str]) -> tuple[tuple[str, float, int], ...]:
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((f, st.st_mtime, st.st_size))
        except OSError:
            out.append((f, 0.0, -1))
    return tuple(out)


class ProjectSet:
    def __init__(self, options: Sequence[LoadOptions]) -> None:
        self._refs: dict[str, ProjectRef] = {}
        self._cache: dict[str, tuple[tuple[tuple[str, float, int], ...], LoadResult]] = {}
        self._lock = threading.Lock()
        for opts in options:
            result = load_project(opts)  # a broken file fails the start, not a request
            name = result.project.name
            files = tuple(str(Path(f).absolute()) for f in opts.files)
            if name in self._refs:
                raise CompoundError(
                    f"two projects are named {name!r}",
                    hint="give one of them another name (top-level `name:` or -p)",
                )
            self._refs[name] = ProjectRef(opts, name, files)
            self._cache[name] = (_stamp(files), result)

    def names(self) -> list[str]:
        return sorted(self._refs)

    def ref(self, name: str) -> ProjectRef:
        ref = self._refs.get(name)
        if ref is None:
            raise NoSuchProjectError(
                f"no such project: {name!r}",
                hint="projects served here: " + (", ".join(self.names()) or "none"),
            )
        return ref

    def load(self, name: str) -> LoadResult:
        ref = self.ref(name)
        stamp = _stamp(ref.files)
        with self._lock:
            cached = self._cache.get(name)
            if cached and cached[0] == stamp and ref.files:
                return cached[1]
        result = load_project(ref.options)
        with self._lock:
            self._cache[name] = (stamp, result)
        return result
