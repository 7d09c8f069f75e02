"""Drift: how far the instances of a project are from what they were made from.

Two kinds, both reported by `compound diff` and repaired by
`compound up --recreate-drifted`:

- **file drift**: an instance changed files in its own root filesystem
  (someone patched it through `exec`, or the application writes outside its
  volumes). The runtime lists the changes (``Driver.changes``); this module
  drops what is not drift — the runtime's own mount points and files
  (volumes, tmpfs, binds, injected secrets, /etc/hosts...), the directories
  leading to them, and a directory's "changed" that only repeats a listed
  change below it.
- **config drift**: the file says something else than what the instance was
  created with. The planner already knows (a ``recreate`` step); this module
  only reads its plan, it never hashes configuration itself.

Pure: no engine calls, so every rule here is unit-tested.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from compound.errors import CompoundError
from compound.planner.diff import Plan
from compound.runtimes.base import Change, Driver, Instance, RootChanges
from compound.runtimes.container_config import file_targets
from compound.spec.model import Project

SUMMARY_PATHS = 5  # paths named in a one-line summary


@dataclass(frozen=True)
class InstanceDrift:
    """The file drift of one instance; ``unknown`` says why it could not be read."""

    instance: str
    id: str
    service: str
    runtime: str
    changes: tuple[Change, ...] = ()
    unknown: str | None = None

    @property
    def drifted(self) -> bool:
        return bool(self.changes)

    @classmethod
    def of(
        cls, inst: Instance, changes: Sequence[Change] = (), unknown: str | None = None
    ) -> InstanceDrift:
        return cls(inst.name, inst.id, inst.service, inst.runtime, tuple(changes), unknown)


@dataclass(frozen=True)
class ConfigDrift:
    service: str
    instance: str
    id: str
    reason: str  # the planner's, e.g. "configuration changed"


@dataclass(frozen=True)
class DriftReport:
    project: str
    files: tuple[InstanceDrift, ...]
    config: tuple[ConfigDrift, ...]

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in self.files) or bool(self.config)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "drifted": self.drifted,
            "instances": [
                {
                    "instance": f.instance,
                    "id": f.id,
                    "service": f.service,
                    "runtime": f.runtime,
                    "drifted": f.drifted,
                    "counts": counts(f.changes),
                    "changes": [{"kind": c.kind, "path": c.path} for c in f.changes],
                    "unknown": f.unknown,
                }
                for f in self.files
            ],
            "config": [
                {"service": c.service, "instance": c.instance, "id": c.id, "reason": c.reason}
                for c in self.config
            ],
        }


def _within(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


def classify(root: RootChanges, declared: Iterable[str] = ()) -> tuple[Change, ...]:
    """The changes that are drift, sorted by path. ``declared`` adds paths
    the service's definition puts into the root (injected secrets/configs)."""
    managed = {posixpath.normpath(p) for p in (*root.managed, *declared) if p.startswith("/")}
    managed.discard("/")
    kept: list[Change] = []
    for change in root.changes:
        path = posixpath.normpath(change.path)
        if any(_within(path, m) for m in managed):
            continue  # a mount point, under one, or a file the runtime writes
        if change.kind != "D" and any(_within(m, path) for m in managed):
            continue  # a directory made or touched to hold a mount point
        kept.append(Change(change.kind, path))
    paths = [c.path for c in kept]
    return tuple(
        sorted(
            (
                c
                for c in kept
                if not (c.kind == "C" and any(p != c.path and _within(p, c.path) for p in paths))
            ),
            key=lambda c: c.path,
        )
    )


def counts(changes: Iterable[Change]) -> dict[str, int]:
    seen = Counter(c.kind for c in changes)
    return {k: seen[k] for k in ("A", "C", "D")}


def tally(changes: Sequence[Change]) -> str:
    """'3 paths (1 added, 1 changed, 1 deleted)'."""
    if not changes:
        return "no changes"
    n = counts(changes)
    parts = [
        f"{n[k]} {word}" for k, word in (("A", "added"), ("C", "changed"), ("D", "deleted")) if n[k]
    ]
    noun = "path" if len(changes) == 1 else "paths"
    return f"{len(changes)} {noun} ({', '.join(parts)})"


def summary(changes: Sequence[Change], limit: int = SUMMARY_PATHS) -> str:
    """The tally and the first ``limit`` changes: '2 paths (…): A /x, C /y'."""
    if not changes:
        return tally(changes)
    shown = ", ".join(f"{c.kind} {c.path}" for c in changes[:limit])
    more = f", … {len(changes) - limit} more" if len(changes) > limit else ""
    return f"{tally(changes)}: {shown}{more}"


def config_drift(plan: Plan) -> tuple[ConfigDrift, ...]:
    """Instances the planner would recreate. The plan must be made with
    default UpOptions, so every recreate it holds is a difference from the file."""
    return tuple(
        ConfigDrift(sp.service, step.instance.name, step.instance.id, step.reason)
        for sp in plan.services
        for step in sp.steps
        if step.action == "recreate" and step.instance is not None
    )


def recreate_reasons(files: Iterable[InstanceDrift]) -> dict[str, str]:
    """instance id -> why, for ``UpOptions.drifted``."""
    return {f.id: summary(f.changes, limit=3) for f in files if f.drifted}


def read_file_drift(
    project: Project, instances: Iterable[Instance], driver_for: Callable[[Instance], Driver]
) -> list[InstanceDrift]:
    """What each of the file's instances changed in its root filesystem,
    read in parallel (a VM answers through its guest agent)."""
    targets = [i for i in instances if i.service in project.services]

    def read(inst: Instance) -> InstanceDrift:
        if project.services[inst.service].job and not inst.running:
            # what a finished job wrote is its work, not drift: it is converged
            return InstanceDrift.of(inst)
        driver = driver_for(inst)
        if not driver.capabilities.changes:
            return InstanceDrift.of(inst, unknown=f"the {inst.runtime} runtime cannot tell")
        try:
            root = driver.changes(inst)
        except CompoundError as exc:
            return InstanceDrift.of(inst, unknown=exc.message)
        declared = file_targets(project.services[inst.service])
        return InstanceDrift.of(inst, classify(root, declared))

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(targets)))) as pool:
        return list(pool.map(read, targets))
