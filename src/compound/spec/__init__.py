"""The spec layer: Compose files → validated, normalised, typed ``Project``.

Public API::

    load_project(LoadOptions(...)) -> LoadResult(project, warnings)
    to_compose_dict(project) -> dict   # what `compound config` prints

Everything else in this package is private to it.
"""

from __future__ import annotations

from .compose_dict import to_compose_dict
from .loader import LoadOptions, LoadResult, load_project

__all__ = ["LoadOptions", "LoadResult", "load_project", "to_compose_dict"]
