"""`compound down`: stop and remove the project's instances in reverse
dependency order, then its load balancers, networks and (asked) volumes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from compound.errors import CompoundError
from compound.planner.graph import dependencies
from compound.reconcile import hooks
from compound.reconcile.progress import Progress
from compound.reconcile.project_engine import ProjectEngine
from compound.reconcile.slots import default_limit
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Project


def down(
    project: Project,
    engine: ProjectEngine,
    driver_for: Callable[[Instance], Driver],
    *,
    sweepers: Iterable[Driver] = (),
    volumes: bool,
    remove_orphans: bool,
    timeout: float | None,
    progress: Progress,
) -> dict[str, list[str]]:
    """What was removed: instances, load_balancers (when any), networks, volumes,
    swept (run dirs of a runtime, e.g. a VM's, left by launchers removed behind
    compound's back)."""
    removed: dict[str, list[str]] = {"instances": [], "networks": [], "volumes": []}
    instances = engine.instances(oneoff=True) + engine.instances()
    known = set(project.services) | set(project.disabled_services)
    targets = [i for i in instances if i.service in known or remove_orphans or i.oneoff]
    leftovers = [i.name for i in instances if i not in targets]
    by_service: dict[str, list[Instance]] = {}
    for inst in targets:
        by_service.setdefault(inst.service, []).append(inst)
    # a service stops once everything depending on it has stopped (a DAG,
    # not level barriers: one slow dependent does not hold up the rest)
    waits_for = {
        name: {
            d
            for d in by_service
            if d in project.services and name in dependencies(project.services[d])
        }
        for name in by_service
    }
    finished = {name: threading.Event() for name in by_service}
    errors: list[str] = []
    lock = threading.Lock()

    def take_down(inst: Instance) -> None:
        svc = project.services.get(inst.service)
        grace = timeout if timeout is not None else (svc.stop_grace_period if svc else None)
        progress.update(inst.name, "Stopping")
        driver = driver_for(inst)
        hooks.stop(driver, inst, svc, grace)  # a failing pre_stop aborts it, as in Compose
        driver.remove(inst, volumes=volumes)
        progress.update(inst.name, "Removed", done=True)
        with lock:
            removed["instances"].append(inst.name)

    def service_down(name: str, pool: ThreadPoolExecutor) -> None:
        try:
            for dep in waits_for[name]:
                finished[dep].wait()
            for fut in [pool.submit(take_down, i) for i in by_service[name]]:
                try:
                    fut.result()
                except CompoundError as exc:
                    progress.fail(name, exc.message)
                    with lock:
                        errors.append(exc.render())
        finally:
            finished[name].set()

    # no critical path to protect when tearing down: only the DAG order
    limit = default_limit(teardown=True)
    with (
        ThreadPoolExecutor(max_workers=limit, thread_name_prefix="down") as pool,
        ThreadPoolExecutor(max_workers=max(1, len(by_service)), thread_name_prefix="svc") as svcs,
    ):
        list(svcs.map(lambda n: service_down(n, pool), list(by_service)))
    if leftovers:
        progress.note(
            "left running (not in this file): "
            + ", ".join(leftovers)
            + "; use --remove-orphans to remove them"
        )
    if errors:
        raise CompoundError(
            "down could not remove every instance:\n" + "\n".join(errors),
            hint="run `compound down` again; it continues from what is left",
        )
    # load balancers hold the networks too; those of services still in the file
    # (or every one with --remove-orphans) go, like the instances
    for name in engine.remove_load_balancers(None if remove_orphans else known):
        removed.setdefault("load_balancers", []).append(name)
        progress.update(name, "Removed", done=True)
    for name in engine.remove_networks():
        removed["networks"].append(name)
        progress.update(f"network {name}", "Removed", done=True)
    for driver in sweepers:
        for path in driver.sweep(project.name):
            removed.setdefault("swept", []).append(path)
    if volumes:
        for name in engine.remove_volumes():
            removed["volumes"].append(name)
            progress.update(f"volume {name}", "Removed", done=True)
    return removed
