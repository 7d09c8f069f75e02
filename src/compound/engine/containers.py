"""Plain containers, docker-py style: create one from a request (with its
extra networks, files and start), inspect, list, wait, read, remove, run.

:func:`create` is the one create path: the container driver, the VM driver
(whose launcher is the container driver's request, rewritten), the load
balancer and the volume helper all go through it, so "create, connect,
write files, start, and on any failure leave nothing behind" is written once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, cast

import docker
import docker.errors
import requests.exceptions

from compound.engine.client import Client, engine_errors, translate
from compound.engine.errors import gone, service_error
from compound.engine.request import ContainerRequest, NetworkAttachment
from compound.errors import CompoundError, EngineError, ServiceError

# what a docker-py call raises: the engine's answers and the transport's failures
SDK_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def create(
    client: Client,
    request: ContainerRequest,
    *,
    kind: str = "container",
    service: str | None = None,
    start: bool = False,
) -> str:
    """Create the container, connect its extra networks (aliases, addresses),
    write its files, start it if asked; its id. On any failure the container
    is removed again. Errors name ``kind`` ("container", "VM launcher", ...)
    and, given ``service``, are that service's (port in use, missing bind...)."""
    label = f"{kind} {request.name}" if request.name else kind

    def failure(what: str, exc: BaseException) -> CompoundError:
        return service_error(service, what, exc) if service else translate(exc, what)

    try:
        result = cast(Any, client.api).create_container_from_config(
            request.config, name=request.name, platform=request.platform
        )
    except SDK_ERRORS as exc:
        raise failure(f"create {label}", exc) from exc
    cid = str(result["Id"])
    try:
        for att in request.networks:
            try:
                connect(client, cid, att)
            except SDK_ERRORS as exc:
                raise failure(f"connect {label} to network {att.network!r}", exc) from exc
        if request.archive is not None:
            _write_files(client, cid, request.archive, label, service, failure)
        if start:
            try:
                client.api.start(cid)
            except SDK_ERRORS as exc:
                raise failure(f"start {label}", exc) from exc
    except BaseException:
        with contextlib.suppress(CompoundError):
            remove(client, cid)
        raise
    return cid


def connect(client: Client, container_id: str, att: NetworkAttachment) -> None:
    """Connect a created container to one more network (raises the SDK's errors)."""
    client.api.connect_container_to_network(
        container_id,
        att.network,
        aliases=list(att.aliases) or None,
        ipv4_address=att.ipv4_address,
        ipv6_address=att.ipv6_address,
        links=[(link.partition(":")[0], link.partition(":")[2]) for link in att.links] or None,
        link_local_ips=list(att.link_local_ips) or None,
        driver_opt=dict(att.driver_opts) or None,
    )


def _write_files(
    client: Client,
    cid: str,
    archive: bytes,
    label: str,
    service: str | None,
    failure: Any,
) -> None:
    what = f"write secrets/configs into {label}"
    try:
        ok = client.api.put_archive(cid, "/", archive)
    except SDK_ERRORS as exc:
        raise failure(what, exc) from exc
    if not ok:
        refused = f"the engine refused to {what}"
        raise ServiceError(service, refused) if service else EngineError(refused)


def start(client: Client, container_id: str, *, what: str) -> None:
    with engine_errors(what):
        client.api.start(container_id)


def remove(client: Client, container_id: str, *, volumes: bool = True) -> bool:
    """Remove the container, running or not; False if it was already gone
    (or going)."""
    try:
        # force: a container under a restart policy may be restarting
        client.api.remove_container(container_id, v=volumes, force=True)
    except SDK_ERRORS as exc:
        if gone(exc) or "already in progress" in str(exc):
            return False
        raise translate(exc, f"remove container {container_id[:12]}") from exc
    return True


def inspect(client: Client, container_id: str) -> dict[str, Any] | None:
    """The engine's ``GET /containers/{id}/json``; None if there is no such container."""
    with engine_errors(f"inspect container {container_id[:12]}"):
        try:
            return cast(dict[str, Any], client.api.inspect_container(container_id))
        except docker.errors.NotFound:
            return None


def list_containers(
    client: Client,
    *,
    include_stopped: bool = True,
    filters: Mapping[str, Any] | None = None,
    size: bool = False,
    what: str = "list containers",
) -> list[dict[str, Any]]:
    """The engine's container list rows (labels, mounts, SizeRw with ``size``)."""
    with engine_errors(what):
        rows = client.api.containers(all=include_stopped, filters=dict(filters or {}), size=size)
    return list(rows)


def wait(client: Client, container_id: str, timeout: float) -> int:
    """Its exit code, once it has exited."""
    with engine_errors(f"wait for container {container_id[:12]}"):
        return int(client.api.wait(container_id, timeout=cast(int, timeout)).get("StatusCode", -1))


class Output(NamedTuple):
    stdout: bytes
    stderr: bytes


def output(client: Client, container_id: str) -> Output:
    """What the container wrote, each stream apart."""
    with engine_errors(f"read the output of container {container_id[:12]}"):
        out = client.api.logs(container_id, stdout=True, stderr=False)
        err = client.api.logs(container_id, stdout=False, stderr=True)
    return Output(bytes(out), bytes(err))


def top(client: Client, container_id: str) -> dict[str, Any]:
    """``GET /containers/{id}/top``: Titles and Processes."""
    with engine_errors(f"list the processes of container {container_id[:12]}"):
        return cast(dict[str, Any], client.api.top(container_id))


def get_archive(client: Client, container_id: str, path: str, chunk_size: int) -> Iterator[bytes]:
    """A tar of ``path`` in the container, streamed in chunks."""
    with engine_errors(f"read {path} of container {container_id[:12]}"):
        chunks, _ = client.api.get_archive(container_id, path, chunk_size=chunk_size)
    return iter(chunks)


def put_archive(
    client: Client, container_id: str, path: str, data: bytes | Iterable[bytes], *, what: str
) -> bool:
    """Extract a tar (bytes, or a stream of chunks) at ``path`` in the container."""
    with engine_errors(what):
        return bool(client.api.put_archive(container_id, path, data))


class Ran(NamedTuple):
    exit_code: int
    stdout: bytes
    stderr: bytes


def run(client: Client, config: Mapping[str, Any], *, what: str, timeout: float = 600) -> Ran:
    """Create, start and wait for a throwaway container; what it wrote. It
    is removed whatever happens (``docker run --rm``)."""
    cid = create(client, ContainerRequest(config=dict(config)), kind=what)
    try:
        start(client, cid, what=f"start {what}")
        code = wait(client, cid, timeout)
        out = output(client, cid)
        return Ran(code, out.stdout, out.stderr)
    finally:
        with contextlib.suppress(CompoundError):
            remove(client, cid)
