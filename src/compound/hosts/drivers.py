"""Host drivers: how a host comes to exist, starts, stops and goes away.

``local``  this machine's engine (nothing to provision).
``ssh``    an existing machine over SSH; installs docker.io if asked.
``nested`` a privileged container of ``local/dockerhost`` on its own network,
           adopted over SSH exactly like a remote machine (the test cluster).
``qemu``   a Debian VM with docker.io (see :mod:`compound.hosts.qemu_host`).
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from compound.engine import Client, connect
from compound.engine.errors import APIError, NotFound
from compound.errors import NotSupportedError
from compound.runtimes.hostops import locked

from . import contexts, facts, records, ssh, swarm
from .engine import client
from .errors import HostError
from .records import Driver, HostRecord

Progress = Callable[[str], None]
READY_TIMEOUT = 90.0
LABEL_HOST = "io.compound.host"


def nested_prefix() -> str:
    """Names of nested hosts' containers, network and volumes start with this."""
    return os.environ.get("COMPOUND_NESTED_PREFIX", "compound-host-")


def _quiet(_: str) -> None:
    pass


def create(
    name: str,
    driver: Driver,
    *,
    address: str | None = None,
    user: str = "root",
    port: int = 22,
    identity: Path | None = None,
    install_docker: bool = False,
    labels: dict[str, str] | None = None,
    tenant: str | None = None,
    memory_mib: int | None = None,
    cpus: int | None = None,
    progress: Progress = _quiet,
) -> HostRecord:
    records.check_name(name)
    if records.exists(name):
        raise HostError(
            name, "already exists", hint="`compound host rm` it first, or pick another name"
        )
    record = HostRecord(name=name, driver=driver, labels=dict(labels or {}), tenant=tenant)
    try:
        _provision(record, address, user, port, identity, progress, memory_mib, cpus)
        adopt(record, install_docker=install_docker, progress=progress)
    except BaseException:
        # nothing half-made stays: no container, no record, no ssh_config entry
        if driver in ("nested", "qemu"):
            _destroy_machine(record)
        contexts.remove(name)
        records.remove(name)
        ssh.write_config()
        raise
    return record


def _provision(
    record: HostRecord,
    address: str | None,
    user: str,
    port: int,
    identity: Path | None,
    progress: Progress,
    memory_mib: int | None = None,
    cpus: int | None = None,
) -> None:
    name, driver = record.name, record.driver
    if (memory_mib is not None or cpus is not None) and driver != "qemu":
        raise HostError(name, "--memory and --cpus are for --driver qemu")
    if driver == "local":
        return
    if driver == "ssh":
        if not address:
            raise HostError(
                name, "--driver ssh needs --address", hint="the machine's IP or DNS name"
            )
        record.address, record.user, record.port = address, user, port
        if identity is not None:
            ssh.adopt_key(record, identity)
        else:
            ssh.generate_key(record)
    elif driver == "nested":
        _create_nested(record, progress)
    elif driver == "qemu":
        from . import qemu_host

        qemu_host.create(
            record,
            progress,
            memory_mib=memory_mib or qemu_host.DEFAULT_MEMORY_MIB,
            cpus=cpus or qemu_host.DEFAULT_CPUS,
        )
    else:
        raise HostError(name, f"unknown driver {driver!r}", hint="use local, ssh, nested or qemu")


def adopt(record: HostRecord, *, install_docker: bool = False, progress: Progress = _quiet) -> None:
    """Reach the host over SSH, make sure it runs an engine, measure it,
    write its Docker context and save the record."""
    if record.address is not None:
        ssh.forget_host_key(record)
        # saved before it is measured: a concurrent `host create` rewrites
        # ssh_config from the saved records and must keep this host's entry
        records.save(record)
        ssh.write_config()
        progress(f"connecting to {record.user}@{record.address}")
        # a machine we just booted needs time for sshd; an existing one answers or not
        booting = record.driver in ("nested", "qemu")
        wait_ready(record, need_engine=False, timeout=READY_TIMEOUT if booting else 0)
        has_docker = ssh.run(record, "command -v docker >/dev/null && echo yes || echo no").strip()
        if has_docker != "yes":
            if not install_docker:
                raise HostError(
                    record.name,
                    "has no Docker Engine",
                    hint="pass --install-docker to install Debian's docker.io there",
                )
            progress("installing docker.io")
            ssh.run(
                record,
                "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && "
                "apt-get install -y -q --no-install-recommends docker.io",
                timeout=900,
            )
        wait_ready(record, need_engine=True)
    progress("measuring facts")
    record.facts = facts.measure(record)
    contexts.create(record)
    records.save(record)
    ssh.write_config()


def wait_ready(record: HostRecord, *, need_engine: bool, timeout: float = READY_TIMEOUT) -> None:
    """Until SSH (and the engine) answer; wrong credentials fail at once."""
    deadline = time.monotonic() + timeout
    check = "docker version --format '{{.Server.Version}}'" if need_engine else "true"
    while True:
        try:
            ssh.run(record, check, timeout=20)
            return
        except HostError as exc:
            if "wrong credentials" in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# --- nested hosts -------------------------------------------------------------


def _engine() -> Client:
    return connect(timeout=300)


def _network(cli: Client) -> str:
    net = f"{nested_prefix()}net"
    # the engine allows two networks of one name: concurrent creates take turns
    with locked(records.hosts_dir() / ".network.lock"):
        if not cli.networks.list(names=[net]):
            try:
                cli.networks.create(net, driver="bridge", labels={LABEL_HOST: "network"})
            except APIError as exc:
                raise HostError("-", f"cannot create the hosts' network {net}: {exc}") from exc
    return net


def remove_network_if_unused() -> None:
    cli = _engine()
    for net in cli.networks.list(names=[f"{nested_prefix()}net"]):
        net.reload()
        if not net.attrs.get("Containers"):
            with contextlib.suppress(APIError):  # a host was created meanwhile
                net.remove()


_HOST_DEVICES = ("/dev/net/tun", "/dev/kvm", "/dev/fuse")
# capability numbers Docker knows by name, for the ones this process lacks
_CAP_NAMES = {
    24: "SYS_RESOURCE",
    21: "SYS_ADMIN",
    12: "NET_ADMIN",
    16: "SYS_MODULE",
    23: "SYS_NICE",
}


def _missing_capabilities() -> list[str]:
    """Capabilities our own bounding set lacks (the engine cannot grant them either,
    when it runs beside us)."""
    try:
        with open("/proc/self/status") as f:
            bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return []
    return [name for bit, name in _CAP_NAMES.items() if not bnd & (1 << bit)]


def _authorized_keys_tar(pubkey: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo(".ssh")
        d.type, d.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(d)
        data = (pubkey + "\n").encode()
        f = tarfile.TarInfo(".ssh/authorized_keys")
        f.size, f.mode = len(data), 0o600
        tar.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def _create_nested(record: HostRecord, progress: Progress) -> None:
    from .nested_image import ensure_dockerhost_image

    cli = _engine()
    progress("nested host image")
    image = ensure_dockerhost_image(cli)
    net = _network(cli)
    container_name = f"{nested_prefix()}{record.name}"
    volume = f"{nested_prefix()}{record.name}-docker"
    record.machine = {"container": container_name, "volume": volume, "network": net}
    ssh.generate_key(record)
    try:
        container = cli.containers.create(
            image.tag,
            name=container_name,
            command=["--cgroup-parent", f"/{container_name}"],
            hostname=record.name,
            detach=True,
            network=net,
            labels={LABEL_HOST: record.name},
            # --privileged would ask for every capability, and an engine that
            # itself runs in a container may lack one (CAP_SYS_RESOURCE): take
            # all it has instead, and the devices a Docker host needs
            cap_add=["ALL"],
            cap_drop=_missing_capabilities(),
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            devices=[f"{d}:{d}:rwm" for d in _HOST_DEVICES if os.path.exists(d)],
            device_cgroup_rules=["a *:* rwm"],
            volumes={
                # overlay2 cannot stack on the outer overlay: the engine's data is a volume
                volume: {"bind": "/var/lib/docker", "mode": "rw"},
                # cgroup v1 is read-only in an unprivileged container; the
                # nested engine's cgroups go under /<container name>
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            },
        )
        container.put_archive("/root", _authorized_keys_tar(ssh.public_key(record)))
        progress(f"starting {container_name}")
        container.start()
    except APIError as exc:
        raise HostError(record.name, f"cannot start its container {container_name}: {exc}") from exc
    record.address = _nested_address(cli, container_name, net)


def _nested_address(cli: Client, container_name: str, net: str) -> str:
    c = cli.containers.get(container_name)
    addr = str(c.attrs["NetworkSettings"]["Networks"][net]["IPAddress"])
    if not addr:
        raise HostError(container_name, "its container has no address (not running?)")
    return addr


def _destroy_machine(record: HostRecord) -> None:
    if record.driver == "nested":
        cli = _engine()
        name = record.machine.get("container")
        if name:
            with contextlib.suppress(NotFound):
                cli.containers.get(name).remove(force=True, v=True)
        vol = record.machine.get("volume")
        if vol:
            with contextlib.suppress(NotFound):
                cli.volumes.get(vol).remove(force=True)
    elif record.driver == "qemu":
        from . import qemu_host

        qemu_host.destroy(record)


# --- lifecycle ---------------------------------------------------------------


def state(record: HostRecord) -> str:
    """running | stopped | unreachable | missing, asked of the host now."""
    if record.driver == "nested":
        try:
            c = _engine().containers.get(record.machine["container"])
        except NotFound:
            return "missing"
        if c.status != "running":
            return "stopped"
    elif record.driver == "qemu":
        from . import qemu_host

        if not qemu_host.running(record):
            return "stopped"
    try:
        ssh.run(record, "docker version --format '{{.Server.Version}}' >/dev/null", timeout=15)
    except HostError:
        return "unreachable"
    return "running"


def start(record: HostRecord, progress: Progress = _quiet) -> None:
    if record.driver == "nested":
        cli = _engine()
        cli.containers.get(record.machine["container"]).start()
        record.address = _nested_address(
            cli, record.machine["container"], record.machine["network"]
        )
        records.save(record)
        ssh.stop_master(record)
        ssh.write_config()
    elif record.driver == "qemu":
        from . import qemu_host

        qemu_host.start(record, progress)
        records.save(record)
    else:
        raise NotSupportedError(
            f"host {record.name!r} ({record.driver}): compound does not control its power",
            hint="start the machine yourself; `compound host ls` shows when it answers",
        )
    wait_ready(record, need_engine=True)


def stop(record: HostRecord) -> None:
    if record.driver == "nested":
        ssh.stop_master(record)
        _engine().containers.get(record.machine["container"]).stop(timeout=20)
    elif record.driver == "qemu":
        from . import qemu_host

        ssh.stop_master(record)
        qemu_host.stop(record)
    else:
        raise NotSupportedError(
            f"host {record.name!r} ({record.driver}): compound does not control its power",
            hint="stop the machine yourself",
        )


def running_containers(record: HostRecord) -> list[str]:
    cli = client(record, timeout=30)
    try:
        return [str(c.name) for c in cli.containers.list()]
    finally:
        cli.close()


def remove(record: HostRecord, *, force: bool = False) -> None:
    """Forget the host (and destroy a nested or qemu machine); refuses while
    it runs containers or is a Swarm node unless ``force``."""
    if not force and state(record) == "running":
        busy = running_containers(record)
        if busy:
            shown = ", ".join(busy[:5]) + (f" (+{len(busy) - 5} more)" if len(busy) > 5 else "")
            raise HostError(
                record.name,
                f"still runs {len(busy)} container(s): {shown}",
                hint="stop them first, or pass --force",
            )
    role = swarm.role_of(record.name)
    if role and not force:
        raise HostError(
            record.name,
            f"is a {role} of the Swarm",
            hint=f"take it out first: `compound swarm leave {record.name}`, or pass --force",
        )
    if role:
        swarm.drop_host(record.name)
    ssh.stop_master(record)
    if record.driver in ("nested", "qemu"):
        _destroy_machine(record)
    contexts.remove(record.name)
    ssh.forget_host_key(record)
    records.remove(record.name)
    ssh.write_config()
