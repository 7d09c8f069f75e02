"""An image's run configuration and how a Compose service overrides it,
following the Docker Engine's merge rules exactly, so a service runs the
same process whether it is a container or a VM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from compound.errors import ServiceError
from compound.spec.model import Service

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config (``Config`` in ``docker image
    inspect``) that decide what runs."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    stop_signal: str | None = None

    @classmethod
    def from_inspect(cls, attrs: Mapping[str, Any]) -> ImageConfig:
        """From ``docker image inspect`` output (the ``attrs`` of an Image)."""
        c = attrs.get("Config") or {}

        def seq(v: Any) -> tuple[str, ...] | None:
            return None if v is None else tuple(str(x) for x in v)

        return cls(
            entrypoint=seq(c.get("Entrypoint")),
            cmd=seq(c.get("Cmd")),
            env=tuple(c.get("Env") or ()),
            working_dir=c.get("WorkingDir") or "",
            user=c.get("User") or "",
            exposed_ports=tuple(sorted((c.get("ExposedPorts") or {}).keys())),
            stop_signal=c.get("StopSignal") or None,
        )


@dataclass(frozen=True)
class ProcessSpec:
    """What the guest runs: the merged result."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    user: str = ""
    stop_signal: str = "SIGTERM"


def merge_argv(
    image_entrypoint: Sequence[str] | None,
    image_cmd: Sequence[str] | None,
    entrypoint: Sequence[str] | None,
    command: Sequence[str] | None,
) -> tuple[str, ...]:
    """Docker's rule (daemon ``merge``): a non-empty entrypoint from the
    service replaces the image's and drops the image's CMD; an empty one
    (``entrypoint: []``/``""``) clears the image's entrypoint but keeps its
    CMD unless a command is given; ``command`` replaces CMD."""
    if entrypoint:
        return tuple(entrypoint) + tuple(command or ())
    ep: Sequence[str] = (image_entrypoint or ()) if entrypoint is None else ()
    cmd = command if command else (image_cmd or ())
    return tuple(ep) + tuple(cmd)


def merge_env(image_env: Sequence[str], service_env: Mapping[str, str | None]) -> dict[str, str]:
    """Image ``Env`` then the service's, key by key; PATH defaulted as the
    engine does. ``None`` values (unset and not found by the loader) are
    left out, as Compose leaves them out."""
    env: dict[str, str] = {}
    for item in image_env:
        k, sep, v = item.partition("=")
        if sep:
            env[k] = v
    for k, val in service_env.items():
        if val is not None:
            env[k] = val
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def merge_service(image: ImageConfig, service: Service) -> ProcessSpec:
    argv = merge_argv(image.entrypoint, image.cmd, service.entrypoint, service.command)
    if not argv:
        raise ServiceError(
            service.name,
            "no command specified: the image has no ENTRYPOINT or CMD",
            hint="set `command:` (or `entrypoint:`) for the service",
        )
    return ProcessSpec(
        argv=argv,
        env=merge_env(image.env, service.environment),
        working_dir=service.working_dir or image.working_dir or "/",
        user=service.user if service.user is not None else image.user,
        stop_signal=service.stop_signal or image.stop_signal or "SIGTERM",
    )
