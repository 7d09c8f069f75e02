"""The container runtime: services as Docker Engine containers.

:class:`ContainerDriver` implements the :class:`~compound.runtimes.base.Driver`
interface through the Docker SDK. The module functions are the project-level
facts and resources the reconciler needs: :func:`list_instances` (actual state
is one label query), networks and volumes (:func:`ensure_network`,
:func:`ensure_volume`, :func:`remove_networks`, :func:`remove_volumes`,
:func:`project_resources`) and images (:func:`build_image`,
:func:`pull_image`).

What a Compose option means for the engine is decided in
:mod:`compound.runtimes.container_config` (pure); this module only talks.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import queue
import re
import selectors
import signal as signals
import socket
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

import docker
import docker.errors
import docker.utils.build
import requests.exceptions
import urllib3.exceptions

from compound import __version__
from compound.engine import connect, engine_errors, explain, translate
from compound.errors import (
    CompoundError,
    EngineError,
    ImageNotFoundError,
    NoSuchInstanceError,
    NotSupportedError,
    ServiceError,
)
from compound.runtimes.base import (
    LABEL_CONFIG_HASH,
    LABEL_NETWORK,
    LABEL_NUMBER,
    LABEL_ONEOFF,
    LABEL_PROJECT,
    LABEL_ROLE,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    LABEL_VERSION,
    LABEL_VOLUME,
    ROLE_LB,
    Capabilities,
    Change,
    ChangeKind,
    Driver,
    Instance,
    LogLine,
    PortBinding,
    Processes,
    ProgressFn,
    RootChanges,
    _no_progress,
)
from compound.runtimes.container_config import (
    CreateArgs,
    InjectedFile,
    NetworkAttachment,
    build_create_args,
    image_ref,
)
from compound.runtimes.hostcheck import CheckDef
from compound.spec.model import Network, Project, Service, Volume

DEFAULT_STOP_GRACE = 10  # seconds, the engine's own default
NETWORK_RELEASE_TIMEOUT = 10.0  # seconds to wait for endpoints of removed containers

# A pull that has not said anything within this time is not going to work:
# the registry is unreachable (DNS or TCP black hole). Once bytes flow, a slow
# pull may take as long as it needs between two progress messages.
PULL_FIRST_EVENT_TIMEOUT = 8.0
PULL_IDLE_TIMEOUT = 120.0

IMAGE_HINT = (
    "build or import it first: `make images` builds local/busybox and local/python; "
    "or `docker import`/`docker load` it"
)


# --- reading actual state ------------------------------------------------------


def list_instances(
    client: docker.DockerClient,
    project_name: str,
    service: str | None = None,
    include_stopped: bool = True,
    oneoff: bool = False,
) -> list[Instance]:
    """The project's instances (both runtimes), sorted by service then number."""
    filters = [f"{LABEL_PROJECT}={project_name}"]
    if service is not None:
        filters.append(f"{LABEL_SERVICE}={service}")
    with engine_errors(f"list the containers of project {project_name!r}"):
        rows = client.api.containers(all=include_stopped, filters={"label": filters})
    instances = []
    for row in rows:
        labels = row.get("Labels") or {}
        if labels.get(LABEL_ROLE) == ROLE_LB:
            continue  # a service's load balancer, see list_load_balancers
        if (labels.get(LABEL_ONEOFF) == "true") != oneoff:
            continue
        try:
            instances.append(inspect_instance(client, row["Id"]))
        except NoSuchInstanceError:
            continue  # removed between the list and the inspect
    return sorted(instances, key=lambda i: (i.service, i.number, i.name))


def list_load_balancers(client: docker.DockerClient, project_name: str) -> list[Instance]:
    """The load balancers compound put in front of the project's services."""
    filters = [f"{LABEL_PROJECT}={project_name}", f"{LABEL_ROLE}={ROLE_LB}"]
    with engine_errors(f"list the load balancers of project {project_name!r}"):
        rows = client.api.containers(all=True, filters={"label": filters})
    found = []
    for row in rows:
        try:
            found.append(inspect_instance(client, row["Id"]))
        except NoSuchInstanceError:
            continue
    return sorted(found, key=lambda i: i.name)


def inspect_instance(client: docker.DockerClient, instance_id: str) -> Instance:
    try:
        with engine_errors(f"inspect container {instance_id}"):
            data = client.api.inspect_container(instance_id)
    except EngineError as exc:
        if isinstance(exc.__cause__, docker.errors.NotFound):
            raise NoSuchInstanceError(f"container {instance_id} does not exist") from exc
        raise
    return instance_from_inspect(data)


def instance_from_inspect(data: Mapping[str, Any]) -> Instance:
    """An Instance from the engine's ``GET /containers/{id}/json`` answer."""
    config = data.get("Config") or {}
    labels: dict[str, str] = dict(config.get("Labels") or {})
    state = data.get("State") or {}
    status = str(state.get("Status", "unknown"))
    health = state.get("Health") or {}
    settings = data.get("NetworkSettings") or {}
    networks = settings.get("Networks") or {}
    number = labels.get(LABEL_NUMBER, "")
    return Instance(
        id=str(data["Id"]),
        name=str(data.get("Name", "")).lstrip("/"),
        project=labels.get(LABEL_PROJECT, ""),
        service=labels.get(LABEL_SERVICE, ""),
        number=int(number) if number.isdigit() else 0,
        runtime=labels.get(LABEL_RUNTIME, "container"),
        status=status,
        health=health.get("Status") or None,
        exit_code=int(state.get("ExitCode", 0)) if status in ("exited", "dead") else None,
        config_hash=labels.get(LABEL_CONFIG_HASH, ""),
        image=str(config.get("Image", "")),
        image_id=str(data.get("Image", "")),
        oneoff=labels.get(LABEL_ONEOFF) == "true",
        started_at=_time(state.get("StartedAt")),
        finished_at=_time(state.get("FinishedAt")),
        ports=_port_bindings(settings.get("Ports") or {}),
        networks=tuple(sorted(networks)),
        labels=labels,
        details={
            "stop_timeout": config.get("StopTimeout"),
            "stop_signal": config.get("StopSignal"),
            "tty": bool(config.get("Tty")),
            "restart_count": data.get("RestartCount", 0),
            "pid": state.get("Pid") or None,
            "ip_addresses": {k: v.get("IPAddress") for k, v in networks.items() if v},
            "error": state.get("Error") or None,
        },
    )


def _time(value: Any) -> str | None:
    # The engine reports "never" as Go's zero time.
    if not value or str(value).startswith("0001-01-01"):
        return None
    return str(value)


def _port_bindings(ports: Mapping[str, Any]) -> tuple[PortBinding, ...]:
    result = []
    for key, bindings in ports.items():
        target, _, proto = key.partition("/")
        for b in bindings or ():
            result.append(
                PortBinding(
                    target=int(target),
                    protocol=proto or "tcp",
                    host_ip=str(b.get("HostIp", "")),
                    host_port=int(b.get("HostPort") or 0),
                )
            )
    return tuple(sorted(result, key=lambda p: (p.target, p.protocol, p.host_ip)))


# --- networks --------------------------------------------------------------------


def network_create_args(project_name: str, network: Network) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_network`` for a project network."""
    labels = dict(network.labels)
    labels.update(
        {LABEL_PROJECT: project_name, LABEL_NETWORK: network.key, LABEL_VERSION: __version__}
    )
    args: dict[str, Any] = {
        "name": network.name,
        "driver": network.driver or "bridge",
        "options": dict(network.driver_opts) or None,
        "internal": network.internal,
        "attachable": network.attachable or None,
        "enable_ipv6": network.enable_ipv6,
        "labels": labels,
        "check_duplicate": True,
    }
    if network.ipam:
        args["ipam"] = ipam_config(network.ipam)
    return args


def ipam_config(ipam: Mapping[str, Any]) -> dict[str, Any]:
    """Compose's ``ipam`` (driver, config[subnet, ip_range, gateway,
    aux_addresses], options) in the engine's field names."""
    pools = []
    for pool in ipam.get("config") or ():
        entry = {
            "Subnet": pool.get("subnet"),
            "IPRange": pool.get("ip_range"),
            "Gateway": pool.get("gateway"),
            "AuxiliaryAddresses": pool.get("aux_addresses"),
        }
        pools.append({k: v for k, v in entry.items() if v})
    return {
        "Driver": ipam.get("driver") or "default",
        "Config": pools,
        "Options": dict(ipam.get("options") or {}),
    }


def ensure_network(client: docker.DockerClient, project: Project, network: Network) -> bool:
    """Create the project network unless it exists; True if created."""
    existing = _inspect_network(client, network.name)
    if network.external:
        if existing is None:
            raise EngineError(
                f"external network {network.name!r} does not exist",
                hint=f"create it: `docker network create {network.name}`",
            )
        return False
    if existing is not None:
        _check_network(project.name, network, existing)
        return False
    args = network_create_args(project.name, network)
    try:
        with engine_errors(f"create network {network.name!r}"):
            client.api.create_network(**args)
    except EngineError as exc:
        # Another compound created it meanwhile: fine if it matches.
        existing = _inspect_network(client, network.name)
        if existing is None:
            raise exc from exc.__cause__
        _check_network(project.name, network, existing)
        return False
    return True


def _inspect_network(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    _dedupe_network(client, name)
    with engine_errors(f"inspect network {name!r}"):
        try:
            data = client.api.inspect_network(name)
        except docker.errors.NotFound:
            return None
    # Inspect also resolves id prefixes; only an exact name is this network.
    return cast(dict[str, Any], data) if data.get("Name") == name else None


def _dedupe_network(client: docker.DockerClient, name: str) -> None:
    """The engine lets two concurrent creates make two networks of one name
    (compound before its project lock did); every later lookup by name then
    fails as ambiguous. Keep the one with endpoints (else the oldest) and
    remove the other compound-made copies, which nothing uses."""
    with engine_errors(f"list networks named {name!r}"):
        rows = [n for n in client.api.networks(names=[name]) if n.get("Name") == name]
    if len(rows) < 2:
        return
    ours = [n for n in rows if (n.get("Labels") or {}).get(LABEL_PROJECT)]
    if len(ours) < len(rows):
        return  # someone else's network shares the name: theirs to sort out
    detail = []
    for n in ours:
        with engine_errors(f"inspect network {n['Id'][:12]}"):
            detail.append(client.api.inspect_network(n["Id"]))
    detail.sort(key=lambda n: (not n.get("Containers"), str(n.get("Created", ""))))
    for extra in detail[1:]:
        if extra.get("Containers"):
            continue  # in use: removing it would cut instances off; down repairs it
        with (
            contextlib.suppress(docker.errors.NotFound),
            engine_errors(f"remove duplicate network {name!r} ({extra['Id'][:12]})"),
        ):
            client.api.remove_network(extra["Id"])


def network_differences(network: Network, existing: Mapping[str, Any]) -> list[str]:
    """How an existing engine network differs from the declared one."""
    diffs = []
    want_driver = network.driver or "bridge"
    if existing.get("Driver") != want_driver:
        diffs.append(f"driver {existing.get('Driver')} (declared: {want_driver})")
    if dict(existing.get("Options") or {}) != dict(network.driver_opts):
        diffs.append(
            f"driver_opts {existing.get('Options') or {}} (declared: {network.driver_opts})"
        )
    if bool(existing.get("Internal")) != network.internal:
        diffs.append(f"internal {bool(existing.get('Internal'))} (declared: {network.internal})")
    if bool(existing.get("EnableIPv6")) != network.enable_ipv6:
        diffs.append(
            f"enable_ipv6 {bool(existing.get('EnableIPv6'))} (declared: {network.enable_ipv6})"
        )
    want_subnets = {p.get("subnet") for p in network.ipam.get("config") or () if p.get("subnet")}
    have_subnets = {p.get("Subnet") for p in (existing.get("IPAM") or {}).get("Config") or ()}
    if want_subnets and want_subnets != have_subnets:
        diffs.append(f"subnets {sorted(have_subnets)} (declared: {sorted(want_subnets)})")
    return diffs


def _check_network(project_name: str, network: Network, existing: Mapping[str, Any]) -> None:
    diffs = network_differences(network, existing)
    if not diffs:
        return
    raise _config_conflict(
        "network",
        network.name,
        diffs,
        ours=(existing.get("Labels") or {}).get(LABEL_PROJECT) == project_name,
        ours_hint="run `compound down` to remove the project's networks, then `compound up`",
    )


def _config_conflict(
    kind: str, name: str, diffs: Sequence[str], *, ours: bool, ours_hint: str
) -> EngineError:
    """A network or volume that exists but differs from the file: ours can be
    recreated by compound, anyone else's is the user's to remove or adopt."""
    hint = (
        ours_hint
        if ours
        else (f"remove it (`docker {kind} rm {name}`) or declare it `external: true`")
    )
    return EngineError(
        f"{kind} {name!r} exists with a different configuration: " + "; ".join(diffs), hint=hint
    )


def remove_networks(client: docker.DockerClient, project_name: str) -> list[str]:
    """Remove the project's own networks (never external ones); their names.

    In parallel: each removal waits on the engine's firewall rules (~0.2 s)."""
    nets = _labelled(client, "networks", project_name)

    def remove(net: dict[str, Any]) -> str | None:
        name = str(net["Name"])
        deadline = time.monotonic() + NETWORK_RELEASE_TIMEOUT
        while True:
            try:
                with engine_errors(f"remove network {name!r}"):
                    client.api.remove_network(net["Id"])
                return name
            except EngineError as exc:
                if isinstance(exc.__cause__, docker.errors.NotFound):
                    return None
                # the engine releases endpoints of just-removed containers
                # asynchronously; only a foreign container keeps one for long
                if "active endpoints" in str(exc.__cause__) and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                exc.hint = exc.hint or "a container outside the project may still be attached to it"
                raise

    with ThreadPoolExecutor(max_workers=max(1, len(nets))) as pool:
        return [name for name in pool.map(remove, nets) if name is not None]


# --- volumes ----------------------------------------------------------------------


def volume_create_args(project_name: str, volume: Volume) -> dict[str, Any]:
    labels = dict(volume.labels)
    labels.update(
        {LABEL_PROJECT: project_name, LABEL_VOLUME: volume.key, LABEL_VERSION: __version__}
    )
    return {
        "name": volume.name,
        "driver": volume.driver or "local",
        "driver_opts": dict(volume.driver_opts) or None,
        "labels": labels,
    }


def ensure_volume(client: docker.DockerClient, project: Project, volume: Volume) -> bool:
    """Create the project volume unless it exists; True if created."""
    existing = inspect_volume(client, volume.name)
    if volume.external:
        if existing is None:
            raise EngineError(
                f"external volume {volume.name!r} does not exist",
                hint=f"create it: `docker volume create {volume.name}`",
            )
        return False
    if existing is not None:
        _check_volume(project.name, volume, existing)
        return False
    with engine_errors(f"create volume {volume.name!r}"):
        client.api.create_volume(**volume_create_args(project.name, volume))
    return True


def inspect_volume(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    with engine_errors(f"inspect volume {name!r}"):
        try:
            return client.api.inspect_volume(name)
        except docker.errors.NotFound:
            return None


def _check_volume(project_name: str, volume: Volume, existing: Mapping[str, Any]) -> None:
    diffs = []
    want_driver = volume.driver or "local"
    if existing.get("Driver") != want_driver:
        diffs.append(f"driver {existing.get('Driver')} (declared: {want_driver})")
    if dict(existing.get("Options") or {}) != dict(volume.driver_opts):
        diffs.append(
            f"driver_opts {existing.get('Options') or {}} (declared: {volume.driver_opts})"
        )
    if not diffs:
        return
    raise _config_conflict(
        "volume",
        volume.name,
        diffs,
        ours=(existing.get("Labels") or {}).get(LABEL_PROJECT) == project_name,
        ours_hint="its data would be lost by recreating it:"
        " `compound down --volumes`, then `compound up`",
    )


def remove_volumes(client: docker.DockerClient, project_name: str) -> list[str]:
    """Remove the volumes labelled as this project's (named and leftover
    anonymous ones; never external ones); their names."""
    removed = []
    for vol in _labelled(client, "volumes", project_name):
        name = vol["Name"]
        try:
            with engine_errors(f"remove volume {name!r}"):
                client.api.remove_volume(name)
        except EngineError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                continue
            exc.hint = exc.hint or "a container still uses it; remove the containers first"
            raise
        removed.append(name)
    return removed


def _labelled(client: docker.DockerClient, kind: str, project_name: str) -> list[dict[str, Any]]:
    flt = {"label": [f"{LABEL_PROJECT}={project_name}"]}
    with engine_errors(f"list the {kind} of project {project_name!r}"):
        if kind == "networks":
            return list(client.api.networks(filters=flt))
        return list(client.api.volumes(filters=flt).get("Volumes") or [])


class ProjectResources(NamedTuple):
    """Engine names of the networks and volumes labelled as the project's
    (``nets, vols = project_resources(...)``)."""

    networks: tuple[str, ...]
    volumes: tuple[str, ...]


def project_resources(client: docker.DockerClient, project_name: str) -> ProjectResources:
    """The project's own networks and volumes, for `up` (what exists) and `down`."""
    return ProjectResources(
        networks=tuple(sorted(n["Name"] for n in _labelled(client, "networks", project_name))),
        volumes=tuple(sorted(v["Name"] for v in _labelled(client, "volumes", project_name))),
    )


# --- images ------------------------------------------------------------------------


def local_image_id(client: docker.DockerClient, ref: str) -> str | None:
    with engine_errors(f"inspect image {ref!r}"):
        try:
            return str(cast(Any, client.api).inspect_image(ref)["Id"])
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 400:  # invalid reference format
                raise EngineError(f"{ref!r} is not a valid image reference") from exc
            raise


def pull_image(
    client: docker.DockerClient,
    ref: str,
    progress: ProgressFn = _no_progress,
    service: str = "",
    first_event_timeout: float = PULL_FIRST_EVENT_TIMEOUT,
) -> str:
    """Pull ``ref``; its image id. Fails within ``first_event_timeout`` seconds
    when no registry answers, with the engine's reason as ``__cause__``."""
    events: queue.Queue[Any] = queue.Queue()
    done = object()

    def reader() -> None:
        # A thread, because docker-py pulls without any read timeout.
        try:
            repo, tag = docker.utils.parse_repository_tag(ref)
            for event in client.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                events.put(event)
        except BaseException as exc:
            events.put(exc)
        events.put(done)

    threading.Thread(target=reader, name=f"pull {ref}", daemon=True).start()
    timeout, last = first_event_timeout, ""
    while True:
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            raise _not_pullable(ref) from TimeoutError(f"no answer within {timeout:g}s")
        if event is done:
            break
        if isinstance(event, requests.exceptions.ConnectionError):
            raise translate(event, f"pull {ref}") from event
        if isinstance(event, BaseException):
            raise _not_pullable(ref) from event
        if event.get("error"):
            raise _not_pullable(ref) from EngineError(str(event["error"]))
        timeout = PULL_IDLE_TIMEOUT
        status = str(event.get("status", ""))
        if status and "progress" not in event and status != last:
            last = status
            progress(service, f"pull {ref}: {status} {event.get('id', '')}".rstrip())
    image_id = local_image_id(client, ref)
    if image_id is None:
        raise _not_pullable(ref)
    return image_id


def _not_pullable(ref: str) -> ImageNotFoundError:
    return ImageNotFoundError(
        f"image {ref!r} is not available locally and could not be pulled (registry unreachable?)",
        hint=IMAGE_HINT,
    )


def build_image(
    client: docker.DockerClient,
    project: Project,
    service: Service,
    progress: ProgressFn = _no_progress,
) -> str:
    """Build the service's image (legacy builder; the engine API has no
    BuildKit session), tagged ``image`` or ``{project}-{service}``; its id."""
    spec = service.build
    if spec is None:
        raise ServiceError(service.name, "has no `build` section to build from")
    tag = image_ref(project, service)
    kwargs: dict[str, Any] = {
        "tag": tag,
        "buildargs": dict(spec.args) or None,
        "target": spec.target,
        "labels": dict(spec.labels) or None,
        "network_mode": spec.network,
        "nocache": spec.no_cache,
        "pull": spec.pull,
        "shmsize": spec.shm_size,
        "extra_hosts": dict(spec.extra_hosts) or None,
        "platform": service.platform,
        "rm": True,
        "forcerm": True,
        "decode": True,
    }
    if not os.path.isdir(spec.context):
        raise ServiceError(
            service.name,
            f"build context {spec.context} is not a directory",
            hint="fix build.context (remote contexts are not supported)",
        )
    if spec.dockerfile_inline is not None:
        name = f".dockerfile.inline.{uuid.uuid4().hex[:12]}"
        kwargs.update(
            fileobj=docker.utils.build.tar(
                Path(spec.context),
                exclude=_dockerignore(spec.context),
                dockerfile=(name, spec.dockerfile_inline),
            ),
            custom_context=True,
            dockerfile=name,
        )
    else:
        kwargs.update(path=spec.context, dockerfile=spec.dockerfile)
    progress(service.name, f"building {tag}")
    image_id = None
    try:
        with engine_errors(f"build image {tag!r}"):
            for event in client.api.build(**kwargs):
                image_id = _build_event(service.name, event, progress) or image_id
    except EngineError as exc:
        raise ServiceError(service.name, f"build failed: {exc.message}") from exc
    return image_id or local_image_id(client, tag) or _missing_after_build(service, tag)


def _build_event(service: str, event: Mapping[str, Any], progress: ProgressFn) -> str | None:
    if event.get("error"):
        detail = event.get("errorDetail") or {}
        raise ServiceError(service, f"build failed: {detail.get('message') or event['error']}")
    text = str(event.get("stream", "")).rstrip()
    if text:
        progress(service, text)
    aux = event.get("aux") or {}
    return str(aux["ID"]) if aux.get("ID") else None


def _missing_after_build(service: Service, tag: str) -> str:
    raise ServiceError(service.name, f"the build finished but image {tag!r} does not exist")


def _dockerignore(context: str) -> list[str] | None:
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        lines = (line.strip() for line in f.read().splitlines())
        return [line for line in lines if line and not line.startswith("#")]


# --- errors of one service -----------------------------------------------------------

_PORT_IN_USE = (
    re.compile(r"Bind for (?P<ip>\S*):(?P<port>\d+) failed: port is already allocated"),
    re.compile(r"listen \w+ (?P<ip>\S*):(?P<port>\d+): bind: address already in use"),
    re.compile(r"(?P<ip>[\d.]+|\[[0-9a-f:]*\]):(?P<port>\d+): bind: address already in use"),
)
_BIND_MISSING = re.compile(r"bind source path does not exist: (?P<path>\S+)")
_NETWORK_MISSING = re.compile(r"network (?P<name>\S+) not found")
_NAME_IN_USE = re.compile(r'container name "/?(?P<name>[^"]+)" is already in use')


def service_error(service: str, what: str, exc: BaseException) -> CompoundError:
    """A ServiceError naming what went wrong for ``service`` in plain words;
    transport failures stay EngineErrors."""
    if isinstance(exc, CompoundError):
        return exc
    if not isinstance(exc, docker.errors.APIError):
        return translate(exc, what)
    text = explain(exc)
    for pattern in _PORT_IN_USE:
        if m := pattern.search(text):
            return ServiceError(
                service,
                f"port {m['port']} is already in use on the host",
                hint="free it or change the published port",
            )
    if m := _BIND_MISSING.search(text):
        return ServiceError(
            service,
            f"bind mount source {m['path']} does not exist",
            hint="create it, or allow compound to (create_host_path: true)",
        )
    if m := _NAME_IN_USE.search(text):
        return ServiceError(
            service,
            f"container name {m['name']!r} is already in use",
            hint=f"remove that container (`docker rm -f {m['name']}`) or run `compound down`",
        )
    if m := _NETWORK_MISSING.search(text):
        return ServiceError(
            service,
            f"{what}: network {m['name']} does not exist",
            hint="`compound up` creates project networks; an external one needs "
            f"`docker network create {m['name']}`",
        )
    if "No such image" in text:
        return ImageNotFoundError(f"{what}: {text}", hint=IMAGE_HINT)
    if "read-only file system" in text or "marked read-only" in text:
        return ServiceError(
            service,
            f"{what}: {text}",
            hint="read_only containers cannot receive inline secrets/configs; use a file source",
        )
    return ServiceError(service, f"{what}: {text}")


def _gone(exc: BaseException) -> bool:
    return isinstance(exc, docker.errors.NotFound)


def _not_running(exc: BaseException) -> bool:
    return isinstance(exc, docker.errors.APIError) and "is not running" in explain(exc)


# --- the driver ------------------------------------------------------------------------


# GET /containers/{id}/changes: Kind 0 modified, 1 added, 2 deleted.
_CHANGE_KINDS: dict[int, ChangeKind] = {0: "C", 1: "A", 2: "D"}


class ContainerDriver(Driver):
    """Services as plain Docker containers."""

    name = "container"
    capabilities = Capabilities(
        exec=True,
        logs=True,
        stats=True,
        pause=True,
        native_healthcheck=True,
        console=False,
        changes=True,
        terminal=True,
        top=True,
    )

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
    ) -> None:
        self._client = client
        # None: the process's own stdio at call time (pytest swaps them).
        self._stdin, self._stdout, self._stderr = stdin, stdout, stderr
        self._prepared: dict[str, str] = {}  # image ref -> id, from this process's prepare()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    @classmethod
    def host_checks(cls) -> tuple[CheckDef, ...]:
        from compound.runtimes.container_checks import CONTAINER_CHECKS

        return CONTAINER_CHECKS

    # -- prepare ------------------------------------------------------------------

    def prepare(
        self, project: Project, service: Service, progress: ProgressFn = _no_progress
    ) -> str:
        image_id = self._prepare(project, service, progress)
        # create() follows at once: remember the answer instead of asking again
        self._prepared[image_ref(project, service)] = image_id
        return image_id

    def _prepare(self, project: Project, service: Service, progress: ProgressFn) -> str:
        ref = image_ref(project, service)
        policy = service.pull_policy or "missing"
        local = local_image_id(self.client, ref)
        if service.build is not None:
            return self._prepare_build(project, service, ref, policy, local, progress)
        if policy == "build":
            raise ServiceError(service.name, "pull_policy: build needs a `build` section")
        if policy == "never":
            if local is None:
                raise ImageNotFoundError(
                    f"image {ref!r} is not available locally (pull_policy: never)",
                    hint=IMAGE_HINT,
                )
            return local
        if policy == "always":
            try:
                return pull_image(self.client, ref, progress, service.name)
            except ImageNotFoundError as exc:
                if local is None:
                    raise
                raise EngineError(
                    f"could not pull image {ref!r} (pull_policy: always)",
                    hint="use pull_policy: missing to run the local copy, or check the registry",
                ) from exc.__cause__
        if local is not None:
            return local
        progress(service.name, f"image {ref} is not present locally; pulling")
        return pull_image(self.client, ref, progress, service.name)

    def _prepare_build(
        self,
        project: Project,
        service: Service,
        ref: str,
        policy: str,
        local: str | None,
        progress: ProgressFn,
    ) -> str:
        if policy == "build":
            return build_image(self.client, project, service, progress)
        if policy == "always":
            with contextlib.suppress(ImageNotFoundError):
                return pull_image(self.client, ref, progress, service.name)
        if local is not None:
            return local
        return build_image(self.client, project, service, progress)

    # -- create ----------------------------------------------------------------------

    def create(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        *,
        oneoff: bool = False,
        image_id: str | None = None,
        name: str | None = None,
    ) -> Instance:
        ref = image_ref(project, service)
        pinned = image_id
        tagged = self._prepared.get(ref)
        if tagged is None:
            tagged = self._prepared[ref] = local_image_id(self.client, ref) or ""
        image_id = image_id or tagged or None
        if image_id is None:
            raise (
                _not_pullable(ref)
                if service.build is None
                else ImageNotFoundError(
                    f"image {ref!r} of service {service.name!r} has not been built",
                    hint="run `compound build` or `compound up`",
                )
            )
        args = build_create_args(
            project,
            service,
            number,
            config_hash,
            image_id,
            lambda name: self._resolve(project.name, service.name, name),
            api_version=self.client.api.api_version,
            oneoff_suffix=uuid.uuid4().hex[:12] if oneoff else None,
            name=name,
        )
        if pinned and pinned != tagged:
            # the tag has moved on (a rollback to an earlier image): run the
            # exact image the instance is meant to, by id
            args.config["Image"] = pinned
        container_id = self._create(service.name, args)
        try:
            self._attach_networks(service.name, container_id, args.networks)
            self._inject_files(service.name, container_id, args.files)
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.api.remove_container(container_id, v=True, force=True)
            raise
        # built from what we sent rather than a second round trip to the engine
        return Instance(
            id=container_id,
            name=args.name,
            project=project.name,
            service=service.name,
            number=number,
            runtime="container",
            status="created",
            health=None,
            exit_code=None,
            config_hash=config_hash,
            image=ref,
            image_id=image_id,
            oneoff=oneoff,
            labels=dict(args.labels),
            details={
                "stop_timeout": args.config.get("StopTimeout"),
                "stop_signal": args.config.get("StopSignal"),
                "tty": bool(args.config.get("Tty")),
            },
        )

    def _resolve(self, project_name: str, service: str, target: str) -> str:
        """service:x → the id of x's first instance."""
        found = list_instances(self.client, project_name, target)
        if not found:
            raise ServiceError(
                service,
                f"refers to service {target!r} (network_mode/ipc/pid: service:{target}), "
                "which has no container",
                hint=f"create {target!r} first (`compound up` orders it as a dependency)",
            )
        return found[0].id

    def _create(self, service: str, args: CreateArgs) -> str:
        what = f"create container {args.name}"
        try:
            result = cast(Any, self.client.api).create_container_from_config(
                args.config, name=args.name, platform=args.platform
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise service_error(service, what, exc) from exc
        return str(result["Id"])

    def _attach_networks(
        self, service: str, container_id: str, networks: Sequence[NetworkAttachment]
    ) -> None:
        # The engine (API < 1.44) takes one network at create; the rest are
        # connected before start so the process sees all of them at once.
        for att in networks:
            try:
                self.client.api.connect_container_to_network(
                    container_id,
                    att.network,
                    aliases=list(att.aliases) or None,
                    ipv4_address=att.ipv4_address,
                    ipv6_address=att.ipv6_address,
                )
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise service_error(service, f"connect to network {att.network!r}", exc) from exc

    def _inject_files(self, service: str, container_id: str, files: Sequence[InjectedFile]) -> None:
        if not files:
            return
        try:
            ok = self.client.api.put_archive(container_id, "/", files_tar(files))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise service_error(service, "write secrets/configs into the container", exc) from exc
        if not ok:
            raise ServiceError(service, "the engine refused to write secrets/configs")

    # -- lifecycle --------------------------------------------------------------------

    def start(self, instance: Instance) -> None:
        try:
            self.client.api.start(instance.id)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise service_error(instance.service, f"start {instance.name}", exc) from exc

    def rename(self, instance: Instance, name: str) -> None:
        with engine_errors(f"rename {instance.name} to {name}"):
            self.client.api.rename(instance.id, name)

    def stop(self, instance: Instance, grace: float | None = None) -> None:
        if grace is None:
            grace = instance.details.get("stop_timeout")
        seconds = DEFAULT_STOP_GRACE if grace is None else max(0, math.ceil(grace))
        try:
            self.client.api.stop(instance.id, timeout=seconds)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if not _gone(exc):
                raise service_error(instance.service, f"stop {instance.name}", exc) from exc

    def kill(self, instance: Instance, signal: str = "SIGKILL") -> None:
        try:
            self.client.api.kill(instance.id, signal=signal)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if not (_gone(exc) or _not_running(exc)):
                raise service_error(instance.service, f"kill {instance.name}", exc) from exc

    def remove(self, instance: Instance, volumes: bool = False) -> None:
        try:
            # force: a container under a restart policy may be restarting.
            self.client.api.remove_container(instance.id, v=volumes, force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if _gone(exc) or "already in progress" in str(exc):
                return
            raise service_error(instance.service, f"remove {instance.name}", exc) from exc

    def pause(self, instance: Instance) -> bool:
        # the engine's freezer cgroup: every process stops between two syscalls
        if inspect_instance(self.client, instance.id).status != "running":
            return False
        with engine_errors(f"pause {instance.name}"):
            self.client.api.pause(instance.id)
        return True

    def unpause(self, instance: Instance) -> None:
        with engine_errors(f"unpause {instance.name}"):
            self.client.api.unpause(instance.id)

    def inspect(self, instance_id: str) -> Instance:
        return inspect_instance(self.client, instance_id)

    def changes(self, instance: Instance) -> RootChanges:
        """The engine's diff of the container's writable layer (running or
        stopped), and the mount points it keeps apart from that layer."""
        with engine_errors(f"list the changed files of {instance.name}"):
            rows = self.client.api.diff(instance.id) or []
            attrs = self.client.api.inspect_container(instance.id)
        managed = [str(m["Destination"]) for m in attrs.get("Mounts") or [] if m.get("Destination")]
        if (attrs.get("HostConfig") or {}).get("Init"):
            # `init: true` bind-mounts the engine's init here (/sbin is /usr/sbin
            # in merged-/usr images); it is not in Mounts
            managed += ["/sbin/docker-init", "/usr/sbin/docker-init"]
        return RootChanges(
            changes=tuple(
                Change(_CHANGE_KINDS[int(r["Kind"])], str(r["Path"]))
                for r in rows
                if int(r.get("Kind", -1)) in _CHANGE_KINDS
            ),
            managed=tuple(managed),
        )

    def wait(self, instance: Instance, timeout: float | None = None) -> int:
        try:
            result = self.client.api.wait(instance.id, timeout=cast(int, timeout))
        except requests.exceptions.RequestException as exc:
            timed_out = isinstance(exc, requests.exceptions.ReadTimeout) or "timed out" in str(exc)
            if timeout is not None and timed_out:
                raise ServiceError(
                    instance.service, f"{instance.name} did not exit within {timeout:g}s"
                ) from exc
            raise service_error(instance.service, f"wait for {instance.name}", exc) from exc
        except docker.errors.DockerException as exc:
            if _gone(exc):
                raise NoSuchInstanceError(f"container {instance.name} does not exist") from exc
            raise service_error(instance.service, f"wait for {instance.name}", exc) from exc
        return int(result.get("StatusCode", -1))

    # -- logs ----------------------------------------------------------------------------

    def logs(
        self,
        instance: Instance,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[LogLine]:
        tty = instance.details.get("tty")
        if tty is None:
            tty = self.inspect(instance.id).details["tty"]
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(timestamps),
            "tail": "all" if tail is None else str(max(0, tail)),
        }
        if since:
            params["since"] = f"{parse_since(since):.9f}"
        api = cast(Any, self.client.api)  # the raw response keeps stdout/stderr apart
        with engine_errors(f"read the logs of {instance.name}"):
            response = api._get(
                api._url("/containers/{0}/logs", instance.id), params=params, stream=True
            )
            api._raise_for_status(response)
            if follow:
                api._disable_socket_timeout(api._get_raw_response_socket(response))
        return self._log_lines(instance, response, bool(tty), timestamps)

    def _log_lines(
        self, instance: Instance, response: Any, tty: bool, timestamps: bool
    ) -> Iterator[LogLine]:
        try:
            chunks = _raw_chunks(response.raw) if tty else _frames(response.raw)
            for stream, line in split_lines(chunks):
                ts = None
                if timestamps:
                    ts, _, line = line.partition(" ")
                yield LogLine(instance.service, instance.name, line, stream, ts)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise translate(exc, f"read the logs of {instance.name}") from exc
        finally:
            response.close()

    # -- exec ------------------------------------------------------------------------------

    def exec(
        self,
        instance: Instance,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        tty: bool = False,
        interactive: bool = False,
    ) -> int:
        exec_id = self._exec_create(instance, command, user, workdir, env, tty, interactive)
        with engine_errors(f"exec in {instance.name}"):
            if interactive:
                sock = self.client.api.exec_start(exec_id, tty=tty, socket=True)

                def resize(height: int, width: int) -> None:
                    self.client.api.exec_resize(exec_id, height=height, width=width)

                _Pump(resize, sock, tty, self._in(), self._out(), self._err()).run()
            else:
                for out, err in self.client.api.exec_start(
                    exec_id, tty=tty, stream=True, demux=True
                ):
                    _write(self._out(), out)
                    _write(self._err(), err)
        return self._exec_exit_code(exec_id)

    def start_attached(self, instance: Instance, *, tty: bool) -> int:
        """Start a created instance wired to our terminal (`compound run` at a
        prompt): attach before start so no output is lost; its exit code."""
        with engine_errors(f"attach to {instance.name}"):
            sock = self.client.api.attach_socket(
                instance.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
        self.start(instance)

        def resize(height: int, width: int) -> None:
            self.client.api.resize(instance.id, height=height, width=width)

        with engine_errors(f"attached to {instance.name}"):
            _Pump(resize, sock, tty, self._in(), self._out(), self._err()).run()
        return self.wait(instance)

    def exec_capture(
        self,
        instance: Instance,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600.0,
    ) -> tuple[int, bytes, bytes]:
        """Run a command without our stdio; (exit code, stdout, stderr).
        ``timeout`` is not enforced: the engine's exec API has none, and the
        engine runs healthchecks itself (native_healthcheck)."""
        exec_id = self._exec_create(instance, command, user, workdir, env, False, False)
        with engine_errors(f"exec in {instance.name}"):
            out, err = self.client.api.exec_start(exec_id, demux=True)
        code = self._exec_exit_code(exec_id)
        return code, out or b"", err or b""

    def console(self, instance: Instance) -> str:
        raise NotSupportedError(f"{instance.name}: a container has no separate kernel console")

    def top(self, instance: Instance) -> Processes:
        with engine_errors(f"list the processes of {instance.name}"):
            data = self.client.api.top(instance.id)
        return Processes(
            titles=tuple(data.get("Titles", [])),
            rows=tuple(tuple(str(x) for x in proc) for proc in data.get("Processes", []) or []),
        )

    def _exec_create(
        self,
        instance: Instance,
        command: Sequence[str],
        user: str | None,
        workdir: str | None,
        env: dict[str, str] | None,
        tty: bool,
        interactive: bool,
    ) -> str:
        try:
            result = self.client.api.exec_create(
                instance.id,
                list(command),
                stdout=True,
                stderr=True,
                stdin=interactive,
                tty=tty,
                environment=env,
                workdir=workdir,
                user=user or "",
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise service_error(instance.service, f"exec in {instance.name}", exc) from exc
        return str(result["Id"])

    def _exec_exit_code(self, exec_id: str) -> int:
        # The stream can end a moment before the engine records the exit.
        deadline = time.monotonic() + 5
        while True:
            with engine_errors("inspect exec"):
                info = self.client.api.exec_inspect(exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return -1 if code is None else int(code)
            time.sleep(0.05)

    def _in(self) -> IO[bytes]:
        return self._stdin or sys.stdin.buffer

    def _out(self) -> IO[bytes]:
        return self._stdout or sys.stdout.buffer

    def _err(self) -> IO[bytes]:
        return self._stderr or sys.stderr.buffer

    # -- stats --------------------------------------------------------------------------

    def stats(self, instance: Instance) -> dict[str, Any]:
        try:
            # Not one-shot: the engine then samples twice, which a CPU % needs.
            raw = self.client.api.stats(instance.id, stream=False)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if _gone(exc):
                raise NoSuchInstanceError(f"container {instance.name} does not exist") from exc
            raise service_error(instance.service, f"stats of {instance.name}", exc) from exc
        return summarize_stats(raw)


# --- helpers without an engine -------------------------------------------------------------


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


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_since(since: str, now: float | None = None) -> float:
    """Like ``docker logs --since``: a Unix time, an RFC 3339 time, or a
    duration ago ("10m", "1h30m")."""
    text = since.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if _DURATION.fullmatch(text) or re.fullmatch(rf"(?:{_DURATION.pattern})+", text):
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
        return (time.time() if now is None else now) - seconds
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise CompoundError(
            f"since {since!r} is neither a time (2024-01-31T12:00:00Z, Unix seconds) "
            "nor a duration (10m, 1h30m)"
        ) from exc


_STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}


def _read_exact(raw: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _frames(raw: Any) -> Iterator[tuple[str, bytes]]:
    """The engine's multiplexed stream: 8-byte header (stream, 0, 0, 0, size)."""
    while True:
        header = _read_exact(raw, 8)
        if len(header) < 8:
            return
        size = int.from_bytes(header[4:8], "big")
        payload = _read_exact(raw, size)
        if size and not payload:
            return
        yield _STREAMS.get(header[0], "stdout"), payload


def _raw_chunks(raw: Any) -> Iterator[tuple[str, bytes]]:
    # A tty merges both streams and has no framing.
    for chunk in raw.stream(4096, decode_content=False):
        yield "stdout", chunk


def split_lines(chunks: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
    """Whole lines per stream (a frame may hold part of a line, or several)."""
    pending: dict[str, bytes] = {}
    for stream, data in chunks:
        buf = pending.get(stream, b"") + data
        *lines, pending[stream] = buf.split(b"\n")
        for line in lines:
            yield stream, line.rstrip(b"\r").decode(errors="replace")
    for stream, rest in pending.items():
        if rest:
            yield stream, rest.rstrip(b"\r").decode(errors="replace")


def _write(stream: IO[bytes], data: bytes | None) -> None:
    if data:
        stream.write(data)
        stream.flush()


def summarize_stats(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`docker stats` numbers from one stats sample (cgroup v1 and v2)."""
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = (
        cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1
    )
    cpu_percent = (
        cpu_delta / system_delta * online * 100 if cpu_delta > 0 and system_delta > 0 else 0.0
    )

    mem = raw.get("memory_stats") or {}
    mem_stats = mem.get("stats") or {}
    # As the docker CLI: page cache that can be reclaimed is not "used".
    inactive = mem_stats.get("total_inactive_file", mem_stats.get("inactive_file", 0))
    usage = mem.get("usage", 0)
    usage = usage - inactive if inactive < usage else usage
    limit = mem.get("limit", 0)

    rx = tx = 0
    for net in (raw.get("networks") or {}).values():
        rx += net.get("rx_bytes", 0)
        tx += net.get("tx_bytes", 0)
    read = write = 0
    for entry in (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ():
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return {
        "cpu_percent": round(cpu_percent, 2),
        "memory_usage": usage,
        "memory_limit": limit,
        "memory_percent": round(usage / limit * 100, 2) if limit else 0.0,
        "net_rx": rx,
        "net_tx": tx,
        "block_read": read,
        "block_write": write,
        "pids": (raw.get("pids_stats") or {}).get("current", 0),
    }


class _Pump:
    """Wire a hijacked socket (exec or attach) to our terminal (raw mode when a tty)."""

    def __init__(
        self,
        resize: Callable[[int, int], None],
        sock: Any,
        tty: bool,
        stdin: IO[bytes],
        stdout: IO[bytes],
        stderr: IO[bytes],
    ) -> None:
        self.resize, self.tty = resize, tty
        self.sock = getattr(sock, "_sock", sock)  # SocketIO → the socket itself
        self.wrapper = sock
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.buffer = b""

    def run(self) -> None:
        in_fd = self.stdin.fileno()
        restore = self._raw_mode(in_fd) if self.tty and os.isatty(in_fd) else None
        old_winch = self._watch_size(in_fd) if self.tty else None
        try:
            self._loop(in_fd)
        finally:
            if restore is not None:
                restore()
            if old_winch is not None:
                signals.signal(signals.SIGWINCH, old_winch)
            with contextlib.suppress(OSError):
                self.wrapper.close()

    def _loop(self, in_fd: int) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, "engine")
        self.sock.setblocking(True)
        try:
            sel.register(in_fd, selectors.EVENT_READ, "stdin")
        except PermissionError:
            # A regular file (`exec ... < file`) cannot be polled; reading it
            # never blocks for long, so a thread can copy it.
            threading.Thread(target=self._copy_file, args=(in_fd,), daemon=True).start()
        while True:
            for key, _ in sel.select():
                if key.data == "engine":
                    try:
                        data = self.sock.recv(65536)
                    except ConnectionResetError:
                        return
                    if not data:
                        return
                    self._output(data)
                elif not self._forward(in_fd):
                    sel.unregister(in_fd)

    def _forward(self, in_fd: int) -> bool:
        """Copy one read of our stdin to the process; False at its end."""
        data = os.read(in_fd, 65536)
        if data:
            try:
                self.sock.sendall(data)
                return True
            except OSError:  # the process is gone; its output still drains
                return False
        # Our stdin ended: tell the process, keep reading its output. Not with a
        # tty: there the engine answers a half-close by dropping the output, and
        # end-of-input is the ^D a raw terminal sends anyway.
        if not self.tty:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        return False

    def _copy_file(self, in_fd: int) -> None:
        with contextlib.suppress(OSError):
            while self._forward(in_fd):
                pass

    def _output(self, data: bytes) -> None:
        if self.tty:
            _write(self.stdout, data)
            return
        self.buffer += data
        while len(self.buffer) >= 8:
            size = int.from_bytes(self.buffer[4:8], "big")
            if len(self.buffer) < 8 + size:
                break
            stream, payload = self.buffer[0], self.buffer[8 : 8 + size]
            self.buffer = self.buffer[8 + size :]
            _write(self.stderr if stream == 2 else self.stdout, payload)

    @staticmethod
    def _raw_mode(fd: int) -> Callable[[], None]:
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(fd)
        ttymod.setraw(fd)
        return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def _watch_size(self, fd: int) -> Any:
        def resize(*_: Any) -> None:
            with contextlib.suppress(OSError, docker.errors.DockerException):
                size = os.get_terminal_size(fd)
                self.resize(size.lines, size.columns)

        resize()
        try:
            return signals.signal(signals.SIGWINCH, resize)
        except ValueError:  # not the main thread: no resize on window change
            return None


__all__ = [
    "ContainerDriver",
    "NoSuchInstanceError",
    "ProjectResources",
    "build_image",
    "ensure_network",
    "ensure_volume",
    "inspect_instance",
    "instance_from_inspect",
    "list_instances",
    "local_image_id",
    "network_create_args",
    "project_resources",
    "pull_image",
    "remove_networks",
    "remove_volumes",
    "volume_create_args",
]
