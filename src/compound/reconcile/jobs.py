"""Run-to-completion services (``deploy.mode: replicated-job | global-job``).

Swarm's jobs on one host: ``replicas`` instances (one for a global-job) run
at once, each until its process exits. compound, not the engine, restarts
a failed one, as ``deploy.restart_policy`` says (``on-failure``/``any``:
up to ``max_attempts`` more runs, ``delay`` apart; ``none`` or no policy:
once), so that ``up`` can wait for the outcome and report each exit code;
the engine's restart policy of a job's instance is always ``no``. A
completed instance stays (exited 0): the planner keeps it, so an unchanged
job is not run again; a failed one is run again by the next ``up``. The
same code serves a VM: its launcher exits with the guest entrypoint's code.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from compound.errors import ServiceError
from compound.reconcile import hooks
from compound.reconcile.progress import Progress
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Service

POLL = 0.2
TAIL_LINES = 8


class JobFailed(ServiceError):
    """A job's instance exited non-zero on its last allowed attempt."""


def job_instance_service(service: Service) -> Service:
    """The service as a job's instance is created: no restart by the engine
    (compound counts the attempts)."""
    return service.model_copy(
        update={
            "restart": "no",
            "deploy": service.deploy.model_copy(update={"restart_policy": None}),
        }
    )


def allowed_attempts(service: Service) -> int:
    policy = service.deploy.restart_policy
    if policy is None or policy.condition == "none":
        return 1
    return 1 + (policy.max_attempts or 0)


def _wait_exit(driver: Driver, inst: Instance, cancelled: Callable[[], bool]) -> Instance:
    while True:
        cur = driver.inspect(inst.id)
        if not cur.running and cur.status != "created":
            return cur
        if cancelled():
            raise ServiceError(inst.service, f"interrupted while {inst.name} was running")
        time.sleep(POLL)


def _output_tail(driver: Driver, inst: Instance) -> str:
    with contextlib.suppress(Exception):  # the outcome matters more than its output
        lines = [ln.text for ln in driver.logs(inst, tail=TAIL_LINES)]
        return "\n".join("    " + line for line in lines if line.strip())
    return ""


def run_to_completion(
    driver: Driver,
    service: Service,
    inst: Instance,
    *,
    start: bool,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> Instance:
    """Start ``inst`` (unless it runs already), wait for it to exit, run it
    again on failure while the restart policy allows; the exited instance."""
    allowed = allowed_attempts(service)
    policy = service.deploy.restart_policy
    delay = policy.delay if policy is not None and policy.delay else 0.0
    attempt = 0
    while True:
        attempt += 1
        if start:
            progress.update(service.name, "Running", f"{inst.name} (attempt {attempt}/{allowed})")
            driver.start(inst)
            hooks.run_hooks(driver, inst, service, "post_start", progress)
        start = True
        cur = _wait_exit(driver, inst, cancelled)
        if cur.exit_code == 0:
            progress.update(service.name, "Running", f"{inst.name} completed")
            return cur
        if attempt >= allowed:
            tail = _output_tail(driver, cur)
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise JobFailed(
                service.name,
                f"job instance {cur.name} failed: exit code {cur.exit_code}{tries}"
                + (f"; its output ends:\n{tail}" if tail else ""),
                hint=f"see `compound logs {service.name}`; the next `compound up` runs the"
                " failed instances again",
            )
        progress.update(
            service.name,
            "Retrying",
            f"{inst.name} exited with code {cur.exit_code}; attempt {attempt + 1}/{allowed}",
        )
        end = time.monotonic() + delay
        while time.monotonic() < end and not cancelled():
            time.sleep(min(POLL, max(0.0, end - time.monotonic())))


def describe(instances: list[Instance]) -> str:
    """'2 completed' or '1 completed, 1 failed (exit 3)'."""
    ok = sum(1 for i in instances if i.exit_code == 0)
    failed = [i for i in instances if i.exit_code != 0]
    parts = [f"{ok} completed"] if ok or not failed else []
    parts += [f"{i.name} failed (exit {i.exit_code})" for i in failed]
    return ", ".join(parts)
