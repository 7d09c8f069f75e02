"""The instances listing, read once for many clients.

A listing costs one engine call per instance (inspect), ~3 ms each: 50
instances and a few dashboards polling would keep the engine busy for
nothing. Each project's listing is kept until the engine or a job says
something changed in that project (the event bus), and at most ``max_age``
seconds (a VM's boot time and a probe's health change without an engine
event). Concurrent requests for a listing an event made stale wait for one
read instead of each starting their own; a listing that is only old is
served while one request reads it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class ListingCache:
    def __init__(self, max_age: float = 2.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, int, Any]] = {}
        self._generation: dict[str, int] = {}
        self._reading: dict[str, threading.Lock] = {}

    def invalidate(self, project: str) -> None:
        with self._lock:
            self._generation[project] = self._generation.get(project, 0) + 1

    def get(self, project: str, key: str, read: Callable[[], Any]) -> Any:
        slot = f"{project}\0{key}"
        with self._lock:
            reading = self._reading.setdefault(slot, threading.Lock())
            entry = self._entries.get(slot)
            current = entry is not None and entry[1] == self._generation.get(project, 0)
        if entry is not None and current:
            if time.monotonic() - entry[0] < self.max_age:
                return entry[2]
            if not reading.acquire(blocking=False):
                return entry[2]  # only old, nothing changed: another request refreshes it
            reading.release()
        with reading:  # one read at a time per listing; the others reuse it
            with self._lock:
                generation = self._generation.get(project, 0)
                entry = self._entries.get(slot)
            if entry and entry[1] == generation and time.monotonic() - entry[0] < self.max_age:
                return entry[2]
            value = read()
            with self._lock:
                self._entries[slot] = (time.monotonic(), generation, value)
            return value
