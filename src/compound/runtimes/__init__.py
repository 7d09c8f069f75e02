"""Runtimes: what turns a service into running instances.

base.py      the one Driver interface, Capabilities, Instance, the io.compound.* labels
kind.py      Runtime, the typed name of a runtime
registry.py  the driver of each runtime (made on first use), every runtime's host checks
hostcheck.py host checks (a driver's fingerprint, `compound doctor`)
container.py, container_config.py, container_checks.py   containers
instances.py the actual state (one label query); images.py: pull and build
vm/          VMs: a QEMU guest inside a launcher container
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from compound.lazy import exports

if TYPE_CHECKING:
    from .base import Capabilities, Driver, Fingerprint, HostCheck, Instance, LogLine, Processes
    from .kind import Runtime

__all__ = [
    "Capabilities",
    "Driver",
    "Fingerprint",
    "HostCheck",
    "Instance",
    "LogLine",
    "Processes",
    "Runtime",
]

# resolved on first use (PEP 562): `runtimes.hostops` (atomic writes, used by
# hosts/ on the Swarm path) must not import the driver interface and the model
_HOMES = {name: ".base" for name in __all__ if name != "Runtime"} | {"Runtime": ".kind"}


__getattr__ = exports(__name__, _HOMES)
