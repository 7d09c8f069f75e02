"""The LB container of one service: ``{project}-{service}-lb``.

It publishes exactly the service's published ports (host IP, host port and
protocol as declared) and sits on the service's networks under its own
name only: the service name keeps resolving to the instances themselves,
so traffic between services does not pass through it. HAProxy's config and
admin socket live in a host directory bind-mounted at /compound/lb, so
compound talks to HAProxy from the host without ``docker exec``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compound import __version__
from compound.engine import Client, containers
from compound.engine.request import ContainerRequest, NetworkAttachment
from compound.errors import NotSupportedError, ServiceError
from compound.runtimes.base import (
    LABEL_CONFIG_HASH,
    LABEL_PROJECT,
    LABEL_ROLE,
    LABEL_SERVICE,
    LABEL_VERSION,
    ROLE_LB,
    Instance,
)
from compound.runtimes.container_config import service_networks
from compound.runtimes.hostops import digest
from compound.runtimes.instances import list_load_balancers
from compound.spec.model import Project, Service

from .config import HEALTH_PORT, RUN_DIR, Mode
from .image import cache_dir


@dataclass(frozen=True)
class LBSpec:
    """Everything the LB container is made from; its digest is a label, and
    an LB whose label differs is replaced."""

    project: str
    service: str
    image: str  # tag of the LB image
    mode: Mode
    maxconn: int | None
    targets: tuple[int, ...]
    ports: tuple[tuple[int, str, str], ...]  # (target, host_ip, published) of each published port
    networks: tuple[str, ...]  # engine names; the first is where backends are reached

    @property
    def name(self) -> str:
        return lb_name(self.project, self.service)

    def digest(self) -> str:
        return digest(
            {
                "image": self.image,
                "mode": self.mode,
                "maxconn": self.maxconn,
                "targets": self.targets,
                "ports": self.ports,
                "networks": self.networks,
                "sysctls": SYSCTLS,
            }
        )


# A balancer opens a new connection to a backend per request (http-server-close
# backends such as busybox httpd): without reusing TIME_WAIT ports, a few
# thousand requests a second exhaust the ephemeral range and connects stall
# for a second (measured: p99 0.93 s through the LB vs 0.02 s direct).
SYSCTLS = (
    ("net.ipv4.tcp_tw_reuse", "1"),
    ("net.ipv4.ip_local_port_range", "1024 65535"),
)


# HAProxy's threads (one per CPU) and nothing else run in the balancer.
LB_PIDS = 64
LB_CPUS = 1
# HAProxy itself plus two 16 KiB buffers per connection at maxconn.
LB_BASE_MIB = 64


def lb_memory(maxconn: int | None) -> int:
    return (LB_BASE_MIB << 20) + (maxconn or 4096) * 2 * 16384 * 2


def lb_name(project: str, service: str) -> str:
    return f"{project}-{service}-lb"


def run_dir_for(name: str) -> Path:
    return cache_dir() / "run" / name


def spec_for(project: Project, service: Service, image: str) -> LBSpec:
    if service.network_mode is not None:
        raise NotSupportedError(
            f"service {service.name!r}: a load balancer needs the service on networks, "
            f"not network_mode {service.network_mode!r}"
        )
    ports = []
    for p in service.ports:
        if p.protocol != "tcp":
            raise NotSupportedError(
                f"service {service.name!r}: port {p.target}/{p.protocol} cannot be load-balanced "
                "(HAProxy balances TCP only)",
                hint="publish it from one replica, or drop the replicas",
            )
        ports.append((p.target, p.host_ip or "", p.published or ""))
    if not ports:
        raise ServiceError(service.name, "publishes no ports, so it needs no load balancer")
    networks = []
    for key, _cfg in service_networks(project, service):
        net = project.networks.get(key)
        if net is None:
            raise ServiceError(service.name, f"uses network {key!r}, which is not declared")
        networks.append(net.name)
    if not networks:
        raise ServiceError(service.name, "is on no network the load balancer could share")
    return LBSpec(
        project=project.name,
        service=service.name,
        image=image,
        mode=service.x_compound.lb.mode,
        maxconn=service.x_compound.lb.maxconn,
        targets=tuple(sorted({t for t, _ip, _pub in ports})),
        ports=tuple(sorted(ports)),
        networks=tuple(networks),
    )


def create_args(spec: LBSpec, run_dir: Path) -> dict[str, Any]:
    """``create_container_from_config`` body of the LB container."""
    exposed: dict[str, dict[str, str]] = {f"{t}/tcp": {} for t in spec.targets}
    bindings: dict[str, list[dict[str, str]]] = {}
    for target, host_ip, published in spec.ports:
        bindings.setdefault(f"{target}/tcp", []).append({"HostIp": host_ip, "HostPort": published})
    return {
        "Image": spec.image,
        "Labels": {
            LABEL_PROJECT: spec.project,
            LABEL_SERVICE: spec.service,
            LABEL_ROLE: ROLE_LB,
            LABEL_CONFIG_HASH: spec.digest(),
            LABEL_VERSION: __version__,
        },
        "ExposedPorts": exposed,
        "HostConfig": {
            "NetworkMode": spec.networks[0],
            "PortBindings": bindings,
            "Binds": [f"{run_dir}:{RUN_DIR}"],
            "RestartPolicy": {"Name": "unless-stopped"},
            "Sysctls": dict(SYSCTLS),
            # Least privilege: HAProxy runs in the foreground as root of the
            # container with no capability at all (Docker lets any process
            # bind low ports in a container's namespace), writes only its
            # socket in the run dir, and is bounded in memory, CPU and pids.
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": "rw,nosuid,nodev,size=4m", "/run": "rw,nosuid,nodev,size=4m"},
            "PidsLimit": LB_PIDS,
            "Memory": lb_memory(spec.maxconn),
            "NanoCpus": LB_CPUS * 10**9,
        },
        "Healthcheck": {
            "Test": ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{HEALTH_PORT}"],
            "Interval": 10 * 10**9,
            "Timeout": 3 * 10**9,
            "Retries": 3,
        },
        "NetworkingConfig": {"EndpointsConfig": {spec.networks[0]: {}}},
    }


def find(client: Client, project: str, service: str) -> Instance | None:
    return next((i for i in list_load_balancers(client, project) if i.service == service), None)


def create(client: Client, spec: LBSpec, run_dir: Path) -> str:
    """Create and connect (not start) the LB container; its id."""
    request = ContainerRequest(
        config=create_args(spec, run_dir),
        name=spec.name,
        networks=tuple(NetworkAttachment(net) for net in spec.networks[1:]),
    )
    return containers.create(client, request, kind="load balancer")


def start(client: Client, name: str, cid: str) -> None:
    containers.start(client, cid, what=f"start load balancer {name}")


def remove_container(client: Client, cid: str) -> None:
    containers.remove(client, cid)


def remove_run_dir(name: str) -> None:
    shutil.rmtree(run_dir_for(name), ignore_errors=True)


def ip_on(inst: Instance, network: str) -> str | None:
    ips: dict[str, str | None] = inst.details.get("ip_addresses") or {}
    return ips.get(network) or None
