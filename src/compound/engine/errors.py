"""What an engine error means for one service: the translation a user reads."""

from __future__ import annotations

import re

import docker
import docker.errors
import docker.utils.build

from compound.engine.client import explain, translate
from compound.errors import (
    CompoundError,
    ImageNotFoundError,
    ServiceError,
)

IMAGE_HINT = (
    "get it onto this host first: `docker save IMAGE` where it exists and `docker load` it "
    "here, `docker build -t IMAGE` it (or give the service a build: section), or "
    "`docker import` a root filesystem tarball"
)

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


# The SDK's exception classes, for callers that must tell "not there" from
# other failures (hosts/ talking to remote engines): named here so that only
# the engine layer imports the SDK.
SDKError = docker.errors.DockerException  # the root of every SDK error
APIError = docker.errors.APIError  # the engine answered with an error
NotFound = docker.errors.NotFound  # a container, volume, service, ... that is not there
ImageNotFound = docker.errors.ImageNotFound


def gone(exc: BaseException) -> bool:
    return isinstance(exc, docker.errors.NotFound)


def not_running(exc: BaseException) -> bool:
    return isinstance(exc, docker.errors.APIError) and "is not running" in explain(exc)
