"""Replace a service's instances batch by batch, health-gated.

Nobody patches a running instance: an update creates successors from the
new configuration and removes their predecessors, following
``deploy.update_config`` (parallelism, delay, order, monitor,
failure_action, max_failure_ratio). With ``start-first`` the successor runs
beside its predecessor under a temporary name and takes the name once the
predecessor is gone; a successor that fails its health gate is removed and
the predecessor keeps serving. Behind a load balancer an instance is added
only once healthy and drained before it stops.

Every intermediate state is one the planner can converge from: two
instances with one number are resolved by the next ``up`` (the one that
matches the file stays), a temporary name is tidied then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from compound.errors import CompoundError
from compound.planner.update import UpdatePolicy
from compound.reconcile import hooks
from compound.reconcile.health import check_command, wait_healthy_with
from compound.reconcile.progress import Progress
from compound.runtimes.base import Driver, Instance
from compound.runtimes.container_config import container_name
from compound.spec.model import Project, Service

SUCCESSOR_SUFFIX = "-next"
POLL = 0.2
# Without a declared monitor window a successor must still be running this
# long after its gate: a process that dies at once is a failed update, not a
# finished one.
SETTLE = 1.0


class Frontend(Protocol):
    """A load balancer in front of one service's instances."""

    def add(self, instance: Instance) -> None:
        """Route to the instance once the balancer's own check sees it up."""

    def drain(self, instance: Instance) -> None:
        """Send it nothing new and wait for its sessions to end."""

    def remove(self, instance: Instance) -> None: ...

    def sync(self, instances: Sequence[Instance]) -> None:
        """Route to exactly these instances (converges after a crash)."""


@dataclass(frozen=True)
class Desired:
    """What successors are created from."""

    service: Service  # as each replica runs it (planner.update.backend_service)
    config_hash: str
    image_id: str | None
    label: str = "update"  # "update" or "revision N", for messages
    runtime: str | None = None  # when it differs from the plan's (a rollback across runtimes)


@dataclass
class Outcome:
    current: list[Instance] = field(default_factory=list)  # the service's instances now
    replaced: int = 0
    failures: list[str] = field(default_factory=list)


def successor_name(final: str, predecessor: str) -> str:
    """A name free while the predecessor runs: the usual one with a suffix,
    or the usual one itself if the predecessor is a successor left by an
    interrupted update."""
    return final if predecessor != final else final + SUCCESSOR_SUFFIX


def batches(items: Sequence[Instance], parallelism: int) -> Iterator[list[Instance]]:
    size = len(items) if parallelism <= 0 else parallelism  # 0: all at once (as Swarm)
    for i in range(0, len(items), max(1, size)):
        yield list(items[i : i + size])


class RollingUpdate:
    def __init__(
        self,
        project: Project,
        desired: Desired,
        policy: UpdatePolicy,
        *,
        driver: Driver,
        driver_of: Callable[[Instance], Driver],
        progress: Progress,
        slot: Callable[[], contextlib.AbstractContextManager[object]],
        cancelled: Callable[[], bool],
        health_timeout: float,
        grace: float | None,
        frontend: Frontend | None = None,
    ) -> None:
        self.project = project
        self.desired = desired
        self.policy = policy
        self.driver = driver
        self.driver_of = driver_of
        self.progress = progress
        self.slot = slot
        self.cancelled = cancelled
        self.health_timeout = health_timeout
        self.grace = grace
        self.frontend = frontend
        self._lock = threading.Lock()
        self.name = desired.service.name

    def run(self, old: Sequence[Instance], keep: Sequence[Instance] = ()) -> Outcome:
        """Replace ``old`` (instances of another configuration); ``keep`` are
        the service's instances that already match and stay untouched."""
        cfg = self.policy.config
        outcome = Outcome(current=list(keep))
        total = len(old)
        pending = sorted(old, key=lambda i: i.number)
        if self.policy.note:
            self.progress.note(self.policy.note)
        done = 0
        for index, batch in enumerate(batches(pending, cfg.parallelism)):
            if self.cancelled():
                outcome.current.extend(pending[done:])
                return outcome
            if index and cfg.delay:
                self._sleep(cfg.delay)
            self.progress.update(
                self.name,
                "Updating",
                f"{self.desired.label}: {done + len(batch)}/{total} ({cfg.order})",
            )
            results = self._run_batch(batch)
            done += len(batch)
            for inst, error in results:
                if inst is not None:
                    outcome.current.append(inst)
                if error is None:
                    outcome.replaced += 1
                else:
                    outcome.failures.append(error)
            over = len(outcome.failures) / total > cfg.max_failure_ratio
            if over and cfg.failure_action != "continue":
                outcome.current.extend(pending[done:])
                return outcome
        return outcome

    def _run_batch(self, batch: list[Instance]) -> list[tuple[Instance | None, str | None]]:
        if len(batch) == 1:
            return [self._replace(batch[0])]
        with ThreadPoolExecutor(max_workers=len(batch), thread_name_prefix="roll") as pool:
            return list(pool.map(self._replace, batch))

    # --- one instance ----------------------------------------------------------------

    def _replace(self, old: Instance) -> tuple[Instance | None, str | None]:
        """(the instance that now holds this number, an error or None)."""
        try:
            if self.policy.start_first:
                return self._start_first(old)
            return self._stop_first(old)
        except CompoundError as exc:
            return None, f"{old.name}: {exc.message}"

    def _final_name(self, number: int) -> str:
        return container_name(self.project, self.desired.service, number)

    def _start_first(self, old: Instance) -> tuple[Instance | None, str | None]:
        final = self._final_name(old.number)
        try:
            new = self._create(old.number, successor_name(final, old.name))
        except CompoundError as exc:
            # the predecessor was not touched: it keeps the number and serves
            return old, f"{old.name}: {exc.message}"
        error = self._gate(new)
        if error is not None:
            # the predecessor never stopped serving: drop the failed successor
            self._retire(new, drain=False)
            return old, error
        if self.frontend is not None:
            self.frontend.add(new)
        try:
            self._pre_stop(old)
        except CompoundError as exc:
            # the predecessor refused to stop: it keeps serving, the successor goes
            if self.frontend is not None:
                self.frontend.remove(new)
            self._retire(new, drain=False)
            return old, f"{old.name}: {exc.message}"
        self._retire(old, drain=True)
        if new.name != final:
            with self.slot():
                self.driver.rename(new, final)
            new = dataclasses.replace(new, name=final)
        return new, None

    def _stop_first(self, old: Instance) -> tuple[Instance | None, str | None]:
        try:
            self._pre_stop(old)
        except CompoundError as exc:
            return old, f"{old.name}: {exc.message}"  # not stopped: it keeps the number
        self._retire(old, drain=True)
        new = self._create(old.number, self._final_name(old.number))
        error = self._gate(new)
        if error is None and self.frontend is not None:
            self.frontend.add(new)
        return new, error

    def _create(self, number: int, name: str) -> Instance:
        d = self.desired
        with self.slot():
            self.progress.update(self.name, "Creating", name)
            inst = self.driver.create(
                self.project, d.service, number, d.config_hash, image_id=d.image_id, name=name
            )
        try:
            with self.slot():
                self.progress.update(self.name, "Starting", name)
                self.driver.start(inst)
            # post_start runs before the successor is gated and counted healthy
            hooks.run_hooks(self.driver, inst, d.service, "post_start", self.progress)
        except CompoundError:
            # a successor that never got going (a VM whose guest did not boot,
            # a failed post_start) must not linger beside the instance that keeps serving
            with contextlib.suppress(CompoundError):
                self.driver.stop(inst, 0)
            with contextlib.suppress(CompoundError):
                self.driver.remove(inst, volumes=False)
            raise
        return dataclasses.replace(inst, status="running")

    def _pre_stop(self, inst: Instance) -> None:
        """The predecessor's pre_stop hooks: the file's, as Compose runs them."""
        svc = self.project.services.get(inst.service)
        hooks.pre_stop(self.driver_of(inst), inst, svc)

    def _retire(self, inst: Instance, *, drain: bool) -> None:
        driver = self.driver_of(inst)
        if self.frontend is not None:
            if drain:
                self.progress.update(self.name, "Draining", inst.name)
                self.frontend.drain(inst)
            self.frontend.remove(inst)
        with self.slot():
            self.progress.update(self.name, "Stopping", inst.name)
            driver.stop(inst, self.grace)  # pre_stop already ran (_pre_stop)
            driver.remove(inst, volumes=False)

    # --- the health gate ---------------------------------------------------------------

    def _gate(self, inst: Instance) -> str | None:
        """None once the instance is healthy (or running, without a
        healthcheck) and stays so through the monitor window; else why not."""
        deadline = time.monotonic() + self.health_timeout
        error = self._wait_healthy(inst, deadline)
        if error is not None:
            return error
        # a passing healthcheck already shows the process lives; without one,
        # running for a moment is the least evidence there is
        settle = 0.0 if check_command(self.desired.service.healthcheck) else SETTLE
        window = self.policy.config.monitor or settle
        until = time.monotonic() + window
        while True:
            cur = self.driver.inspect(inst.id)
            error = _unfit(cur)
            if error is not None:
                return error
            if time.monotonic() >= until:
                return None
            self._sleep(min(POLL * 2, max(0.0, until - time.monotonic())))

    def _wait_healthy(self, inst: Instance, deadline: float) -> str | None:
        hc = self.desired.service.healthcheck
        native = self.driver.engine_runs_healthcheck(self.desired.service)
        if not native and check_command(hc) is not None:
            verdict = wait_healthy_with(
                self.driver, inst, hc, deadline=deadline, cancelled=self.cancelled
            )
            if verdict in (None, "healthy"):
                return None
            if verdict == "exited":
                return _unfit(self.driver.inspect(inst.id)) or f"{inst.name} exited"
            return f"{inst.name} is {verdict}"
        while True:
            cur = self.driver.inspect(inst.id)
            error = _unfit(cur)
            if error is not None:
                return error
            if cur.running and cur.health in (None, "healthy"):
                return None
            if not cur.running and cur.exit_code == 0:
                return None  # a one-shot task that completed
            if time.monotonic() > deadline:
                return f"{inst.name} not healthy after {self.health_timeout:.0f}s"
            if self.cancelled():
                return f"{inst.name}: interrupted before it became healthy"
            self._sleep(POLL)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.cancelled() and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))


def _unfit(cur: Instance) -> str | None:
    if cur.status == "restarting":
        return f"{cur.name} is crash-looping (last exit {cur.exit_code})"
    if cur.health == "unhealthy":
        return f"{cur.name} is unhealthy"
    if not cur.running and cur.status != "created" and cur.exit_code not in (0, None):
        return f"{cur.name} exited with code {cur.exit_code}"
    return None
