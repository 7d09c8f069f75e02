"""`compound rollback`: each service back to what it ran before its current
configuration (the previous revision that deployed it), as a rolling update."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from compound.errors import ApplyError, CompoundError, ServiceError, StateError
from compound.planner.diff import ServicePlan, UpOptions, selected_services
from compound.planner.update import backend_service, load_balanced, update_policy
from compound.reconcile.progress import Progress
from compound.reconcile.rolling import Desired, Frontend, RollingUpdate
from compound.runtimes.base import Driver, Instance
from compound.runtimes.kind import Runtime
from compound.spec.model import Project, Service
from compound.state.store import Store


def desired(revision: int, spec: dict[str, Any]) -> Desired:
    """A service spec recorded by `up` (up.service_specs), as a rolling update's target."""
    try:
        service = Service.model_validate(spec["service"])
    except (KeyError, ValueError) as exc:
        raise StateError(
            f"revision {revision} holds a service spec this version cannot read: {exc}"
        ) from exc
    replicas = int(spec.get("replicas") or 1)
    return Desired(
        service=backend_service(service, replicas),
        config_hash=str(spec.get("config_hash") or ""),
        image_id=spec.get("image_id"),
        label=f"revision {revision}",
        runtime=spec.get("runtime"),
    )


def rollback_target(store: Store, project: str, service: str, config_hash: str) -> Desired | None:
    """The deployed spec behind ``config_hash`` (what instances being
    replaced ran), for failure_action: rollback."""
    found = store.deployed_spec(project, service, config_hash)
    return desired(found[0], found[1]) if found else None


def rollback(
    project: Project,
    running: Sequence[Instance],
    services: Sequence[str],
    *,
    store: Store,
    drivers: Mapping[str, Driver],
    driver_for: Callable[[Instance], Driver],
    frontend_for: Callable[[ServicePlan], Frontend | None],
    model: dict[str, Any],
    progress: Progress,
) -> dict[str, int]:
    """Replace each service's ``running`` instances (not one-offs) with what
    it ran before. Returns service -> revision rolled back to. Checks every
    service first, so nothing changes when one has nothing to go back to."""
    names = list(services) or sorted({i.service for i in running})
    if not names:
        raise StateError(
            f"project {project.name!r} has no instances to roll back",
            hint="`compound up` deploys it",
        )
    targets: dict[str, tuple[int, dict[str, Any], list[Instance]]] = {}
    missing: list[str] = []
    for name in names:
        mine = [i for i in running if i.service == name]
        if not mine:
            missing.append(f"{name} (no instances)")
            continue
        found = store.previous_spec(project.name, name, {i.config_hash for i in mine})
        if found is None:
            missing.append(f"{name} (no earlier revision deployed it)")
            continue
        targets[name] = (found[0], found[1], mine)
    if missing:
        raise StateError(
            "nothing to roll back to for: " + ", ".join(missing),
            hint="`compound history` lists the recorded revisions; nothing was changed",
        )
    specs = {name: spec for name, (_, spec, _) in targets.items()}
    revision = store.begin(
        project.name,
        "rollback " + " ".join(f"{n}->{t[0]}" for n, t in sorted(targets.items())),
        model,
        {
            "services": [
                {"service": n, "summary": f"rollback to revision {t[0]}"}
                for n, t in sorted(targets.items())
            ]
        },
        specs=specs,
    )
    done: list[str] = []
    failed: dict[str, str] = {}
    try:
        for name in [n for n in selected_services(project, UpOptions()) if n in targets]:
            number, spec, mine = targets[name]
            try:
                _roll_back_service(
                    project,
                    name,
                    desired(number, spec),
                    spec,
                    mine,
                    drivers=drivers,
                    driver_for=driver_for,
                    frontend_for=frontend_for,
                    progress=progress,
                )
                done.append(name)
                progress.update(name, "Rolled back", f"to revision {number}", done=True)
            except CompoundError as exc:
                failed[name] = exc.message
                progress.fail(name, exc.message)
    finally:
        outcome = "succeeded" if not failed and len(done) == len(targets) else "failed"
        store.finish(project.name, revision, outcome, {"done": done, "failed": failed})
    if failed:
        raise ApplyError(
            "rollback did not finish",
            done=done,
            failed=failed,
            hint="fix the cause and run `compound rollback` or `compound up`",
        )
    return {n: t[0] for n, t in targets.items()}


def _roll_back_service(
    project: Project,
    name: str,
    target: Desired,
    spec: dict[str, Any],
    instances: list[Instance],
    *,
    drivers: Mapping[str, Driver],
    driver_for: Callable[[Instance], Driver],
    frontend_for: Callable[[ServicePlan], Frontend | None],
    progress: Progress,
) -> None:
    replicas = int(spec.get("replicas") or 1)
    stale = [i for i in instances if i.config_hash != target.config_hash]
    keep = [i for i in instances if i.config_hash == target.config_hash]
    runtime = Runtime.parse(target.runtime or project.services[name].runtime)
    plan = ServicePlan(
        service=name,
        runtime=runtime,
        config_hash=target.config_hash,
        replicas=replicas,
        steps=(),
        depends_on=(),
        image_id=target.image_id,
        load_balanced=load_balanced(target.service, replicas),
    )
    frontend = frontend_for(plan)
    outcome = RollingUpdate(
        project,
        target,
        update_policy(target.service, replicas, rollback=True),
        driver=drivers[runtime],
        driver_of=driver_for,
        progress=progress,
        slot=contextlib.nullcontext,
        cancelled=lambda: False,
        health_timeout=300.0,
        grace=target.service.stop_grace_period,
        frontend=frontend,
    ).run(stale, keep)
    if frontend is not None:
        frontend.sync([i for i in outcome.current if i.running])
    if outcome.failures:
        raise ServiceError(name, "rollback failed: " + "; ".join(outcome.failures))
