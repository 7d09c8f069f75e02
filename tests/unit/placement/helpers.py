from __future__ import annotations

from typing import Any

from compound.placement import Host, ServiceDemand

GiB = 1024**3


def dem(
    service: str, replicas: int = 1, cpus: float = 1, memory: int = GiB, **kw: Any
) -> ServiceDemand:
    kw.setdefault("runtime", "container")
    return ServiceDemand(
        project=kw.pop("project", "p"),
        service=service,
        replicas=replicas,
        cpus=cpus,
        memory=memory,
        **kw,
    )


def host(name: str, cpus: float = 8, memory: int = 32 * GiB, **kw: Any) -> Host:
    return Host(name=name, cpus=cpus, memory=memory, **kw)


def hosts(n: int, **kw: Any) -> list[Host]:
    return [host(f"h{i}", **kw) for i in range(n)]


def where(packing, service: str) -> list[str]:
    d = next(i for i, x in enumerate(packing.demands) if x.service == service)
    return [packing.hosts[h].name for h in packing.assignment[d]]
