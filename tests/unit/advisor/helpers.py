"""Builders for advisor and placement tests: typed models without a loader."""

from __future__ import annotations

from typing import Any

from compound.advisor import Advice, HostFacts, advise
from compound.spec.model import (
    Deploy,
    DeployResources,
    Healthcheck,
    Placement,
    Project,
    Resources,
    Service,
    VMOptions,
    VolumeMount,
    XCompound,
)

GiB = 1024**3
MiB = 1024**2


def svc(
    name: str,
    *,
    runtime: str = "auto",
    hints: dict[str, Any] | None = None,
    replicas: int | None = None,
    cpus: float | None = None,
    memory: int | None = None,
    constraints: tuple[str, ...] = (),
    preferences: tuple[dict[str, str], ...] = (),
    max_per_node: int | None = None,
    mode: str = "replicated",
    healthcheck: bool = False,
    binds: tuple[str, ...] = (),
    volumes: tuple[str, ...] = (),
    vm_disk: str | None = None,
    **kw: Any,
) -> Service:
    mounts = [VolumeMount(type="bind", source=b, target=f"/mnt{i}") for i, b in enumerate(binds)]
    mounts += [
        VolumeMount(type="volume", source=v, target=f"/data{i}") for i, v in enumerate(volumes)
    ]
    deploy = Deploy(
        mode=mode,  # type: ignore[arg-type]
        replicas=replicas,
        resources=DeployResources(reservations=Resources(cpus=cpus, memory=memory)),
        placement=Placement(
            constraints=constraints, preferences=preferences, max_replicas_per_node=max_per_node
        ),
    )
    return Service(
        name=name,
        image=kw.pop("image", f"local/{name}:1"),
        deploy=deploy,
        healthcheck=Healthcheck(test=("CMD", "true")) if healthcheck else None,
        volumes=tuple(mounts),
        x_compound=XCompound(
            runtime=runtime,  # type: ignore[arg-type]
            hints=hints or {},
            vm=VMOptions(disk=vm_disk),
        ),
        **kw,
    )


def proj(*services: Service, name: str = "demo", files: tuple[str, ...] = ()) -> Project:
    return Project(
        name=name, working_dir="/tmp", files=files, services={s.name: s for s in services}
    )


def advice_for(project: Project, service: str, host: HostFacts | None = None, **kw: Any) -> Advice:
    return advise(project, host, [service], **kw)[0]


def one(service: Service, host: HostFacts | None = None) -> Advice:
    """Advice for a service alone in its project."""
    return advice_for(proj(service), service.name, host)


def fired(advice: Advice) -> set[str]:
    return {f.rule for f in advice.factors}
