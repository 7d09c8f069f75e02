"""The driver of each runtime, made on first use.

The one place that maps a :class:`~compound.runtimes.kind.Runtime` to its
driver class: a project of containers never imports (or pays for) the VM
machinery, and a new runtime is one entry here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import docker

from compound.runtimes.base import Driver
from compound.runtimes.hostcheck import CheckDef
from compound.runtimes.kind import Runtime


class RuntimeDrivers(Mapping[str, Driver]):
    """Keyed by :class:`Runtime` (a ``StrEnum``, so a label's string finds it too)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._made: dict[Runtime, Driver] = {}

    def __getitem__(self, runtime: str) -> Driver:
        try:
            kind = Runtime(runtime)
        except ValueError:
            raise KeyError(runtime) from None
        if kind not in self._made:
            self._made[kind] = self._make(kind)
        return self._made[kind]

    def _make(self, kind: Runtime) -> Driver:
        from compound.runtimes.container import ContainerDriver

        if kind is Runtime.CONTAINER:
            return ContainerDriver(self._client)
        from compound.runtimes.vm.driver import VMDriver

        # a VM's launcher is a container: the VM driver makes it through this one
        containers = self[Runtime.CONTAINER]
        assert isinstance(containers, ContainerDriver)
        return VMDriver(self._client, containers=containers)

    def __iter__(self) -> Iterator[str]:
        return iter(Runtime)

    def __len__(self) -> int:
        return len(Runtime)


def driver_class(kind: Runtime) -> type[Driver]:
    """The class of a runtime's driver (imports only that runtime)."""
    if kind is Runtime.CONTAINER:
        from compound.runtimes.container import ContainerDriver

        return ContainerDriver
    from compound.runtimes.vm.driver import VMDriver

    return VMDriver


def host_checks() -> tuple[CheckDef, ...]:
    """Every runtime's host checks (its fingerprint), in runtime order:
    what `compound doctor` runs."""
    return tuple(check for kind in Runtime for check in driver_class(kind).host_checks())
