"""Healthchecks for runtimes whose engine does not run them (VMs).

The Docker Engine runs a container's healthcheck itself and reports the
status on inspect. A VM's launcher cannot run the check inside the guest,
so compound runs the service's own test through the driver's exec (the
guest agent), with Compose's meaning of interval, timeout, retries and
start_period. Only the status words differ from nothing: healthy,
unhealthy, starting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from compound.errors import CompoundError
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Healthcheck

DEFAULT_INTERVAL = 30.0  # Docker's defaults, so a check means the same on both runtimes
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3


class ExecCapture(Protocol):
    def __call__(
        self, instance: Instance, command: Sequence[str], *, timeout: float = ...
    ) -> tuple[int, bytes, bytes]: ...


def check_command(hc: Healthcheck | None) -> list[str] | None:
    """The argv a healthcheck runs, or None when there is no (enabled) check."""
    if hc is None or hc.disable or not hc.test or hc.test[0] == "NONE":
        return None
    kind, *rest = hc.test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    if kind == "CMD":
        return list(rest)
    return list(hc.test)  # a bare list is an argv, as the engine treats it


def probe_once(exec_capture: ExecCapture, instance: Instance, hc: Healthcheck) -> bool | None:
    """True/False for the check's verdict; None when it could not run at all
    (a guest still booting has no agent yet: that is not a failed check)."""
    argv = check_command(hc)
    if argv is None:
        return True
    try:
        code, _, _ = exec_capture(instance, argv, timeout=hc.timeout or DEFAULT_TIMEOUT)
    except CompoundError:
        return None
    return code == 0


def wait_healthy(
    exec_capture: ExecCapture,
    instance: Instance,
    hc: Healthcheck,
    *,
    deadline: float,
    still_running: Callable[[], bool],
    cancelled: Callable[[], bool] = lambda: False,
) -> str:
    """Run the check until it passes ("healthy"), fails ``retries`` times in a
    row after the start period ("unhealthy"), the instance stops ("exited")
    or the deadline passes ("starting")."""
    interval = hc.interval or DEFAULT_INTERVAL
    retries = hc.retries or DEFAULT_RETRIES
    start_period = hc.start_period or 0.0
    # the first check comes early: a VM has already paid its boot time
    first = min(interval, hc.start_interval or 1.0)
    started = time.monotonic()
    failures = 0
    time.sleep(min(first, max(0.0, deadline - time.monotonic())))
    while True:
        if cancelled():
            return "starting"
        if not still_running():
            return "exited"
        verdict = probe_once(exec_capture, instance, hc)
        if verdict:
            return "healthy"
        if verdict is None:  # not reachable yet: try again soon, count nothing
            if time.monotonic() + 0.5 > deadline:
                return "starting"
            time.sleep(0.5)
            continue
        if time.monotonic() - started > start_period:
            failures += 1
            if failures >= retries:
                return "unhealthy"
        if time.monotonic() + interval > deadline:
            return "starting"
        time.sleep(interval)


def _exec_of(driver: Driver, hc: Healthcheck | None) -> ExecCapture | None:
    """The driver's exec, when there is a check to run and the runtime can run it."""
    if check_command(hc) is None or not driver.capabilities.exec:
        return None
    return driver.exec_capture


def wait_healthy_with(
    driver: Driver,
    instance: Instance,
    hc: Healthcheck | None,
    *,
    deadline: float,
    cancelled: Callable[[], bool] = lambda: False,
) -> str | None:
    """:func:`wait_healthy` through the driver's exec; None when there is no
    check to run or the runtime cannot run one."""
    exec_capture = _exec_of(driver, hc)
    if exec_capture is None or hc is None:
        return None
    return wait_healthy(
        exec_capture,
        instance,
        hc,
        deadline=deadline,
        still_running=lambda: driver.inspect(instance.id).running,
        cancelled=cancelled,
    )


def probe_with(driver: Driver, instance: Instance, hc: Healthcheck | None) -> str | None:
    """One quick check for `ps` (at most 5 s): healthy, unhealthy, starting, or None."""
    exec_capture = _exec_of(driver, hc)
    if exec_capture is None or hc is None:
        return None
    quick = hc.model_copy(update={"timeout": min(hc.timeout or 5.0, 5.0)})
    verdict = probe_once(exec_capture, instance, quick)
    return {True: "healthy", False: "unhealthy", None: "starting"}[verdict]
