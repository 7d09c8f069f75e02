"""Checks across the project, after every service is normalised.

References to networks, volumes, secrets, configs and other services must
resolve; ``depends_on`` must not form a cycle; two mounts may not share a
target. A dependency that cannot be met but is marked ``required: false``
is dropped with a warning instead.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .context import Context
from .model import Dependency, Project, Service
from .nodes import Path, render_path
from .shortsyntax import SyntaxProblem, parse_volume


def _close(word: str, candidates: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1)
    return found[0] if found else None


def _hint(word: str, candidates: Iterable[str], otherwise: str) -> str:
    close = _close(word, candidates)
    return f"did you mean {close!r}? otherwise {otherwise}" if close else otherwise


def _entry_path(base: Path, raw: Any, key: str) -> Path:
    """Where ``key`` is written in a list-or-map field (list items by index)."""
    if isinstance(raw, list):
        for i, item in enumerate(raw):
            if item == key:
                return (*base, i)
    return (*base, key)


class ProjectChecks:
    def __init__(
        self,
        ctx: Context,
        raw_services: Mapping[str, dict[str, Any]],
        disabled: Iterable[str],
        profiles_of: Mapping[str, tuple[str, ...]],
        declared: Mapping[str, Collection[str]],
    ) -> None:
        self.ctx = ctx
        self.raw = raw_services
        self.disabled = set(disabled)
        self.profiles_of = profiles_of
        # keys written under top-level networks/volumes/secrets/configs, even those whose
        # definition had an error of its own (so it is not reported twice)
        self.declared = declared

    def run(self, project: Project) -> dict[str, Service]:
        """The services with unmet optional dependencies dropped; problems recorded."""
        services: dict[str, Service] = {}
        for name, service in project.services.items():
            raw = self.raw[name]
            self.references(name, service, raw, project)
            self.mounts(name, raw, project)
            depends = self.dependencies(name, service, raw, project)
            services[name] = (
                service
                if depends == service.depends_on
                else service.model_copy(update={"depends_on": depends})
            )
        self.cycles(services)
        return services

    def references(
        self, name: str, service: Service, raw: dict[str, Any], project: Project
    ) -> None:
        base: Path = ("services", name)
        networks = self.declared["networks"]
        for key in service.networks:
            if key not in networks and key not in project.networks:
                self.ctx.problems.add(
                    _entry_path((*base, "networks"), raw.get("networks"), key),
                    f"undefined network {key!r}",
                    _hint(key, networks, "declare it under top-level networks:"),
                )
        for kind in ("secrets", "configs"):
            declared = self.declared[kind]
            for i, item in enumerate(raw.get(kind) or []):
                source = item if isinstance(item, str) else item.get("source")
                if isinstance(source, str) and source not in declared:
                    self.ctx.problems.add(
                        (*base, kind, i),
                        f"undefined {kind[:-1]} {source!r}",
                        _hint(source, declared, f"declare it under top-level {kind}:"),
                    )
        self.vm_network(base, service)
        for i, entry in enumerate(service.engine.volumes_from):
            target = entry.split(":", 1)[0]
            if entry.startswith("container:") or target in project.services:
                continue
            self.ctx.problems.add(
                (*base, "volumes_from", i),
                f"volumes_from refers to {self._describe_missing(target)}",
                self._missing_hint(target, project),
            )
        for key in ("network_mode", "ipc", "pid"):
            ref = raw.get(key)
            if isinstance(ref, str) and ref.startswith("service:"):
                target = ref[len("service:") :]
                if target not in project.services:
                    self.ctx.problems.add(
                        (*base, key),
                        f"{key} refers to {self._describe_missing(target)}",
                        self._missing_hint(target, project),
                    )

    def vm_network(self, base: Path, service: Service) -> None:
        """A VM's guest takes over its launcher's own interfaces; sharing the
        host's or another container's namespace would hand it interfaces
        that are not the launcher's to take."""
        mode = service.network_mode or ""
        if service.x_compound.runtime != "vm" or not (
            mode == "host" or mode.startswith(("service:", "container:"))
        ):
            return
        self.ctx.problems.add(
            (*base, "network_mode"),
            f"network_mode {mode!r} is not possible for a VM (x-compound.runtime: vm): "
            "the guest owns its launcher's own network interfaces",
            "remove network_mode (the VM joins its networks like a container), "
            "or run the service as a container",
        )

    def mounts(self, name: str, raw: dict[str, Any], project: Project) -> None:
        base: Path = ("services", name)
        targets: dict[str, Path] = {}
        tmpfs = raw.get("tmpfs")
        for i, item in enumerate([tmpfs] if isinstance(tmpfs, str) else tmpfs or []):
            path = (*base, "tmpfs") if isinstance(tmpfs, str) else (*base, "tmpfs", i)
            targets.setdefault(str(item).split(":", 1)[0], path)
        for i, item in enumerate(raw.get("volumes") or []):
            path = (*base, "volumes", i)
            kind, source, target = _volume_parts(item)
            volumes = self.declared["volumes"]
            if kind == "volume" and source and source not in volumes:
                self.ctx.problems.add(
                    path,
                    f"undefined volume {source!r}",
                    _hint(source, volumes, "declare it under top-level volumes:"),
                )
            if target is None:
                continue
            if target in targets:
                self.ctx.problems.add(
                    path,
                    f"target {target} is already mounted by {render_path(targets[target])}",
                    "mount each container path only once",
                )
            else:
                targets[target] = path

    def dependencies(
        self, name: str, service: Service, raw: dict[str, Any], project: Project
    ) -> dict[str, Dependency]:
        base: Path = ("services", name)
        explicit = raw.get("depends_on")
        explicit_names = set(explicit) if isinstance(explicit, dict | list) else set()
        kept: dict[str, Dependency] = {}
        for dep, spec in service.depends_on.items():
            if dep in project.services:
                kept[dep] = spec
                continue
            if dep not in explicit_names:
                self._implicit_missing(name, raw, dep, project)
                continue
            path = _entry_path((*base, "depends_on"), explicit, dep)
            if not spec.required:
                self.ctx.warn(path, f"optional dependency on {self._describe_missing(dep)} dropped")
                continue
            self.ctx.problems.add(
                path,
                f"depends on {self._describe_missing(dep)}",
                self._missing_hint(dep, project),
            )
        return kept

    def _implicit_missing(self, name: str, raw: dict[str, Any], dep: str, project: Project) -> None:
        """A dependency implied by ``links`` (network_mode & co are checked in references())."""
        for i, link in enumerate(raw.get("links") or []):
            if str(link).split(":", 1)[0] == dep:
                self.ctx.problems.add(
                    ("services", name, "links", i),
                    f"link to {self._describe_missing(dep)}",
                    self._missing_hint(dep, project),
                )
                return

    def _describe_missing(self, target: str) -> str:
        if target in self.disabled:
            return f"service {target!r}, which is disabled by its profiles"
        return f"undefined service {target!r}"

    def _missing_hint(self, target: str, project: Project) -> str:
        if target in self.disabled:
            profiles = self.profiles_of.get(target, ())
            flags = " or ".join(f"--profile {p}" for p in profiles)
            return f"enable it with {flags}" if flags else "enable its profile"
        known = list(project.services) + sorted(self.disabled)
        close = _close(target, known)
        return f"did you mean {close!r}?" if close else "check the service name"

    def cycles(self, services: Mapping[str, Service]) -> None:
        """Report each dependency cycle once (iterative DFS: chains can be long)."""
        reported: set[frozenset[str]] = set()
        done: set[str] = set()
        for root in services:
            if root in done:
                continue
            trail: list[str] = [root]
            on_trail = {root}
            pending = [iter(services[root].depends_on)]
            while pending:
                dep = next(pending[-1], None)
                if dep is None:
                    pending.pop()
                    finished = trail.pop()
                    on_trail.discard(finished)
                    done.add(finished)
                    continue
                if dep not in services or dep in done:
                    continue
                if dep in on_trail:
                    self._report_cycle([*trail[trail.index(dep) :], dep], reported)
                    continue
                trail.append(dep)
                on_trail.add(dep)
                pending.append(iter(services[dep].depends_on))

    def _report_cycle(self, cycle: list[str], reported: set[frozenset[str]]) -> None:
        members = frozenset(cycle)
        if members in reported:
            return
        reported.add(members)
        first, second = cycle[0], cycle[1]
        raw = self.raw[first].get("depends_on")
        where = _entry_path(("services", first, "depends_on"), raw, second)
        self.ctx.problems.add(
            where,
            "dependency cycle: " + " → ".join(cycle),
            "remove one of these depends_on entries",
        )


def _volume_parts(item: Any) -> tuple[str | None, str | None, str | None]:
    """(type, source, target) of a short or long volume entry."""
    if isinstance(item, dict):
        return item.get("type"), item.get("source"), _clean(item.get("target"))
    if isinstance(item, str):
        try:
            vol = parse_volume(item)
        except SyntaxProblem:
            return None, None, None
        return vol.type, vol.source, _clean(vol.target)
    return None, None, None


def _clean(target: Any) -> str | None:
    if not isinstance(target, str) or not target:
        return None
    return posixpath.normpath(target)
