"""What ``compound lift`` finds on a VM's root filesystem, read offline:
enabled services (systemd units and SysV scripts), their commands, users
and environment, the ports their configuration listens on, data
directories, and what a container cannot carry (kernel modules,
systemd-only features). Also what systemd starts other than at boot:
- socket-activated services (enabled ``.socket`` units): the service is
  started with the others and the socket's ports are its ports (it must
  listen itself; an ``Accept=yes`` inetd-style socket is not carried);
- ``Type=oneshot`` services: run once, in order, before the others;
- timers and cron jobs: compound has no scheduler, so each becomes a
  ``Schedule`` with a suggestion (the host's cron running ``compound exec``).
Pure file reading: no mount, no engine, so the rules are unit-tested on a
directory tree.
"""

from __future__ import annotations

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
    socket: str = ""  # the .socket unit that activated it on the VM


@dataclass
class Schedule:
    """A job the VM ran on a schedule (a cron line or a systemd timer)."""

    source: str  # "cron" | "timer"
    name: str  # "/etc/cron.d/app-stamp" | "backup.timer"
    schedule: str  # "* * * * *" | "OnCalendar=daily"
    user: str
    command: list[str]

    def suggestion(self, service: str) -> str:
        """How to keep running it next to the lifted service: compound has
        no scheduler of its own, the host's cron (or a systemd timer) runs
        ``compound exec`` on schedule."""
        argv = ["compound", "exec", "-T"]
        if self.user and self.user != "root":
            argv += ["-u", self.user]
        argv += [service, *self.command]
        run = " ".join(shlex.quote(a) for a in argv)
        if self.source == "cron":
            return f"host crontab: {self.schedule} {run}"
        cal = self.schedule.split("=", 1)[1] if self.schedule.startswith("OnCalendar=") else ""
        if cal:
            return f"host: systemd-run --on-calendar={shlex.quote(cal)} {run}"
        return f"host cron or timer ({self.schedule}): {run}"


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
    schedules: list[Schedule] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)  # "x.socket -> x.service (ports)"
    oneshots: list[str] = field(default_factory=list)  # run before the others, in order


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


def unit_section(path: Path, wanted: str) -> dict[str, list[str]]:
    """The keys of one section of a unit file, repeated keys kept in order
    (Environment=, ExecStartPre=, ListenStream=, OnCalendar= may repeat)."""
    multi: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        k, sep, v = line.partition("=")
        if sep and section == wanted:
            multi.setdefault(k.strip(), []).append(v.strip())
    return multi


def parse_unit(root: Path, name: str, path: Path) -> Unit:
    multi = unit_section(path, "Service")
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
    return unit


BOOT_TARGETS = ("multi-user.target.wants", "graphical.target.wants", "default.target.wants")


def enabled_units(root: Path, suffix: str = ".service", targets: tuple[str, ...] = ()) -> list[str]:
    """Units enabled for boot: the .wants links of the targets a server
    boots into (multi-user, graphical, default), plus ``targets``."""
    names: list[str] = []
    base = root / "etc/systemd/system"
    for target in (*BOOT_TARGETS, *targets):
        d = base / target
        if d.is_dir():
            names += sorted(p.name for p in d.iterdir() if p.name.endswith(suffix))
    return list(dict.fromkeys(names))


def _listen_port(value: str) -> int | None:
    """The TCP/UDP port of a ListenStream=/ListenDatagram= value (a path or
    a netlink/vsock address is not a port)."""
    last = value.rsplit(":", 1)[-1].strip("[]")
    return int(last) if last.isdigit() else None


def socket_units(root: Path) -> list[tuple[str, str, list[int], bool]]:
    """Enabled application sockets: (socket, service it activates, ports, Accept=yes)."""
    found = []
    for name in enabled_units(root, ".socket", ("sockets.target.wants",)):
        stem = name.removesuffix(".socket")
        if SYSTEM_UNITS.match(stem) or stem.startswith("dm-event"):
            continue
        path = find_unit(root, name)
        if path is None:
            continue
        sec = unit_section(path, "Socket")
        ports = sorted(
            {
                p
                for k in ("ListenStream", "ListenDatagram", "ListenSequentialPacket")
                for v in sec.get(k, [])
                if (p := _listen_port(v)) is not None
            }
        )
        accept = (sec.get("Accept") or ["no"])[-1].lower() in ("yes", "true", "1", "on")
        service = (sec.get("Service") or [f"{stem}@.service" if accept else f"{stem}.service"])[-1]
        found.append((name, service, ports, accept))
    return found


def timers(root: Path) -> list[Schedule]:
    """Enabled application timers, with the command of the service each starts."""
    out = []
    for name in enabled_units(root, ".timer", ("timers.target.wants",)):
        stem = name.removesuffix(".timer")
        if SYSTEM_UNITS.match(stem):
            continue
        path = find_unit(root, name)
        if path is None:
            continue
        sec = unit_section(path, "Timer")
        when = [
            f"{k}={v}"
            for k in ("OnCalendar", "OnBootSec", "OnStartupSec", "OnUnitActiveSec", "OnActiveSec")
            for v in sec.get(k, [])
        ]
        target = (sec.get("Unit") or [f"{stem}.service"])[-1]
        upath = find_unit(root, target)
        unit = parse_unit(root, target, upath) if upath else Unit(target, "systemd")
        out.append(Schedule("timer", name, "; ".join(when) or "?", unit.user, unit.exec_start))
    return out


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


def _cron_line(line: str, user: str | None) -> tuple[str, str, str] | None:
    """(schedule, user, command) of a crontab line; ``user`` is the owner of
    a user crontab (system crontabs name the user in a sixth field)."""
    s = line.strip()
    if not s or s.startswith("#") or re.match(r"^\w+\s*=", s):
        return None
    words = s.split()
    n = 1 if words[0].startswith("@") else 5
    if user is None:
        if len(words) < n + 2:
            return None
        return " ".join(words[:n]), words[n], " ".join(words[n + 1 :])
    if len(words) < n + 1:
        return None
    return " ".join(words[:n]), user, " ".join(words[n:])


def cron_jobs(root: Path, schedules: list[Schedule] | None = None) -> list[str]:
    """Cron lines as text (for the report); each also appended to ``schedules``."""
    jobs = []
    sources: list[tuple[Path, str, str | None]] = []
    d = root / "etc/cron.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.name.startswith(".") or f.name in ("e2scrub_all", "popularity-contest"):
                continue
            sources.append((f, f"/etc/cron.d/{f.name}", None))
    spool = root / "var/spool/cron/crontabs"
    if spool.is_dir():
        sources += [(f, f"crontab of {f.name}", f.name) for f in sorted(spool.iterdir())]
    for f, label, owner in sources:
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            parsed = _cron_line(line, owner)
            if parsed is None:
                continue
            jobs.append(f"{label}: {line.strip()}")
            if schedules is not None:
                when, user, command = parsed
                schedules.append(Schedule("cron", label, when, user, ["sh", "-c", command]))
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
    sockets = socket_units(root)
    activated: dict[str, tuple[str, list[int]]] = {}
    for sock, service, ports, accept in sockets:
        if accept:
            out.notes.append(
                f"{sock}: Accept=yes starts {service} per connection (inetd style):"
                " not carried; run the program as a daemon, or under socat/xinetd"
            )
            continue
        activated[service] = (sock, ports)
        if service not in names:
            names.append(service)
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
        if name in activated:
            unit.socket, sock_ports = activated[name]
            unit.ports = sorted({*unit.ports, *sock_ports})
            out.sockets.append(
                f"{unit.socket} -> {name} (ports {', '.join(map(str, sock_ports)) or '-'}):"
                " started with the container instead of on the first connection"
            )
        if unit.type == "oneshot":
            out.oneshots.append(name)
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
    out.cron = cron_jobs(root, out.schedules)
    out.schedules += timers(root)
    out.kernel_modules = kernel_modules(root)
    return out
