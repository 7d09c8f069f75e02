"""One project against one engine: the operations the CLI commands call.

Reads actual state from the engine every time (never from the store),
plans, records the revision, applies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker

from compound.advisor import advise
from compound.errors import (
    ApplyError,
    CompoundError,
    EngineError,
    NotSupportedError,
    ServiceError,
    StateError,
    UsageError,
)
from compound.hostfacts import host_facts
from compound.lb import remove as remove_load_balancer
from compound.lb import remove_load_balancers
from compound.lb.frontend import BalancedFrontend
from compound.placement import capacity_warnings, host_from_facts
from compound.planner.diff import (
    Plan,
    ResourceStep,
    ServicePlan,
    UpOptions,
    make_plan,
    selected_services,
)
from compound.planner.graph import dependencies
from compound.planner.update import backend_service, load_balanced, update_policy
from compound.reconcile.apply import Applier, ApplyResult
from compound.reconcile.drift import DriftReport, InstanceDrift, classify, config_drift
from compound.reconcile.health import probe_with, wait_healthy_with
from compound.reconcile.progress import NullProgress, Progress
from compound.reconcile.rolling import Desired, Frontend, RollingUpdate
from compound.reconcile.slots import default_limit
from compound.runtimes import docker as engine_resources
from compound.runtimes.base import Driver, Instance
from compound.runtimes.container_config import file_targets
from compound.runtimes.docker import ContainerDriver, list_load_balancers
from compound.spec.model import Project, Service
from compound.state.store import Store

SUPPORTED_RUNTIMES = ("container",)


class RuntimeDrivers(Mapping[str, Driver]):
    """The drivers of every runtime, each made on first use: a project of
    containers never imports (or pays for) the VM machinery."""

    RUNTIMES = ("container", "vm")

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._made: dict[str, Driver] = {}

    def __getitem__(self, runtime: str) -> Driver:
        if runtime not in self._made:
            if runtime == "container":
                self._made[runtime] = ContainerDriver(self._client)
            elif runtime == "vm":
                from compound.runtimes.vm.driver import VMDriver

                containers = self["container"]
                assert isinstance(containers, ContainerDriver)
                self._made[runtime] = VMDriver(self._client, containers=containers)
            else:
                raise KeyError(runtime)
        return self._made[runtime]

    def __iter__(self) -> Iterator[str]:
        return iter(self.RUNTIMES)

    def __len__(self) -> int:
        return len(self.RUNTIMES)


@dataclass
class UpOutcome:
    plan: Plan
    result: ApplyResult | None  # None for a dry run or an unchanged project
    revision: int | None
    decisions: dict[str, Any] = field(default_factory=dict)


class Session:
    def __init__(
        self,
        project: Project,
        client: docker.DockerClient,
        store: Store | None = None,
        drivers: Mapping[str, Driver] | None = None,
    ) -> None:
        self.project = project
        self.client = client
        self.decisions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._balanced: set[str] | None = None  # services that have a load balancer
        self._store = store
        self.drivers: Mapping[str, Driver] = (
            dict(drivers) if drivers is not None else RuntimeDrivers(client)
        )

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store()
        return self._store

    # --- reading actual state -------------------------------------------------

    def instances(
        self, services: Iterable[str] = (), *, include_stopped: bool = True, oneoff: bool = False
    ) -> list[Instance]:
        wanted = set(services)
        found = engine_resources.list_instances(
            self.client, self.project.name, include_stopped=include_stopped, oneoff=oneoff
        )
        return [i for i in found if not wanted or i.service in wanted]

    def driver_for(self, inst: Instance) -> Driver:
        try:
            return self.drivers[inst.runtime]
        except KeyError:
            raise NotSupportedError(
                f"{inst.name} runs on the {inst.runtime!r} runtime, which this build cannot manage"
            ) from None

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

    def decide_runtimes(self, services: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Runtime per service with the reason: declared, or the advisor's
        decision for `runtime: auto` (the same decision `compound advise` shows)."""
        names = list(services)
        auto = [n for n in names if self.project.services[n].runtime == "auto"]
        advice = {a.service: a for a in advise(self.project, host_facts(), auto)} if auto else {}
        decided: dict[str, dict[str, Any]] = {}
        for name in names:
            declared = self.project.services[name].runtime
            if name in advice:
                a = advice[name]
                decided[name] = {
                    "runtime": a.runtime,
                    "declared": "auto",
                    "confidence": a.confidence,
                    "tie": a.tie,
                    "why": [
                        f"{f.factor}: {f.why} (toward {f.toward}, weight {f.weight})"
                        for f in a.factors
                        if f.axis == "runtime"
                    ],
                }
            else:
                decided[name] = {"runtime": declared, "declared": declared, "why": ["declared"]}
        return decided

    def runtimes(self, services: Iterable[str]) -> dict[str, str]:
        """Runtime per service; the reasons are kept for the revision record."""
        self.decisions = self.decide_runtimes(services)
        decided = {n: str(d["runtime"]) for n, d in self.decisions.items()}
        unsupported = {n: r for n, r in decided.items() if r not in self.drivers}
        if unsupported:
            listed = ", ".join(f"{s} (runtime: {r})" for s, r in sorted(unsupported.items()))
            raise NotSupportedError(
                f"no driver for {listed}",
                hint="x-compound.runtime is one of: " + ", ".join(self.drivers) + ", auto",
            )
        return decided

    def plan_up(self, opts: UpOptions) -> Plan:
        self.check_services(opts.services)
        order = selected_services(self.project, opts)
        runtimes = self.runtimes(order)
        refs = {n: self._image_ref(n) for n in order}
        ids = {ref: self._local_image_id(ref) for ref in set(refs.values())}  # one call per image
        image_ids = {n: ids[ref] for n, ref in refs.items()}
        nets, vols = engine_resources.project_resources(self.client, self.project.name)
        notes = [
            self._closed_vm_note(n, image_ids[n])
            for n in order
            if runtimes[n] == "vm"
            # with net: tap (the default) the guest owns the launcher's address
            and self.project.services[n].x_compound.vm.net == "user"
            and not self.project.services[n].ports
            and not self.project.services[n].expose
        ]
        plan = make_plan(
            self.project,
            self.instances(),
            image_ids=image_ids,
            existing_networks=nets,
            existing_volumes=vols,
            runtimes=runtimes,
            opts=opts,
        )
        extra = tuple(n for n in notes if n)
        return dataclasses.replace(plan, notes=plan.notes + extra) if extra else plan

    def _closed_vm_note(self, service: str, image_id: str | None) -> str | None:
        """A VM on QEMU's user networking (``vm: {net: user}``) only receives
        the ports it declares (forwarded into the guest); a container's
        network namespace is open. Say so rather than let
        connections be refused mysteriously."""
        exposed: dict[str, Any] = {}
        if image_id:
            with contextlib.suppress(docker.errors.DockerException):
                exposed = self.client.images.get(image_id).attrs["Config"].get("ExposedPorts") or {}
        if exposed:
            return None
        return (
            f"{service} runs as a VM and declares no ports: other services and the host can"
            " reach it only on ports listed under expose: or ports:"
        )

    def capacity_warnings(self) -> list[str]:
        """Reservations this single host cannot hold, said before starting."""
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

    def _image_ref(self, service: str) -> str:
        return self.project.services[service].image or f"{self.project.name}-{service}"

    def _local_image_id(self, ref: str) -> str | None:
        # a bad reference is not the plan's to report: prepare() says it clearly
        try:
            return engine_resources.local_image_id(self.client, ref)
        except EngineError:
            return None

    def up(
        self,
        opts: UpOptions,
        *,
        progress: Progress | None = None,
        dry_run: bool = False,
        command: str = "up",
        dependency_timeout: float = 300.0,
    ) -> UpOutcome:
        progress = progress or NullProgress()
        self.store.mark_abandoned(self.project.name)
        plan = self.plan_up(opts)
        # images are resolved after prepare (pull/build); a second plan pass
        # would only matter for tags that moved during this very up.
        if dry_run:
            return UpOutcome(plan=plan, result=None, revision=None)
        for warning in self.capacity_warnings():
            progress.note(warning)
        decisions = self.decisions  # made by plan_up, exactly what the plan used
        revision = self.store.begin(
            self.project.name,
            command,
            redacted_model(self.project),
            plan.to_json(),
            decisions,
            specs=self._specs(plan),
        )
        applier = Applier(
            self.project,
            plan,
            self.drivers,
            ensure_resources=self._ensure_resources,
            progress=progress,
            dependency_timeout=dependency_timeout,
            frontend_for=self.frontend_for,
            rollback_target=self.rollback_target,
        )
        outcome = "failed"
        try:
            result = applier.run()
            outcome = (
                "succeeded" if result.ok else ("interrupted" if result.interrupted else "failed")
            )
        finally:
            self.store.finish(self.project.name, revision, outcome, applier.result.to_json())
        if not result.ok:
            raise ApplyError(
                "up interrupted" if result.interrupted else "up did not finish",
                done=result.done,
                failed=result.failed,
                not_started=[f"{k} ({v})" for k, v in result.not_started.items()],
                hint="fix the cause and run `compound up` again: it continues from what is running",
                interrupted=result.interrupted,
            )
        return UpOutcome(plan=plan, result=result, revision=revision, decisions=decisions)

    # --- revisions: what was deployed, and going back to it -------------------------

    def _specs(self, plan: Plan) -> dict[str, Any]:
        """Each planned service exactly as deployed, so a rollback can recreate it."""
        return {
            sp.service: {
                "service": self.project.services[sp.service].model_dump(mode="json"),
                "replicas": sp.replicas,
                "config_hash": sp.config_hash,
                "image_id": sp.image_id,
                "runtime": sp.runtime,
            }
            for sp in plan.services
        }

    def rollback_target(self, service: str, config_hash: str) -> Desired | None:
        """The deployed spec behind ``config_hash`` (what instances being
        replaced ran), for failure_action: rollback."""
        found = self.store.deployed_spec(self.project.name, service, config_hash)
        return _desired(found[0], found[1]) if found else None

    def rollback(
        self, services: Sequence[str] = (), *, progress: Progress | None = None
    ) -> dict[str, int]:
        """Replace each service's instances with what it ran before its current
        configuration (the previous revision that deployed it). Returns
        service -> revision rolled back to. Checks every service first, so
        nothing changes when one of them has nothing to go back to."""
        progress = progress or NullProgress()
        self.store.mark_abandoned(self.project.name)
        self.check_services(services)
        running = [i for i in self.instances() if not i.oneoff]
        names = list(services) or sorted({i.service for i in running})
        if not names:
            raise StateError(
                f"project {self.project.name!r} has no instances to roll back",
                hint="`compound up` deploys it",
            )
        targets: dict[str, tuple[int, dict[str, Any], list[Instance]]] = {}
        missing: list[str] = []
        for name in names:
            mine = [i for i in running if i.service == name]
            if not mine:
                missing.append(f"{name} (no instances)")
                continue
            found = self.store.previous_spec(self.project.name, name, {i.config_hash for i in mine})
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
        revision = self.store.begin(
            self.project.name,
            "rollback " + " ".join(f"{n}->{t[0]}" for n, t in sorted(targets.items())),
            redacted_model(self.project),
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
            for name in [n for n in selected_services(self.project, UpOptions()) if n in targets]:
                number, spec, mine = targets[name]
                try:
                    self._roll_back_service(name, _desired(number, spec), spec, mine, progress)
                    done.append(name)
                    progress.update(name, "Rolled back", f"to revision {number}", done=True)
                except CompoundError as exc:
                    failed[name] = exc.message
                    progress.fail(name, exc.message)
        finally:
            outcome = "succeeded" if not failed and len(done) == len(targets) else "failed"
            self.store.finish(
                self.project.name, revision, outcome, {"done": done, "failed": failed}
            )
        if failed:
            raise ApplyError(
                "rollback did not finish",
                done=done,
                failed=failed,
                hint="fix the cause and run `compound rollback` or `compound up`",
            )
        return {n: t[0] for n, t in targets.items()}

    def _roll_back_service(
        self,
        name: str,
        target: Desired,
        spec: dict[str, Any],
        instances: list[Instance],
        progress: Progress,
    ) -> None:
        replicas = int(spec.get("replicas") or 1)
        stale = [i for i in instances if i.config_hash != target.config_hash]
        keep = [i for i in instances if i.config_hash == target.config_hash]
        runtime = target.runtime or self.project.services[name].runtime
        driver = self.drivers[runtime]
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
        frontend = self.frontend_for(plan)
        outcome = RollingUpdate(
            self.project,
            target,
            update_policy(target.service, replicas, rollback=True),
            driver=driver,
            driver_of=self.driver_for,
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

    def frontend_for(self, plan: ServicePlan) -> Frontend | None:
        """The load balancer in front of a replicated service with published
        ports (made on first use); removes one a service no longer needs, so
        its single instance can publish the ports itself."""
        service = self.project.services[plan.service]
        if not plan.load_balanced:
            with self._lock:
                if self._balanced is None:  # one engine query per up, not one per service
                    self._balanced = {
                        i.service for i in list_load_balancers(self.client, self.project.name)
                    }
            if plan.service in self._balanced:
                remove_load_balancer(self.client, self.project.name, plan.service)
            return None

        def serving() -> list[Instance]:
            found = self.instances([plan.service], include_stopped=False)
            return [i for i in found if i.health in (None, "healthy")]

        return BalancedFrontend(
            self.client,
            self.project,
            service,
            inspect=lambda inst: self.driver_for(inst).inspect(inst.id),
            serving=serving,
        )

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
        nets, vols = engine_resources.project_resources(self.client, self.project.name)
        plan = make_plan(
            self.project,
            [],
            image_ids={},
            existing_networks=nets,
            existing_volumes=vols,
            opts=UpOptions(services=tuple(services), no_deps=True),
        )
        self._ensure_resources(plan, NullProgress())

    def _ensure_resources(self, plan: Plan, progress: Progress) -> None:
        """Networks and volumes in parallel (network creation waits on the
        engine's firewall rules); external ones are checked, never created."""

        def ensure(step: ResourceStep) -> None:
            if step.kind == "network":
                created = engine_resources.ensure_network(
                    self.client, self.project, self.project.networks[step.key]
                )
            else:
                created = engine_resources.ensure_volume(
                    self.client, self.project, self.project.volumes[step.key]
                )
            if created:
                progress.update(f"{step.kind} {step.name}", "Created", done=True)

        steps = list(plan.resources)
        with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
            list(pool.map(ensure, steps))

    def wait_running(self, services: Sequence[str], timeout: float, progress: Progress) -> None:
        """`up --wait`: every instance running, and healthy where it has a healthcheck."""
        deadline = time.monotonic() + timeout
        pending = {i.id: i for i in self.instances(services) if not i.oneoff}
        while pending:
            for iid, inst in list(pending.items()):
                cur = self.driver_for(inst).inspect(iid)
                if cur.status == "exited" and cur.exit_code == 0 and cur.health is None:
                    pending.pop(iid)  # a one-shot task that completed
                elif not cur.running:
                    raise ServiceError(
                        cur.service, f"{cur.name} is {cur.status} (exit {cur.exit_code})"
                    )
                elif cur.health == "unhealthy":
                    raise ServiceError(cur.service, f"{cur.name} is unhealthy")
                elif (
                    cur.health is None and not self.driver_for(cur).capabilities.native_healthcheck
                ):
                    self._wait_vm_healthy(cur, deadline)
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

    def _wait_vm_healthy(self, inst: Instance, deadline: float) -> None:
        svc = self.project.services.get(inst.service)
        verdict = wait_healthy_with(
            self.driver_for(inst), inst, svc.healthcheck if svc else None, deadline=deadline
        )
        if verdict not in (None, "healthy"):
            raise ServiceError(inst.service, f"{inst.name} is {verdict}")

    def health_of(self, inst: Instance) -> str | None:
        """Health as `ps` shows it: the engine's, or one probe for runtimes
        whose engine runs no healthcheck."""
        driver = self.driver_for(inst)
        if driver.capabilities.native_healthcheck or not inst.running:
            return inst.health
        svc = self.project.services.get(inst.service)
        return probe_with(driver, inst, svc.healthcheck if svc else None)

    # --- drift (`compound diff`, `up --recreate-drifted`) -----------------------------

    def file_drift(self, services: Iterable[str] = ()) -> list[InstanceDrift]:
        """What each instance changed in its root filesystem (drift.py),
        read in parallel: a VM answers through its guest agent."""
        targets = [i for i in self.instances(services) if i.service in self.project.services]

        def read(inst: Instance) -> InstanceDrift:
            driver = self.driver_for(inst)
            if not driver.capabilities.changes:
                return InstanceDrift.of(inst, unknown=f"the {inst.runtime} runtime cannot tell")
            try:
                root = driver.changes(inst)
            except CompoundError as exc:
                return InstanceDrift.of(inst, unknown=exc.message)
            declared = file_targets(self.project.services[inst.service])
            return InstanceDrift.of(inst, classify(root, declared))

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(targets)))) as pool:
            return list(pool.map(read, targets))

    def drift(self, services: Sequence[str] = ()) -> DriftReport:
        """File drift and config drift (the planner's recreate steps)."""
        self.check_services(services)
        plan = self.plan_up(UpOptions(services=tuple(services), no_deps=True))
        return DriftReport(self.project.name, tuple(self.file_drift(services)), config_drift(plan))

    # --- down and friends -------------------------------------------------------------

    def down(
        self,
        *,
        volumes: bool = False,
        remove_orphans: bool = False,
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> dict[str, list[str]]:
        progress = progress or NullProgress()
        removed: dict[str, list[str]] = {"instances": [], "networks": [], "volumes": []}
        instances = self.instances(oneoff=True) + self.instances()
        known = set(self.project.services) | set(self.project.disabled_services)
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
                if d in self.project.services and name in dependencies(self.project.services[d])
            }
            for name in by_service
        }
        finished = {name: threading.Event() for name in by_service}
        errors: list[str] = []
        lock = threading.Lock()

        def take_down(inst: Instance) -> None:
            svc = self.project.services.get(inst.service)
            grace = timeout if timeout is not None else (svc.stop_grace_period if svc else None)
            progress.update(inst.name, "Stopping")
            driver = self.driver_for(inst)
            driver.stop(inst, grace)
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
            ThreadPoolExecutor(
                max_workers=max(1, len(by_service)), thread_name_prefix="svc"
            ) as svcs,
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
        for name in remove_load_balancers(
            self.client, self.project.name, None if remove_orphans else known
        ):
            removed.setdefault("load_balancers", []).append(name)
            progress.update(name, "Removed", done=True)
        for name in engine_resources.remove_networks(self.client, self.project.name):
            removed["networks"].append(name)
            progress.update(f"network {name}", "Removed", done=True)
        if volumes:
            for name in engine_resources.remove_volumes(self.client, self.project.name):
                removed["volumes"].append(name)
                progress.update(f"volume {name}", "Removed", done=True)
        return removed


def _desired(revision: int, spec: dict[str, Any]) -> Desired:
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


def redacted_model(project: Project) -> dict[str, Any]:
    """The model for the store, without secret material from the environment."""
    data = project.model_dump(mode="json")
    for section in ("secrets", "configs"):
        for obj in data.get(section, {}).values():
            if obj.get("environment") and obj.get("content") is not None:
                obj["content"] = "<redacted>"
    env = data.get("environment", {})
    for key in list(env):
        if any(w in key.upper() for w in ("PASSWORD", "SECRET", "TOKEN", "KEY")):
            env[key] = "<redacted>"
    return data
