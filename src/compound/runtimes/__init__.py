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
