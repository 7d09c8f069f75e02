"""What a bench run measures and how much: --quick, the default, --full."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Mode = Literal["quick", "default", "full"]

DEFAULT_IMAGE = "local/busybox:latest"
# compound's own probe image: the client container runs the load generator
# (benchmark/loadgen.py) in it, whatever the image under test holds
# (`make images` builds it)
PROBE_IMAGE = "local/python:3"


@dataclass(frozen=True)
class BenchOptions:
    image: str = DEFAULT_IMAGE
    mode: Mode = "default"
    rounds: int = 5
    density_bound: int = 5  # instances of each kind, at most
    density_budget_mib: int = 2048  # stop a density run when its instances use more
    net_seconds: float = 3.0  # length of each network run
    seq_mib: int = 64  # sequential volume I/O
    small_files: int = 1000
    cpu_mib: int = 64  # bytes hashed by the CPU-bound work
    vm_memory: str = "128m"
    settle_seconds: float = 2.0  # idle time before memory is read
    try_kvm: bool = True  # measure a KVM variant when the probe says KVM works
    prefix: str = "cbench"  # compose project names: <prefix>-<run id>-...

    @classmethod
    def for_mode(cls, mode: Mode, **overrides: object) -> BenchOptions:
        base = cls(mode=mode)
        if mode == "quick":
            # the integration test's whole budget: ≤ 2.5 min under TCG on 2 cores
            base = replace(
                base,
                rounds=2,
                density_bound=2,
                net_seconds=1.0,
                seq_mib=8,
                small_files=100,
                cpu_mib=8,
                settle_seconds=1.0,
            )
        elif mode == "full":
            base = replace(
                base,
                rounds=9,
                density_bound=10,
                net_seconds=5.0,
                seq_mib=256,
                small_files=2000,
                cpu_mib=128,
                settle_seconds=5.0,
            )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given)  # type: ignore[arg-type]
