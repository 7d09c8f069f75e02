"""Compose service model → Docker Engine container-create request, as a pure function.

:func:`build_create_args` returns the JSON body of ``POST /containers/create``
(Config + HostConfig + NetworkingConfig, in the engine's own field names) plus
what must happen between create and start: networks beyond the first (API
< 1.44 accepts one endpoint at create time) and secret/config files whose
content is written into the container. No engine is needed to call it, so
every Compose option's meaning is pinned by unit tests.

The mapping follows Docker Compose v2 (``pkg/compose/create.go``): names
``{project}-{service}-{number}``, the service name as a network alias,
deploy.resources.limits over mem_limit/cpus, deploy.restart_policy over
restart, secrets from files as read-only binds.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import posixpath
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compound import __version__
from compound.engine.request import ContainerRequest, NetworkAttachment
from compound.errors import NotSupportedError, ServiceError
from compound.runtimes.base import (
    LABEL_CONFIG_HASH,
    LABEL_IMAGE_ID,
    LABEL_NUMBER,
    LABEL_ONEOFF,
    LABEL_PROJECT,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    LABEL_VERSION,
)
from compound.spec.model import (
    FileObject,
    FileReference,
    Healthcheck,
    Project,
    Service,
    ServiceNetwork,
    VolumeMount,
)

RUNTIME = "container"

# Given a service name, the id of its instance 1 (for network_mode/ipc/pid
# "service:x", which the engine only understands as "container:<id>").
Resolver = Callable[[str], str]

SECRETS_DIR = "/run/secrets"
DEFAULT_FILE_MODE = 0o444  # Compose's default for secrets and configs


@dataclass(frozen=True)
class InjectedFile:
    """A secret/config with inline content, written into the container before start."""

    path: str
    content: bytes
    mode: int = DEFAULT_FILE_MODE
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class CreateArgs:
    name: str
    config: dict[str, Any]  # body of POST /containers/create
    platform: str | None = None
    networks: tuple[NetworkAttachment, ...] = ()  # connect after create, before start
    files: tuple[InjectedFile, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    def request(self) -> ContainerRequest:
        """What the engine is sent: the create body, the extra networks, the
        files as one tar (engine/containers.py creates it)."""
        return ContainerRequest(
            config=self.config,
            name=self.name,
            platform=self.platform,
            networks=self.networks,
            archive=files_tar(self.files) if self.files else None,
        )


def files_tar(files: Sequence[InjectedFile]) -> bytes:
    """A tar to extract at "/" that creates each file with its mode and owner."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid, info.mtime = (
                len(f.content),
                f.mode,
                f.uid,
                f.gid,
                now,
            )
            tar.addfile(info, io.BytesIO(f.content))
    return buf.getvalue()


# --- names -----------------------------------------------------------------


def container_name(
    project: Project, service: Service, number: int, oneoff_suffix: str | None = None
) -> str:
    if oneoff_suffix is not None:
        return f"{project.name}-{service.name}-run-{oneoff_suffix}"
    if service.container_name:
        if number != 1:
            raise ServiceError(
                service.name,
                f"container_name {service.container_name!r} names one container; "
                f"it cannot have instance {number}",
                hint="remove container_name or keep the service at one replica",
            )
        return service.container_name
    return f"{project.name}-{service.name}-{number}"


def image_ref(project: Project, service: Service) -> str:
    """The image an instance runs: ``image``, else Compose v2's ``{project}-{service}``."""
    if service.image:
        return service.image
    if service.build is not None or service.x_compound.vm.disk:
        # a VM disk service has no image; the name stands for it in labels
        return f"{project.name}-{service.name}"
    raise ServiceError(service.name, "has neither `image` nor `build`", hint="add one of them")


def instance_labels(
    project: Project,
    service: Service,
    number: int,
    config_hash: str,
    image_id: str,
    oneoff: bool = False,
) -> dict[str, str]:
    labels = dict(service.labels)
    labels.update(
        {
            LABEL_PROJECT: project.name,
            LABEL_SERVICE: service.name,
            LABEL_NUMBER: str(number),
            LABEL_CONFIG_HASH: config_hash,
            LABEL_RUNTIME: RUNTIME,
            LABEL_IMAGE_ID: image_id,
            LABEL_ONEOFF: "true" if oneoff else "false",
            LABEL_VERSION: __version__,
        }
    )
    return labels


# --- the whole request -------------------------------------------------------


def build_create_args(
    project: Project,
    service: Service,
    number: int,
    config_hash: str,
    image_id: str,
    resolver: Resolver | None = None,
    *,
    api_version: str = "1.41",
    oneoff_suffix: str | None = None,
    environ: Mapping[str, str] | None = None,
    name: str | None = None,
) -> CreateArgs:
    """Everything needed to create instance ``number`` of ``service``.

    ``oneoff_suffix`` makes a ``compound run`` container (``{p}-{s}-run-{suffix}``,
    no service alias). ``environ`` is where secrets with an ``environment``
    source are looked up after ``project.environment`` (default: os.environ).
    """
    resolve = resolver or _no_resolver
    oneoff = oneoff_suffix is not None
    labels = instance_labels(project, service, number, config_hash, image_id, oneoff)
    network_mode, attachments = network_plan(project, service, resolve, oneoff)
    first, rest = (attachments[0], tuple(attachments[1:])) if attachments else (None, ())
    _check_mac_addresses(service, rest, api_version)
    _check_endpoint_keys(service, api_version)
    exposed, port_bindings = ports(service)
    binds, mounts = volume_mounts(project, service, api_version)
    file_mounts, files = file_objects(project, service, environ)

    config = process_config(service, api_version)
    config.update(Image=image_ref(project, service), Labels=labels, ExposedPorts=exposed or None)
    if first is not None and first.mac_address and _api_lt(api_version, "1.44"):
        # Before API 1.44 the create-time endpoint's MAC lives in Config.
        config["MacAddress"] = first.mac_address
        first = dataclasses.replace(first, mac_address=None)
    host = host_config(service, resolve)
    host.update(engine_host_config(service, resolve, api_version))
    if service.engine.mac_address and first is not None and not first.mac_address:
        if _api_lt(api_version, "1.44"):
            config["MacAddress"] = service.engine.mac_address
        else:
            first = dataclasses.replace(first, mac_address=service.engine.mac_address)
    links = link_entries(service, resolve)
    if links and first is not None:
        first = dataclasses.replace(first, links=links)
        rest = tuple(dataclasses.replace(a, links=links) for a in rest)
    if service.use_api_socket:
        binds.append(f"{engine_socket(environ)}:/var/run/docker.sock")
    host.update(
        NetworkMode=network_mode,
        PortBindings=port_bindings or None,
        Binds=binds or None,
        Mounts=(mounts + file_mounts) or None,
    )
    config["HostConfig"] = _compact(host)
    if first is not None:
        config["NetworkingConfig"] = {"EndpointsConfig": {first.network: first.endpoint_config()}}
    return CreateArgs(
        name=name or container_name(project, service, number, oneoff_suffix),
        config=_compact(config),
        platform=service.platform,
        networks=rest,
        files=tuple(files),
        labels=labels,
    )


def process_config(service: Service, api_version: str = "1.41") -> dict[str, Any]:
    """The Config fields about the process: what runs, as whom, where, how it stops."""
    return {
        "Env": environment(service),
        "Cmd": _list(service.command),
        "Entrypoint": _list(service.entrypoint),  # [] clears the image's entrypoint
        "Hostname": service.hostname,
        "Domainname": service.domainname,
        "User": service.user,
        "WorkingDir": service.working_dir,
        "Tty": service.tty,
        "OpenStdin": service.stdin_open,
        "StopSignal": service.stop_signal,
        "StopTimeout": _ceil(service.stop_grace_period),
        "Healthcheck": healthcheck(service.healthcheck, api_version),
    }


def host_config(service: Service, resolve: Resolver) -> dict[str, Any]:
    """The HostConfig fields that are not about networks or mounts."""
    return {
        "Tmpfs": tmpfs(service) or None,
        "RestartPolicy": restart_policy(service),
        "ReadonlyRootfs": service.read_only or None,
        "CapAdd": list(service.cap_add) or None,
        "CapDrop": list(service.cap_drop) or None,
        "Privileged": service.privileged or None,
        "Devices": devices(service) or None,
        "SecurityOpt": list(service.security_opt) or None,
        "Ulimits": [{"Name": k, "Soft": u.soft, "Hard": u.hard} for k, u in service.ulimits.items()]
        or None,
        "Sysctls": dict(service.sysctls) or None,
        "Init": service.init,
        "ExtraHosts": [
            f"{name}:{ip}" for name, ips in service.extra_hosts.items() for ip in ips.split(",")
        ]
        or None,
        "Dns": list(service.dns) or None,
        "DnsSearch": list(service.dns_search) or None,
        "DnsOptions": list(service.dns_opt) or None,
        "IpcMode": _service_ref(service.ipc, resolve),
        "PidMode": _service_ref(service.pid, resolve),
        "UsernsMode": service.userns_mode,
        "GroupAdd": list(service.group_add) or None,
        "OomScoreAdj": service.oom_score_adj,
        "LogConfig": log_config(service),
        "ShmSize": service.shm_size,
        **resources(service),
    }


# API version that first accepts each HostConfig field, and the Docker release
_NEEDS_API = {"Annotations": ("1.43", "Docker Engine 24.0")}


def engine_host_config(service: Service, resolve: Resolver, api_version: str) -> dict[str, Any]:
    """The HostConfig of the keys the engine applies as written (spec EngineOptions)."""
    e = service.engine
    blkio = e.blkio_config

    def throttle(key: str) -> list[dict[str, Any]] | None:
        entries = blkio.get(key) or []
        return [{"Path": d["path"], "Rate": d["rate"]} for d in entries] or None

    host = _compact(
        {
            "Annotations": dict(e.annotations) or None,
            "BlkioWeight": blkio.get("weight"),
            "BlkioWeightDevice": [
                {"Path": d["path"], "Weight": d["weight"]} for d in blkio.get("weight_device", [])
            ]
            or None,
            "BlkioDeviceReadBps": throttle("device_read_bps"),
            "BlkioDeviceWriteBps": throttle("device_write_bps"),
            "BlkioDeviceReadIOps": throttle("device_read_iops"),
            "BlkioDeviceWriteIOps": throttle("device_write_iops"),
            "CgroupnsMode": e.cgroup,
            "CgroupParent": e.cgroup_parent,
            "CpuCount": e.cpu_count,
            "CpuPercent": e.cpu_percent,
            "CpuPeriod": e.cpu_period,
            "CpuQuota": e.cpu_quota,
            "CpuRealtimePeriod": e.cpu_rt_period,
            "CpuRealtimeRuntime": e.cpu_rt_runtime,
            "DeviceCgroupRules": list(e.device_cgroup_rules) or None,
            "Isolation": e.isolation,
            "MemorySwappiness": e.mem_swappiness,
            "OomKillDisable": e.oom_kill_disable,
            "Runtime": e.runtime,
            "StorageOpt": dict(e.storage_opt) or None,
            "UTSMode": e.uts,
            "VolumesFrom": [_volumes_from(v, resolve) for v in e.volumes_from] or None,
        }
    )
    for field_name, (version, release) in _NEEDS_API.items():
        if field_name in host and _api_lt(api_version, version):
            key = field_name.lower()
            raise NotSupportedError(
                f"service {service.name!r}: {key} needs Docker Engine API {version} "
                f"({release}); this engine speaks {api_version}",
                hint=f"remove {key}, or upgrade the engine",
            )
    if e.gpus:
        reservations = resources(service).get("DeviceRequests") or []
        host["DeviceRequests"] = reservations + [device_request(g) for g in e.gpus]
    return host


def engine_socket(environ: Mapping[str, str] | None = None) -> str:
    """The engine's unix socket on this host (DOCKER_HOST, else the default)."""
    host = (os.environ if environ is None else environ).get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    if host:
        raise NotSupportedError(
            f"use_api_socket: the engine is reached at {host}, not through a socket on this "
            "host that could be mounted into the container",
            hint="remove use_api_socket, or use a local engine",
        )
    return "/var/run/docker.sock"


def _volumes_from(entry: str, resolve: Resolver) -> str:
    """ "service[:ro|rw]" → "<container id>[:ro|rw]"; "container:name[:mode]" → "name[:mode]"."""
    if entry.startswith("container:"):
        return entry.removeprefix("container:")
    name, _, mode = entry.partition(":")
    target = resolve(name)
    return f"{target}:{mode}" if mode else target


def link_entries(service: Service, resolve: Resolver) -> tuple[str, ...]:
    """links ("service[:alias]") and external_links ("container[:alias]") as the
    endpoint's Links: the alias resolves for this container on every network (the
    service name already does, through the network alias every instance has)."""
    out = []
    for link in service.engine.links:
        name, _, alias = link.partition(":")
        # the embedded DNS of Engine 20.10 resolves a link made with a short ID (or a
        # name) but not with the full 64-character one (measured)
        out.append(f"{resolve(name)[:12]}:{alias or name}")
    for link in service.engine.external_links:
        name, _, alias = link.partition(":")
        out.append(f"{name}:{alias or name}")
    return tuple(out)


def _no_resolver(name: str) -> str:
    raise NotSupportedError(f"cannot resolve service {name!r} to a container here")


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    # The engine's defaults apply to absent fields; None would be sent as null.
    return {k: v for k, v in d.items() if v is not None}


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return None if value is None else list(value)


def _ceil(seconds: float | None) -> int | None:
    return None if seconds is None else math.ceil(seconds)


def _nanos(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e9)


def _api_lt(version: str, other: str) -> bool:
    def parse(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    return parse(version) < parse(other)


def _service_ref(mode: str | None, resolve: Resolver) -> str | None:
    """``service:x`` → ``container:<id of x-1>``; any other mode as written."""
    if mode and mode.startswith("service:"):
        return "container:" + resolve(mode.removeprefix("service:"))
    return mode


# --- environment, ports --------------------------------------------------------


def environment(service: Service) -> list[str] | None:
    # A variable without a value that the loader could not resolve is not set
    # at all, as in Compose.
    env = [f"{k}={v}" for k, v in service.environment.items() if v is not None]
    return env or None


def ports(service: Service) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """ExposedPorts and PortBindings; a published range lets the engine pick one
    free port from it, a missing one a random port."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in service.expose:
        for key in _expose_keys(spec):
            exposed[key] = {}
    for port in service.ports:
        key = f"{port.target}/{port.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {"HostIp": port.host_ip or "", "HostPort": port.published or ""}
        )
    return exposed, bindings


def _expose_keys(spec: str) -> list[str]:
    port, _, proto = str(spec).partition("/")
    proto = proto or "tcp"
    start, _, end = port.partition("-")
    try:
        first, last = int(start), int(end or start)
    except ValueError as exc:
        raise NotSupportedError(f"expose entry {spec!r} is not a port or port range") from exc
    return [f"{p}/{proto}" for p in range(first, last + 1)]


# --- networks --------------------------------------------------------------------


def service_networks(project: Project, service: Service) -> list[tuple[str, ServiceNetwork]]:
    """The service's networks by priority (highest first), then key, as Compose
    sorts them; a service without networks joins the project's ``default``."""
    nets = dict(service.networks)
    if not nets and service.network_mode is None and "default" in project.networks:
        nets = {"default": ServiceNetwork()}
    return sorted(nets.items(), key=lambda kv: (-kv[1].priority, kv[0]))


def network_plan(
    project: Project, service: Service, resolve: Resolver, oneoff: bool = False
) -> tuple[str | None, list[NetworkAttachment]]:
    """NetworkMode and the endpoints, first one to be given at create time."""
    if service.network_mode is not None:
        return _service_ref(service.network_mode, resolve), []
    attachments = []
    for key, cfg in service_networks(project, service):
        net = project.networks.get(key)
        if net is None:
            raise ServiceError(
                service.name,
                f"uses network {key!r}, which is not declared under top-level `networks`",
                hint=f"declare it: networks: {{{key}: {{}}}}",
            )
        # Compose v2 gives every service container its service name as an alias
        # (not `run` containers, unless --use-aliases).
        aliases = [] if oneoff else [service.name]
        aliases += [a for a in cfg.aliases if a not in aliases]
        driver_opts = dict(cfg.driver_opts)
        if cfg.interface_name:
            # the engine names the interface from this endpoint driver option
            driver_opts["com.docker.network.endpoint.ifname"] = cfg.interface_name
        attachments.append(
            NetworkAttachment(
                network=net.name,
                aliases=tuple(aliases),
                ipv4_address=cfg.ipv4_address,
                ipv6_address=cfg.ipv6_address,
                mac_address=cfg.mac_address,
                link_local_ips=cfg.link_local_ips,
                driver_opts=tuple(sorted(driver_opts.items())),
                gw_priority=cfg.gw_priority,
            )
        )
    mode = attachments[0].network if attachments else None
    return mode, attachments


def _check_endpoint_keys(service: Service, api_version: str) -> None:
    # interface_name and gw_priority: Docker 28.0 (API 1.48); an older engine would
    # silently leave the name and the default route as they are
    if not _api_lt(api_version, "1.48"):
        return
    for key, cfg in service.networks.items():
        for option, value in (
            ("interface_name", cfg.interface_name),
            ("gw_priority", cfg.gw_priority),
        ):
            if value is not None:
                raise NotSupportedError(
                    f"service {service.name!r}: networks.{key}.{option} needs Docker Engine "
                    f"API 1.48 (Docker 28.0); this engine speaks {api_version}",
                    hint=f"remove {option}, or upgrade the engine",
                )


def _check_mac_addresses(
    service: Service, rest: Sequence[NetworkAttachment], api_version: str
) -> None:
    # Before API 1.44 a MAC address can only be set for the create-time network.
    if _api_lt(api_version, "1.44"):
        for att in rest:
            if att.mac_address:
                raise NotSupportedError(
                    f"service {service.name!r}: mac_address on network {att.network!r} "
                    f"needs Docker Engine API 1.44 (this engine speaks {api_version})",
                    hint="set mac_address only on the service's first network",
                )


# --- volumes ---------------------------------------------------------------------


def volume_mounts(
    project: Project, service: Service, api_version: str = "1.41"
) -> tuple[list[str], list[dict[str, Any]]]:
    """Binds (host paths the engine may create) and Mounts (everything else)."""
    binds: list[str] = []
    mounts: list[dict[str, Any]] = []
    for vol in service.volumes:
        if vol.type == "bind" and vol.create_host_path and vol.recursive in (None, "enabled"):
            # Only the legacy Binds API creates a missing host directory
            # (moby/moby#43483), as Compose v2 does.
            binds.append(_bind_string(vol))
        elif vol.type == "bind":
            mounts.append(_bind_mount(service, vol, api_version))
        elif vol.type == "volume":
            mounts.append(_volume_mount(project, service, vol, api_version))
        elif vol.type == "tmpfs":
            mounts.append(_tmpfs_mount(vol))
        else:
            raise NotSupportedError(
                f"service {service.name!r}: volume type {vol.type!r} is not supported "
                "for containers on a single Docker Engine"
            )
    return binds, mounts


def _bind_string(vol: VolumeMount) -> str:
    opts = ["ro"] if vol.read_only else []
    if vol.selinux:
        opts.append(vol.selinux)
    if vol.propagation:
        opts.append(vol.propagation)
    text = f"{vol.source}:{vol.target}"
    return f"{text}:{','.join(opts)}" if opts else text


# bind.recursive → BindOptions, and the API that first takes it (Docker release)
_RECURSIVE = {
    "disabled": ({"NonRecursive": True}, "1.40", "19.03"),
    "writable": ({"ReadOnlyNonRecursive": True}, "1.44", "25.0"),
    "readonly": ({"ReadOnlyForceRecursive": True}, "1.44", "25.0"),
}


def _bind_mount(service: Service, vol: VolumeMount, api_version: str = "1.41") -> dict[str, Any]:
    if vol.selinux:
        raise NotSupportedError(
            f"service {service.name!r}: bind mount {vol.target}: selinux relabelling needs "
            "create_host_path: true (the Mount API has no relabel option)"
        )
    mount: dict[str, Any] = {"Type": "bind", "Source": vol.source, "Target": vol.target}
    if vol.read_only:
        mount["ReadOnly"] = True
    options: dict[str, Any] = {}
    if vol.propagation:
        options["Propagation"] = vol.propagation
    if vol.recursive in _RECURSIVE:
        extra, version, release = _RECURSIVE[vol.recursive]
        if _api_lt(api_version, version):
            raise NotSupportedError(
                f"service {service.name!r}: bind mount {vol.target}: recursive: "
                f"{vol.recursive} needs Docker Engine API {version} (Docker {release}); "
                f"this engine speaks {api_version}",
                hint="remove bind.recursive, or upgrade the engine",
            )
        options.update(extra)
    if options:
        mount["BindOptions"] = options
    return mount


def _volume_mount(
    project: Project, service: Service, vol: VolumeMount, api_version: str
) -> dict[str, Any]:
    mount: dict[str, Any] = {"Type": "volume", "Target": vol.target}
    options: dict[str, Any] = {}
    if vol.source:
        decl = project.volumes.get(vol.source)
        if decl is None:
            raise ServiceError(
                service.name,
                f"mounts volume {vol.source!r}, which is not declared under top-level `volumes`",
                hint=f"declare it: volumes: {{{vol.source}: {{}}}}",
            )
        mount["Source"] = decl.name
    else:
        # Label anonymous volumes so `down -v` finds the ones left behind.
        options["Labels"] = {LABEL_PROJECT: project.name}
    if vol.read_only:
        mount["ReadOnly"] = True
    if vol.nocopy:
        options["NoCopy"] = True
    if vol.subpath:
        if _api_lt(api_version, "1.45"):
            raise NotSupportedError(
                f"service {service.name!r}: volume subpath {vol.subpath!r} needs Docker "
                f"Engine API 1.45 (Engine 26); this engine speaks {api_version}",
                hint="mount the whole volume, or upgrade the engine",
            )
        options["Subpath"] = vol.subpath
    if options:
        mount["VolumeOptions"] = options
    return mount


def _tmpfs_mount(vol: VolumeMount) -> dict[str, Any]:
    mount: dict[str, Any] = {"Type": "tmpfs", "Target": vol.target}
    if vol.read_only:
        mount["ReadOnly"] = True
    options: dict[str, Any] = {}
    if vol.tmpfs_size is not None:
        options["SizeBytes"] = vol.tmpfs_size
    if vol.tmpfs_mode is not None:
        options["Mode"] = vol.tmpfs_mode
    if options:
        mount["TmpfsOptions"] = options
    return mount


def tmpfs(service: Service) -> dict[str, str]:
    """The short ``tmpfs:`` list: "/path" or "/path:size=64m,mode=1777"."""
    result = {}
    for entry in service.tmpfs:
        path, _, options = entry.partition(":")
        result[path] = options
    return result


# --- secrets and configs -------------------------------------------------------


def file_objects(
    project: Project, service: Service, environ: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[InjectedFile]]:
    """Secrets and configs: files become read-only binds (uid/gid/mode cannot
    apply to a bind, as in Compose); inline/environment content is injected."""
    mounts: list[dict[str, Any]] = []
    files: list[InjectedFile] = []
    for kind, refs, decls in (
        ("secret", service.secrets, project.secrets),
        ("config", service.configs, project.configs),
    ):
        for ref in refs:
            obj = decls.get(ref.source)
            if obj is None:
                raise ServiceError(
                    service.name,
                    f"uses {kind} {ref.source!r}, which is not declared under top-level `{kind}s`",
                )
            target = _file_target(kind, ref)
            if obj.external:
                raise NotSupportedError(
                    f"service {service.name!r}: external {kind} {obj.name!r} needs Swarm mode",
                    hint=f"give the {kind} a `file:` or `environment:` source",
                )
            if obj.file is not None:
                mounts.append(
                    {"Type": "bind", "Source": obj.file, "Target": target, "ReadOnly": True}
                )
            else:
                content = _content(project, service, kind, obj, environ)
                files.append(_injected(service, target, content, ref))
    return mounts, files


def file_targets(service: Service) -> list[str]:
    """Where the service's secrets and configs appear in its root filesystem."""
    return [_file_target("secret", r) for r in service.secrets] + [
        _file_target("config", r) for r in service.configs
    ]


def _file_target(kind: str, ref: FileReference) -> str:
    target = ref.target or ref.source
    if posixpath.isabs(target):
        return target
    return posixpath.join(SECRETS_DIR if kind == "secret" else "/", target)


def _content(
    project: Project,
    service: Service,
    kind: str,
    obj: FileObject,
    environ: Mapping[str, str] | None,
) -> str:
    if obj.content is not None:
        return obj.content
    if obj.environment is not None:
        value = project.environment.get(obj.environment)
        if value is None:
            value = (os.environ if environ is None else environ).get(obj.environment)
        if value is None:
            raise ServiceError(
                service.name,
                f"{kind} {obj.key!r} comes from variable {obj.environment}, which is not set",
                hint=f"export {obj.environment}=... or put it in .env",
            )
        return value
    raise ServiceError(service.name, f"{kind} {obj.key!r} has no file, environment or content")


def _injected(service: Service, target: str, content: str, ref: FileReference) -> InjectedFile:
    def ident(value: str | None, what: str) -> int:
        if value is None or value == "":
            return 0
        try:
            return int(value)
        except ValueError as exc:
            raise ServiceError(
                service.name, f"{what} {value!r} of {target} must be a number"
            ) from exc

    return InjectedFile(
        path=target,
        content=content.encode(),
        mode=DEFAULT_FILE_MODE if ref.mode is None else ref.mode,
        uid=ident(ref.uid, "uid"),
        gid=ident(ref.gid, "gid"),
    )


# --- health, restart, resources, devices, logging ----------------------------------


def healthcheck(hc: Healthcheck | None, api_version: str = "1.41") -> dict[str, Any] | None:
    if hc is None:
        return None
    if hc.disable or hc.test == ("NONE",):
        return {"Test": ["NONE"]}
    if hc.start_interval is not None and _api_lt(api_version, "1.44"):
        raise NotSupportedError(
            f"healthcheck.start_interval needs Docker Engine API 1.44 (this engine speaks "
            f"{api_version})",
            hint="remove start_interval, or upgrade the engine",
        )
    result = _compact(
        {
            "Test": _list(hc.test),
            "Interval": _nanos(hc.interval),
            "Timeout": _nanos(hc.timeout),
            "StartPeriod": _nanos(hc.start_period),
            "StartInterval": _nanos(hc.start_interval),
            "Retries": hc.retries,
        }
    )
    return result or None


_RESTART_NAMES = {
    "no": "no",
    "none": "no",
    "always": "always",
    "any": "always",
    "on-failure": "on-failure",
    "unless-stopped": "unless-stopped",
}


def restart_policy(service: Service) -> dict[str, Any] | None:
    """``restart``, overridden by ``deploy.restart_policy`` as in Compose v2."""
    policy = service.deploy.restart_policy
    if policy is not None:
        return {
            "Name": _RESTART_NAMES[policy.condition],
            "MaximumRetryCount": policy.max_attempts or 0,
        }
    if not service.restart:
        return None
    name, _, count = service.restart.partition(":")
    if name not in _RESTART_NAMES or (count and not count.isdigit()):
        raise ServiceError(
            service.name,
            f"restart {service.restart!r} is not one of no, always, on-failure[:N], unless-stopped",
        )
    return {"Name": _RESTART_NAMES[name], "MaximumRetryCount": int(count or 0)}


def resources(service: Service) -> dict[str, Any]:
    """Limits: deploy.resources.limits win over the service-level keys; of the
    reservations only memory (and devices) mean something to a lone engine."""
    limits = service.deploy.resources.limits
    reservations = service.deploy.resources.reservations
    cpus = limits.cpus if limits.cpus is not None else service.cpus
    memory = limits.memory if limits.memory is not None else service.mem_limit
    pids = limits.pids if limits.pids is not None else service.pids_limit
    mem_reservation = (
        reservations.memory if reservations.memory is not None else service.mem_reservation
    )
    return _compact(
        {
            "NanoCpus": None if cpus is None else round(cpus * 1e9),
            "Memory": memory,
            "MemoryReservation": mem_reservation,
            "MemorySwap": service.memswap_limit,
            "PidsLimit": pids,
            "CpuShares": service.cpu_shares,
            "CpusetCpus": service.cpuset,
            "DeviceRequests": [device_request(d) for d in reservations.devices] or None,
        }
    )


def device_request(device: Mapping[str, Any]) -> dict[str, Any]:
    """A Compose ``deploy.resources.reservations.devices`` entry (GPUs)."""
    count = device.get("count")
    caps = device.get("capabilities") or []
    return _compact(
        {
            "Driver": device.get("driver"),
            "Count": -1 if count == "all" else (None if count is None else int(count)),
            "DeviceIDs": list(device["device_ids"]) if device.get("device_ids") else None,
            "Capabilities": [list(caps)] if caps else None,
            "Options": dict(device["options"]) if device.get("options") else None,
        }
    )


def devices(service: Service) -> list[dict[str, str]]:
    """ "/dev/x", "/dev/x:/dev/y", "/dev/x:rw" or "/dev/x:/dev/y:rwm"."""
    result = []
    for spec in service.devices:
        parts = spec.split(":")
        host, container, perms = parts[0], parts[0], "rwm"
        if len(parts) == 2:
            if parts[1].startswith("/"):
                container = parts[1]
            else:
                perms = parts[1]
        elif len(parts) >= 3:
            container, perms = parts[1], parts[2]
        result.append(
            {"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": perms}
        )
    return result


def log_config(service: Service) -> dict[str, Any] | None:
    if service.logging is None:
        return None
    # An empty Type means the engine's default driver, with these options.
    return {"Type": service.logging.driver or "", "Config": dict(service.logging.options)}
