"""What `up` must change: desired project vs the instances the engine reports.

Pure: it reads facts handed to it and returns a Plan; it never calls the
engine, so `up --dry-run` prints exactly what `up` would do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from compound.planner.graph import dependencies, start_levels, with_dependencies
from compound.planner.runtime import RuntimeDecision
from compound.planner.update import backend_service, load_balanced, update_policy
from compound.runtimes.base import Instance
from compound.runtimes.kind import Runtime
from compound.spec.model import Project, Service

StepAction = Literal["create", "recreate", "start", "restart", "remove", "keep"]
ResourceAction = Literal["create", "exists", "external"]


def desired_hash(service: Service, image_id: str | None) -> str:
    """Config hash plus the image the tag points at now: a rebuilt or
    re-imported image under the same tag is a change, as in Compose."""
    return hashlib.sha256(f"{service.config_hash()}:{image_id or ''}".encode()).hexdigest()


@dataclass(frozen=True)
class Step:
    action: StepAction
    service: str
    number: int
    reason: str
    instance: Instance | None = None  # the existing instance it acts on

    def describe(self) -> str:
        name = self.instance.name if self.instance else f"{self.service} #{self.number}"
        return f"{self.action:<8} {name}: {self.reason}"


@dataclass(frozen=True)
class ResourceStep:
    kind: Literal["network", "volume"]
    key: str
    name: str
    action: ResourceAction


@dataclass(frozen=True)
class ServicePlan:
    service: str
    runtime: Runtime
    config_hash: str
    replicas: int
    steps: tuple[Step, ...]
    depends_on: tuple[str, ...]
    image_id: str | None = None  # the local image the config hash was computed with
    load_balanced: bool = False  # replicas share published ports through compound's HAProxy
    update: str | None = None  # how recreated instances are replaced, when some are
    decision: RuntimeDecision | None = None  # why it runs on ``runtime`` (None: a rollback's)

    @property
    def changed(self) -> bool:
        return any(s.action != "keep" for s in self.steps)

    @property
    def summary(self) -> str:
        actions = {s.action for s in self.steps} - {"keep"}
        if not actions:
            return "unchanged"
        return ", ".join(sorted(actions))


@dataclass(frozen=True)
class Plan:
    project: str
    resources: tuple[ResourceStep, ...]
    services: tuple[ServicePlan, ...]  # in dependency order
    orphans: tuple[Instance, ...] = ()
    remove_orphans: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return (
            any(r.action == "create" for r in self.resources)
            or any(s.changed for s in self.services)
            or (self.remove_orphans and bool(self.orphans))
        )

    @property
    def decisions(self) -> dict[str, RuntimeDecision]:
        """The runtime decision of each planned service, as the history records it."""
        return {sp.service: sp.decision for sp in self.services if sp.decision is not None}

    def for_service(self, name: str) -> ServicePlan:
        for sp in self.services:
            if sp.service == name:
                return sp
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "changed": self.changed,
            "resources": [
                {"kind": r.kind, "key": r.key, "name": r.name, "action": r.action}
                for r in self.resources
            ],
            "services": [
                {
                    "service": sp.service,
                    "runtime": sp.runtime,
                    "replicas": sp.replicas,
                    "summary": sp.summary,
                    "config_hash": sp.config_hash,
                    "image_id": sp.image_id,
                    "load_balanced": sp.load_balanced,
                    "update": sp.update,
                    "steps": [
                        {
                            "action": s.action,
                            "number": s.number,
                            "instance": s.instance.name if s.instance else None,
                            "reason": s.reason,
                        }
                        for s in sp.steps
                    ],
                }
                for sp in self.services
            ],
            "orphans": [o.name for o in self.orphans],
            "remove_orphans": self.remove_orphans,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class UpOptions:
    services: tuple[str, ...] = ()  # empty: all enabled services
    no_deps: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    scale: Mapping[str, int] = field(default_factory=dict)
    drifted: Mapping[str, str] = field(default_factory=dict)  # instance id -> why (drift.py)


def _selected(project: Project, opts: UpOptions) -> list[str]:
    if not opts.services:
        names: Iterable[str] = project.services
    elif opts.no_deps:
        names = opts.services
    else:
        names = with_dependencies(project, opts.services)
    return [n for level in start_levels(project, set(names)) for n in level]


def selected_services(project: Project, opts: UpOptions) -> list[str]:
    """The services `up` plans instances for, in start order (a provider
    service has none: its binary delivers it, see selected_providers)."""
    return [n for n in _selected(project, opts) if project.services[n].provider is None]


def selected_providers(project: Project, opts: UpOptions) -> list[str]:
    """The provider services `up` runs the binaries of, in start order: the
    selected ones, and (even with --no-deps) those a selected service
    depends on, whose variables are part of its configuration."""
    selected = _selected(project, opts)
    wanted = set(selected)
    for name in selected:
        wanted |= {d for d in dependencies(project.services[name]) if d in project.services}
    order = [n for level in start_levels(project, wanted) for n in level]
    return [n for n in order if project.services[n].provider is not None]


def make_plan(
    project: Project,
    actual: Iterable[Instance],
    *,
    image_ids: Mapping[str, str | None],
    existing_networks: Iterable[str] = (),
    existing_volumes: Iterable[str] = (),
    decisions: Mapping[str, RuntimeDecision] | None = None,
    opts: UpOptions | None = None,
) -> Plan:
    """Compute the plan. ``actual`` holds this project's instances (any state);
    ``decisions`` the runtime decision per service (planner/runtime.py; a
    service left out runs on its declared runtime)."""
    opts = opts or UpOptions()
    decisions = decisions or {}
    order = selected_services(project, opts)
    by_service: dict[str, list[Instance]] = {}
    orphans: list[Instance] = []
    for inst in actual:
        if inst.oneoff:
            continue
        if inst.service in project.services:
            by_service.setdefault(inst.service, []).append(inst)
        elif inst.service not in project.disabled_services:
            orphans.append(inst)

    resources = _resource_steps(project, order, set(existing_networks), set(existing_volumes))
    plans: list[ServicePlan] = []
    recreated: set[str] = set()
    for name in order:
        svc = project.services[name]
        replicas = opts.scale.get(name, svc.replicas)
        want_hash = desired_hash(backend_service(svc, replicas), image_ids.get(name))
        decision = decisions.get(name) or RuntimeDecision.as_declared(svc)
        runtime = decision.runtime
        steps = _service_steps(
            svc, by_service.get(name, []), replicas, want_hash, runtime, opts, recreated
        )
        if any(s.action in ("create", "recreate") for s in steps):
            recreated.add(name)
        plans.append(
            ServicePlan(
                service=name,
                runtime=runtime,
                config_hash=want_hash,
                replicas=replicas,
                steps=tuple(steps),
                depends_on=tuple(sorted(dependencies(svc) & set(order))),
                image_id=image_ids.get(name),
                load_balanced=load_balanced(svc, replicas),
                update=(
                    update_policy(svc, replicas).describe(load_balanced(svc, replicas))
                    if any(s.action == "recreate" for s in steps) and not svc.job
                    else None
                ),
                decision=decision,
            )
        )
    notes: list[str] = []
    if orphans and not opts.remove_orphans:
        names = ", ".join(sorted({o.service for o in orphans}))
        notes.append(
            f"found orphan instances for services not in the file ({names});"
            " run with --remove-orphans to remove them"
        )
    return Plan(
        project=project.name,
        resources=tuple(resources),
        services=tuple(plans),
        orphans=tuple(sorted(orphans, key=lambda i: i.name)),
        remove_orphans=opts.remove_orphans,
        notes=tuple(notes),
    )


def missing_image_note(svc: Service) -> str:
    """What `up` will do about a service whose image is not on this host."""
    shown = svc.image or f"the image of {svc.name!r}"
    if svc.build is not None:
        return (
            f"{svc.name}: {shown} is not on this host; `up` builds it (build: {svc.build.context})"
        )
    if svc.pull_policy == "never":
        return f"{svc.name}: {shown} is not on this host and pull_policy is never: `up` will fail"
    return (
        f"{svc.name}: {shown} is not on this host; `up` pulls it. Without a registry: "
        f"`docker save {svc.image or 'IMAGE'}` where it exists and `docker load` it here, "
        "or give the service a build: section"
    )


def _resource_steps(
    project: Project, order: list[str], have_networks: set[str], have_volumes: set[str]
) -> list[ResourceStep]:
    used_networks = {k for n in order for k in project.services[n].networks}
    used_volumes = {
        m.source
        for n in order
        for m in project.services[n].volumes
        if m.type == "volume" and m.source
    }
    steps: list[ResourceStep] = []
    for key in sorted(used_networks):
        net = project.networks[key]
        steps.append(
            ResourceStep("network", key, net.name, _action(net.external, net.name, have_networks))
        )
    for key in sorted(used_volumes):
        vol = project.volumes.get(key)
        if vol is None:  # anonymous-by-path volumes are not project resources
            continue
        steps.append(
            ResourceStep("volume", key, vol.name, _action(vol.external, vol.name, have_volumes))
        )
    return steps


def _action(external: bool, name: str, existing: set[str]) -> ResourceAction:
    if external:
        return "external"
    return "exists" if name in existing else "create"


def _service_steps(
    svc: Service,
    have: list[Instance],
    replicas: int,
    want_hash: str,
    runtime: Runtime,
    opts: UpOptions,
    recreated: set[str],
) -> list[Step]:
    steps: list[Step] = []
    by_number: dict[int, Instance] = {}
    # An update killed half-way can leave two instances with one number (the
    # old one and its successor): keep the one that matches, remove the other.
    ranked = sorted(
        have,
        key=lambda i: (
            i.number,
            not (i.running and i.config_hash == want_hash),
            not i.running,
            len(i.name),
            i.name,
        ),
    )
    for inst in ranked:
        if inst.number > replicas:
            steps.append(Step("remove", svc.name, inst.number, "scaled down", inst))
        elif inst.number in by_number:
            keeper = by_number[inst.number].name
            steps.append(
                Step(
                    "remove",
                    svc.name,
                    inst.number,
                    f"duplicate of {keeper} (interrupted update)",
                    inst,
                )
            )
        else:
            by_number[inst.number] = inst
    restart_for = sorted(d for d, dep in svc.depends_on.items() if dep.restart and d in recreated)
    for number in range(1, replicas + 1):
        found = by_number.get(number)
        if found is None:
            steps.append(Step("create", svc.name, number, "missing"))
            continue
        inst = found
        stale = inst.config_hash != want_hash or inst.runtime != runtime
        if opts.force_recreate:
            steps.append(Step("recreate", svc.name, number, "--force-recreate", inst))
        elif stale and not opts.no_recreate:
            why = "runtime changed" if inst.runtime != runtime else "configuration changed"
            steps.append(Step("recreate", svc.name, number, why, inst))
        elif inst.id in opts.drifted and not opts.no_recreate:
            why = "drifted: " + opts.drifted[inst.id]
            steps.append(Step("recreate", svc.name, number, why, inst))
        elif svc.job and not inst.running and inst.status != "created":
            if inst.exit_code == 0:
                # a job that completed is converged: an unchanged job is not run again
                steps.append(Step("keep", svc.name, number, "completed", inst))
            else:
                why = f"failed (exit {inst.exit_code}): run again"
                steps.append(Step("start", svc.name, number, why, inst))
        elif not inst.running:
            steps.append(Step("start", svc.name, number, f"is {inst.status}", inst))
        elif restart_for and not svc.job:
            why = "dependency recreated: " + ", ".join(restart_for)
            steps.append(Step("restart", svc.name, number, why, inst))
        else:
            steps.append(Step("keep", svc.name, number, "up to date", inst))
    return steps
