"""The engine's event stream (containers, networks, volumes coming and going)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import urllib3.exceptions

from compound.engine.client import Client, engine_errors, translate


class EventStream:
    """Decoded events, followed until :meth:`close`; an engine that goes
    away mid-stream raises an EngineError, not the SDK's own error."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[dict[str, Any]]:
        what = "follow the engine's events"
        try:
            with engine_errors(what):
                yield from self._stream
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            # a stream cut mid-read surfaces from below the SDK
            raise translate(exc, what) from exc

    def close(self) -> None:
        self._stream.close()


def events(client: Client, *, labels: Sequence[str]) -> EventStream:
    """The events of objects carrying all ``labels`` ("key" or "key=value")."""
    with engine_errors("follow the engine's events"):
        return EventStream(client.events(decode=True, filters={"label": list(labels)}))
