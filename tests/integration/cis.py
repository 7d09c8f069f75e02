"""CIS Docker Benchmark (v1.6.0) section 5, "Container Runtime", read from
`docker inspect`: compound's own rendering of the published list, for the
checks a container's configuration answers. Numbers are the benchmark's.

Left out, as the benchmark makes them manual or host-wide: 5.1 (swarm mode),
5.3 (SELinux: not on this host), 5.9 (which ports are needed), 5.23/5.24
(how `docker exec` is used), 5.28 (image pull habits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# capabilities the benchmark names as ones a container should not be given
DANGEROUS_CAPS = {"NET_ADMIN", "SYS_ADMIN", "SYS_MODULE", "ALL"}
SENSITIVE_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    ok: bool
    detail: str


def _host(c: Mapping[str, Any]) -> Mapping[str, Any]:
    return c.get("HostConfig") or {}


def _binds(c: Mapping[str, Any]) -> list[str]:
    return [m.get("Source", "") for m in c.get("Mounts") or [] if m.get("Type") == "bind"]


def _security(c: Mapping[str, Any]) -> list[str]:
    return list(_host(c).get("SecurityOpt") or [])


def _ports(c: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for bindings in (_host(c).get("PortBindings") or {}).values():
        for b in bindings or []:
            out.append((b.get("HostIp") or "", b.get("HostPort") or ""))
    return out


def _restart_ok(c: Mapping[str, Any]) -> bool:
    policy = _host(c).get("RestartPolicy") or {}
    name = policy.get("Name") or "no"
    return name == "no" or (
        name == "on-failure" and 0 < int(policy.get("MaximumRetryCount") or 0) <= 5
    )


CHECKS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], bool]], ...] = (
    (
        "5.2",
        "AppArmor profile applied",
        lambda c: (c.get("AppArmorProfile") or "") not in ("", "unconfined"),
    ),
    (
        "5.4",
        "capabilities restricted",
        lambda c: not DANGEROUS_CAPS & set(_host(c).get("CapAdd") or []),
    ),
    ("5.5", "not privileged", lambda c: not _host(c).get("Privileged")),
    (
        "5.6",
        "no sensitive host directory mounted",
        lambda c: not set(_binds(c)) & set(SENSITIVE_DIRS),
    ),
    (
        "5.8",
        "no privileged host port",
        lambda c: all(not p or int(p) >= 1024 for _, p in _ports(c)),
    ),
    ("5.10", "host network not shared", lambda c: _host(c).get("NetworkMode") != "host"),
    ("5.11", "memory limited", lambda c: int(_host(c).get("Memory") or 0) > 0),
    (
        "5.12",
        "CPU limited or prioritised",
        lambda c: (
            bool(_host(c).get("NanoCpus") or _host(c).get("CpuQuota"))
            or int(_host(c).get("CpuShares") or 0) not in (0, 1024)
        ),
    ),
    ("5.13", "read-only root filesystem", lambda c: bool(_host(c).get("ReadonlyRootfs"))),
    (
        "5.14",
        "ports bound to a host interface",
        lambda c: all(ip not in ("", "0.0.0.0", "::") for ip, _ in _ports(c)),
    ),
    ("5.15", "restart policy no or on-failure:5", _restart_ok),
    ("5.16", "host PID namespace not shared", lambda c: _host(c).get("PidMode") != "host"),
    ("5.17", "host IPC namespace not shared", lambda c: _host(c).get("IpcMode") != "host"),
    ("5.18", "no host device exposed", lambda c: not _host(c).get("Devices")),
    (
        "5.20",
        "mount propagation not shared",
        lambda c: all(
            m.get("Propagation") not in ("shared", "rshared") for m in c.get("Mounts") or []
        ),
    ),
    ("5.21", "host UTS namespace not shared", lambda c: _host(c).get("UTSMode") != "host"),
    (
        "5.22",
        "seccomp not disabled",
        lambda c: not any("unconfined" in o and "seccomp" in o for o in _security(c)),
    ),
    ("5.25", "cgroup parent default", lambda c: not _host(c).get("CgroupParent")),
    (
        "5.26",
        "no-new-privileges",
        lambda c: any(
            o.replace("=", ":") in ("no-new-privileges", "no-new-privileges:true")
            for o in _security(c)
        ),
    ),
    (
        "5.27",
        "healthcheck",
        lambda c: bool(
            (c.get("Config") or {}).get("Healthcheck", {}).get("Test", ["NONE"]) != ["NONE"]
        ),
    ),
    ("5.29", "pids limited", lambda c: int(_host(c).get("PidsLimit") or 0) > 0),
    (
        "5.30",
        "not on the default bridge",
        lambda c: _host(c).get("NetworkMode") not in ("default", "bridge"),
    ),
    ("5.31", "host user namespace not shared", lambda c: _host(c).get("UsernsMode") != "host"),
    ("5.32", "Docker socket not mounted", lambda c: not any("docker.sock" in s for s in _binds(c))),
)


def findings(container: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding(rule, title, bool(check(container)), container.get("Name", ""))
        for rule, title, check in CHECKS
    ]


def warnings(container: Mapping[str, Any]) -> set[str]:
    return {f.rule for f in findings(container) if not f.ok}
