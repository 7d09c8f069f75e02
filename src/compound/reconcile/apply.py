"""Execute a Plan against the engines.

Each service runs in its own thread: it prepares its image at once (so
pulls and builds overlap), then waits for its dependencies' conditions,
then performs its steps. A failure stops only the services that depend on
the failed one; everything else still converges. The result says exactly
which services are done, which failed and which were not started, so the
next ``up`` (which re-reads the engine) can finish the job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from compound.errors import CompoundError, ServiceError
from compound.planner.diff import Plan, ServicePlan, Step
from compound.planner.update import UpdatePolicy, backend_service, update_policy
from compound.reconcile import hooks, jobs
from compound.reconcile.health import check_command, wait_healthy_with
from compound.reconcile.progress import NullProgress, Progress
from compound.reconcile.rolling import Desired, Frontend, RollingUpdate
from compound.reconcile.slots import PrioritySlots, default_limit, start_priority
from compound.runtimes.base import Driver, Instance
from compound.runtimes.container_config import container_name
from compound.spec.model import Project

POLL = 0.1  # dependency health is on the critical path; inspect is cheap


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_started: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    rolled_back: dict[str, str] = field(default_factory=dict)  # service -> to what

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_started and not self.interrupted

    def to_json(self) -> dict[str, object]:
        return {
            "done": sorted(self.done),
            "failed": self.failed,
            "not_started": self.not_started,
            "interrupted": self.interrupted,
            "rolled_back": self.rolled_back,
        }


class _Cancelled(Exception):
    pass


class _DependencyFailed(Exception):
    pass


@dataclass
class _ServiceState:
    finished: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    instances: list[Instance] = field(default_factory=list)


class Applier:
    def __init__(
        self,
        project: Project,
        plan: Plan,
        drivers: Mapping[str, Driver],
        *,
        ensure_resources: Callable[[Plan, Progress], None],
        progress: Progress | None = None,
        dependency_timeout: float = 300.0,
        max_workers: int = 64,
        engine_slots: int | None = None,
        frontend_for: Callable[[ServicePlan], Frontend | None] | None = None,
        rollback_target: Callable[[str, str], Desired | None] | None = None,
    ) -> None:
        self.project = project
        self.plan = plan
        self.drivers = drivers
        self.ensure_resources = ensure_resources
        self.progress = progress or NullProgress()
        self.dependency_timeout = dependency_timeout
        self.max_workers = max_workers
        # a load balancer in front of the service, made ready by the session
        self.frontend_for = frontend_for or (lambda sp: None)
        # the deployed spec an instance hash came from, for failure_action: rollback
        self.rollback_target = rollback_target or (lambda service, config_hash: None)
        self._slots = PrioritySlots(engine_slots or default_limit())
        # taller chains of dependents go first: they bound the total time
        self._priority = start_priority(project, {sp.service for sp in plan.services})
        self._image_ids = {sp.service: sp.image_id for sp in plan.services}
        self._cancel = threading.Event()
        self._states = {sp.service: _ServiceState() for sp in plan.services}
        self._lock = threading.Lock()
        self.result = ApplyResult()

    def run(self) -> ApplyResult:
        try:
            self._remove_orphans()
            self.ensure_resources(self.plan, self.progress)
        except CompoundError as exc:
            for sp in self.plan.services:
                self.result.not_started[sp.service] = f"project resources failed: {exc.message}"
            raise
        workers = max(1, min(self.max_workers, len(self.plan.services)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="up")
        # threads start in submission order: the urgent ones reach the slots first
        ordered = sorted(self.plan.services, key=lambda sp: self._priority.get(sp.service, (0, 0)))
        futures = [pool.submit(self._run_service, sp) for sp in ordered]
        try:
            with _ctrl_c_as_flag() as interrupted:
                for fut in futures:
                    while not fut.done() and not interrupted.is_set():
                        time.sleep(0.05)  # short sleeps keep Ctrl-C responsive
            if interrupted.is_set():
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            self._cancel.set()
            self.result.interrupted = True
            self.progress.note("interrupted: finishing calls in flight, starting nothing new")
        finally:
            # a second Ctrl-C here interrupts the wait (the default handler is back)
            pool.shutdown(wait=True, cancel_futures=True)
        return self.result

    def driver_for(self, runtime: str) -> Driver:
        return self.drivers[runtime]

    # --- one service ------------------------------------------------------

    def _run_service(self, sp: ServicePlan) -> None:
        state = self._states[sp.service]
        name = sp.service
        try:
            if not sp.changed:
                state.instances = [s.instance for s in sp.steps if s.instance]
                frontend = self.frontend_for(sp)
                if frontend is not None:  # a balancer that died or was removed comes back
                    frontend.sync([i for i in state.instances if i.running])
                self.progress.update(name, "Running", "unchanged", done=True)
                self._record(name, ok=True)
                return
            driver = self.driver_for(sp.runtime)
            needs_image = any(s.action in ("create", "recreate") for s in sp.steps)
            if needs_image and not self._image_settled(sp):
                self.progress.update(name, "Preparing", "image")
                self._image_ids[name] = driver.prepare(
                    self.project, self.project.services[name], self._progress_for(name)
                )
            self._wait_for_dependencies(sp)
            self._check_cancel()
            self._pre_start(sp, driver)
            if self.project.services[name].job:
                state.instances = self._run_job(sp, driver)
                self.progress.update(name, "Completed", jobs.describe(state.instances), done=True)
                self._record(name, ok=True)
                return
            frontend = self.frontend_for(sp)
            for step in sp.steps:
                self._check_cancel()
                if step.action == "recreate":
                    continue  # replaced batch by batch below, after the rest
                if step.action == "remove" and frontend is not None and step.instance:
                    frontend.drain(step.instance)
                    frontend.remove(step.instance)
                with self._slots.slot(self._priority.get(name, (0, 0))):
                    inst = self._do_step(driver, sp, step)
                if inst is not None:
                    state.instances.append(inst)
            rolling = [s.instance for s in sp.steps if s.action == "recreate" and s.instance]
            if rolling:
                self._roll(sp, driver, rolling, frontend)
            if frontend is not None:
                frontend.sync([i for i in state.instances if i.running])
            self.progress.update(name, "Started", sp.summary, done=True)
            self._record(name, ok=True)
        except _Cancelled:
            self._record(name, ok=False, not_started="interrupted")
        except _DependencyFailed as exc:
            self.progress.fail(name, str(exc))
            self._record(name, ok=False, not_started=str(exc))
        except CompoundError as exc:
            # the service's own advice beats the generic one of the summary
            why = f"{exc.message} (hint: {exc.hint})" if exc.hint else exc.message
            self.progress.fail(name, exc.message)
            self._record(name, ok=False, failed=why)
        except Exception as exc:  # an engine or library surprise must not kill the others
            self.progress.fail(name, f"{type(exc).__name__}: {exc}")
            self._record(name, ok=False, failed=f"{type(exc).__name__}: {exc}")
        finally:
            state.finished.set()

    def _run_job(self, sp: ServicePlan, driver: Driver) -> list[Instance]:
        """A job's steps, then every instance to run until it completes
        (jobs.py); JobFailed names the first that failed for good."""
        name = sp.service
        svc = self.project.services[name]
        priority = self._priority.get(name, (0, 0))
        finished: list[Instance] = []
        to_run: list[tuple[Instance, bool]] = []  # (instance, start it)
        for step in sp.steps:
            self._check_cancel()
            old = step.instance
            if step.action == "keep" and old is not None and old.running:
                to_run.append((old, False))  # still running from an earlier up: wait for it
            elif step.action == "keep" and old is not None:
                finished.append(old)  # completed: not run again
            elif step.action == "start" and old is not None:
                to_run.append((old, True))
            elif step.action in ("remove", "recreate") and old is not None:
                with self._slots.slot(priority):
                    self.progress.update(name, "Removing", old.name)
                    hooks.stop(self._driver_of(old, driver), old, svc, svc.stop_grace_period)
                    self._driver_of(old, driver).remove(old, volumes=True)
            if step.action in ("create", "recreate"):
                with self._slots.slot(priority):
                    self.progress.update(name, "Creating", f"#{step.number}")
                    inst = driver.create(
                        self.project,
                        jobs.job_instance_service(backend_service(svc, sp.replicas)),
                        step.number,
                        sp.config_hash,
                        image_id=self._image_ids.get(name),
                    )
                to_run.append((inst, True))

        def complete(item: tuple[Instance, bool]) -> Instance:
            inst, start = item
            return jobs.run_to_completion(
                driver,
                svc,
                inst,
                start=start,
                progress=self.progress,
                cancelled=self._cancel.is_set,
            )

        with ThreadPoolExecutor(max_workers=max(1, len(to_run)), thread_name_prefix="job") as pool:
            futures = [pool.submit(complete, item) for item in to_run]
            errors: list[CompoundError] = []
            for fut in futures:
                try:
                    finished.append(fut.result())
                except CompoundError as exc:
                    errors.append(exc)
        self._check_cancel()
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise jobs.JobFailed(
                name,
                f"{len(errors)} of {len(to_run)} job instances failed: "
                + "; ".join(e.message.removeprefix(f"service {name!r}: ") for e in errors),
                hint=errors[0].hint,
            )
        return sorted(finished, key=lambda i: i.number)

    def _pre_start(self, sp: ServicePlan, driver: Driver) -> None:
        """pre_start hooks, once before the service's new instances start."""
        svc = self.project.services[sp.service]
        if not svc.pre_start:
            return
        if not any(s.action in ("create", "recreate", "start") for s in sp.steps):
            return
        with self._slots.slot(self._priority.get(sp.service, (0, 0))):
            hooks.run_pre_start(
                driver,
                self.project,
                svc,
                self._image_ids.get(sp.service),
                self.progress,
                timeout=self.dependency_timeout,
            )

    def _image_settled(self, sp: ServicePlan) -> bool:
        """The plan found the image locally and nothing asks to pull or build it."""
        svc = self.project.services[sp.service]
        return (
            sp.image_id is not None
            and svc.build is None
            and svc.pull_policy in (None, "missing", "if_not_present", "never")
        )

    def _record(
        self, name: str, *, ok: bool, failed: str | None = None, not_started: str | None = None
    ) -> None:
        with self._lock:
            self._states[name].ok = ok
            if ok:
                self.result.done.append(name)
            elif failed is not None:
                self.result.failed[name] = failed
            else:
                self.result.not_started[name] = not_started or "not started"

    def _progress_for(self, service: str) -> Callable[[str, str], None]:
        def report(_svc: str, message: str) -> None:
            self.progress.update(service, "Preparing", message)

        return report

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled()

    def _do_step(self, driver: Driver, sp: ServicePlan, step: Step) -> Instance | None:
        name = sp.service
        svc = self.project.services[name]
        old = step.instance
        if step.action == "keep":
            assert old is not None
            final = container_name(self.project, svc, old.number)
            if final != old.name:  # a successor left by an interrupted update
                driver.rename(old, final)
                return dataclasses.replace(old, name=final)
            return old
        if step.action == "remove":
            assert old is not None
            self.progress.update(name, "Removing", old.name)
            hooks.stop(self._driver_of(old, driver), old, svc, svc.stop_grace_period)
            self._driver_of(old, driver).remove(old, volumes=True)
            return None
        if step.action == "start":
            assert old is not None
            self.progress.update(name, "Starting", old.name)
            driver.start(old)
            hooks.run_hooks(driver, old, svc, "post_start", self.progress)
            return driver.inspect(old.id)
        if step.action == "restart":
            assert old is not None
            self.progress.update(name, "Restarting", old.name)
            hooks.stop(driver, old, svc, svc.stop_grace_period)
            driver.start(old)
            hooks.run_hooks(driver, old, svc, "post_start", self.progress)
            return driver.inspect(old.id)
        assert step.action == "create", step.action  # recreate: _roll
        self.progress.update(name, "Creating", f"#{step.number}")
        inst = driver.create(
            self.project,
            backend_service(svc, sp.replicas),
            step.number,
            sp.config_hash,
            image_id=self._image_ids.get(name),
        )
        self.progress.update(name, "Starting", inst.name)
        driver.start(inst)
        hooks.run_hooks(driver, inst, svc, "post_start", self.progress)
        # conditions re-inspect by id; sparing the engine a call per start matters at scale
        return dataclasses.replace(inst, status="running")

    # --- rolling updates ----------------------------------------------------------

    def _roll(
        self, sp: ServicePlan, driver: Driver, old: list[Instance], frontend: Frontend | None
    ) -> None:
        name = sp.service
        svc = self.project.services[name]
        state = self._states[name]
        desired = Desired(
            backend_service(svc, sp.replicas), sp.config_hash, self._image_ids.get(name)
        )
        policy = update_policy(svc, sp.replicas)
        if policy.start_first and sp.load_balanced and any(i.ports for i in old):
            # the balancer takes over ports its predecessors still hold
            policy = UpdatePolicy(
                policy.config.model_copy(update={"order": "stop-first"}),
                note=f"{name}: moving behind a load balancer, so this update is stop-first",
            )
        outcome = self._updater(sp, driver, desired, policy, frontend).run(old, state.instances)
        state.instances = outcome.current
        self._check_cancel()
        if not outcome.failures:
            return
        cfg = policy.config
        summary = "; ".join(outcome.failures)
        if len(outcome.failures) / len(old) <= cfg.max_failure_ratio:
            self.progress.note(f"{name}: tolerated by max_failure_ratio: {summary}")
            return
        if cfg.failure_action == "rollback":
            self._roll_back(sp, driver, old, frontend, summary)
        if cfg.failure_action == "pause":
            raise ServiceError(
                name,
                f"update paused after {outcome.replaced} of {len(old)} instance(s): {summary}",
                hint=f"fix the cause and run `compound up` to continue,"
                f" or `compound rollback {name}`",
            )
        raise ServiceError(
            name,
            f"update finished with failures: {summary}",
            hint="fix the cause and run `compound up` again",
        )

    def _roll_back(
        self,
        sp: ServicePlan,
        driver: Driver,
        old: list[Instance],
        frontend: Frontend | None,
        summary: str,
    ) -> None:
        name = sp.service
        state = self._states[name]
        previous = Counter(i.config_hash for i in old).most_common(1)[0][0]
        target = self.rollback_target(name, previous)
        if target is None:
            raise ServiceError(
                name,
                f"update failed ({summary}) and no earlier revision of {name!r} is"
                " recorded to roll back to",
                hint="fix the cause and run `compound up` again",
            )
        self.progress.note(f"{name}: update failed ({summary}); rolling back to {target.label}")
        stale = [i for i in state.instances if i.config_hash != target.config_hash]
        keep = [i for i in state.instances if i.config_hash == target.config_hash]
        policy = update_policy(self.project.services[name], sp.replicas, rollback=True)
        back_driver = self.drivers.get(target.runtime or sp.runtime, driver)
        back = self._updater(sp, back_driver, target, policy, frontend).run(stale, keep)
        state.instances = back.current
        with self._lock:
            self.result.rolled_back[name] = target.label
        also = f"; the rollback failed too: {'; '.join(back.failures)}" if back.failures else ""
        raise ServiceError(
            name,
            f"update failed: {summary}; rolled back to {target.label}{also}",
            hint="the file still describes the failed version: fix it, then `compound up`",
        )

    def _updater(
        self,
        sp: ServicePlan,
        driver: Driver,
        desired: Desired,
        policy: UpdatePolicy,
        frontend: Frontend | None,
    ) -> RollingUpdate:
        svc = self.project.services[sp.service]
        priority = self._priority.get(sp.service, (0, 0))
        return RollingUpdate(
            self.project,
            desired,
            policy,
            driver=driver,
            driver_of=lambda inst: self._driver_of(inst, driver),
            progress=self.progress,
            slot=lambda: self._slots.slot(priority),
            cancelled=self._cancel.is_set,
            health_timeout=self.dependency_timeout,
            grace=svc.stop_grace_period,
            frontend=frontend,
        )

    def _driver_of(self, inst: Instance, default: Driver) -> Driver:
        # an instance being replaced may belong to the other runtime
        return self.drivers.get(inst.runtime, default)

    # --- dependency conditions ----------------------------------------------

    def _wait_for_dependencies(self, sp: ServicePlan) -> None:
        svc = self.project.services[sp.service]
        for dep_name in sp.depends_on:
            dep = svc.depends_on.get(dep_name)
            condition = dep.condition if dep else "service_started"
            required = dep.required if dep else True
            state = self._states[dep_name]
            self.progress.update(sp.service, "Waiting", f"for {dep_name} ({condition})")
            while not state.finished.wait(POLL):
                self._check_cancel()
            if not state.ok:
                if not required:
                    self.progress.note(f"{sp.service}: optional dependency {dep_name} is not up")
                    continue
                raise _DependencyFailed(f"dependency {dep_name!r} failed")
            try:
                self._wait_condition(dep_name, condition, state.instances)
            except ServiceError as exc:
                if not required:
                    self.progress.note(f"{sp.service}: optional dependency: {exc.message}")
                    continue
                raise _DependencyFailed(exc.message) from exc

    def _wait_condition(self, dep: str, condition: str, instances: list[Instance]) -> None:
        if condition == "service_started" or not instances:
            return
        deadline = time.monotonic() + self.dependency_timeout
        dep_plan = self.plan.for_service(dep)
        driver = self.driver_for(dep_plan.runtime)
        runs_check = driver.engine_runs_healthcheck(self.project.services[dep])
        if condition == "service_healthy" and not runs_check:
            self._wait_healthy_by_exec(dep, driver, instances, deadline)
            return
        # health comes from the engine, so an image's own HEALTHCHECK counts too
        pending = {i.id for i in instances}
        while pending:
            self._check_cancel()
            for iid in list(pending):
                cur = driver.inspect(iid)
                if condition == "service_healthy":
                    if cur.health == "healthy":
                        pending.discard(iid)
                    elif cur.health is None:
                        raise ServiceError(
                            dep,
                            "has no healthcheck, so it can never become healthy",
                            hint="add a healthcheck, or use condition: service_started",
                        )
                    elif cur.health == "unhealthy":
                        raise ServiceError(dep, f"{cur.name} is unhealthy")
                    elif not cur.running:
                        raise ServiceError(
                            dep, f"{cur.name} exited (code {cur.exit_code}) before becoming healthy"
                        )
                else:  # service_completed_successfully
                    if cur.running:
                        continue
                    if cur.exit_code == 0:
                        pending.discard(iid)
                    else:
                        raise ServiceError(
                            dep, f"{cur.name} did not complete successfully (exit {cur.exit_code})"
                        )
            if pending:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        dep,
                        f"not {condition.removeprefix('service_').replace('_', ' ')}"
                        f" after {self.dependency_timeout:.0f}s",
                    )
                time.sleep(POLL)

    def _wait_healthy_by_exec(
        self, dep: str, driver: Driver, instances: list[Instance], deadline: float
    ) -> None:
        """Runtimes whose engine runs no healthcheck (VMs): compound runs it."""
        hc = self.project.services[dep].healthcheck
        if check_command(hc) is None:
            raise ServiceError(
                dep,
                "has no healthcheck, so it can never become healthy",
                hint="add a healthcheck, or use condition: service_started",
            )
        for inst in instances:
            verdict = wait_healthy_with(
                driver, inst, hc, deadline=deadline, cancelled=self._cancel.is_set
            )
            if verdict is None:
                raise ServiceError(dep, f"the {driver.name} runtime cannot run healthchecks")
            if verdict == "healthy":
                continue
            if verdict == "exited":
                cur = driver.inspect(inst.id)
                raise ServiceError(
                    dep, f"{cur.name} exited (code {cur.exit_code}) before becoming healthy"
                )
            if verdict == "unhealthy":
                raise ServiceError(dep, f"{inst.name} is unhealthy")
            self._check_cancel()
            raise ServiceError(dep, f"not healthy after {self.dependency_timeout:.0f}s")

    # --- orphans -----------------------------------------------------------

    def _remove_orphans(self) -> None:
        if not (self.plan.remove_orphans and self.plan.orphans):
            return
        for inst in self.plan.orphans:
            driver = self.drivers.get(inst.runtime) or next(iter(self.drivers.values()))
            self.progress.update(inst.service, "Removing", f"orphan {inst.name}")
            driver.stop(inst, None)
            driver.remove(inst, volumes=True)
            self.progress.update(inst.service, "Removed", f"orphan {inst.name}", done=True)


@contextlib.contextmanager
def _ctrl_c_as_flag() -> Iterator[threading.Event]:
    """While the main thread polls the services' futures, Ctrl-C sets a flag
    instead of raising: a KeyboardInterrupt raised just after ``fut.done()``
    took the future's lock left it held, and the worker finishing that future
    and ``pool.shutdown(wait=True)`` then waited for each other for ever."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals reach only the main thread; nothing to catch here
        return
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: flag.set())
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
