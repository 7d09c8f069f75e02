"""Live events for SSE clients: jobs' progress and the engine's events.

Publishers are worker threads; subscribers are asyncio queues on the
server's loop, fed through ``call_soon_threadsafe``. A slow subscriber
loses its oldest events (bounded queue), never the publisher's time.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

_QUEUE_SIZE = 1000


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = set()
        self._seq = itertools.count(1)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # called in the publisher

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_QUEUE_SIZE)
        with self._lock:
            self._subs.add((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._subs = {s for s in self._subs if s[1] is not q}

    def publish(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        event = {"id": next(self._seq), "type": kind, "time": time.time(), **data}
        for listener in self.listeners:
            listener(event)
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(_put, q, event)
            except RuntimeError:  # that loop is closed: the client is gone
                self.unsubscribe(q)
        return event


def _put(q: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if q.full():
        q.get_nowait()
    q.put_nowait(event)
