"""Bounded, prioritised access to the engine.

Starting every instance at once makes the engine slower for all of them
(measured: 16 parallel starts on 2 cores take 1-2.5 s each). A few slots,
served to the services with the longest chain of dependents first, finish
the critical path early without lowering the engine's throughput.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from compound.planner.graph import dependencies
from compound.spec.model import Project


def default_limit(*, teardown: bool = False) -> int:
    """COMPOSE_PARALLEL_LIMIT as in Compose; else twice the CPUs (min 4) when
    starting, where order matters, and Compose's 64 when tearing down."""
    raw = os.environ.get("COMPOUND_PARALLEL_LIMIT") or os.environ.get("COMPOSE_PARALLEL_LIMIT")
    if raw and raw.isdigit() and int(raw) > 0:
        return int(raw)
    if teardown:
        return 64
    return max(4, 2 * (os.cpu_count() or 2))


class PrioritySlots:
    """A semaphore whose waiters are served lowest priority value first."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._cv = threading.Condition()
        self._waiting: list[tuple[tuple[int, ...], int]] = []
        self._seq = itertools.count()

    @contextmanager
    def slot(self, priority: tuple[int, ...]) -> Iterator[None]:
        with self._cv:
            ticket = (priority, next(self._seq))
            heapq.heappush(self._waiting, ticket)
            while self._free == 0 or self._waiting[0] != ticket:
                self._cv.wait()
            heapq.heappop(self._waiting)
            self._free -= 1
            self._cv.notify_all()
        try:
            yield
        finally:
            with self._cv:
                self._free += 1
                self._cv.notify_all()


def start_priority(project: Project, names: set[str]) -> dict[str, tuple[int, int]]:
    """Lower goes first: the tallest chain of dependents first, then the
    deepest in its chain (it has already waited for everything above it)."""
    heights = chain_heights(project, names)
    depths: dict[str, int] = {}

    def depth(n: str, seen: frozenset[str]) -> int:
        if n not in depths:
            above = [
                depth(d, seen | {n})
                for d in dependencies(project.services[n]) & names
                if d not in seen
            ]
            depths[n] = 1 + max(above, default=0)
        return depths[n]

    return {n: (-heights[n], -depth(n, frozenset())) for n in names}


def chain_heights(project: Project, names: set[str] | None = None) -> dict[str, int]:
    """1 for a service nothing depends on; otherwise 1 + the tallest dependent."""
    names = set(project.services) if names is None else names
    dependents: dict[str, set[str]] = {n: set() for n in names}
    for n in names:
        for d in dependencies(project.services[n]) & names:
            dependents[d].add(n)
    heights: dict[str, int] = {}

    def height(n: str, seen: frozenset[str]) -> int:
        if n not in heights:
            below = [height(m, seen | {n}) for m in dependents[n] if m not in seen]
            heights[n] = 1 + max(below, default=0)
        return heights[n]

    for n in names:
        height(n, frozenset())
    return heights
