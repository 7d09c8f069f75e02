"""The recorded hosts as ``compound plan``'s inventory: facts measured on
each host, not typed into a file."""

from __future__ import annotations

from compound.errors import CompoundError
from compound.placement.inventory import Host

from . import records
from .records import HostRecord
from .swarm import node_labels


def host_of(record: HostRecord) -> Host:
    f = record.facts
    return Host(
        name=record.name,
        cpus=float(f.get("cpus") or 1),
        memory=int(f.get("memory") or 0) or 1,
        host_class="bare-metal" if f.get("class") == "bare-metal" else "virtual",
        os="windows" if f.get("os") == "windows" else "linux",
        # "present, not boot-probed" is no promise: only a probed KVM counts
        kvm=f.get("kvm") is True,
        # the facts as Swarm node labels too: constraints on compound.* match
        labels=node_labels(record),
        tenant=record.tenant,
    )


def recorded_inventory() -> list[Host]:
    hosts = [host_of(r) for r in records.load_all()]
    if not hosts:
        raise CompoundError(
            "no hosts to plan on: no --hosts file given and no host recorded",
            hint="pass --hosts hosts.yaml, or record hosts with `compound host create`",
        )
    return hosts
