"""An instance's CPU, memory, network and block I/O, read where the kernel keeps them.

Read from the container's cgroup (v1 with cgroupfs or systemd, or v2) and
its network namespace (``/proc/<pid>/net/dev``), not through ``docker
stats``: the engine samples twice, a second apart, per container, which a
scrape of fifty instances cannot wait for. A VM's container is its
launcher, so its cgroup holds QEMU: the guest's RAM as QEMU touched it,
its vCPU time, its disk I/O and its NIC's traffic.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    memory_bytes: int  # usage minus reclaimable page cache, as `docker stats`
    memory_limit_bytes: int | None
    rx_bytes: int
    tx_bytes: int
    read_bytes: int
    write_bytes: int


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _kv(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value.strip())
    return out


def cgroup_dir(controller: str | None, container_id: str, root: Path = CGROUP_ROOT) -> Path | None:
    """The container's cgroup directory (``controller``: a v1 hierarchy, or
    None for the v2 unified one)."""
    base = root / controller if controller else root
    for rel in (
        f"docker/{container_id}",
        f"system.slice/docker-{container_id}.scope",
        f"docker.slice/docker-{container_id}.scope",
    ):
        if (base / rel).is_dir():
            return base / rel
    return None


def is_v2(root: Path = CGROUP_ROOT) -> bool:
    return (root / "cgroup.controllers").exists()


def memory_bytes(container_id: str, root: Path = CGROUP_ROOT) -> tuple[int, int | None] | None:
    """(usage without inactive page cache, limit or None), or None if unknown."""
    if is_v2(root):
        d = cgroup_dir(None, container_id, root)
        if d is None:
            return None
        usage = int((_read(d / "memory.current") or "0").strip() or 0)
        inactive = _kv(_read(d / "memory.stat")).get("inactive_file", 0)
        raw_limit = (_read(d / "memory.max") or "max").strip()
        limit = None if raw_limit == "max" else int(raw_limit)
    else:
        d = cgroup_dir("memory", container_id, root)
        if d is None:
            return None
        usage = int((_read(d / "memory.usage_in_bytes") or "0").strip() or 0)
        inactive = _kv(_read(d / "memory.stat")).get("total_inactive_file", 0)
        raw = int((_read(d / "memory.limit_in_bytes") or "0").strip() or 0)
        limit = raw if 0 < raw < (1 << 62) else None
    return (usage - inactive if inactive < usage else usage), limit


def _cpu_seconds(container_id: str, root: Path) -> float:
    if is_v2(root):
        d = cgroup_dir(None, container_id, root)
        return _kv(_read(d / "cpu.stat")).get("usage_usec", 0) / 1e6 if d else 0.0
    d = cgroup_dir("cpuacct", container_id, root) or cgroup_dir("cpu,cpuacct", container_id, root)
    text = _read(d / "cpuacct.usage") if d else None
    return int(text.strip()) / 1e9 if text and text.strip() else 0.0


def _blkio(container_id: str, root: Path) -> tuple[int, int]:
    read = write = 0
    if is_v2(root):
        d = cgroup_dir(None, container_id, root)
        for line in ((_read(d / "io.stat") if d else None) or "").splitlines():
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                if key == "rbytes":
                    read += int(value)
                elif key == "wbytes":
                    write += int(value)
        return read, write
    d = cgroup_dir("blkio", container_id, root)
    for line in ((_read(d / "blkio.throttle.io_service_bytes") if d else None) or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("Read", "Write"):
            if parts[1] == "Read":
                read += int(parts[2])
            else:
                write += int(parts[2])
    return read, write


def _net(pid: int) -> tuple[int, int]:
    """Bytes received and sent on every interface but loopback in the
    namespace of ``pid``."""
    rx = tx = 0
    for line in (_read(Path(f"/proc/{pid}/net/dev")) or "").splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def usage(container_id: str, pid: int | None, root: Path = CGROUP_ROOT) -> Usage | None:
    """The container's figures, or None when its cgroup is not found (not
    running, or a layout this reader does not know)."""
    mem = memory_bytes(container_id, root)
    if mem is None:
        return None
    rx, tx = _net(pid) if pid else (0, 0)
    read, write = _blkio(container_id, root)
    return Usage(
        cpu_seconds=_cpu_seconds(container_id, root),
        memory_bytes=mem[0],
        memory_limit_bytes=mem[1],
        rx_bytes=rx,
        tx_bytes=tx,
        read_bytes=read,
        write_bytes=write,
    )
