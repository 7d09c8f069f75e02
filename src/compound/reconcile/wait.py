"""`up --wait` and the health `ps` shows: the engine's own, or the
reconciler's probe for runtimes whose engine runs no healthcheck (a VM)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from compound.errors import ServiceError
from compound.reconcile.health import probe_with, wait_healthy_with
from compound.reconcile.progress import Progress
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Project


def wait_running(
    project: Project,
    instances: Sequence[Instance],
    driver_for: Callable[[Instance], Driver],
    *,
    timeout: float,
    progress: Progress,
) -> None:
    """Every instance running, and healthy where it has a healthcheck."""
    deadline = time.monotonic() + timeout
    pending = {i.id: i for i in instances if not i.oneoff}
    while pending:
        for iid, inst in list(pending.items()):
            cur = driver_for(inst).inspect(iid)
            if cur.status == "exited" and cur.exit_code == 0 and cur.health is None:
                pending.pop(iid)  # a one-shot task that completed
            elif not cur.running:
                raise ServiceError(
                    cur.service, f"{cur.name} is {cur.status} (exit {cur.exit_code})"
                )
            elif cur.health == "unhealthy":
                raise ServiceError(cur.service, f"{cur.name} is unhealthy")
            elif cur.health is None and not _engine_checks(project, driver_for(cur), cur):
                _wait_probed_healthy(project, driver_for(cur), cur, deadline)
                pending.pop(iid)
                progress.update(cur.service, "Healthy", done=True)
            elif cur.health in (None, "healthy"):
                pending.pop(iid)
                progress.update(cur.service, "Healthy" if cur.health else "Running", done=True)
        if pending and time.monotonic() > deadline:
            names = ", ".join(sorted(i.name for i in pending.values()))
            raise ServiceError(
                next(iter(pending.values())).service,
                f"not healthy after {timeout:.0f}s: {names}",
            )
        time.sleep(0.25)


def _wait_probed_healthy(project: Project, driver: Driver, inst: Instance, deadline: float) -> None:
    svc = project.services.get(inst.service)
    verdict = wait_healthy_with(driver, inst, svc.healthcheck if svc else None, deadline=deadline)
    if verdict not in (None, "healthy"):
        raise ServiceError(inst.service, f"{inst.name} is {verdict}")


def health_of(project: Project, driver: Driver, inst: Instance) -> str | None:
    """Health as `ps` shows it: the engine's, or one probe for runtimes
    whose engine runs no healthcheck."""
    if _engine_checks(project, driver, inst) or not inst.running:
        return inst.health
    svc = project.services.get(inst.service)
    return probe_with(driver, inst, svc.healthcheck if svc else None)


def _engine_checks(project: Project, driver: Driver, inst: Instance) -> bool:
    svc = project.services.get(inst.service)
    return driver.engine_runs_healthcheck(svc) if svc else driver.capabilities.native_healthcheck
