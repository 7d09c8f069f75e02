"""The engine's event stream (containers, networks, volumes coming and going)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compound.engine.client import Client, engine_errors


def events(client: Client, *, labels: Sequence[str]) -> Any:
    """The decoded events of objects carrying all ``labels`` ("key" or
    "key=value"): iterate it (dicts), ``close()`` it to stop following."""
    with engine_errors("follow the engine's events"):
        return client.events(decode=True, filters={"label": list(labels)})
