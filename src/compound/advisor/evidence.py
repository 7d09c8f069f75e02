"""Facts about a service that the rules read: from the Compose file, the
image, the hints, the other services of the project and the host.

Everything a rule may test is a field of :class:`Evidence`, computed once, so
the rule table stays a list of one-line predicates. Nothing here decides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from compound.advisor.hints import Hints
from compound.spec.model import Project, Service

GiB = 1024**3
MiB = 1024**2

# Per-instance demand when the file declares neither reservations nor limits:
# a quarter of a CPU and 256 MiB, roughly an idle web service or sidecar.
# Small on purpose: unknown demand should not open hosts on its own.
DEFAULT_CPUS = 0.25
DEFAULT_MEMORY = 256 * MiB

# The "physical box" of the capacity factor when the host's own size is not
# known (or the host is itself a VM): a common 2-socket server slice.
REFERENCE_BOX_CPUS = 32.0
REFERENCE_BOX_MEMORY = 128 * GiB
SMALL_SHARE = 0.25  # below: "does not fill a physical box"
LARGE_SHARE = 0.5  # at or above: "fills a physical box"

# Capabilities whose use in a container reaches into the shared host kernel.
KERNEL_CAPS = frozenset({"SYS_MODULE"})
ADMIN_CAPS = frozenset({"SYS_ADMIN"})
NET_CAPS = frozenset({"NET_ADMIN"})

# Host paths that only make sense when the workload sees *this* host's kernel.
SYSTEM_PATHS = (
    "/",
    "/proc",
    "/sys",
    "/dev",
    "/lib/modules",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/lib/docker",
    "/boot",
)

# Sysctls Docker lets a container set in its own namespaces; any other sysctl
# changes the host kernel (Docker refuses it), so it needs a kernel of its own.
_NAMESPACED_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def normalise_arch(arch: str | None) -> str | None:
    if not arch:
        return None
    base = arch.lower().split("/")[0]
    return _ARCH_ALIASES.get(base, base)


@dataclass(frozen=True)
class HostFacts:
    """What ``compound doctor`` knows about the host; ``None`` = unknown."""

    kvm_usable: bool | None = None
    host_is_vm: bool | None = None
    os: str | None = None  # None: linux, the only OS compound itself runs on
    arch: str | None = None
    cpus: float | None = None
    memory: int | None = None  # bytes

    def to_json(self) -> dict[str, object]:
        return {
            "kvm_usable": self.kvm_usable,
            "host_is_vm": self.host_is_vm,
            "os": self.os,
            "arch": self.arch,
            "cpus": self.cpus,
            "memory": self.memory,
        }


@dataclass(frozen=True)
class ImageFacts:
    """From the image config (``docker image inspect``): Os and Architecture."""

    os: str | None = None
    arch: str | None = None


@dataclass(frozen=True)
class Demand:
    """Per-instance demand and where each number came from."""

    cpus: float
    memory: int
    cpus_from: str  # reservations | limits | cpus | default
    memory_from: str  # reservations | mem_reservation | limits | mem_limit | default
    declared_reservation: bool  # the file reserves something (a guarantee, not a cap)


def instance_demand(service: Service) -> Demand:
    """Reservations first (what the instance is guaranteed), then limits (what
    it may use), then the legacy top-level keys, then the documented defaults."""
    res = service.deploy.resources
    cpus: float
    if res.reservations.cpus:
        cpus, cpus_from = res.reservations.cpus, "reservations"
    elif res.limits.cpus:
        cpus, cpus_from = res.limits.cpus, "limits"
    elif service.cpus:
        cpus, cpus_from = service.cpus, "cpus"
    else:
        cpus, cpus_from = DEFAULT_CPUS, "default"
    memory: int
    if res.reservations.memory:
        memory, memory_from = res.reservations.memory, "reservations"
    elif service.mem_reservation:
        memory, memory_from = service.mem_reservation, "mem_reservation"
    elif res.limits.memory:
        memory, memory_from = res.limits.memory, "limits"
    elif service.mem_limit:
        memory, memory_from = service.mem_limit, "mem_limit"
    else:
        memory, memory_from = DEFAULT_MEMORY, "default"
    declared = bool(res.reservations.cpus or res.reservations.memory or service.mem_reservation)
    return Demand(cpus, memory, cpus_from, memory_from, declared)


@dataclass(frozen=True)
class Evidence:
    """Every fact a rule may test, for one service."""

    service: str
    declared_runtime: str  # container | vm | auto
    hints: Hints
    host: HostFacts
    privileged: bool
    caps: frozenset[str]  # cap_add, upper case, without CAP_
    devices: tuple[str, ...]
    host_namespaces: tuple[str, ...]  # network, pid, ipc shared with the host
    kernel_sysctls: tuple[str, ...]  # sysctls a container may not set
    system_mounts: tuple[str, ...]  # bind mounts of /proc, /sys, the Docker socket, ...
    host_binds: tuple[str, ...]  # other bind mounts of host paths
    stateful_volumes: tuple[str, ...]  # named volumes mounted read-write
    replicas: int
    healthcheck: bool
    os: str  # linux | windows
    os_from: str  # hint | image | platform | default
    arch: str | None
    demand: Demand
    box_share: float  # replicas x demand as a share of one physical box (dominant resource)
    other_tenants: tuple[str, ...] = ()  # tenants of other services, when they differ
    project_os: tuple[str, ...] = ()  # operating systems present in the project
    vm_disk: bool = False  # x-compound.vm.disk: a legacy VM disk, a VM by nature

    # --- derived facts the rules read ---

    @property
    def tenant(self) -> str | None:
        return self.hints.tenant

    @property
    def untrusted(self) -> bool:
        return self.hints.trust == "untrusted"

    @property
    def trusted(self) -> bool:
        return self.hints.trust == "trusted"

    @property
    def latency_critical(self) -> bool:
        return self.hints.latency == "critical"

    @property
    def multitenant(self) -> bool:
        return self.tenant is not None and bool(self.other_tenants)

    @property
    def isolation_needed(self) -> bool:
        return self.multitenant or self.untrusted

    @property
    def agile(self) -> bool:
        return self.replicas > 1 or self.hints.density

    @property
    def host_os(self) -> str:
        return self.host.os or "linux"

    @property
    def foreign_arch(self) -> bool:
        host = normalise_arch(self.host.arch)
        return bool(self.arch and host and self.arch != host)

    @property
    def mixed_os(self) -> bool:
        return len(self.project_os) > 1

    def facts(self) -> dict[str, str]:
        """Values the rule texts quote (``{tenant}``, ``{caps}``, ...)."""
        return {
            "service": self.service,
            "tenant": self.tenant or "-",
            "other_tenants": ", ".join(self.other_tenants) or "-",
            "os": self.os,
            "os_from": self.os_from,
            "arch": self.arch or "-",
            "host_arch": normalise_arch(self.host.arch) or "-",
            "host_os": self.host_os,
            "caps": ", ".join(sorted(self.caps)) or "-",
            "devices": ", ".join(self.devices) or "-",
            "namespaces": ", ".join(self.host_namespaces) or "-",
            "sysctls": ", ".join(self.kernel_sysctls) or "-",
            "system_mounts": ", ".join(self.system_mounts) or "-",
            "binds": ", ".join(self.host_binds) or "-",
            "volumes": ", ".join(self.stateful_volumes) or "-",
            "replicas": str(self.replicas),
            "kernel": self.hints.kernel.describe() if self.hints.kernel else "-",
            "share": f"{self.box_share:.0%}",
            "project_os": " and ".join(self.project_os) or "-",
        }


def _image_os(service: Service, hints: Hints, image: ImageFacts | None) -> tuple[str, str]:
    if hints.os:
        return hints.os, "hint"
    if image and image.os:
        return image.os.lower(), "image"
    if service.platform:
        return service.platform.split("/")[0].lower(), "platform"
    return "linux", "default"


def _image_arch(service: Service, image: ImageFacts | None) -> str | None:
    if image and image.arch:
        return normalise_arch(image.arch)
    if service.platform and "/" in service.platform:
        return normalise_arch(service.platform.split("/")[1])
    return None


def _cap(name: str) -> str:
    name = name.upper()
    return name[4:] if name.startswith("CAP_") else name


def _is_system_path(path: str) -> bool:
    clean = path.rstrip("/") or "/"
    return any(clean == p or (p != "/" and clean.startswith(p + "/")) for p in SYSTEM_PATHS)


def _kernel_sysctl(name: str, host_network: bool) -> bool:
    if name in _NAMESPACED_SYSCTLS or name.startswith("fs.mqueue."):
        return False
    # net.* is per network namespace, unless the container shares the host's
    return not (name.startswith("net.") and not host_network)


def service_evidence(
    service: Service,
    hints: Hints,
    host: HostFacts | None = None,
    image: ImageFacts | None = None,
) -> Evidence:
    """Facts of one service alone; project-wide facts are added by
    :func:`project_evidence`."""
    host = host or HostFacts()
    caps = frozenset(_cap(c) for c in service.cap_add)
    namespaces = tuple(
        ns
        for ns, mode in (
            ("network", service.network_mode),
            ("pid", service.pid),
            ("ipc", service.ipc),
        )
        if mode == "host"
    )
    host_network = "network" in namespaces
    binds = [v.source for v in service.volumes if v.type == "bind" and v.source]
    system = tuple(b for b in binds if _is_system_path(b))
    other_binds = tuple(b for b in binds if not _is_system_path(b))
    stateful = tuple(
        v.source for v in service.volumes if v.type == "volume" and v.source and not v.read_only
    )
    sysctls = tuple(sorted(k for k in service.sysctls if _kernel_sysctl(k, host_network)))
    os_name, os_from = _image_os(service, hints, image)
    demand = instance_demand(service)
    box_cpus, box_memory = REFERENCE_BOX_CPUS, REFERENCE_BOX_MEMORY
    if host.cpus and host.memory and host.host_is_vm is False:
        box_cpus, box_memory = host.cpus, host.memory
    replicas = max(service.replicas, 1) if service.deploy.mode != "global" else 1
    share = max(demand.cpus * replicas / box_cpus, demand.memory * replicas / box_memory)
    hc = service.healthcheck
    healthcheck = bool(
        hc and not hc.disable and hc.test is not None and tuple(hc.test[:1]) != ("NONE",)
    )
    return Evidence(
        service=service.name,
        declared_runtime=service.x_compound.runtime,
        hints=hints,
        host=host,
        privileged=service.privileged,
        caps=caps,
        devices=tuple(service.devices),
        host_namespaces=namespaces,
        kernel_sysctls=sysctls,
        system_mounts=system,
        host_binds=other_binds,
        stateful_volumes=stateful,
        replicas=service.replicas,
        healthcheck=healthcheck,
        os=os_name,
        os_from=os_from,
        arch=_image_arch(service, image),
        demand=demand,
        box_share=0.0 if math.isnan(share) else share,
        vm_disk=bool(service.x_compound.vm.disk),
    )


def project_evidence(
    project: Project,
    hints: Mapping[str, Hints],
    host: HostFacts | None = None,
    images: Mapping[str, ImageFacts] | None = None,
) -> dict[str, Evidence]:
    """Evidence of every service, including what only the whole project shows:
    neighbours of other tenants and a mix of operating systems.

    Only services with a ``tenant`` hint count as tenants: an absent hint means
    "no tenancy requirement", not "a tenant of its own"."""
    images = images or {}
    single = {
        name: service_evidence(svc, hints[name], host, images.get(name))
        for name, svc in project.services.items()
    }
    tenants = {name: ev.tenant for name, ev in single.items() if ev.tenant is not None}
    oses = tuple(sorted({ev.os for ev in single.values()}))
    out: dict[str, Evidence] = {}
    for name, ev in single.items():
        others = tuple(
            sorted({t for other, t in tenants.items() if other != name and t != ev.tenant})
        )
        out[name] = replace(ev, other_tenants=others if ev.tenant else (), project_os=oses)
    return out
