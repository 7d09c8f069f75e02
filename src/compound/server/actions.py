"""What each action does, on a Session, reporting to a job's progress.

The same verbs the CLI runs (reconcile's Session, compound.volumes.ops),
returning what the CLI prints with ``--json``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from compound.errors import CompoundError
from compound.planner.diff import UpOptions
from compound.reconcile import hooks
from compound.reconcile.progress import Progress
from compound.reconcile.session import Session
from compound.runtimes.base import Instance
from compound.volumes import ops


def up(
    session: Session,
    progress: Progress,
    *,
    services: list[str],
    force_recreate: bool,
    no_recreate: bool,
    remove_orphans: bool,
    wait: bool,
    wait_timeout: float,
) -> dict[str, Any]:
    opts = UpOptions(
        services=tuple(services),
        force_recreate=force_recreate,
        no_recreate=no_recreate,
        remove_orphans=remove_orphans,
    )
    outcome = session.up(opts, progress=progress, dependency_timeout=wait_timeout)
    if wait:
        session.wait_running([sp.service for sp in outcome.plan.services], wait_timeout, progress)
    return {
        "revision": outcome.revision,
        "plan": outcome.plan.to_json(),
        "result": outcome.result.to_json() if outcome.result else None,
    }


def down(
    session: Session,
    progress: Progress,
    *,
    volumes: bool,
    remove_orphans: bool,
    timeout: float | None,
) -> dict[str, list[str]]:
    return session.down(
        volumes=volumes, remove_orphans=remove_orphans, timeout=timeout, progress=progress
    )


def rollback(session: Session, progress: Progress, *, services: list[str]) -> dict[str, Any]:
    return {"rolled_back": session.rollback(services, progress=progress)}


def service_verb(
    session: Session, progress: Progress, *, service: str, verb: str, timeout: float | None
) -> dict[str, Any]:
    """start, stop or restart every instance of ``service`` (as the CLI's verbs)."""
    svc = session.project.services[service]
    grace = timeout if timeout is not None else svc.stop_grace_period
    instances = [i for i in session.instances([service]) if not i.oneoff]
    if verb == "start":
        instances = [i for i in instances if not i.running]
    elif verb == "stop":
        instances = [i for i in instances if i.running]
    errors: list[str] = []

    def one(inst: Instance) -> None:
        driver = session.driver_for(inst)
        progress.update(inst.name, "Working")
        try:
            if verb in ("stop", "restart"):
                hooks.stop(driver, inst, svc, grace)  # pre_stop first, as Compose
            if verb in ("start", "restart"):
                driver.start(inst)
                hooks.run_hooks(driver, inst, svc, "post_start")
            progress.update(
                inst.name, {"start": "Started", "stop": "Stopped"}.get(verb, "Restarted"), done=True
            )
        except CompoundError as exc:
            progress.fail(inst.name, exc.message)
            errors.append(f"{inst.name}: {exc.message}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, instances))
    if errors:
        raise CompoundError("; ".join(errors))
    return {"service": service, "verb": verb, "instances": [i.name for i in instances]}


class _JobMeter:
    """Byte progress of a backup or restore, as job events (every 5%)."""

    def __init__(self, progress: Progress, item: str) -> None:
        self._progress, self._item = progress, item
        self._total: int | None = None
        self._done = 0
        self._shown = -1

    def total(self, nbytes: int | None) -> None:
        self._total = nbytes

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        if self._total:
            pct = int(self._done * 100 / self._total)
            if pct // 5 != self._shown // 5:
                self._shown = pct
                self._progress.update(self._item, "Working", f"{pct}%")


def backup(
    session: Session, progress: Progress, *, volume: str, output: Path, consistent: bool
) -> dict[str, Any]:
    meter = _JobMeter(progress, f"volume {volume}")
    result = ops.backup(session, volume, output, consistent=consistent, meter=meter)
    progress.update(f"volume {volume}", "Backed up", output.name, done=True)
    return result.to_json()


def restore(session: Session, progress: Progress, *, volume: str, archive: Path) -> dict[str, Any]:
    meter = _JobMeter(progress, f"volume {volume}")
    result = ops.restore(session, volume, archive, meter=meter)
    progress.update(f"volume {volume}", "Restored", archive.name, done=True)
    return result.to_json()
