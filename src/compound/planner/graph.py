"""Service dependency order (depends_on, network_mode: service:x)."""

from __future__ import annotations

from collections.abc import Iterable

from compound.errors import SpecError
from compound.spec.model import Project, Service


def dependencies(service: Service) -> set[str]:
    """Services that must be up before this one starts."""
    deps = set(service.depends_on)
    mode = service.network_mode or ""
    if mode.startswith("service:"):
        deps.add(mode.split(":", 1)[1])
    return deps


def with_dependencies(project: Project, names: Iterable[str]) -> set[str]:
    """The named services plus everything they transitively depend on."""
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in wanted or name not in project.services:
            continue
        wanted.add(name)
        stack.extend(dependencies(project.services[name]))
    return wanted


def dependents(project: Project, name: str) -> set[str]:
    """Services that depend on ``name``, directly or not."""
    out: set[str] = set()
    frontier = {name}
    while frontier:
        nxt = {
            s.name
            for s in project.services.values()
            if dependencies(s) & frontier and s.name not in out
        }
        out |= nxt
        frontier = nxt
    return out


def start_levels(project: Project, names: Iterable[str] | None = None) -> list[list[str]]:
    """Services grouped so each group depends only on earlier groups.

    Used for printing plans and for `down` (reversed); the executor itself
    starts each service as soon as its own dependencies are ready.
    """
    selected = set(project.services if names is None else names)
    remaining = {n: dependencies(project.services[n]) & selected for n in selected}
    levels: list[list[str]] = []
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if not deps)
        if not ready:
            cycle = " → ".join([*sorted(remaining), sorted(remaining)[0]])
            raise SpecError(
                f"dependency cycle among services: {cycle}",
                hint="remove one depends_on edge of the cycle",
            )
        levels.append(ready)
        for n in ready:
            del remaining[n]
        for deps in remaining.values():
            deps.difference_update(ready)
    return levels
