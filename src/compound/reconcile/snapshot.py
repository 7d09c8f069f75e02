"""One read of the engine: everything `up` plans from.

:func:`read_snapshot` is the only step of planning that talks to the
engine; :func:`compound.reconcile.up.plan_up` turns a snapshot into a plan
without I/O, so `up --dry-run` prints exactly what `up` would do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from compound.errors import NotSupportedError
from compound.reconcile.project_engine import ProjectEngine
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Project


@dataclass(frozen=True)
class Snapshot:
    instances: tuple[Instance, ...]  # the project's, any state, no one-offs
    networks: frozenset[str]  # the project's own networks that exist
    volumes: frozenset[str]
    image_ids: Mapping[str, str | None]  # service -> local id of its image now
    # service -> ports its image declares; read only for services whose
    # runtime receives declared ports alone (a VM), where it changes a note
    exposed: Mapping[str, frozenset[str]] = field(default_factory=dict)


def disk_image_id(disk: str) -> str | None:
    from compound.runtimes.vm.legacy import disk_id

    try:
        return disk_id(Path(disk))
    except OSError:
        return None


def image_ref(project: Project, service: str) -> str:
    return project.services[service].image or f"{project.name}-{service}"


def read_snapshot(
    engine: ProjectEngine,
    project: Project,
    services: Iterable[str],
    *,
    closed: Collection[str] = (),
) -> Snapshot:
    """The engine's state for planning ``services``; ``closed`` names the
    services whose image's declared ports matter (see :class:`Snapshot`)."""
    refs = {n: image_ref(project, n) for n in services}
    ids = {ref: engine.image_id(ref) for ref in set(refs.values())}  # one call per image
    image_ids = {n: ids[ref] for n, ref in refs.items()}
    for n in refs:
        disk = project.services[n].x_compound.vm.disk
        if disk:  # a VM disk service: the disk (path, size, mtime) is its image
            image_ids[n] = disk_image_id(disk)
    nets, vols = engine.resources()
    exposed = {
        n: engine.exposed_ports(image_id)
        for n in closed
        if (image_id := image_ids.get(n)) is not None
    }
    return Snapshot(
        instances=tuple(engine.instances()),
        networks=frozenset(nets),
        volumes=frozenset(vols),
        image_ids=image_ids,
        exposed=exposed,
    )


def driver_for(drivers: Mapping[str, Driver], instance: Instance) -> Driver:
    """The driver of the runtime an instance runs on."""
    try:
        return drivers[instance.runtime]
    except KeyError:
        raise NotSupportedError(
            f"{instance.name} runs on the {instance.runtime!r} runtime,"
            " which this build cannot manage"
        ) from None
