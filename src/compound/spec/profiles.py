"""Which services are enabled, given the active profiles.

Compose's rules: a service without ``profiles`` is always enabled; one with
profiles is enabled when one of them is active (``*`` activates all). A
service named on the command line adds its profiles to the active set, and
(compound's rule, so ``compound up tool`` just works) the services it
depends on are enabled too, transitively.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from compound.errors import UsageError


def active_profiles(requested: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """``--profile`` values, or else ``COMPOSE_PROFILES`` (comma separated), as in Compose."""
    if requested:
        return [p for p in requested if p]
    return [p.strip() for p in environ.get("COMPOSE_PROFILES", "").split(",") if p.strip()]


def _profiles_of(service: Any) -> list[str]:
    if isinstance(service, dict):
        value = service.get("profiles")
        if isinstance(value, list):
            return [p for p in value if isinstance(p, str)]
    return []


def _dependencies_of(service: Any) -> Iterable[str]:
    if not isinstance(service, dict):
        return []
    deps = service.get("depends_on")
    names: list[str] = []
    if isinstance(deps, list):
        names = [d for d in deps if isinstance(d, str)]
    elif isinstance(deps, dict):
        names = list(deps)
    mode = service.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:"):
        names.append(mode[len("service:") :])
    return names


def select_services(
    services: Mapping[str, Any], active: Sequence[str], targets: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(enabled, disabled) service names, each in file order."""
    for name in targets:
        if name not in services:
            close = difflib.get_close_matches(name, list(services), n=1)
            raise UsageError(
                f"no such service: {name}",
                hint=f"did you mean {close[0]!r}?" if close else "see `compound config --services`",
            )
    profiles = set(active)
    for name in targets:
        profiles.update(_profiles_of(services[name]))

    def enabled_by_profile(service: Any) -> bool:
        own = _profiles_of(service)
        return not own or "*" in profiles or any(p in profiles for p in own)

    enabled = {name for name, svc in services.items() if enabled_by_profile(svc)}
    queue = list(targets)
    visited: set[str] = set()
    while queue:
        name = queue.pop()
        if name in visited:
            continue
        visited.add(name)
        enabled.add(name)
        queue.extend(d for d in _dependencies_of(services.get(name)) if d in services)
    order = list(services)
    return [n for n in order if n in enabled], [n for n in order if n not in enabled]
