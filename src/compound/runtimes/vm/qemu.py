"""The QEMU command line, the per-instance qcow2 overlay, and the two
control channels: QMP (``qemu.qmp``) and the guest agent (qemu-guest-agent
over virtio-serial, for exec).

Machine: ``microvm`` (no PCI, no firmware tables beyond a small ACPI DSDT
that describes the virtio-mmio devices, which the Debian kernel finds
without ``virtio_mmio.device=`` support), kernel booted as an uncompressed
ELF through its PVH entry point (no in-guest decompression: -4 s under
TCG). ``q35`` is kept as a fallback with the virtio-pci devices.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compound.errors import VMError

from ._util import run
from .agentlink import AgentLink, UnixSocketLink, close_quietly

Accel = Literal["kvm", "tcg"]
Machine = Literal["microvm", "q35"]
QEMU_BINARY = "qemu-system-x86_64"

# Ports of the guest's virtio-serial bus, by name (/dev/virtio-ports/<name>).
PORT_AGENT = "org.qemu.guest_agent.0"
PORT_STDOUT = "compound.stdout"
PORT_STDERR = "compound.stderr"
PORT_CTL = "compound.ctl"

# QEMU user networking (slirp) defaults, as the guest sees them.
SLIRP_NET = "10.0.2.0/24"
SLIRP_GUEST = "10.0.2.15/24"
SLIRP_GATEWAY = "10.0.2.2"
SLIRP_DNS = "10.0.2.3"


@dataclass(frozen=True)
class PortForward:
    """An inbound forward: connections to host_ip:host_port reach guest_port."""

    host_port: int
    guest_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str = ""  # "" = every address

    def hostfwd(self) -> str:
        return f"{self.protocol}:{self.host_ip}:{self.host_port}-:{self.guest_port}"


@dataclass(frozen=True)
class Share:
    """A host directory exported to the guest with virtio-9p."""

    tag: str
    path: Path
    read_only: bool = False


@dataclass(frozen=True)
class QemuSpec:
    kernel: Path  # vmlinux (PVH) or bzImage
    initrd: Path
    root_disk: Path  # the instance's qcow2 overlay
    config: Path  # guest config file, passed as fw_cfg opt/compound/config
    runtime_dir: Path  # sockets and logs live here
    accel: Accel = "tcg"
    machine: Machine = "microvm"
    memory_mib: int = 256
    vcpus: int = 1
    cmdline_extra: str = ""
    tsc_khz: int | None = None  # TCG only: skip the flaky PIT calibration
    # TCG translation cache. QEMU's default for system emulation is 1 GiB
    # of which a boot touches ~100 MiB: the biggest part of an idle VM's RSS.
    tcg_tb_mib: int = 32
    shares: tuple[Share, ...] = ()
    forwards: tuple[PortForward, ...] = ()
    # "none": no NIC here; the launcher adds its tap (or slirp) NICs itself.
    network: Literal["user", "none"] = "user"
    # Guest RAM shared with other processes (memfd share=on): what
    # vhost-user devices (virtiofsd) need to reach it.
    shared_memory: bool = False
    # Where the app's stdout/stderr go; default files in runtime_dir.
    stdout: Path | None = None
    stderr: Path | None = None
    # TCG CPU model. "max" (everything TCG emulates, AVX2 included) runs any
    # x86-64-v3 binary; a v2-level model ("qemu64,+ssse3,+sse4.1,+sse4.2,
    # +popcnt,+cx16") boots 0.3 s faster but SIGILLs v3 builds (RHEL 10).
    tcg_cpu: str = "max"
    name: str = "compound-vm"
    # QEMU's own seccomp filter: no privilege changes, no spawning, no
    # scheduler or resource changes (the launcher's QEMU; -sandbox).
    sandbox: bool = False
    extra_args: tuple[str, ...] = field(default=())

    @property
    def qmp_socket(self) -> Path:
        return self.runtime_dir / "qmp.sock"

    @property
    def qga_socket(self) -> Path:
        return self.runtime_dir / "qga.sock"

    @property
    def console_log(self) -> Path:
        return self.runtime_dir / "console.log"

    @property
    def ctl_pipe(self) -> Path:
        """``ctl.in`` / ``ctl.out`` FIFOs: a shell can write "stop" to ctl.in."""
        return self.runtime_dir / "ctl"


_BLACKLIST = (
    "init_kprobe_trace",
    "crypto_kdf108_init",
    "load_system_certificate_list",
    "init_graph_trace",
    "init_trace_printk_function_export",
    "init_blk_tracer",
    "pwm_debugfs_init",
)


def kernel_cmdline(spec: QemuSpec) -> str:
    args = [
        "console=ttyS0",
        "quiet",
        "panic=-1",  # with -no-reboot: a dead init ends QEMU instead of hanging
        "8250.nr_uarts=1",
        "cryptomgr.notests",  # in-kernel crypto self-tests: 0.24 s under TCG
        # Built-in init functions a VM's app never needs, measured slow under
        # TCG (initcall_debug): kprobe/ftrace self-setup, the kdf108 self-test,
        # the module-signing keyring (our modules carry no signature).
        "initcall_blacklist=" + ",".join(_BLACKLIST),
        "rw",
        *(["compound.pci=1"] if spec.machine == "q35" else []),  # /init loads virtio_pci
    ]
    if spec.accel == "tcg":
        # Without KVM there is no kvmclock; the early TSC calibration against
        # the PIT fails on a busy host and then boot can hang. TCG's TSC runs
        # at the host TSC rate, so tell the guest that rate.
        args.append("tsc=reliable")
        if spec.tsc_khz:
            args.append(f"tsc_early_khz={spec.tsc_khz}")
        # TCG does not emulate speculative execution, so Spectre-class
        # mitigations only cost time there; zeroing every kernel allocation
        # (Debian's init_on_alloc default) is emulated memset. Together
        # about -0.2 s of boot. KVM guests keep the distribution defaults.
        args += ["mitigations=off", "init_on_alloc=0"]
    if spec.cmdline_extra:
        args.append(spec.cmdline_extra)
    return " ".join(args)


def _escape_opt(value: str) -> str:
    """QEMU option values: a comma is written as two commas."""
    return value.replace(",", ",,")


def build_command(spec: QemuSpec, qemu: str = QEMU_BINARY) -> list[str]:
    """The full argv of QEMU for ``spec``."""
    suffix = "device" if spec.machine == "microvm" else "pci"  # virtio-mmio or virtio-pci

    def dev(kind: str) -> str:
        return f"virtio-{kind}-{suffix}"

    rd = spec.runtime_dir
    if spec.machine == "microvm":
        machine = "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,pic=on"
    else:
        machine = "q35"
    # Guest RAM from a private memfd rather than anonymous memory, which QEMU
    # backs with 2 MiB huge pages: touching 4 KiB then costs 2 MiB. Measured
    # under TCG: -4 MiB RSS, boot -0.14 to -0.37 s (NOTES.md, spike).
    machine += ",memory-backend=ram0"
    argv = [
        qemu,
        "-name",
        _escape_opt(spec.name),
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",  # a guest reboot ends the VM, like a container's process exit
        "-machine",
        machine,
        "-accel",
        spec.accel if spec.accel == "kvm" else f"tcg,tb-size={spec.tcg_tb_mib}",
        "-cpu",
        "host" if spec.accel == "kvm" else spec.tcg_cpu,
        "-m",
        f"{spec.memory_mib}M",
        "-object",
        f"memory-backend-memfd,id=ram0,size={spec.memory_mib}M,"
        f"share={'on' if spec.shared_memory else 'off'}",
        "-smp",
        str(spec.vcpus),
        "-kernel",
        str(spec.kernel),
        "-initrd",
        str(spec.initrd),
        "-append",
        kernel_cmdline(spec),
        "-fw_cfg",
        f"name=opt/compound/config,file={_escape_opt(str(spec.config))}",
        # kernel console and early messages; markers are read from here
        "-chardev",
        f"file,id=console,path={_escape_opt(str(spec.console_log))}",
        "-serial",
        "chardev:console",
        "-chardev",
        f"socket,id=qmp,path={_escape_opt(str(spec.qmp_socket))},server=on,wait=off",
        "-mon",
        "chardev=qmp,mode=control",
        "-drive",
        f"id=root,file={_escape_opt(str(spec.root_disk))},format=qcow2,if=none,"
        "discard=unmap,cache=writeback",
        "-device",
        f"{dev('blk')},drive=root",
        "-device",
        # The guest driver posts 4 KiB receive buffers on every port's
        # queue (~4 MiB of guest RAM per port); max_ports=8 instead of 31
        # freed another 4 MiB and 7 MiB of QEMU RSS. Port 0 is reserved for
        # a console; ours are 1-4.
        f"{dev('serial')},id=vser,max_ports=8",
        "-chardev",
        f"socket,id=qga,path={_escape_opt(str(spec.qga_socket))},server=on,wait=off",
        "-device",
        f"virtserialport,bus=vser.0,chardev=qga,name={PORT_AGENT}",
        "-chardev",
        _file_chardev("out", spec.stdout or rd / "stdout.log"),
        "-device",
        f"virtserialport,bus=vser.0,chardev=out,name={PORT_STDOUT}",
        "-chardev",
        _file_chardev("err", spec.stderr or rd / "stderr.log"),
        "-device",
        f"virtserialport,bus=vser.0,chardev=err,name={PORT_STDERR}",
        "-chardev",
        f"pipe,id=ctl,path={_escape_opt(str(spec.ctl_pipe))}",
        "-device",
        f"virtserialport,bus=vser.0,chardev=ctl,name={PORT_CTL}",
    ]
    if spec.shared_memory and spec.machine == "microvm":
        # microvm's virtio-mmio is legacy (v1) by default, which
        # libvhost-user (virtiofsd) refuses; modern for every device.
        argv += ["-global", "virtio-mmio.force-legacy=false"]
    if spec.network == "user":
        netdev = f"user,id=net0,net={SLIRP_NET}"
        for fwd in spec.forwards:
            netdev += f",hostfwd={fwd.hostfwd()}"
        argv += ["-netdev", netdev, "-device", f"{dev('net')},netdev=net0"]
    for i, share in enumerate(spec.shares):
        # passthrough: the guest sees the host's owners and modes unchanged,
        # so a VM and a container sharing a volume agree on who owns what
        # (QEMU runs as root in the launcher, so it can chown for the guest).
        ro = ",readonly=on" if share.read_only else ""
        argv += [
            "-fsdev",
            f"local,id=fs{i},path={_escape_opt(str(share.path))},security_model=passthrough{ro}",
            "-device",
            f"{dev('9p')},fsdev=fs{i},mount_tag={share.tag}",
        ]
    if spec.sandbox:
        argv += [
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ]
    argv += list(spec.extra_args)
    return argv


def _file_chardev(name: str, path: Path) -> str:
    # An inherited descriptor (-add-fd, /dev/fdset/N) is only handed out to
    # an open that does not truncate.
    append = ",append=on" if str(path).startswith("/dev/fdset/") else ""
    return f"file,id={name},path={_escape_opt(str(path))}{append}"


def create_overlay(base: Path, overlay: Path, timeout: float = 60.0) -> None:
    """A qcow2 overlay whose reads fall through to the read-only raw base;
    every write of the instance lands here and dies with it."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(overlay)],
        timeout=timeout,
        what="qemu-img create",
    )


def prepare_runtime_dir(spec: QemuSpec) -> None:
    """Create the runtime dir and the ctl FIFOs QEMU's pipe chardev opens."""
    spec.runtime_dir.mkdir(parents=True, exist_ok=True)
    for suffix in (".in", ".out"):
        p = Path(f"{spec.ctl_pipe}{suffix}")
        if not p.exists():
            os.mkfifo(p, 0o600)


def qemu_version(qemu: str = QEMU_BINARY) -> str:
    out = run([qemu, "--version"], timeout=20, what="qemu --version").stdout
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else out.strip().splitlines()[0]


def host_tsc_khz(cpuinfo: str | None = None) -> int | None:
    """The host TSC rate in kHz (TCG guests count host TSC ticks): the
    nominal rate in the model name ("@ 2.30GHz") when there is one, else the
    first "cpu MHz" line."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    m = re.search(r"^model name\s*:.*@\s*([0-9.]+)\s*GHz", cpuinfo, re.M)
    if m:
        return int(float(m.group(1)) * 1_000_000)
    m = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", cpuinfo, re.M)
    return int(float(m.group(1)) * 1000) if m else None


# --- QMP -------------------------------------------------------------------


async def _qmp(
    path: Path, commands: Sequence[tuple[str, dict[str, Any] | None]], timeout: float
) -> list[Any]:
    from qemu.qmp import QMPClient

    client = QMPClient("compound")
    await asyncio.wait_for(client.connect(str(path)), timeout)
    try:
        results = []
        for cmd, args in commands:
            results.append(await asyncio.wait_for(client.execute(cmd, args), timeout))
        return results
    finally:
        await asyncio.wait_for(client.disconnect(), timeout)


def qmp(
    path: Path, command: str, arguments: dict[str, Any] | None = None, timeout: float = 10.0
) -> Any:
    """Run one QMP command on the monitor at ``path`` and return its result."""
    from qemu.qmp import QMPError

    try:
        return asyncio.run(_qmp(path, [(command, arguments)], timeout))[0]
    except (TimeoutError, OSError) as exc:
        raise VMError(f"QMP {command} on {path} failed: {exc!r}") from exc
    except QMPError as exc:  # qemu.qmp's own errors (ExecuteError, ConnectError, ...)
        raise VMError(f"QMP {command} on {path} failed: {exc}") from exc


# --- guest agent -------------------------------------------------------------


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class GuestAgent:
    """A minimal synchronous qemu-guest-agent client. QGA speaks QMP-style
    JSON without a greeting; ``guest-sync-delimited`` resynchronises the
    stream after a reconnect (the 0xFF sentinel ends any half-read reply).

    It reaches the agent's socket at ``path`` on this machine, or through
    ``link`` (agentlink.py: e.g. a command relaying to a socket on another
    node); the protocol is the same either way."""

    def __init__(
        self, path: Path | None = None, timeout: float = 10.0, *, link: AgentLink | None = None
    ) -> None:
        if link is None:
            if path is None:
                raise ValueError("GuestAgent needs a socket path or a link")
            link = UnixSocketLink(path)
        self._link = link
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""

    def __enter__(self) -> GuestAgent:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self, wait: float | None = None) -> None:
        """Connect and sync; retries until ``wait`` seconds have passed
        (the agent starts a little after the kernel)."""
        deadline = time.monotonic() + (wait if wait is not None else self.timeout)
        self._lock_agent(deadline)
        attempt = self._link.attempt_seconds
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                s = self._link.open(min(attempt, self.timeout))
                self._sock, self._buf = s, b""
                token = int(time.time() * 1000) % 2**31
                s.sendall(
                    b"\xff"
                    + json.dumps(
                        {"execute": "guest-sync-delimited", "arguments": {"id": token}}
                    ).encode()
                )
                while True:
                    reply = self._read(deadline=min(deadline, time.monotonic() + attempt))
                    if reply.get("return") == token:
                        return
            except (OSError, VMError, ValueError) as exc:
                last = exc
                why = self._link.fatal()  # before the socket goes: that ends the command
                self._close_socket()
                if why:
                    self.close()
                    raise VMError(
                        f"guest agent at {self._link.where}: {why}",
                        hint="try again when it has finished" if "busy" in why else None,
                    ) from exc
                time.sleep(0.2)
        self.close()
        raise VMError(
            f"guest agent at {self._link.where} did not answer: {last!r}",
            hint="the guest may still be booting, or qemu-ga failed to start",
        )

    def _lock_agent(self, deadline: float) -> None:
        """One client at a time per guest, across processes: QEMU serves one
        connection on the agent's socket and leaves the next one unanswered
        (two `compound exec` at once failed with EAGAIN)."""
        self._link.acquire(deadline)

    def _close_socket(self) -> None:
        if self._sock is not None:
            close_quietly(self._sock)
            self._sock = None
            self._link.disconnect()

    def close(self) -> None:
        self._close_socket()
        self._link.release()

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self._sock is not None
        while True:
            self._buf = self._buf.lstrip(b"\xff")
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
                if line.strip():
                    try:
                        obj: dict[str, Any] = json.loads(line)
                    except ValueError as exc:
                        raise VMError(f"guest agent: unreadable reply {line[:80]!r}") from exc
                    return obj
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise VMError("guest agent: no reply in time")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:  # TimeoutError included: a busy guest is slow, not broken
                raise VMError(f"guest agent: no reply ({exc!r})") from exc
            if not chunk:
                raise VMError("guest agent closed the connection")
            self._buf += chunk

    def call(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode())
        reply = self._read(time.monotonic() + (timeout or self.timeout))
        if "error" in reply:
            raise VMError(f"guest agent {command}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def exec(
        self,
        path: str,
        args: Sequence[str] = (),
        *,
        timeout: float = 60.0,
        input_data: bytes | None = None,
    ) -> ExecResult:
        """guest-exec + guest-exec-status polling: exit code and output."""
        arguments: dict[str, Any] = {"path": path, "arg": list(args), "capture-output": True}
        if input_data is not None:
            arguments["input-data"] = base64.b64encode(input_data).decode()
        pid = self.call("guest-exec", arguments)["pid"]
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                code = st.get("exitcode")
                if code is None:  # killed by a signal: report as a shell would
                    code = 128 + int(st.get("signal", 0))
                return ExecResult(
                    int(code),
                    base64.b64decode(st.get("out-data", "")),
                    base64.b64decode(st.get("err-data", "")),
                )
            if time.monotonic() > deadline:
                raise VMError(f"guest-exec {path}: still running after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
