"""The per-instance configuration the guest's /init sources: a small shell
file passed through QEMU's fw_cfg. Every value is single-quoted with
``shlex.quote`` so any byte sequence in env values or arguments (quotes,
``$``, newlines, spaces) arrives unchanged."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from compound.errors import VMError

_ENV_NAME = re.compile(r"^[^=\0]+$")


@dataclass(frozen=True)
class GuestMount:
    tag: str  # virtio-9p mount tag
    target: str  # absolute path in the guest
    read_only: bool = False


@dataclass(frozen=True)
class GuestNetwork:
    address: str  # "10.0.2.15/24"
    gateway: str | None
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuestConfig:
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    user: str = ""
    hostname: str = "localhost"
    network: GuestNetwork | None = None
    mounts: tuple[GuestMount, ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()  # (target, mount options)
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = False
    stop_signal: str = "SIGTERM"
    # the service's healthcheck as an argv, run by /init when the launcher's
    # Docker healthcheck asks (empty: none), and its timeout in seconds
    health: tuple[str, ...] = ()
    health_timeout: int = 30
    # the service's hardening (hardening.py), applied by compound-enter
    caps: str = "all"  # hex mask of the capabilities kept, or "all"
    no_new_privileges: bool = False
    rlimits: str = "-"  # "RES:SOFT:HARD,..."
    pids_max: int | None = None

    def render(self) -> str:
        return render(self)


def words(items: Sequence[str]) -> str:
    """Shell words that ``eval "set -- $X"`` turns back into ``items``."""
    return " ".join(shlex.quote(a) for a in items)


def _var(name: str, value: str) -> str:
    return f"{name}={shlex.quote(value)}\n"


def _check_path(p: str, what: str) -> None:
    if not p.startswith("/") or "\t" in p or "\n" in p:
        raise VMError(f"{what} {p!r} must be an absolute path without tabs or newlines")


def resolv_conf(net: GuestNetwork | None) -> str:
    if net is None:
        return ""
    lines = [f"nameserver {ns}" for ns in net.nameservers]
    if net.search:
        lines.append("search " + " ".join(net.search))
    if net.options:
        lines.append("options " + " ".join(net.options))
    return "\n".join(lines) + "\n"


def hosts_file(hostname: str, address: str | None, extra: Mapping[str, str]) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    if address:
        lines.append(f"{address.split('/')[0]}\t{hostname}")
    lines += [f"{ip}\t{name}" for name, ip in extra.items()]
    return "\n".join(lines) + "\n"


def render(cfg: GuestConfig) -> str:
    for k in cfg.env:
        if not _ENV_NAME.match(k):
            raise VMError(f"environment variable name {k!r} is not valid")
    _check_path(cfg.working_dir, "working_dir")
    for m in cfg.mounts:
        _check_path(m.target, "volume target")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,31}", m.tag):
            raise VMError(f"9p mount tag {m.tag!r} is not valid (1-31 of [A-Za-z0-9_.-])")
    for target, _opts in cfg.tmpfs:
        _check_path(target, "tmpfs target")
    net = cfg.network
    out = ["# compound guest configuration (sourced by /init)\n"]
    out.append(_var("COMPOUND_ARGV", words(cfg.argv)))
    out.append(_var("COMPOUND_ENV", words([f"{k}={v}" for k, v in cfg.env.items()])))
    out.append(_var("COMPOUND_WORKDIR", cfg.working_dir))
    out.append(_var("COMPOUND_USER", cfg.user))
    out.append(_var("COMPOUND_HOSTNAME", cfg.hostname))
    out.append(_var("COMPOUND_IP", net.address if net else ""))
    out.append(_var("COMPOUND_GATEWAY", (net.gateway or "") if net else ""))
    # /init adds the final newline (the launcher's shell strips it when it
    # substitutes its own files).
    out.append(_var("COMPOUND_RESOLV_CONF", resolv_conf(net).rstrip("\n")))
    out.append(
        _var(
            "COMPOUND_HOSTS",
            hosts_file(cfg.hostname, net.address if net else None, cfg.extra_hosts).rstrip("\n"),
        )
    )
    out.append(
        _var(
            "COMPOUND_MOUNTS",
            "\n".join(f"{m.tag}\t{m.target}\t{'ro' if m.read_only else 'rw'}" for m in cfg.mounts),
        )
    )
    out.append(_var("COMPOUND_TMPFS", "\n".join(f"{t}\t{o}" for t, o in cfg.tmpfs)))
    out.append(_var("COMPOUND_SYSCTLS", "\n".join(f"{k}={v}" for k, v in cfg.sysctls.items())))
    out.append(_var("COMPOUND_READ_ONLY", "1" if cfg.read_only else "0"))
    out.append(_var("COMPOUND_STOP_SIGNAL", cfg.stop_signal.removeprefix("SIG")))
    out.append(_var("COMPOUND_HEALTH", words(cfg.health)))
    out.append(_var("COMPOUND_HEALTH_TIMEOUT", str(max(1, cfg.health_timeout))))
    out.append(_var("COMPOUND_CAPS", cfg.caps))
    out.append(_var("COMPOUND_NNP", "1" if cfg.no_new_privileges else "0"))
    out.append(_var("COMPOUND_RLIMITS", cfg.rlimits))
    out.append(_var("COMPOUND_PIDS_MAX", str(cfg.pids_max) if cfg.pids_max else ""))
    return "".join(out)
