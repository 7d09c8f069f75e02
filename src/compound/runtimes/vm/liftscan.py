"""What ``compound lift`` finds on a VM's root filesystem, read offline:
enabled services (systemd units and SysV scripts), their commands, users
and environment, the ports their configuration listens on, data
directories, and what a container cannot carry (cron, kernel modules,
systemd-only features). Pure file reading: no mount, no engine, so the
rules are unit-tested on a directory tree.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

UNIT_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")
# Boot-time units of the OS itself: the container's engine, kernel and
# network do their jobs. Anything else enabled is an application service.
SYSTEM_UNITS = re.compile(
    r"^(systemd-.*|getty@.*|serial-getty@.*|console-.*|keyboard-setup|networking|ifup@.*"
    r"|e2scrub.*|fstrim|apt-daily.*|dpkg-db-backup|man-db|logrotate|remote-fs|cron|anacron"
    r"|qemu-guest-agent|rsyslog|syslog|dbus|udev|ssh|sshd|rsync|procps|kmod|hwclock"
    r"|cryptdisks.*|lvm2.*|mdadm.*|open-iscsi|iscsid|multipathd|chrony|ntp|ntpsec"
    r"|unattended-upgrades|cloud-.*|polkit|accounts-daemon|snapd.*|multipath-tools)$"
)
SYSTEM_VARLIB = frozenset(
    [
        "apt",
        "dpkg",
        "systemd",
        "ucf",
        "dhcp",
        "misc",
        "pam",
        "python",
        "private",
        "polkit-1",
        "sudo",
        "logrotate",
        "man-db",
        "initramfs-tools",
        "emacsen-common",
        "vim",
        "dbus",
        "nginx",
        "cron",
        "sgml-base",
        "xml-core",
        "os-prober",
        "grub",
        "update-rc.d",
        "shells.state",
        "ntp",
        "chrony",
        "usbutils",
        "pciutils",
    ]
)
CARRIED_KEYS = frozenset(
    [
        "ExecStart",
        "ExecStartPre",
        "User",
        "Group",
        "Environment",
        "EnvironmentFile",
        "WorkingDirectory",
        "Type",
        "PIDFile",
        "Restart",
        "RuntimeDirectory",
        "Description",
        "After",
        "Wants",
        "Requires",
        "WantedBy",
        "ExecReload",
        "ExecStop",
        "KillMode",
        "KillSignal",
        "TimeoutStopSec",
    ]
)


@dataclass
class Unit:
    name: str  # "app.service", or "foo" for a SysV script
    kind: str  # "systemd" | "sysv"
    exec_start: list[str] = field(default_factory=list)
    exec_start_pre: list[list[str]] = field(default_factory=list)
    user: str = ""
    group: str = ""
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = ""
    type: str = "simple"
    pid_file: str = ""
    restart: str = ""
    runtime_dirs: list[str] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)  # "Key=value" a container loses
    ports: list[int] = field(default_factory=list)


@dataclass
class Scan:
    units: list[Unit] = field(default_factory=list)
    skipped_units: list[str] = field(default_factory=list)  # OS units left out
    users: list[str] = field(default_factory=list)
    data_dirs: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    cron: list[str] = field(default_factory=list)
    kernel_modules: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _within(root: Path, target: str) -> Path:
    """A path of the guest under ``root`` (absolute symlinks stay inside)."""
    return root / target.lstrip("/")


def _split_exec(value: str) -> list[str]:
    # systemd prefixes: - (ignore failure), @, +, !, !! (privilege tweaks)
    words = shlex.split(value)
    if words:
        words[0] = words[0].lstrip("-@+!:")
    return words


def find_unit(root: Path, name: str) -> Path | None:
    for d in UNIT_DIRS:
        p = root / d / name
        if p.is_symlink():
            target = os.readlink(p)
            if target == "/dev/null":
                return None  # masked
            p = _within(root, target) if target.startswith("/") else p.parent / target
        if p.is_file():
            return p
    return None


def parse_unit(root: Path, name: str, path: Path) -> Unit:
    cp = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    text = path.read_text(errors="replace")
    # repeated keys (Environment=, ExecStartPre=) are folded by hand below
    multi: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        k, sep, v = line.partition("=")
        if sep and section == "Service":
            multi.setdefault(k.strip(), []).append(v.strip())
    unit = Unit(name, "systemd")
    for v in multi.get("ExecStart", []):
        if v:
            unit.exec_start = _split_exec(v)
    unit.exec_start_pre = [_split_exec(v) for v in multi.get("ExecStartPre", []) if v]
    unit.user = (multi.get("User") or [""])[-1]
    unit.group = (multi.get("Group") or [""])[-1]
    unit.working_dir = (multi.get("WorkingDirectory") or [""])[-1].lstrip("-")
    unit.type = (multi.get("Type") or ["simple"])[-1]
    unit.pid_file = (multi.get("PIDFile") or [""])[-1]
    unit.restart = (multi.get("Restart") or [""])[-1]
    for v in multi.get("Environment", []):
        for word in shlex.split(v):
            k, sep, val = word.partition("=")
            if sep:
                unit.env[k] = val
    for v in multi.get("EnvironmentFile", []):
        p = _within(root, v.lstrip("-"))
        if p.is_file():
            for line in p.read_text(errors="replace").splitlines():
                k, sep, val = line.strip().partition("=")
                if sep and not k.startswith("#"):
                    unit.env[k.strip().removeprefix("export ")] = val.strip().strip("\"'")
    for v in multi.get("RuntimeDirectory", []):
        unit.runtime_dirs += v.split()
    for k, vs in multi.items():
        if k not in CARRIED_KEYS:
            unit.not_carried += [f"{k}={v}" for v in vs]
    del cp
    return unit


def enabled_units(root: Path) -> list[str]:
    """Services enabled for boot: the .wants links of the targets a server
    boots into (multi-user, graphical, default)."""
    names: list[str] = []
    base = root / "etc/systemd/system"
    for target in ("multi-user.target.wants", "graphical.target.wants", "default.target.wants"):
        d = base / target
        if d.is_dir():
            names += sorted(p.name for p in d.iterdir() if p.name.endswith(".service"))
    return list(dict.fromkeys(names))


def sysv_scripts(root: Path, systemd_names: set[str]) -> list[str]:
    """SysV scripts started in runlevels 2-5 that have no systemd unit."""
    out: list[str] = []
    for level in ("rc2.d", "rc3.d", "rc5.d"):
        d = root / "etc" / level
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            m = re.match(r"^S\d\d(.+)$", p.name)
            if m and m.group(1) + ".service" not in systemd_names:
                out.append(m.group(1))
    return list(dict.fromkeys(out))


def nginx_ports(root: Path) -> list[int]:
    ports: set[int] = set()
    conf = root / "etc/nginx"
    files = [conf / "nginx.conf"]
    for sub in ("sites-enabled", "conf.d"):
        d = conf / sub
        if d.is_dir():
            files += sorted(d.iterdir())
    for f in files:
        if f.is_symlink():
            target = os.readlink(f)
            f = _within(root, target) if target.startswith("/") else f.parent / target
        if not f.is_file():
            continue
        for m in re.finditer(r"^\s*listen\s+([^;]+);", f.read_text(errors="replace"), re.M):
            first = m.group(1).split()[0]
            port = first.rsplit(":", 1)[-1].strip("[]")
            if port.isdigit():
                ports.add(int(port))
    return sorted(ports)


def unit_ports(unit: Unit) -> list[int]:
    """Ports from a unit's environment (*PORT=N) and command (--port N, :N)."""
    ports: set[int] = set()
    for k, v in unit.env.items():
        if k.upper().endswith("PORT") and v.isdigit():
            ports.add(int(v))
    args = unit.exec_start
    for i, a in enumerate(args):
        if a in ("--port", "-p") and i + 1 < len(args) and args[i + 1].isdigit():
            ports.add(int(args[i + 1]))
        m = re.match(r"^--(?:port|listen|bind)=(?:.*:)?(\d+)$", a)
        if m:
            ports.add(int(m.group(1)))
    return sorted(ports)


def users(root: Path) -> list[str]:
    out = []
    p = root / "etc/passwd"
    if p.is_file():
        for line in p.read_text(errors="replace").splitlines():
            f = line.split(":")
            if len(f) >= 7 and f[2].isdigit() and 1000 <= int(f[2]) < 65534:
                out.append(f[0])
    return out


def data_dirs(root: Path) -> list[str]:
    """/var/lib/<x> (not the OS's own) and /srv/<x> holding at least one file."""
    out = []
    for parent in ("var/lib", "srv"):
        d = root / parent
        if not d.is_dir():
            continue
        for sub in sorted(d.iterdir()):
            if not sub.is_dir() or sub.is_symlink():
                continue
            if parent == "var/lib" and sub.name in SYSTEM_VARLIB:
                continue
            if any(files for _, _, files in os.walk(sub)):
                out.append("/" + str(sub.relative_to(root)))
    return out


def cron_jobs(root: Path) -> list[str]:
    jobs = []
    d = root / "etc/cron.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.name.startswith(".") or f.name in ("e2scrub_all", "popularity-contest"):
                continue
            for line in f.read_text(errors="replace").splitlines():
                s = line.strip()
                if s and not s.startswith("#") and not re.match(r"^\w+=", s):
                    jobs.append(f"/etc/cron.d/{f.name}: {s}")
    spool = root / "var/spool/cron/crontabs"
    if spool.is_dir():
        for f in sorted(spool.iterdir()):
            for line in f.read_text(errors="replace").splitlines():
                s = line.strip()
                if s and not s.startswith("#"):
                    jobs.append(f"crontab of {f.name}: {s}")
    return jobs


def kernel_modules(root: Path) -> list[str]:
    mods = []
    files = [root / "etc/modules"]
    d = root / "etc/modules-load.d"
    if d.is_dir():
        files += sorted(d.iterdir())
    for f in files:
        if f.is_file():
            for line in f.read_text(errors="replace").splitlines():
                s = line.split("#", 1)[0].strip()
                if s:
                    mods.append(s)
    return mods


def scan(root: Path) -> Scan:
    out = Scan()
    names = enabled_units(root)
    for name in names:
        stem = name.removesuffix(".service")
        if SYSTEM_UNITS.match(stem):
            out.skipped_units.append(name)
            continue
        path = find_unit(root, name)
        if path is None:
            continue
        unit = parse_unit(root, name, path)
        if not unit.exec_start:
            out.skipped_units.append(name)
            continue
        unit.ports = nginx_ports(root) if stem == "nginx" else unit_ports(unit)
        out.units.append(unit)
    for script in sysv_scripts(root, set(names)):
        if SYSTEM_UNITS.match(script) or script in ("rc.local", "bootlogs", "rmnologin"):
            continue
        unit = Unit(script, "sysv", exec_start=[f"/etc/init.d/{script}", "start"], type="forking")
        unit.ports = nginx_ports(root) if script == "nginx" else []
        out.units.append(unit)
    out.users = users(root) + sorted({u.user for u in out.units if u.user} - set(users(root)))
    out.data_dirs = data_dirs(root)
    out.ports = sorted({p for u in out.units for p in u.ports})
    out.cron = cron_jobs(root)
    out.kernel_modules = kernel_modules(root)
    return out
