"""What the host sees of an instance: the memory of its processes (RSS and
PSS from /proc), its disk (image, writable layer, a VM's base disk and
overlay), and its confinement (privileges, capabilities, devices).

A container's processes and a VM's launcher (QEMU, virtiofsd, the
launcher's shell) are all processes of one engine container, so both are
measured the same way: every process the engine lists for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from compound.engine import Client, containers, images

MIB = 1024 * 1024

# capability numbers (linux/capability.h) → names, for the confinement facts
CAPS = tuple(
    [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
)


def pids_of(client: Client, container_id: str) -> list[int]:
    """Host PIDs of every process in the container."""
    top = containers.top(client, container_id)
    titles = [t.upper() for t in top.get("Titles") or []]
    if "PID" not in titles:
        return []
    col = titles.index("PID")
    return [int(row[col]) for row in top.get("Processes") or [] if row[col].isdigit()]


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss and Pss of one process in bytes ({} when it is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss") and rest.split():
            out[key.lower()] = int(rest.split()[0]) * 1024
    return out


def memory_of(client: Client, container_ids: Iterable[str]) -> dict[str, float]:
    """Summed RSS and PSS (MiB) of every process of these containers."""
    rss = pss = 0
    procs = 0
    for cid in container_ids:
        for pid in pids_of(client, cid):
            m = smaps_rollup(pid)
            if m:
                procs += 1
                rss += m.get("rss", 0)
                pss += m.get("pss", 0)
    if procs == 0:
        raise RuntimeError("no process of the instance could be read in /proc (run as root)")
    return {"rss_mib": round(rss / MIB, 2), "pss_mib": round(pss / MIB, 2), "processes": procs}


def image_size_mib(client: Client, ref: str) -> float:
    info = images.inspect(client, ref)
    if info is None:
        raise RuntimeError(f"image {ref} is gone")
    return round(int(info["Size"]) / MIB, 2)


def writable_layer_mib(client: Client, container_id: str) -> float:
    # the list endpoint computes SizeRw on request; inspect (in docker-py) cannot
    rows = containers.list_containers(client, size=True, filters={"id": container_id})
    if not rows:
        raise RuntimeError(f"container {container_id[:12]} is gone")
    return round(int(rows[0].get("SizeRw") or 0) / MIB, 2)


def allocated_mib(path: Path) -> float:
    """Blocks really allocated (a sparse base disk is not its apparent size)."""
    return round(os.stat(path).st_blocks * 512 / MIB, 2)


def mem_available_mib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def load1() -> float:
    return os.getloadavg()[0]


def _cap_names(mask: int) -> set[str]:
    return {name for bit, name in enumerate(CAPS) if mask >> bit & 1}


def effective_caps(pid: int) -> set[str] | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return _cap_names(int(line.split()[1], 16))
    except OSError:
        return None
    return None


def confinement(client: Client, container_id: str) -> dict[str, Any]:
    """How the engine confines this container, as its inspect and its first
    process's capabilities say."""
    info = containers.inspect(client, container_id)
    if info is None:
        raise RuntimeError(f"container {container_id[:12]} is gone")
    hc = info.get("HostConfig") or {}
    pid = int((info.get("State") or {}).get("Pid") or 0)
    caps = effective_caps(pid) if pid else None
    return {
        "privileged": bool(hc.get("Privileged")),
        "cap_add": sorted(hc.get("CapAdd") or []),
        "cap_drop": sorted(hc.get("CapDrop") or []),
        "security_opt": [
            # a seccomp profile passed inline is long JSON: its presence is the fact
            "seccomp=<profile>" if s.startswith("seccomp=") and "{" in s else s
            for s in hc.get("SecurityOpt") or []
        ],
        "devices": sorted(d.get("PathOnHost", "") for d in hc.get("Devices") or []),
        "apparmor": info.get("AppArmorProfile") or None,
        "userns": hc.get("UsernsMode") or None,
        "read_only_rootfs": bool(hc.get("ReadonlyRootfs")),
        "effective_capabilities": sorted(caps) if caps is not None else None,
    }
