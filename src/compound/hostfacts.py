"""What this host offers, as the advisor and placement need it.

Read from the kernel (CPUs, memory, whether a hypervisor is underneath)
and, once the VM runtime has probed it, whether KVM really works. Cheap:
no engine call, no boot.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache

from compound.advisor import HostFacts
from compound.runtimes.hostops import host_is_vm


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def kvm_usable() -> bool | None:
    """The VM runtime's cached boot probe, if it has run; None = not known."""
    from compound.runtimes.vm.accel import cached_kvm_usable  # only when asked

    return cached_kvm_usable()


@lru_cache(maxsize=1)
def host_facts() -> HostFacts:
    return HostFacts(
        kvm_usable=kvm_usable(),
        host_is_vm=host_is_vm(),
        os="linux",
        arch=platform.machine() or None,
        cpus=float(os.cpu_count() or 1),
        memory=_memory_bytes(),
    )
