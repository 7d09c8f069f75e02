"""The connection to the Docker Engine, and the one translation of its errors.

Everything that talks to the engine gets its client from :func:`connect`
(one per process and DOCKER_HOST) and wraps its calls in
:func:`engine_errors`, so a user sees the engine's own explanation inside a
:class:`~compound.errors.EngineError`, never a docker-py traceback.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeAlias, cast

import docker
import docker.errors
import requests.exceptions

from compound.errors import CompoundError, EngineError, EngineUnavailableError

# The engine client every package passes around: type hints outside the
# engine layer name this alias, never the SDK itself.
Client: TypeAlias = docker.DockerClient

# How long a silent engine may take to answer the first ping before we give up.
PING_TIMEOUT = 5.0

UNAVAILABLE_HINT = "start it: `make engine` or `dockerd &`; is DOCKER_HOST right?"

_clients: dict[tuple[int, str, str, str], docker.DockerClient] = {}
_lock = threading.Lock()


def _cache_key() -> tuple[int, str, str, str]:
    # Per process (a forked child must not share the parent's sockets) and per
    # engine address, so tests that change DOCKER_HOST get a fresh client.
    env = os.environ
    return (
        os.getpid(),
        env.get("DOCKER_HOST", ""),
        env.get("DOCKER_TLS_VERIFY", ""),
        env.get("DOCKER_CERT_PATH", ""),
    )


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: float = 60) -> docker.DockerClient:
    """The engine client of this process; raises EngineUnavailableError
    within a few seconds when nothing answers at DOCKER_HOST."""
    key = _cache_key()
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _open(timeout)
            _clients[key] = client
        return client


def connect_to(base_url: str, timeout: float) -> Client:
    """A client of another engine (a remote host's, through its forwarded
    socket), not cached: its owner closes it. Raises EngineUnavailableError
    when the address cannot be used."""
    try:
        return docker.DockerClient(base_url=base_url, timeout=cast(int, timeout))
    except docker.errors.DockerException as exc:
        raise EngineUnavailableError(
            f"cannot use the Docker Engine at {base_url}: {explain(exc)}"
        ) from exc


def reset_connection() -> None:
    """Forget cached clients (after DOCKER_HOST changed, or in tests)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def _open(timeout: float) -> docker.DockerClient:
    # from_env negotiates the API version with a request of its own, so it gets
    # the short timeout too; the long one applies once the engine has answered.
    try:
        client = docker.from_env(timeout=cast(int, PING_TIMEOUT))  # requests takes floats
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise EngineUnavailableError(
            f"no Docker Engine answers at {engine_address()}: {explain(exc)}",
            hint=UNAVAILABLE_HINT,
        ) from exc
    client.api.timeout = cast(int, timeout)
    if engine_address().startswith("unix://"):
        # no proxy can sit on a unix socket: skip requests' per-call scan of the environment
        client.api.trust_env = False
    return client


def explain(exc: BaseException) -> str:
    """The engine's own words for a failed call, without docker-py's URL noise."""
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        explanation = exc.explanation
        if isinstance(explanation, bytes):
            explanation = explanation.decode(errors="replace")
        return str(explanation).strip()
    text = str(exc).strip()
    return text or type(exc).__name__


def translate(exc: BaseException, what: str) -> CompoundError:
    """The CompoundError for an exception raised by a docker-py call."""
    if isinstance(exc, CompoundError):
        return exc
    if isinstance(exc, requests.exceptions.ConnectionError) or (
        isinstance(exc, docker.errors.DockerException)
        and not isinstance(exc, docker.errors.APIError)
        and "Connection" in str(exc)
    ):
        return EngineUnavailableError(
            f"{what}: the Docker Engine at {engine_address()} stopped answering: {explain(exc)}",
            hint=UNAVAILABLE_HINT,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return EngineError(f"{what}: the Docker Engine did not answer in time")
    return EngineError(f"{what}: {explain(exc)}")


@contextmanager
def engine_errors(what: str) -> Iterator[None]:
    """Turn every docker-py / transport failure inside into an EngineError
    whose message starts with ``what`` (e.g. "create container web-1")."""
    try:
        yield
    except CompoundError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise translate(exc, what) from exc


@dataclass(frozen=True)
class EngineVersion:
    version: str
    api_version: str
    min_api_version: str
    os: str
    arch: str
    kernel: str

    def __str__(self) -> str:
        return f"Docker Engine {self.version} (API {self.api_version}, {self.os}/{self.arch})"


def engine_version(client: docker.DockerClient) -> EngineVersion:
    with engine_errors("read the engine version"):
        info = client.version()
    return EngineVersion(
        version=str(info.get("Version", "")),
        api_version=str(info.get("ApiVersion", "")),
        min_api_version=str(info.get("MinAPIVersion", "")),
        os=str(info.get("Os", "")),
        arch=str(info.get("Arch", "")),
        kernel=str(info.get("KernelVersion", "")),
    )
