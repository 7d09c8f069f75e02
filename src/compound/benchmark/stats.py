"""Summaries over rounds, ratios pair by pair, and whether the host was noisy.

Every figure is kept as its rounds; the summary is median, min and max. A
VM/container ratio is taken round by round (round i of the VM over round i
of the container, measured back to back) and then summarised, so a burst of
load from elsewhere hits both halves of a pair rather than one side only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# a figure whose spread (max - min) exceeds this share of its median is noisy
NOISY_SPREAD = 0.5
# a host whose 1-minute load average per CPU exceeds this was busy elsewhere
NOISY_LOAD_PER_CPU = 0.7


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    min: float
    max: float

    @property
    def spread(self) -> float:
        """(max - min) / median; 0 for a single round."""
        if self.n < 2 or self.median == 0:
            return 0.0
        return (self.max - self.min) / abs(self.median)

    def to_json(self) -> dict[str, float | int]:
        return {"n": self.n, "median": self.median, "min": self.min, "max": self.max}


def summarize(values: Sequence[float]) -> Summary | None:
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return None
    return Summary(
        n=len(finite),
        median=round(statistics.median(finite), 6),
        min=round(min(finite), 6),
        max=round(max(finite), 6),
    )


def pair_ratios(vm: Sequence[float | None], container: Sequence[float | None]) -> list[float]:
    """vm[i] / container[i] for each round both measured (and a non-zero base)."""
    out = []
    for a, b in zip(vm, container, strict=False):
        if a is not None and b is not None and b != 0 and math.isfinite(a) and math.isfinite(b):
            out.append(round(a / b, 6))
    return out


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (p in 0..1)."""
    if not values:
        raise ValueError("percentile of no values")
    s = sorted(values)
    k = (len(s) - 1) * p
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def noisy_load(load1: Sequence[float], cpus: int) -> str | None:
    """Why the host counts as noisy, judging by load averages sampled during
    the run, or None."""
    if not load1 or cpus <= 0:
        return None
    worst = max(load1)
    if worst / cpus > NOISY_LOAD_PER_CPU:
        return (
            f"load average reached {worst:.2f} on {cpus} CPUs "
            f"(> {NOISY_LOAD_PER_CPU:.0%} per CPU): other work shared the host"
        )
    return None
