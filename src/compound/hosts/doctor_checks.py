"""What ``compound doctor`` says about multi-host deployment on this kernel."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from compound.runtimes.hostcheck import CheckEnv, Verdict, ok, warn


def kernel_has_ipvs() -> bool:
    """IPVS loaded, or loadable as a module of the running kernel."""
    if Path("/proc/net/ip_vs").exists():
        return True
    mods = Path("/lib/modules") / platform.release()
    if not mods.is_dir():
        return False
    for _root, _dirs, files in os.walk(mods):
        if any(f.startswith("ip_vs.ko") for f in files):
            return True
    return False


def check_swarm_networking(env: CheckEnv) -> Verdict:
    if kernel_has_ipvs():
        return ok("IPVS present: Swarm's virtual IPs and routing mesh work")
    return warn(
        "no IPVS in this kernel: Swarm's virtual-IP load balancing and routing mesh cannot work",
        "`up --swarm` uses endpoint_mode: dnsrr (clients resolve every task) and publishes "
        "ports in host mode (on the node running the task) instead",
    )
