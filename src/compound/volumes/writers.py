"""Who uses a volume, and holding its writers still for a consistent backup.

Users are found by the engine (``volume=`` filter on containers), so a VM's
launcher, a one-off `compound run` and a container of another project are
all seen. Pausing goes through each instance's driver: containers are frozen
by the engine (``docker pause``); VMs sync their page cache to the share
through the guest agent and then stop their vCPUs over QMP. Whatever was
paused is resumed on the way out, whatever happened inside, Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from compound.engine import Client, containers
from compound.errors import CompoundError, NoSuchInstanceError
from compound.reconcile.session import Session
from compound.runtimes.base import Instance
from compound.runtimes.instances import inspect_instance


def instances_using(
    client: Client,
    volume: str,
    *,
    running_only: bool = False,
    writers_only: bool = False,
) -> list[Instance]:
    """Every container (of any project, or none) that mounts ``volume``
    (read-write, with ``writers_only``: a reader needs no pause)."""
    rows = containers.list_containers(
        client,
        include_stopped=not running_only,
        filters={"volume": volume},
        what=f"list the containers using volume {volume!r}",
    )
    found = []
    for row in rows:
        with contextlib.suppress(NoSuchInstanceError):
            inst = inspect_instance(client, row["Id"])
            if any(_mounts(row, volume, writers_only)):
                found.append(inst)
    return sorted(found, key=lambda i: i.name)


def _mounts(row: dict[str, Any], volume: str, writers_only: bool = False) -> Iterator[bool]:
    # the engine's filter also matches a mount *destination* equal to the name
    for m in row.get("Mounts") or ():
        ours = m.get("Type") == "volume" and m.get("Name") == volume
        yield ours and (m.get("RW", True) or not writers_only)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C while resuming would leave writers frozen: hold it until done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda *a: pressed.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pressed:
            raise KeyboardInterrupt


@contextlib.contextmanager
def paused(session: Session, instances: Sequence[Instance]) -> Iterator[list[Instance]]:
    """Pause the running ones among ``instances``; the ones actually paused
    (not those already paused by someone else) are resumed on exit."""
    done: list[Instance] = []
    try:
        for inst in instances:
            if inst.status == "running" and session.driver_for(inst).pause(inst):
                done.append(inst)
        yield list(done)
    finally:
        with _sigint_deferred():
            failures = []
            for inst in reversed(done):
                try:
                    session.driver_for(inst).unpause(inst)
                except CompoundError as exc:
                    failures.append(f"{inst.name}: {exc.message}")
            if failures:
                raise CompoundError(
                    "could not resume: " + "; ".join(failures),
                    hint="resume by hand: `docker unpause NAME` (a VM: QMP `cont`)",
                )
