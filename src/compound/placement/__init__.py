"""Capacity planning: which host each instance of one or more applications
runs on (``compound plan``), and whether one host can hold an application
(the check before ``up``).

Not to be confused with :mod:`compound.planner`, which computes what ``up``
must change. Public surface::

    load_hosts(path) -> list[Host]
    place(projects, hosts, *, host_facts=None, image_facts=None) -> Packing
    host_shortfall(project, host, *, advice=None, host_facts=None) -> Packing
    capacity_warnings(project, host, *, advice=None, host_facts=None) -> list[str]
    service_demands(project, ...) -> list[ServiceDemand];  pack(demands, hosts) -> Packing
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from compound.advisor.decide import Advice
from compound.advisor.evidence import HostFacts, ImageFacts
from compound.errors import UsageError
from compound.placement.demand import (
    VM_OVERHEAD_CPUS,
    VM_OVERHEAD_MEMORY,
    Constraint,
    ServiceDemand,
    parse_constraint,
    service_demands,
)
from compound.placement.inventory import Host, host_from_facts, load_hosts, parse_hosts
from compound.placement.pack import LowerBound, Packing, Unplaced, lower_bound, pack
from compound.spec.model import Project

__all__ = [
    "VM_OVERHEAD_CPUS",
    "VM_OVERHEAD_MEMORY",
    "Constraint",
    "Host",
    "LowerBound",
    "Packing",
    "ServiceDemand",
    "Unplaced",
    "capacity_warnings",
    "host_from_facts",
    "host_shortfall",
    "load_hosts",
    "lower_bound",
    "pack",
    "parse_constraint",
    "parse_hosts",
    "place",
    "service_demands",
]


def place(
    projects: Sequence[Project],
    hosts: Sequence[Host],
    *,
    host_facts: HostFacts | None = None,
    image_facts: Mapping[str, ImageFacts] | None = None,
    strategy: str = "balanced",
) -> Packing:
    """Place every instance of ``projects`` on ``hosts``. Runtimes follow the
    files, ``runtime: auto`` follows the advisor."""
    names = [p.name for p in projects]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(
            f"two applications are both named {dupes[0]!r}",
            hint="give each application its own project name (top-level `name:` or -p)",
        )
    demands = [
        d
        for p in projects
        for d in service_demands(p, host_facts=host_facts, image_facts=image_facts)
    ]
    return pack(demands, hosts, strategy=strategy)


def host_shortfall(
    project: Project,
    host: Host,
    *,
    advice: Sequence[Advice] | None = None,
    host_facts: HostFacts | None = None,
) -> Packing:
    """Pack ``project`` onto the one host ``up`` runs on, for capacity only:
    placement constraints, spread and tenants mean nothing on one host, and a
    VM without KVM still runs (slowly, under TCG)."""
    demands = [
        replace(
            d,
            os=host.os if d.runtime == "container" else d.os,
            tenant=None,
            required_class=None,
            constraints=(),
            spread=None,
            max_per_host=None,
        )
        for d in service_demands(project, advice=advice, host_facts=host_facts)
    ]
    local = replace(host, tenant=None)
    return pack(demands, [local], vm_needs_kvm=False)


def capacity_warnings(
    project: Project,
    host: Host,
    *,
    advice: Sequence[Advice] | None = None,
    host_facts: HostFacts | None = None,
) -> list[str]:
    """What ``up`` should warn about before starting; empty when all fits."""
    packing = host_shortfall(project, host, advice=advice, host_facts=host_facts)
    if not packing.unplaced:
        return []
    need_c = sum(d.cpus * d.replicas for d in packing.demands)
    need_m = sum(d.memory * d.replicas for d in packing.demands)
    gib = 1024**3
    out = [
        f"reservations need {need_c:g} CPUs and {need_m / gib:.1f} GiB; host {host.name} has "
        f"{host.cpus:g} CPUs and {host.memory / gib:.1f} GiB"
    ]
    by_key = {d.key: d for d in packing.demands}
    for u in packing.unplaced:
        d = by_key[u.key]
        names = ", ".join(d.instance_name(n) for n in u.numbers[:5])
        more = f" and {len(u.numbers) - 5} more" if len(u.numbers) > 5 else ""
        out.append(f"{names}{more} would not fit: {u.reason}")
    return out
