"""The JSON shapes `--json` prints, built once for the CLI and `compound serve`."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from compound import __version__
from compound.engine import Client, engine_version
from compound.errors import CompoundError

if TYPE_CHECKING:  # `ps` shows no advice: the advisor is not imported for it
    from compound.advisor import Advice, HostFacts
    from compound.reconcile.session import Session
    from compound.runtimes.base import Driver, Instance
    from compound.spec.model import Project


def instance_row(
    inst: Instance, project: Project | None = None, driver: Driver | None = None
) -> dict[str, Any]:
    """One row of `compound ps --json`."""
    ports = [
        f"{p.host_ip}:{p.host_port}->{p.target}/{p.protocol}"
        if p.host_port
        else f"{p.target}/{p.protocol}"
        for p in inst.ports
    ]
    d = inst.details
    return {
        "name": inst.name,
        "service": inst.service,
        "number": inst.number,
        "runtime": inst.runtime,
        "kernel": d.get("kernel", "shared"),
        "accel": d.get("accel", "-"),
        "boot_time": d.get("boot_time"),
        # a VM's data plane: tap | user (slirp); volumes over virtiofs | 9p
        "network": d.get("network", "-"),
        "share": d.get("share", "-"),
        # a legacy VM disk service: the OS found on the disk and its firmware
        **({"os": d["os"], "firmware": d.get("firmware")} if d.get("os") else {}),
        # a VM's container runs the launcher image; the service's image is what boots
        "image": driver.shown_image(inst, project) if driver and project else inst.image,
        "status": _status(inst, project),
        "health": inst.health,
        "exit_code": inst.exit_code,
        "started_at": inst.started_at,
        "ports": ports,
        "id": inst.id,
    }


def _status(inst: Instance, project: Project | None) -> str:
    """The engine's status; a job's exited instance is completed or failed."""
    svc = project.services.get(inst.service) if project is not None else None
    if svc is not None and svc.job and inst.status == "exited":
        return "completed" if inst.exit_code == 0 else "failed"
    return inst.status


def ps_rows(session: Session, services: Sequence[str] = (), *, all_: bool = True) -> list[Any]:
    """`compound ps --json`: each runtime adds what only it knows (a VM's
    kernel, boot time); health is the engine's, or a probe where the engine
    runs no healthcheck."""
    names = session.check_services(services)
    jobs = {n for n, s in session.project.services.items() if s.job}
    # a job's exited instances are its outcome: shown without --all
    listed = [
        i
        for i in session.instances(names, include_stopped=all_ or bool(jobs))
        if all_ or i.running or i.service in jobs
    ]
    instances = [session.driver_for(i).describe(i) for i in listed]
    rows = []
    for inst in instances:
        row = instance_row(inst, session.project, session.driver_for(inst))
        row["health"] = session.health_of(inst)
        rows.append(row)
    return rows


def history_rows(session: Session, limit: int | None = 20) -> list[dict[str, Any]]:
    """`compound history --json`: newest first, the live one marked."""
    revisions = session.store.history(session.project.name, limit)
    live = session.live_revision() if revisions else None
    return [{**r.summary(), "live": r.number == live} for r in revisions]


def advice_json(advice: Sequence[Advice], facts: HostFacts | None) -> dict[str, object]:
    """`compound advise --json` (version 1, see compound.cli.advise_cmd)."""
    return {
        "version": 1,
        "host_facts": facts.to_json() if facts else None,
        "services": [a.to_json() for a in advice],
    }


def version_info(client: Callable[[], Client]) -> dict[str, Any]:
    """`compound version --json`; works without an engine (it says why)."""
    info: dict[str, Any] = {"compound": __version__, "python": platform.python_version()}
    try:
        info["engine"] = engine_version(client())
    except CompoundError as exc:
        info["engine"] = f"unavailable ({exc.message})"
    return info
