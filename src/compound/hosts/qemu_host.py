"""``--driver qemu``: a Debian VM with docker.io as a Docker host (not built yet)."""

from __future__ import annotations

from collections.abc import Callable

from compound.errors import NotSupportedError

from .records import HostRecord

_HINT = "use --driver ssh for an existing VM, or --driver nested for a host on this machine"


def create(record: HostRecord, progress: Callable[[str], None]) -> None:
    raise NotSupportedError(
        f"host {record.name!r}: --driver qemu is not implemented yet", hint=_HINT
    )


def running(record: HostRecord) -> bool:
    return False


def start(record: HostRecord, progress: Callable[[str], None]) -> None:
    raise NotSupportedError(
        f"host {record.name!r}: --driver qemu is not implemented yet", hint=_HINT
    )


def stop(record: HostRecord) -> None:
    raise NotSupportedError(
        f"host {record.name!r}: --driver qemu is not implemented yet", hint=_HINT
    )


def destroy(record: HostRecord) -> None:
    return None
