"""Actual state: a project's instances as the engine reports them (one label
query; every runtime's instance is a container with the io.compound.* labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
import docker.utils.build

from compound.engine.client import engine_errors
from compound.errors import (
    EngineError,
    NoSuchInstanceError,
)
from compound.runtimes.base import (
    LABEL_CONFIG_HASH,
    LABEL_NUMBER,
    LABEL_ONEOFF,
    LABEL_PROJECT,
    LABEL_ROLE,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    ROLE_LB,
    Instance,
    PortBinding,
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
