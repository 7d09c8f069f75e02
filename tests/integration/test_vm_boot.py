"""Real VMs under QEMU (TCG here: nested KVM hangs, so accel is probed):
a bare QEMU boot reporting the entrypoint's exit code, an httpd reached
through a slirp hostfwd with a 9p volume and the guest agent, and a
launcher container on a Docker network reached by name from a container
(and the reverse). Every wait has a deadline; every QEMU and container
started here is killed/removed at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest

from compound.runtimes.vm.accel import probe_accel
from compound.runtimes.vm.basedisk import BaseDisk, ensure_base_disk
from compound.runtimes.vm.guestconfig import GuestConfig, GuestMount
from compound.runtimes.vm.guestkernel import ensure_guest_kernel
from compound.runtimes.vm.initramfs import Initramfs, ensure_initramfs
from compound.runtimes.vm.kernel import KernelArtifacts
from compound.runtimes.vm.launcher import (
    LauncherSpec,
    LauncherVolume,
    create_launcher,
    remove_run_dir,
    run_dir_for,
)
from compound.runtimes.vm.launcher_image import ensure_launcher_image
from compound.runtimes.vm.qemu import (
    Accel,
    GuestAgent,
    PortForward,
    QemuSpec,
    Share,
    host_tsc_khz,
)
from compound.runtimes.vm.vm import BareVM, read_markers, slirp_network

pytestmark = pytest.mark.integration

BOOT_TIMEOUT = 60.0  # TCG on a busy 2-core machine: a boot is 3-5 s


@dataclass(frozen=True)
class Artifacts:
    kernel: KernelArtifacts
    initramfs: Initramfs
    disk: BaseDisk
    accel: Accel


@pytest.fixture(scope="session")
def vm_artifacts(engine: docker.DockerClient, busybox_image: str) -> Artifacts:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.fail(
            "qemu-system-x86_64 and qemu-img are needed (apt-get install "
            "qemu-system-x86 qemu-utils)",
            pytrace=False,
        )
    kernel = ensure_guest_kernel()  # built by `make guest-kernel` before pytest
    initramfs = ensure_initramfs(kernel)
    accel = probe_accel(kernel, initramfs, timeout=15).accel
    return Artifacts(kernel, initramfs, ensure_base_disk(engine, busybox_image), accel)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def start_vm(vm_artifacts: Artifacts, tmp_path: Path) -> Iterator[object]:
    started: list[BareVM] = []

    def start(guest: GuestConfig, **kw: object) -> BareVM:
        rd = tmp_path / f"vm{len(started)}"
        spec = QemuSpec(
            kernel=vm_artifacts.kernel.vmlinux,
            initrd=vm_artifacts.initramfs.path,
            root_disk=rd / "root.qcow2",
            config=rd / "config",
            runtime_dir=rd,
            accel=vm_artifacts.accel,
            tsc_khz=host_tsc_khz(),
            **kw,  # type: ignore[arg-type]
        )
        vm = BareVM.start(spec, vm_artifacts.disk.path, guest)
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.kill()


@pytest.mark.timeout(120)
def test_bare_boot_reports_the_exit_code(start_vm) -> None:  # type: ignore[no-untyped-def]
    vm: BareVM = start_vm(
        GuestConfig(
            argv=("sh", "-c", 'echo "hello $WHO"; echo oops >&2; exit 3'),
            env={"PATH": "/bin", "WHO": "it's me"},
            network=slirp_network(),
        )
    )
    vm.wait_marker("START", BOOT_TIMEOUT)
    assert vm.wait(30) == 3
    rd = vm.spec.runtime_dir
    assert (rd / "stdout.log").read_text() == "hello it's me\n"
    assert (rd / "stderr.log").read_text() == "oops\n"


@pytest.mark.timeout(150)
def test_bare_httpd_hostfwd_volume_agent_and_stop(start_vm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from a volume\n")
    os.chown(www / "index.html", 1234, 5678)
    port = free_port()
    vm: BareVM = start_vm(
        GuestConfig(
            argv=("httpd", "-f", "-p", "80", "-h", "/www"),
            user="nobody",
            env={"PATH": "/bin"},
            network=slirp_network(),
            mounts=(GuestMount("vol0", "/www"),),
        ),
        forwards=(PortForward(port, 80),),
        shares=(Share("vol0", www),),
    )
    vm.wait_marker("START", BOOT_TIMEOUT)
    deadline = time.monotonic() + 30
    body = b""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as r:
                body = r.read()
            break
        except OSError:
            time.sleep(0.2)
    assert body == b"hello from a volume\n"

    with GuestAgent(vm.spec.qga_socket, timeout=10) as agent:
        agent.connect(wait=30)
        res = agent.exec(
            "/sbin/compound-exec",
            [
                "nobody",
                "/www",
                "EXTRA=1",
                "--",
                "sh",
                "-c",
                'stat -c %u:%g index.html; id -un; pwd; echo "$EXTRA"; exit 5',
            ],
            timeout=30,
        )
        assert res.exit_code == 5
        assert res.stdout.decode().split() == ["1234:5678", "nobody", "/www", "1"]
        # written by root (exec -u 0) in the guest: root-owned on the host (passthrough)
        res = agent.exec("/sbin/compound-exec", ["0", "/", "--", "sh", "-c", "echo x > /www/new"])
        assert res.exit_code == 0
    assert (www / "new").stat().st_uid == 0
    assert vm.stop(30) == 143  # SIGTERM'd httpd, as `docker stop` reports it


# What mainstream server images ask of the kernel, tried in the guest with
# the Python image (ctypes for the calls Python does not wrap); one line each.
KERNEL_FEATURES = r"""
import ctypes, os, select, socket, time
from multiprocessing import shared_memory
libc = ctypes.CDLL(None, use_errno=True)
bad = []
def check(name, cond):
    print(name, "ok" if cond else "MISSING", flush=True)
    cond or bad.append(name)
shm = libc.shmget(0, 4096, 0o1600)  # IPC_PRIVATE, IPC_CREAT (PostgreSQL)
check("sysv-shm", shm >= 0 and libc.shmctl(shm, 0, None) == 0)
sem = libc.semget(0, 4, 0o1600)
check("sysv-sem", sem >= 0 and libc.semctl(sem, 0, 0) == 0)
m = shared_memory.SharedMemory(create=True, size=4096)
m.close(); m.unlink(); check("posix-shm", True)
check("mqueue", libc.mq_open(b"/kern", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0)
check("eventfd", os.eventfd(0) >= 0)
check("epoll", select.epoll().fileno() >= 0)
mask = (ctypes.c_ulong * 16)()
check("signalfd", libc.signalfd(-1, mask, 0) >= 0)
check("timerfd", libc.timerfd_create(1, 0) >= 0)
check("inotify", libc.inotify_init1(0) >= 0)
check("memfd", os.memfd_create("x") >= 0)
ctx = ctypes.c_ulong(0)
check("aio", libc.syscall(206, 8, ctypes.byref(ctx)) == 0)  # io_setup
check("seccomp", libc.prctl(21, 0, 0, 0, 0) == 0)  # PR_GET_SECCOMP
for fam, typ, proto in ((socket.AF_UNIX, socket.SOCK_STREAM, 0),
                        (socket.AF_INET6, socket.SOCK_STREAM, 0),
                        (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)):
    socket.socket(fam, typ, proto).close()
check("sockets", True)
ns = set(os.listdir("/proc/self/ns"))
check("namespaces", {"ipc", "mnt", "net", "pid", "user", "uts", "cgroup"} <= ns)
os.makedirs("/tmp/cg", exist_ok=True)
rc = libc.mount(b"none", b"/tmp/cg", b"cgroup2", 0, None)  # the image may lack mount(8)
ctl = open("/tmp/cg/cgroup.controllers").read().split() if rc == 0 else []
check("cgroup2", {"memory", "pids", "cpu"} <= set(ctl))
fs = {line.split()[-1] for line in open("/proc/filesystems")}
for name in ("virtiofs", "9p", "ext4", "tmpfs", "devpts", "mqueue", "overlay", "fuse"):
    check("fs-" + name, name in fs)
check("pid_max", int(open("/proc/sys/kernel/pid_max").read()) >= 32768)
check("clock", time.time() > 1.7e9)  # the RTC set the wall clock
check("uname", os.uname().release.endswith("-compound"))
import threading  # futexes
t = threading.Thread(target=time.sleep, args=(0.01,)); t.start(); t.join()
check("threads", not t.is_alive())
print("ALL-OK" if not bad else "MISSING: " + " ".join(bad))
"""


@pytest.mark.timeout(240)
def test_compound_kernel_has_what_images_need(
    vm_artifacts: Artifacts, engine: docker.DockerClient, tmp_path: Path
) -> None:
    assert vm_artifacts.kernel.flavour == "compound" and vm_artifacts.kernel.modules == ()
    disk = ensure_base_disk(engine, "local/python:3")
    rd = tmp_path / "vm"
    spec = QemuSpec(
        kernel=vm_artifacts.kernel.vmlinux,
        initrd=vm_artifacts.initramfs.path,
        root_disk=rd / "root.qcow2",
        config=rd / "config",
        runtime_dir=rd,
        accel=vm_artifacts.accel,
        tsc_khz=host_tsc_khz(),
        memory_mib=256,
    )
    guest = GuestConfig(
        argv=("python3", "-c", KERNEL_FEATURES),
        env={"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
        network=slirp_network(),
    )
    vm = BareVM.start(spec, disk.path, guest)
    try:
        assert vm.wait(180) == 0, vm.console_tail()
    finally:
        vm.kill()
    out = (rd / "stdout.log").read_text()
    assert "ALL-OK" in out, out + (rd / "stderr.log").read_text()


@pytest.fixture
def docker_cleanup(engine: docker.DockerClient) -> Iterator[list[tuple[str, str]]]:
    things: list[tuple[str, str]] = []  # (kind, name), removed in reverse
    yield things
    for kind, name in reversed(things):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            if kind == "container":
                engine.containers.get(name).remove(force=True)
            elif kind == "network":
                engine.networks.get(name).remove()
            elif kind == "volume":
                engine.volumes.get(name).remove(force=True)
            elif kind == "rundir":
                remove_run_dir(Path(name))


def http_get_by_name(name: str, port: int) -> str:
    # busybox-static's wget crashes in static glibc's resolver; nslookup asks
    # the DNS server itself, nc does the request.
    return (
        f"ip=$(nslookup {name} | awk '/^Address: /{{print $2}}' | tail -n 1); "
        f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $ip {port}"
    )


@pytest.mark.timeout(240)
def test_launcher_on_a_docker_network(
    engine: docker.DockerClient,
    vm_artifacts: Artifacts,
    busybox_image: str,
    docker_cleanup: list[tuple[str, str]],
) -> None:
    tag = uuid.uuid4().hex[:8]
    labels = {"io.compound.test": "vm"}
    launcher = ensure_launcher_image(engine)
    net = engine.networks.create(f"cvm-net-{tag}", labels=labels)
    docker_cleanup.append(("network", net.name or ""))
    vol = engine.volumes.create(f"cvm-vol-{tag}", labels=labels)
    docker_cleanup.append(("volume", vol.name))
    engine.containers.run(
        busybox_image,
        ["sh", "-c", "echo hello-from-vm > /v/index.html"],
        volumes={vol.name: {"bind": "/v"}},
        remove=True,
    )
    name = f"cvm-web-{tag}"
    run_dir = run_dir_for(name)
    docker_cleanup.append(("rundir", str(run_dir)))
    docker_cleanup.append(("container", name))
    spec = LauncherSpec(
        name=name,
        image=launcher.tag,
        kernel=vm_artifacts.kernel,
        initramfs=vm_artifacts.initramfs,
        base=vm_artifacts.disk,
        run_dir=run_dir,
        guest=GuestConfig(
            argv=("httpd", "-f", "-v", "-p", "80", "-h", "/www"),
            env={"PATH": "/bin"},
            hostname="",
            network=slirp_network(),
            mounts=(GuestMount("vol0", "/www"),),
        ),
        accel=vm_artifacts.accel,
        tsc_khz=host_tsc_khz(),
        guest_ports=((80, "tcp"),),
        volumes=(LauncherVolume(vol.name, "/www"),),
        network=net.name,
        aliases=("web",),
        labels=labels,
    )
    container = create_launcher(engine, spec)
    container.start()
    deadline = time.monotonic() + BOOT_TIMEOUT
    while not any(k == "START" for k, _ in read_markers(run_dir / "console.log")):
        container.reload()
        assert container.status != "exited", container.logs().decode(errors="replace")
        assert time.monotonic() < deadline, "the VM did not reach its entrypoint"
        time.sleep(0.05)

    peer_name = f"cvm-peer-{tag}"
    docker_cleanup.append(("container", peer_name))
    peer = engine.containers.run(
        busybox_image,
        ["sleep", "600"],
        name=peer_name,
        network=net.name,
        labels=labels,
        detach=True,
    )
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the guest's httpd may start a moment later
        result = peer.exec_run(["sh", "-c", http_get_by_name("web", 80)])
        assert isinstance(result.output, bytes)  # not streamed
        out = result.output
        if b"hello-from-vm" in out:
            break
        time.sleep(0.3)
    assert b"200 OK" in out and b"hello-from-vm" in out

    peer.exec_run(["sh", "-c", "mkdir -p /srv && echo hello-from-container > /srv/index.html"])
    peer.exec_run(["httpd", "-p", "8000", "-h", "/srv"])
    with GuestAgent(run_dir / "qga.sock", timeout=10) as agent:
        agent.connect(wait=30)
        res = agent.exec(
            "/sbin/compound-exec",
            ["", "/", "--", "sh", "-c", http_get_by_name(peer_name, 8000)],
            timeout=30,
        )
    assert b"hello-from-container" in res.stdout, res

    container.stop(timeout=30)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 143
    logs = container.logs(stdout=False, stderr=True).decode()
    assert "response:200" in logs  # httpd -v writes to stderr: the app's, not the kernel's
