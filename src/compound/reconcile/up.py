"""`compound up`: plan from a snapshot (pure), record the revision, apply.

:func:`plan_up` never talks to the engine; :func:`run_up` executes a plan
through the drivers and records it in the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from compound.errors import ApplyError
from compound.planner.diff import Plan, ResourceStep, ServicePlan, UpOptions, make_plan
from compound.planner.runtime import RuntimeDecision, decisions_json
from compound.reconcile.apply import Applier, ApplyResult
from compound.reconcile.progress import Progress
from compound.reconcile.project_engine import ProjectEngine
from compound.reconcile.rolling import Desired, Frontend
from compound.reconcile.snapshot import Snapshot
from compound.runtimes.base import Driver
from compound.spec.model import Project
from compound.state.store import Store


@dataclass
class UpOutcome:
    plan: Plan
    result: ApplyResult | None  # None for a dry run or an unchanged project
    revision: int | None


def plan_up(
    project: Project,
    snapshot: Snapshot,
    decisions: Mapping[str, RuntimeDecision],
    opts: UpOptions,
    drivers: Mapping[str, Driver],
) -> Plan:
    """The plan, with a note for each service its runtime will not reach."""
    plan = make_plan(
        project,
        snapshot.instances,
        image_ids=snapshot.image_ids,
        existing_networks=snapshot.networks,
        existing_volumes=snapshot.volumes,
        decisions=decisions,
        opts=opts,
    )
    notes = tuple(
        _closed_note(sp.service)
        for sp in plan.services
        if closed_network(project, sp.service, drivers[sp.runtime])
        and not snapshot.exposed.get(sp.service)
    )
    return dataclasses.replace(plan, notes=plan.notes + notes) if notes else plan


def closed_network(project: Project, service: str, driver: Driver) -> bool:
    """A service that receives only declared ports (a VM on user networking)
    and declares none: its image's EXPOSE decides whether to say so."""
    svc = project.services[service]
    return not driver.open_network(svc) and not svc.ports and not svc.expose


def _closed_note(service: str) -> str:
    # a container's network namespace is open; say so rather than let
    # connections be refused mysteriously
    return (
        f"{service} runs as a VM on user networking (vm: {{net: user}}) and declares no"
        " ports: other services and the host can reach it only on ports listed under"
        " expose: or ports:"
    )


def service_specs(project: Project, plan: Plan) -> dict[str, Any]:
    """Each planned service exactly as deployed, so a rollback can recreate it."""
    return {
        sp.service: {
            "service": project.services[sp.service].model_dump(mode="json"),
            "replicas": sp.replicas,
            "config_hash": sp.config_hash,
            "image_id": sp.image_id,
            "runtime": sp.runtime,
        }
        for sp in plan.services
    }


def run_up(
    project: Project,
    plan: Plan,
    *,
    drivers: Mapping[str, Driver],
    store: Store,
    command: str,
    model: dict[str, Any],
    ensure_resources: Callable[[Plan, Progress], None],
    frontend_for: Callable[[ServicePlan], Frontend | None],
    rollback_target: Callable[[str, str], Desired | None],
    progress: Progress,
    dependency_timeout: float,
) -> UpOutcome:
    """Record the revision (with the plan's runtime decisions), apply, finish it."""
    revision = store.begin(
        project.name,
        command,
        model,
        plan.to_json(),
        decisions_json(plan.decisions),  # exactly what the plan used
        specs=service_specs(project, plan),
    )
    applier = Applier(
        project,
        plan,
        drivers,
        ensure_resources=ensure_resources,
        progress=progress,
        dependency_timeout=dependency_timeout,
        frontend_for=frontend_for,
        rollback_target=rollback_target,
    )
    outcome = "failed"
    try:
        result = applier.run()
        outcome = "succeeded" if result.ok else ("interrupted" if result.interrupted else "failed")
    finally:
        store.finish(project.name, revision, outcome, applier.result.to_json())
    if not result.ok:
        raise ApplyError(
            "up interrupted" if result.interrupted else "up did not finish",
            done=result.done,
            failed=result.failed,
            not_started=[f"{k} ({v})" for k, v in result.not_started.items()],
            hint="fix the cause and run `compound up` again: it continues from what is running",
            interrupted=result.interrupted,
        )
    return UpOutcome(plan=plan, result=result, revision=revision)


def ensure_resources(
    engine: ProjectEngine, project: Project, plan: Plan, progress: Progress
) -> None:
    """Networks and volumes in parallel (network creation waits on the
    engine's firewall rules); external ones are checked, never created."""

    def ensure(step: ResourceStep) -> None:
        if step.kind == "network":
            created = engine.ensure_network(project, project.networks[step.key])
        else:
            created = engine.ensure_volume(project, project.volumes[step.key])
        if created:
            progress.update(f"{step.kind} {step.name}", "Created", done=True)

    steps = list(plan.resources)
    with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
        list(pool.map(ensure, steps))
