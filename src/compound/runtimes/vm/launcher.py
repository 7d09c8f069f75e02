"""A VM as a launcher container: the Docker container that holds QEMU.

The container is what Docker sees and manages (network, DNS name and
aliases, published ports, restart policy, logs, cgroup limits, labels);
QEMU runs inside it as the child of /usr/local/bin/compound-launcher.

Network (``net="tap"``, the default): launcher.sh gives the guest this
container's own addresses, MACs and routes on every network (a tap per
interface, tc-redirected to it), so every port of the guest is reachable as
a container's would be; the launcher needs NET_ADMIN in its own namespace
and /dev/net/tun for that, nothing more. ``net="user"`` is QEMU's slirp
NAT with one hostfwd per exposed or published port (and the fallback when a
tap cannot be made). Volumes go over virtio-fs (a virtiofsd per volume,
started by launcher.sh) or virtio-9p. Control sockets (QMP, guest agent)
and the console log live in a per-instance host directory bind-mounted at
/compound/run, so the host driver talks to them directly.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from compound.errors import EngineError, VMError

from ._util import default_cache_dir
from .basedisk import BaseDisk
from .guestconfig import GuestConfig
from .initramfs import Initramfs
from .kernel import KernelArtifacts
from .launcher_image import SCRIPT_PATH
from .qemu import SLIRP_NET, Accel, PortForward, QemuSpec, build_command

# Paths inside the launcher container.
IN_KERNEL = PurePosixPath("/compound/kernel")
IN_INITRAMFS = PurePosixPath("/compound/initramfs")
IN_BASE = PurePosixPath("/compound/base.ext4")
IN_RUN = PurePosixPath("/compound/run")
IN_VOLUMES = PurePosixPath("/compound/volumes")
# What a container keeps in its writable layer (the launcher's root is
# read-only): the overlay and the rendered guest config, per instance.
IN_STATE = IN_RUN / "state"

Net = Literal["tap", "user"]
ShareKind = Literal["virtiofs", "9p"]
# What the launcher may do beyond a default container, for net="tap": make
# taps, move its addresses, add tc filters, all in its own network namespace.
TAP_CAPS = ("NET_ADMIN",)
TUN_DEVICE = "/dev/net/tun"
# QEMU's uid and gid in the launcher (no account: nothing needs a name). The
# run dir is setgid to this group, so QEMU reaches its files and no more.
QEMU_UID = 64090
# Capabilities the launcher keeps (every other one is dropped):
#   always    SETUID SETGID: setpriv drops QEMU, dnsmasq drops itself
#   tap       NET_ADMIN: taps, addresses, tc; NET_BIND_SERVICE: dnsmasq on :53
#   volumes   CHOWN DAC_OVERRIDE FOWNER FSETID MKNOD SETFCAP: files as the
#             guest's users (virtiofsd keeps exactly these, QEMU's 9p server
#             needs the first four); SETPCAP: virtiofsd trims its own sets
#             with libcap-ng and dies (SIGSYS in its error path) without it;
#             SYS_CHROOT: virtiofsd's sandbox; KILL: ending QEMU (another
#             uid) when a virtiofsd dies
BASE_CAPS = ("SETUID", "SETGID")
NET_CAPS = ("NET_ADMIN", "NET_BIND_SERVICE")
VOLUME_CAPS = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "MKNOD",
    "SETFCAP",
    "SETPCAP",
    "SYS_CHROOT",
    "KILL",
)
# Threads count against pids.max: QEMU's block thread pool (up to 64), its
# vCPU and I/O threads, the launcher's shells and dnsmasq; each virtiofsd
# adds its own pool.
PIDS_BASE = 128
# Beyond guest RAM: QEMU's RSS with a 32 MiB TCG cache and its devices, with
# headroom (measured 90-160 MiB under TCG), and each virtiofsd's.
QEMU_OVERHEAD_MIB = 192
VIRTIOFSD_MIB = 32
PIDS_PER_VOLUME = 80
# Writable scratch on the read-only root.
TMPFS = {"/tmp": "rw,nosuid,nodev,size=16m", "/run": "rw,nosuid,nodev,size=4m"}
# The launcher's stdout and stderr reach QEMU as inherited descriptors (a
# non-root QEMU may not reopen the container's pipes by path).
STDOUT_FD, STDERR_FD = 5, 6


@dataclass(frozen=True)
class LauncherVolume:
    """A Docker volume (or host path) the guest mounts with virtio-9p."""

    source: str  # volume name ("" = anonymous), or absolute host path for a bind
    target: str  # path in the guest
    read_only: bool = False
    bind: bool = False


@dataclass(frozen=True)
class LauncherSpec:
    name: str  # container name
    image: str  # launcher image tag
    kernel: KernelArtifacts
    initramfs: Initramfs
    base: BaseDisk
    guest: GuestConfig  # rendered to <run_dir>/config.base
    run_dir: Path  # host dir bind-mounted at /compound/run
    accel: Accel = "tcg"
    memory_mib: int = 256
    vcpus: int = 1
    tsc_khz: int | None = None
    guest_ports: tuple[tuple[int, str], ...] = ()  # (port, tcp|udp) forwarded into the guest
    volumes: tuple[LauncherVolume, ...] = ()
    net: Net = "tap"
    share: ShareKind = "9p"
    network: str | None = None
    aliases: tuple[str, ...] = ()
    published: Mapping[str, Any] = field(default_factory=dict)  # docker-py `ports=`
    labels: Mapping[str, str] = field(default_factory=dict)
    hostname: str | None = None
    restart_policy: Mapping[str, Any] | None = None
    extra_hosts: Mapping[str, str] = field(default_factory=dict)
    dns: Sequence[str] = ()
    stop_timeout: int = 10
    boot_timeout: float = 180.0  # the healthcheck waits this long for the entrypoint


def qemu_spec(spec: LauncherSpec) -> QemuSpec:
    """The QEMU command as it runs inside the launcher, without NICs and
    volumes: launcher.sh adds those (see :func:`launcher_conf`)."""
    return QemuSpec(
        kernel=Path(IN_KERNEL / spec.kernel.vmlinux.name),
        initrd=Path(IN_INITRAMFS),
        root_disk=Path(IN_STATE / "root.qcow2"),
        config=Path(IN_STATE / "config"),
        runtime_dir=Path(IN_RUN),
        accel=spec.accel,
        memory_mib=spec.memory_mib,
        vcpus=spec.vcpus,
        tsc_khz=spec.tsc_khz if spec.accel == "tcg" else None,
        network="none",
        shared_memory=bool(spec.volumes) and spec.share == "virtiofs",
        # The app's output is the container's output: `docker logs` shows it,
        # stdout and stderr apart; the kernel console goes to console.log.
        stdout=Path("/dev/fdset/1"),
        stderr=Path("/dev/fdset/2"),
        extra_args=("-add-fd", f"fd={STDOUT_FD},set=1", "-add-fd", f"fd={STDERR_FD},set=2"),
        name=spec.name,
        sandbox=True,
    )


def capabilities(spec: LauncherSpec) -> list[str]:
    """What the launcher keeps of Linux's capabilities (all others dropped)."""
    caps = list(BASE_CAPS)
    if spec.net == "tap":
        caps += NET_CAPS
    if spec.volumes:
        caps += VOLUME_CAPS
    return caps


def pids_limit(spec: LauncherSpec) -> int:
    return PIDS_BASE + PIDS_PER_VOLUME * len(spec.volumes)


def memory_limit(spec: LauncherSpec) -> int:
    """The launcher's cgroup limit in bytes: guest RAM (a shared memfd,
    charged to this cgroup as the guest touches it) plus QEMU's own
    overhead, plus each virtiofsd's (NOTES.md, "Launcher confinement")."""
    return (spec.memory_mib + QEMU_OVERHEAD_MIB + VIRTIOFSD_MIB * len(spec.volumes)) << 20


def confinement(spec: LauncherSpec) -> dict[str, Any]:
    """The launcher's HostConfig hardening (Engine API names): capabilities
    down to what this VM needs, no-new-privileges, a read-only root with
    tmpfs scratch, pids and memory limits. CPU limits are the caller's (they
    depend on the host)."""
    return hardened(capabilities(spec), pids_limit(spec), memory_limit(spec))


def hardened(caps: Sequence[str], pids: int, memory: int) -> dict[str, Any]:
    """What every launcher gets, image VM or disk service: only ``caps``,
    no-new-privileges, a read-only root with tmpfs scratch, and limits."""
    return {
        "CapDrop": ["ALL"],
        "CapAdd": list(caps),
        "SecurityOpt": ["no-new-privileges:true"],
        "ReadonlyRootfs": True,
        "Tmpfs": dict(TMPFS),
        "PidsLimit": pids,
        "Memory": memory,
    }


def slirp_netdev(spec: LauncherSpec) -> str:
    """QEMU's user networking with a forward per exposed or published port."""
    netdev = f"user,id=net0,net={SLIRP_NET}"
    for port, proto in spec.guest_ports:
        fwd = PortForward(port, port, "udp" if proto == "udp" else "tcp")
        netdev += f",hostfwd={fwd.hostfwd()}"
    return netdev


def launcher_conf(spec: LauncherSpec, machine: str = "microvm") -> str:
    """``/compound/run/launcher.conf``: what launcher.sh sets up besides
    QEMU's own argv (shell variables, single-quoted)."""
    shares = "\n".join(
        f"vol{i}\t{IN_VOLUMES}/{i}\t{'ro' if v.read_only else 'rw'}"
        for i, v in enumerate(spec.volumes)
    )
    values = {
        "COMPOUND_NET": spec.net,
        "COMPOUND_DEVICE_SUFFIX": "device" if machine == "microvm" else "pci",
        "COMPOUND_SLIRP_NETDEV": slirp_netdev(spec),
        "COMPOUND_SHARE": spec.share,
        "COMPOUND_SHARES": shares,
        "COMPOUND_QEMU_UID": str(QEMU_UID),
        "COMPOUND_HEALTH_TIMEOUT": str(spec.guest.health_timeout),
        "COMPOUND_BOOT_TIMEOUT": str(int(spec.boot_timeout)),
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


def container_kwargs(spec: LauncherSpec) -> dict[str, Any]:
    """Arguments for ``client.containers.create`` (docker-py)."""
    mounts = [
        Mount(str(IN_KERNEL), str(spec.kernel.vmlinux.parent), type="bind", read_only=True),
        Mount(str(IN_INITRAMFS), str(spec.initramfs.path), type="bind", read_only=True),
        Mount(str(IN_BASE), str(spec.base.path), type="bind", read_only=True),
        Mount(str(IN_RUN), str(spec.run_dir), type="bind"),
    ]
    for i, v in enumerate(spec.volumes):
        mounts.append(
            Mount(
                str(IN_VOLUMES / str(i)),
                v.source or None,  # no source: an anonymous volume
                type="bind" if v.bind else "volume",
                read_only=v.read_only,
            )
        )
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "command": build_command(qemu_spec(spec)),
        "name": spec.name,
        "mounts": mounts,
        "labels": dict(spec.labels),
        "ports": dict(spec.published),
        "stop_signal": "SIGTERM",
        "init": False,  # the launcher script is PID 1 and forwards the stop itself
    }
    hardening = confinement(spec)
    kwargs.update(
        cap_drop=hardening["CapDrop"],
        cap_add=hardening["CapAdd"],
        security_opt=hardening["SecurityOpt"],
        read_only=hardening["ReadonlyRootfs"],
        tmpfs=hardening["Tmpfs"],
        pids_limit=hardening["PidsLimit"],
        mem_limit=hardening["Memory"],
    )
    devices = []
    if spec.accel == "kvm":
        devices.append("/dev/kvm:/dev/kvm:rwm")
    if spec.net == "tap":
        devices.append(f"{TUN_DEVICE}:{TUN_DEVICE}:rwm")
    if devices:
        kwargs["devices"] = devices
    if spec.hostname:
        kwargs["hostname"] = spec.hostname
    if spec.restart_policy:
        kwargs["restart_policy"] = dict(spec.restart_policy)
    if spec.extra_hosts:
        kwargs["extra_hosts"] = [
            f"{name}:{ip}" for name, ips in spec.extra_hosts.items() for ip in ips.split(",")
        ]
    if spec.dns:
        kwargs["dns"] = list(spec.dns)
    if spec.network:
        kwargs["network"] = spec.network
    return kwargs


def guest_healthcheck(test: Sequence[str] | None) -> tuple[str, ...]:
    """The argv /init runs for a Compose healthcheck ``test`` (empty: none)."""
    if not test or test[0] == "NONE":
        return ()
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(rest))
    if kind == "CMD":
        return tuple(rest)
    return tuple(test)


def launcher_healthcheck(
    check: Mapping[str, Any] | None, spec: LauncherSpec
) -> dict[str, Any] | None:
    """The launcher's Docker healthcheck for the service's ``check`` (Engine
    API form): the same interval, retries and start period, its test run in
    the guest by ``compound-launcher --health``. Its timeout adds the boot
    (the first check waits for the entrypoint) and the round trip."""
    if not check or not spec.guest.health:
        return None
    timeout_ns = int(check.get("Timeout") or 30 * 10**9)
    return {
        **check,
        "Test": ["CMD", SCRIPT_PATH, "--health"],
        "Timeout": timeout_ns + int((spec.boot_timeout + 10) * 10**9),
    }


def write_run_dir(spec: LauncherSpec) -> None:
    """The instance's run dir and state dir: root's, setgid to QEMU's group
    (what QEMU makes or must read there is its group's, nobody else's), with
    the guest config (it holds the environment) readable by root only."""
    state = spec.run_dir / IN_STATE.name
    for d in (spec.run_dir.parent, spec.run_dir, state):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(spec.run_dir.parent, 0o700)
    for d in (spec.run_dir, state):
        os.chown(d, 0, QEMU_UID)
        os.chmod(d, 0o2770)
    for name, text in (
        ("config.base", spec.guest.render()),
        ("launcher.conf", launcher_conf(spec)),
    ):
        path = spec.run_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)


def effective_setup(run_dir: Path) -> dict[str, str]:
    """What launcher.sh last set up (``effective`` in the run dir):
    {"network": "tap" | "user" | "user (fallback)", "share": "virtiofs" |
    "9p" | "virtiofs, 9p"}; empty before the first start."""
    try:
        lines = (run_dir / "effective").read_text().splitlines()
    except OSError:
        return {}
    nets = {"user" if ln.startswith("net user") else "tap" for ln in lines if ln.startswith("net ")}
    if any(ln == "net user (fallback)" for ln in lines):
        nets = {"user (fallback)"}
    words = [ln.split() for ln in lines]
    shares = sorted({w[2] for w in words if w[:1] == ["share"] and len(w) > 2})
    out = {"network": ", ".join(sorted(nets)) or "none"}
    if shares:
        out["share"] = ", ".join(shares)
    return out


def create_launcher(client: docker.DockerClient, spec: LauncherSpec) -> Container:
    """Create (not start) the launcher container of one VM instance."""
    write_run_dir(spec)
    kwargs = container_kwargs(spec)
    try:
        container = client.containers.create(**kwargs)
        if spec.network and spec.aliases:
            # create() attaches without aliases; reattach with them (the
            # container is not running, so nothing notices).
            net = client.networks.get(spec.network)
            net.disconnect(container)
            net.connect(container, aliases=list(spec.aliases))
    except docker.errors.ImageNotFound as exc:
        raise VMError(
            f"launcher image {spec.image} is missing", hint="run ensure_launcher_image() first"
        ) from exc
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot create launcher {spec.name}: {exc}") from exc
    return container


def run_dir_for(name: str, cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / "run" / name


def remove_run_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
