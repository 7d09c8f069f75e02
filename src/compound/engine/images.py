"""Images in the engine, docker-py style: inspect, id, config, size."""

from __future__ import annotations

from typing import Any, cast

import docker.errors

from compound.engine.client import Client, engine_errors
from compound.errors import EngineError


def inspect(client: Client, ref: str) -> dict[str, Any] | None:
    """The engine's ``GET /images/{ref}/json``; None if there is no such image."""
    with engine_errors(f"inspect image {ref!r}"):
        try:
            return cast(dict[str, Any], cast(Any, client.api).inspect_image(ref))
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            if exc.status_code == 400:  # invalid reference format
                raise EngineError(f"{ref!r} is not a valid image reference") from exc
            raise


def image_id(client: Client, ref: str) -> str | None:
    """The id of the local image ``ref`` names, None if it is not here."""
    info = inspect(client, ref)
    return None if info is None else str(info["Id"])


def config(client: Client, ref: str) -> dict[str, Any]:
    """The image's Config (Cmd, Env, ExposedPorts...); {} if it is not here."""
    info = inspect(client, ref)
    return dict((info or {}).get("Config") or {})
