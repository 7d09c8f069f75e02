"""What a service's placement demand requires of a node, as Swarm node
constraints on the labels compound puts on every node (``compound.*``,
see :mod:`compound.hosts.swarm`). Never a particular node: Swarm must stay
free to reschedule when one is lost."""

from __future__ import annotations

from dataclasses import replace

from compound.placement.demand import ServiceDemand

LABEL_PREFIX = "compound."


def node_constraints(demand: ServiceDemand | None) -> list[str]:
    if demand is None:
        return []
    out = []
    if demand.runtime == "container":
        # containers share the node's kernel: only with their own tenant's
        # (the planner decides which nodes those are; hosts/deploy.label_kernels)
        out.append(f"node.labels.{LABEL_PREFIX}kernel == {demand.tenant or 'none'}")
    if demand.required_class:
        out.append(f"node.labels.{LABEL_PREFIX}class == {demand.required_class}")
    if demand.runtime == "vm":
        # KVM unless the file accepts TCG (x-compound.vm.accel: tcg)
        label = "vm" if demand.tcg_ok else "kvm"
        out.append(f"node.labels.{LABEL_PREFIX}{label} == yes")
    if demand.os != "linux":
        out.append(f"node.platform.os == {demand.os}")
    return out


def vm_services(demands: list[ServiceDemand]) -> list[str]:
    """Services that run as VMs (on the Swarm: services running their launcher)."""
    return sorted(d.service for d in demands if d.runtime == "vm")


def as_swarm_tasks(demands: list[ServiceDemand]) -> dict[str, ServiceDemand]:
    """Each service's demand as a Swarm task meets it: a VM's task runs under
    TCG whatever the node has (a service cannot be given /dev/kvm), so its
    constraint is compound.vm, never compound.kvm."""
    return {d.service: replace(d, tcg_ok=True) if d.runtime == "vm" else d for d in demands}
