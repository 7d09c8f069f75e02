"""The spec layer: Compose files → validated, normalised, typed ``Project``.

Public API::

    load_project(LoadOptions(...)) -> LoadResult(project, warnings)
    to_compose_dict(project) -> dict   # what `compound config` prints

Everything else in this package is private to it. The names are resolved on
first use (PEP 562): importing one light submodule (``spec.hints``,
``spec.units``) must not pay for the loader, pydantic and jsonschema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from compound.lazy import exports

if TYPE_CHECKING:
    from .compose_dict import to_compose_dict
    from .loader import load_project
    from .options import LoadOptions, LoadResult

__all__ = ["LoadOptions", "LoadResult", "load_project", "to_compose_dict"]

_HOMES = {
    "LoadOptions": ".options",
    "LoadResult": ".options",
    "load_project": ".loader",
    "to_compose_dict": ".compose_dict",
}


__getattr__ = exports(__name__, _HOMES)
