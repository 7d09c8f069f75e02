"""One project against one engine: the operations the CLI commands call.

A thin façade: each verb lives in its own module (up, down, rollback,
wait, drift), reads actual state from the engine every time (never from
the store) through a :class:`~compound.reconcile.project_engine.ProjectEngine`,
and acts through the drivers. Planning reads one snapshot
(:func:`~compound.reconcile.snapshot.read_snapshot`); everything after it
is pure.
"""

from __future__ import annotations

import dataclasses
import platform
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from compound.errors import NotSupportedError, UsageError
from compound.reconcile import wait as wait_verb
from compound.reconcile.docker_engine import DockerProjectEngine
from compound.reconcile.snapshot import driver_for
from compound.runtimes.registry import RuntimeDrivers

if TYPE_CHECKING:
    # `ps`, `logs` and the other readers need none of the planner, the verbs
    # or the advisor: each is imported by the method that uses it
    from compound.engine import Client
    from compound.planner.diff import Plan, ServicePlan, UpOptions
    from compound.planner.runtime import RuntimeDecision
    from compound.reconcile.drift import DriftReport, InstanceDrift
    from compound.reconcile.frontends import Frontends
    from compound.reconcile.progress import Progress
    from compound.reconcile.project_engine import ProjectEngine
    from compound.reconcile.rolling import Desired, Frontend
    from compound.reconcile.up import UpOutcome
    from compound.runtimes.base import Driver, Instance
    from compound.spec.model import Project
    from compound.state.store import Store

__all__ = ["Session", "redacted_model"]


class Session:
    def __init__(
        self,
        project: Project,
        client: Client,
        store: Store | None = None,
        drivers: Mapping[str, Driver] | None = None,
        engine: ProjectEngine | None = None,
    ) -> None:
        self.project = project
        self.client = client
        self._store = store
        self.drivers: Mapping[str, Driver] = (
            dict(drivers) if drivers is not None else RuntimeDrivers(client)
        )
        self.engine: ProjectEngine = engine or DockerProjectEngine(client, project.name)
        self._frontends_made: Frontends | None = None
        self._frontends_lock = threading.Lock()
        self._frontends_project = project  # the project it was made with, as before

    @property
    def _frontends(self) -> Frontends:
        # made on first use (only `up` and `rollback` route traffic), once: up's
        # service threads ask for it side by side, and each service's frontend
        # must be the one object that tracks it
        with self._frontends_lock:
            if self._frontends_made is None:
                from compound.reconcile.frontends import Frontends

                self._frontends_made = Frontends(
                    self._frontends_project,
                    self.engine,
                    lambda i: self.driver_for(i).inspect(i.id),
                )
            return self._frontends_made

    @property
    def store(self) -> Store:
        if self._store is None:
            from compound.state.store import Store

            self._store = Store()
        return self._store

    # --- reading actual state -------------------------------------------------

    def instances(
        self, services: Iterable[str] = (), *, include_stopped: bool = True, oneoff: bool = False
    ) -> list[Instance]:
        wanted = set(services)
        found = self.engine.instances(include_stopped=include_stopped, oneoff=oneoff)
        return [i for i in found if not wanted or i.service in wanted]

    def driver_for(self, inst: Instance) -> Driver:
        return driver_for(self.drivers, inst)

    def check_services(self, names: Iterable[str]) -> list[str]:
        names = list(names)
        unknown = [n for n in names if n not in self.project.services]
        if unknown:
            disabled = [n for n in unknown if n in self.project.disabled_services]
            if disabled:
                raise UsageError(
                    f"service(s) {', '.join(disabled)} are disabled by profiles",
                    hint="activate their profile with --profile",
                )
            raise UsageError(
                f"no such service: {', '.join(unknown)}",
                hint="services in this project: " + ", ".join(sorted(self.project.services)),
            )
        return names

    # --- up -------------------------------------------------------------------------

    def decide(self, services: Iterable[str]) -> dict[str, RuntimeDecision]:
        """The planner's runtime decision for each service (planner/runtime.py),
        checked against the drivers this session has."""
        from compound.hostfacts import host_facts
        from compound.planner.runtime import decide_runtimes

        decided = decide_runtimes(self.project, services, host_facts())
        unsupported = {n: d.runtime for n, d in decided.items() if d.runtime not in self.drivers}
        if unsupported:
            listed = ", ".join(f"{s} (runtime: {r})" for s, r in sorted(unsupported.items()))
            raise NotSupportedError(
                f"no driver for {listed}",
                hint="x-compound.runtime is one of: " + ", ".join(self.drivers) + ", auto",
            )
        return decided

    def plan_up(self, opts: UpOptions) -> Plan:
        from compound.planner.diff import selected_services
        from compound.reconcile import up as up_verb
        from compound.reconcile.snapshot import read_snapshot

        self.check_services(opts.services)
        order = selected_services(self.project, opts)
        decisions = self.decide(order)
        closed = [
            n
            for n in order
            if up_verb.closed_network(self.project, n, self.drivers[decisions[n].runtime])
        ]
        snapshot = read_snapshot(self.engine, self.project, order, closed=closed)
        return up_verb.plan_up(self.project, snapshot, decisions, opts, self.drivers)

    def capacity_warnings(self) -> list[str]:
        """Reservations this single host cannot hold, said before starting."""
        from compound.hostfacts import host_facts
        from compound.placement import capacity_warnings, host_from_facts

        facts = host_facts()
        if not facts.cpus or not facts.memory:
            return []
        host = host_from_facts(
            platform.node() or "localhost",
            facts.cpus,
            facts.memory,
            kvm=facts.kvm_usable,
            host_is_vm=facts.host_is_vm,
        )
        return capacity_warnings(self.project, host, host_facts=facts)

    def up(
        self,
        opts: UpOptions,
        *,
        progress: Progress | None = None,
        dry_run: bool = False,
        command: str = "up",
        dependency_timeout: float = 300.0,
    ) -> UpOutcome:
        from compound.planner.diff import selected_providers
        from compound.reconcile import up as up_verb
        from compound.reconcile.progress import NullProgress
        from compound.reconcile.up import UpOutcome

        progress = progress or NullProgress()
        self.store.mark_abandoned(self.project.name)
        providers = selected_providers(self.project, opts)
        if providers and not dry_run:
            # their variables are part of the dependents' configuration: before the plan
            from compound.reconcile import provider

            self.project = provider.up_all(self.project, providers, progress)
        plan = self.plan_up(opts)
        # images are resolved after prepare (pull/build); a second plan pass
        # would only matter for tags that moved during this very up.
        if dry_run:
            if providers:
                note = (
                    f"provider service(s) {', '.join(providers)}: `up` runs their provider"
                    " binaries first; the variables they set may change their dependents"
                )
                plan = dataclasses.replace(plan, notes=(*plan.notes, note))
            return UpOutcome(plan=plan, result=None, revision=None)
        for warning in self.capacity_warnings():
            progress.note(warning)
        return up_verb.run_up(
            self.project,
            plan,
            drivers=self.drivers,
            store=self.store,
            command=command,
            model=redacted_model(self.project),
            ensure_resources=self._ensure_resources,
            frontend_for=self.frontend_for,
            rollback_target=self.rollback_target,
            progress=progress,
            dependency_timeout=dependency_timeout,
        )

    # --- revisions: what was deployed, and going back to it -------------------------

    def rollback_target(self, service: str, config_hash: str) -> Desired | None:
        from compound.reconcile import rollback as rollback_verb

        return rollback_verb.rollback_target(self.store, self.project.name, service, config_hash)

    def rollback(
        self, services: Sequence[str] = (), *, progress: Progress | None = None
    ) -> dict[str, int]:
        """See :func:`compound.reconcile.rollback.rollback`."""
        from compound.reconcile import rollback as rollback_verb
        from compound.reconcile.progress import NullProgress

        self.store.mark_abandoned(self.project.name)
        self.check_services(services)
        return rollback_verb.rollback(
            self.project,
            [i for i in self.instances() if not i.oneoff],
            services,
            store=self.store,
            drivers=self.drivers,
            driver_for=self.driver_for,
            frontend_for=self.frontend_for,
            model=redacted_model(self.project),
            progress=progress or NullProgress(),
        )

    def frontend_for(self, plan: ServicePlan) -> Frontend | None:
        return self._frontends.frontend_for(plan)

    def live_revision(self) -> int | None:
        """The newest revision whose recorded configuration is what runs now."""
        current: dict[str, set[str]] = {}
        for inst in self.instances():
            if not inst.oneoff:
                current.setdefault(inst.service, set()).add(inst.config_hash)
        if not current:
            return None
        for number, all_specs, _result in self.store.deployments(self.project.name):
            specs = {k: v for k, v in all_specs.items() if k in current}
            if specs and all(current[k] == {v.get("config_hash")} for k, v in specs.items()):
                return number
        return None

    def ensure_resources_for(self, services: Sequence[str]) -> None:
        """Networks and volumes the services need (for `run` outside an `up`)."""
        from compound.planner.diff import UpOptions, make_plan
        from compound.reconcile.progress import NullProgress

        nets, vols = self.engine.resources()
        plan = make_plan(
            self.project,
            [],
            image_ids={},
            existing_networks=nets,
            existing_volumes=vols,
            decisions=self.decide(services),
            opts=UpOptions(services=tuple(services), no_deps=True),
        )
        self._ensure_resources(plan, NullProgress())

    def _ensure_resources(self, plan: Plan, progress: Progress) -> None:
        from compound.reconcile import up as up_verb

        up_verb.ensure_resources(self.engine, self.project, plan, progress)

    def wait_running(self, services: Sequence[str], timeout: float, progress: Progress) -> None:
        """`up --wait`: every instance running, and healthy where it has a healthcheck."""
        wait_verb.wait_running(
            self.project,
            self.instances(services),
            self.driver_for,
            timeout=timeout,
            progress=progress,
        )

    def health_of(self, inst: Instance) -> str | None:
        return wait_verb.health_of(self.project, self.driver_for(inst), inst)

    # --- drift (`compound diff`, `up --recreate-drifted`) -----------------------------

    def file_drift(self, services: Iterable[str] = ()) -> list[InstanceDrift]:
        from compound.reconcile.drift import read_file_drift

        return read_file_drift(self.project, self.instances(services), self.driver_for)

    def drift(self, services: Sequence[str] = ()) -> DriftReport:
        """File drift and config drift (the planner's recreate steps)."""
        from compound.planner.diff import UpOptions
        from compound.reconcile.drift import DriftReport, config_drift

        self.check_services(services)
        plan = self.plan_up(UpOptions(services=tuple(services), no_deps=True))
        return DriftReport(self.project.name, tuple(self.file_drift(services)), config_drift(plan))

    # --- down ----------------------------------------------------------------------

    def down(
        self,
        *,
        volumes: bool = False,
        remove_orphans: bool = False,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[str]]:
        from compound.reconcile import down as down_verb
        from compound.reconcile.progress import NullProgress

        progress = progress or NullProgress()
        removed = down_verb.down(
            self.project,
            self.engine,
            self.driver_for,
            sweepers=[self.drivers[name] for name in self.drivers],
            volumes=volumes,
            remove_orphans=remove_orphans,
            timeout=timeout,
            progress=progress,
        )
        if any(s.provider is not None for s in self.project.services.values()):
            from compound.reconcile import provider

            # after their dependents are gone, as Compose's reverse order
            removed["providers"] = provider.down_all(self.project, progress)
        return removed


# Environment names whose values history never shows (a word of the name).
SECRET_WORDS = ("PASS", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "PRIVATE", "AUTH")
REDACTED = "<redacted>"


def _secret_name(name: str) -> bool:
    upper = name.upper()
    return any(w in upper for w in SECRET_WORDS)


def redacted_model(project: Project) -> dict[str, Any]:
    """The model for the store's history (what `history` and `config` of a
    revision show): secret and config content from the environment, and
    every environment value whose name says it is a secret, replaced by
    ``<redacted>``. What a rollback recreates is kept apart, owner-only
    (``specs``, as the engine keeps a container's own configuration)."""
    data = project.model_dump(mode="json")
    for section in ("secrets", "configs"):
        for obj in (data.get(section) or {}).values():
            if obj.get("environment") and obj.get("content") is not None:
                obj["content"] = REDACTED
    envs = [data.get("environment") or {}]
    envs += [(svc or {}).get("environment") or {} for svc in (data.get("services") or {}).values()]
    for env in envs:
        for key in list(env):
            if _secret_name(key) and env[key] is not None:
                env[key] = REDACTED
    return data
