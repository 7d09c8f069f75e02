"""Where a key path of a loaded project was written, for error messages.

The typed model carries no positions. Hints are validated by the spec
loader, with their positions, so a loaded project never sends the advisor
here; the placement planner (and a project built in code) re-read the
Compose files (cheaply, once per file, only when an error needs a position)
to point at ``file:line:column``. Later files win, as in the merge; a path
that no file spells out (set by ``extends`` or a default) falls back to its
nearest written ancestor, then to the last file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import lru_cache

from compound.errors import CompoundError, Location
from compound.spec.model import Project
from compound.spec.nodes import Locator, Mark, Path, marks_of
from compound.spec.yamlload import parse_yaml

Locate = Callable[[Path], Location]


@lru_cache(maxsize=64)
def _marks(path: str, mtime_ns: int) -> dict[Path, Mark]:
    del mtime_ns  # part of the cache key only: an edited file is re-read
    with open(path, "rb") as fh:
        docs = parse_yaml(fh.read(), path)
    out: dict[Path, Mark] = {}
    for doc in docs:
        out.update(marks_of(doc))
    return out


def files_locator(files: Sequence[str]) -> Locate:
    """A locator over ``files`` (merge order); unreadable files are skipped."""
    merged: dict[Path, Mark] = {}
    for path in files:
        try:
            merged.update(_marks(path, os.stat(path).st_mtime_ns))
        except (OSError, CompoundError):
            continue  # the loader already accepted the project; positions are a bonus
    return Locator(merged, default_file=files[-1] if files else None)


def project_locator(project: Project) -> Locate:
    """Reads the files only when the first error needs a position."""
    built: list[Locate] = []

    def locate(path: Path) -> Location:
        if not built:
            built.append(files_locator(project.files))
        return built[0](path)

    return locate
