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
from .qemu import SLIRP_NET, Accel, PortForward, QemuSpec, build_command

# Paths inside the launcher container.
IN_KERNEL = PurePosixPath("/compound/kernel")
IN_INITRAMFS = PurePosixPath("/compound/initramfs")
IN_BASE = PurePosixPath("/compound/base.ext4")
IN_RUN = PurePosixPath("/compound/run")
IN_VOLUMES = PurePosixPath("/compound/volumes")
IN_STATE = PurePosixPath("/var/lib/compound")

Net = Literal["tap", "user"]
ShareKind = Literal["virtiofs", "9p"]
# What the launcher may do beyond a default container, for net="tap": make
# taps, move its addresses, add tc filters, all in its own network namespace.
TAP_CAPS = ("NET_ADMIN",)
TUN_DEVICE = "/dev/net/tun"


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
        stdout=Path("/dev/stdout"),
        stderr=Path("/dev/stderr"),
        name=spec.name,
    )


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
    devices = []
    if spec.accel == "kvm":
        devices.append("/dev/kvm:/dev/kvm:rwm")
    if spec.net == "tap":
        devices.append(f"{TUN_DEVICE}:{TUN_DEVICE}:rwm")
        kwargs["cap_add"] = list(TAP_CAPS)
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


def write_run_dir(spec: LauncherSpec) -> None:
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    (spec.run_dir / "config.base").write_text(spec.guest.render())
    (spec.run_dir / "launcher.conf").write_text(launcher_conf(spec))


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
