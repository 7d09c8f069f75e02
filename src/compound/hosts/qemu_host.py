"""``--driver qemu``: a Docker host as a local QEMU VM (Debian 12 + docker.io).

- **Disk**: ``qemu-host-disk.sh`` builds a base disk from Debian packages
  once per machine (cached by recipe hash under
  ``~/.cache/compound/qemu-host/``, progress on stderr); each host boots a
  qcow2 overlay on it, kept in its record directory.
- **Settings**: QEMU boots the disk's kernel directly, so each host's name,
  address and root's SSH key travel on the kernel command line
  (``compound.{name,ip,gw,ssh}``, applied by a unit in the guest before
  sshd starts). No cloud-init (Python under TCG) and no libguestfs (an
  appliance boot per write, 107 s measured here). Only the public key
  travels; the private key stays in the record, 0600.
- **Network**: a tap per host on one bridge (``cmpd-qh0``, 10.213.0.0/24
  unless ``COMPOUND_QEMU_HOST_SUBNET`` says otherwise): the host has its own
  address, reachable from this machine and from the other qemu hosts.
- **Process**: QEMU runs daemonized on this machine with its pidfile, QMP
  socket and console log in the record directory, not in a launcher
  container: the VM *is* a Docker host and should not depend on, or be
  removed by a prune of, the local engine (as Docker Machine's local
  drivers kept VMs outside Docker). ``stop`` presses the ACPI power button
  (systemd-logind powers off), then kills after a grace period.
- **Accelerator**: KVM when the VM runtime's boot probe says it boots here,
  else TCG (slow: the boot wait is long and shows its progress).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import os
import signal
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from compound.hostfacts import kvm_usable
from compound.runtimes.hostops import cache_root, locked

from . import records, ssh
from .errors import HostError
from .records import HostRecord

Progress = Callable[[str], None]
QEMU = "qemu-system-x86_64"
DEFAULT_MEMORY_MIB = 1024
DEFAULT_CPUS = 1
STOP_GRACE = 60.0


def bridge_name() -> str:
    return os.environ.get("COMPOUND_QEMU_BRIDGE", "cmpd-qh0")


def subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(os.environ.get("COMPOUND_QEMU_HOST_SUBNET", "10.213.0.0/24"))


def boot_timeout() -> float:
    return float(os.environ.get("COMPOUND_QEMU_HOST_BOOT_TIMEOUT", "420"))


def _quiet(_: str) -> None:
    pass


# --- the base disk -----------------------------------------------------------


def base_disk(progress: Progress = _quiet) -> Path:
    """The cached base disk's directory (disk.qcow2, vmlinuz, initrd.img),
    built on first use; the build script's steps go to ``progress``."""
    script = resources.files("compound.hosts").joinpath("qemu-host-disk.sh")
    env = {**os.environ, "COMPOUND_QEMU_HOST_CACHE": str(cache_root() / "qemu-host")}
    with resources.as_file(script) as path:
        proc = subprocess.Popen(
            ["bash", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None and proc.stdout is not None
        tail: list[str] = []
        for line in proc.stderr:
            line = line.rstrip()
            tail = [*tail[-20:], line]
            progress(line.removeprefix("[qemu-host-disk] "))
        out = proc.stdout.read().strip()
        rc = proc.wait()
    if rc != 0 or not out:
        raise HostError(
            "-",
            "building the qemu hosts' base disk failed: " + " | ".join(tail[-5:]),
            hint="it needs root, mmdebstrap, e2fsprogs, qemu-utils and a Debian mirror "
            "(COMPOUND_DEBIAN_MIRROR)",
        )
    return Path(out.splitlines()[-1])


# --- network -----------------------------------------------------------------


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)


def _must(name: str, what: str, proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        raise HostError(
            name,
            f"{what} failed: {proc.stderr.strip()}",
            hint="qemu hosts need root (NET_ADMIN) and /dev/net/tun on this machine",
        )


def gateway() -> str:
    return str(next(subnet().hosts()))


def ensure_bridge(name: str) -> None:
    br = bridge_name()
    with locked(records.hosts_dir() / ".qemu-bridge.lock"):
        if _ip("link", "show", br).returncode != 0:
            _must(name, f"creating bridge {br}", _ip("link", "add", br, "type", "bridge"))
        prefix = f"{gateway()}/{subnet().prefixlen}"
        if prefix not in _ip("-o", "addr", "show", "dev", br).stdout:
            _must(name, f"addressing {br}", _ip("addr", "add", prefix, "dev", br))
        _must(name, f"bringing {br} up", _ip("link", "set", br, "up"))
    _allow_between_hosts(br)


def _forward_rule(br: str) -> list[str]:
    return ["DOCKER-USER", "-i", br, "-o", br, "-j", "ACCEPT"]


def _allow_between_hosts(br: str) -> None:
    """Docker sets FORWARD's policy to DROP and loads br_netfilter, so frames
    between two taps of the bridge are filtered: let them through (hosts of
    one Swarm talk to each other). DOCKER-USER is the chain Docker keeps."""
    rule = _forward_rule(br)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode != 0:
            subprocess.run(["iptables", "-I", *rule], capture_output=True, timeout=30)


def remove_bridge_if_unused() -> None:
    """The last qemu host gone: the bridge and its forward rule go too."""
    br = bridge_name()
    with locked(records.hosts_dir() / ".qemu-bridge.lock"):
        if (
            _ip("link", "show", br).returncode != 0
            or _ip("-o", "link", "show", "master", br).stdout
        ):
            return
        _ip("link", "del", br)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["iptables", "-D", *_forward_rule(br)], capture_output=True, timeout=30)


def tap_name(name: str) -> str:
    # interface names are at most 15 bytes; the record name may be 63
    return "cqh" + hashlib.sha256(name.encode()).hexdigest()[:10]


def mac_address(name: str) -> str:
    h = hashlib.sha256(b"mac:" + name.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in h[:3])


def _ensure_tap(record: HostRecord) -> str:
    tap = tap_name(record.name)
    if _ip("link", "show", tap).returncode != 0:
        _must(record.name, f"creating tap {tap}", _ip("tuntap", "add", "dev", tap, "mode", "tap"))
    _must(record.name, f"attaching {tap}", _ip("link", "set", tap, "master", bridge_name()))
    _must(record.name, f"bringing {tap} up", _ip("link", "set", tap, "up"))
    return tap


def _remove_tap(record: HostRecord) -> None:
    _ip("link", "del", tap_name(record.name))


def allocate_address(name: str, taken: set[str]) -> str:
    net = subnet()
    gw = gateway()
    for addr in net.hosts():
        a = str(addr)
        if a != gw and a not in taken:
            return a
    raise HostError(
        name,
        f"no free address left in {net}",
        hint="remove unused qemu hosts, or set COMPOUND_QEMU_HOST_SUBNET to a larger subnet",
    )


def _reserve_address(record: HostRecord) -> None:
    """Pick the host's address and save the record at once, under a lock,
    so two concurrent creates never pick the same one."""
    with locked(records.hosts_dir() / ".qemu-address.lock"):
        taken = {str(r.address) for r in records.load_all() if r.driver == "qemu" and r.address}
        record.address = allocate_address(record.name, taken)
        records.save(record)


# --- the VM ------------------------------------------------------------------


def _dir(record: HostRecord) -> Path:
    return records.host_dir(record.name)


def _pidfile(record: HostRecord) -> Path:
    return _dir(record) / "qemu.pid"


def qmp_socket(record: HostRecord) -> Path:
    return _dir(record) / "qmp.sock"


def console_log(record: HostRecord) -> Path:
    return _dir(record) / "console.log"


def accel() -> str:
    return "kvm" if kvm_usable() else "tcg"


def kernel_command_line(record: HostRecord, pubkey: str, accel_name: str) -> str:
    net = subnet()
    parts = [
        "root=/dev/vda",
        "rw",
        "console=ttyS0,115200",
        "net.ifnames=0",
        "quiet",
        "systemd.show_status=1",
        # no login prompt on the console: nobody reads it, and under TCG its
        # device wait is one more job in the boot
        "systemd.mask=serial-getty@ttyS0.service",
        "panic=-1",
        f"compound.name={record.name}",
        f"compound.ip={record.address}/{net.prefixlen}",
        f"compound.gw={gateway()}",
        # base64: the key line has spaces, the command line splits on them
        "compound.ssh=" + base64.b64encode(pubkey.encode()).decode(),
    ]
    if accel_name == "tcg":
        from compound.runtimes.vm.qemu import host_tsc_khz

        khz = host_tsc_khz()  # TCG's early TSC calibration can hang under load
        parts += ["tsc=reliable"] + ([f"tsc_early_khz={khz}"] if khz else [])
    return " ".join(parts)


def qemu_argv(record: HostRecord, pubkey: str) -> list[str]:
    m = record.machine
    base = Path(m["base"])
    accel_name = m.get("accel") or accel()
    return [
        QEMU,
        "-name",
        f"compound-host-{record.name},process=compound-host-{record.name}",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-daemonize",
        "-pidfile",
        str(_pidfile(record)),
        "-qmp",
        f"unix:{qmp_socket(record)},server=on,wait=off",
        "-serial",
        f"file:{console_log(record)}",
        "-machine",
        "pc",
        "-accel",
        accel_name,
        "-cpu",
        # TCG's max emulates SVM/VMX, so the guest has a /dev/kvm that runs
        # (nested in emulation; facts.py reports it as no KVM). Measured:
        # max,-vmx,-svm made the guest's mounts fail with EINVAL at boot.
        "host" if accel_name == "kvm" else "max",
        "-smp",
        str(m["cpus"]),
        "-m",
        f"{m['memory_mib']}M",
        "-kernel",
        str(base / "vmlinuz"),
        "-initrd",
        str(base / "initrd.img"),
        "-append",
        kernel_command_line(record, pubkey, accel_name),
        "-drive",
        f"file={m['disk']},if=virtio,format=qcow2,discard=unmap",
        "-netdev",
        f"tap,id=n0,ifname={m['tap']},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=n0,mac={m['mac']}",
        # sshd and dockerd want entropy early; TCG guests have little
        "-device",
        "virtio-rng-pci",
        # seccomp; -daemonize forks and calls setsid after it is installed,
        # so spawn and elevateprivileges stay allowed
        "-sandbox",
        "on,obsolete=deny,resourcecontrol=deny",
    ]


def create(
    record: HostRecord,
    progress: Progress,
    *,
    memory_mib: int = DEFAULT_MEMORY_MIB,
    cpus: int = DEFAULT_CPUS,
) -> None:
    if memory_mib < 512:
        raise HostError(record.name, f"--memory {memory_mib}M is too small", hint="at least 512M")
    if cpus < 1:
        raise HostError(record.name, f"--cpus {cpus}: at least 1")
    progress("base disk (Debian 12 + docker.io; built once per machine)")
    base = base_disk(progress)
    d = _dir(record)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    overlay = d / "disk.qcow2"
    backing = str(base / "disk.qcow2")
    proc = subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, str(overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        raise HostError(record.name, f"qemu-img create failed: {proc.stderr.strip()}")
    record.machine = {
        "base": str(base),
        "disk": str(overlay),
        "tap": tap_name(record.name),
        "mac": mac_address(record.name),
        "memory_mib": memory_mib,
        "cpus": cpus,
        "accel": accel(),
    }
    ssh.generate_key(record)
    _reserve_address(record)
    start(record, progress, fresh=True)


def pid(record: HostRecord) -> int | None:
    """QEMU's pid if it runs (the pidfile's process, still this host's QEMU)."""
    try:
        n = int(_pidfile(record).read_text().strip())
        cmdline = Path(f"/proc/{n}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return n if f"compound-host-{record.name},".encode() in cmdline else None


def running(record: HostRecord) -> bool:
    return pid(record) is not None


def start(record: HostRecord, progress: Progress, *, fresh: bool = False) -> None:
    """Boot the host (``fresh``: its first boot, with a new host key)."""
    if running(record):
        return
    ensure_bridge(record.name)
    _ensure_tap(record)
    console_log(record).unlink(missing_ok=True)
    qmp_socket(record).unlink(missing_ok=True)
    m = record.machine
    progress(
        f"booting {record.address} ({m['cpus']} CPU, {m['memory_mib']} MiB, {m['accel']}"
        + (": slow, no working KVM here" if m["accel"] == "tcg" else "")
        + ")"
    )
    proc = subprocess.run(
        qemu_argv(record, ssh.public_key(record)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise HostError(record.name, f"QEMU did not start: {proc.stderr.strip()[-500:]}")
    if fresh:  # an earlier host at this address had another key
        ssh.forget_host_key(record)
    ssh.stop_master(record)
    records.save(record)
    ssh.write_config()
    wait_booted(record, progress)


def console_tail(record: HostRecord, lines: int = 15) -> str:
    try:
        text = console_log(record).read_bytes().decode(errors="replace")
    except OSError:
        return "(no console output)"
    kept = [ln.rstrip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return "\n".join(kept[-lines:]) or "(no console output)"


def wait_booted(record: HostRecord, progress: Progress, timeout: float | None = None) -> None:
    """Until sshd and dockerd answer; QEMU gone or the deadline passed is an
    error with the console's tail."""
    limit = boot_timeout() if timeout is None else timeout
    t0 = time.monotonic()
    last_report = t0
    waiting_for = "sshd"
    while True:
        if not running(record):
            raise HostError(
                record.name,
                "its QEMU exited while booting; console tail:\n" + console_tail(record),
            )
        try:
            if waiting_for == "sshd":
                ssh.run(record, "true", timeout=20)
                progress(f"sshd answers after {time.monotonic() - t0:.0f}s")
                waiting_for = "dockerd"
            ssh.run(record, "docker version --format '{{.Server.Version}}'", timeout=20)
            progress(f"dockerd answers after {time.monotonic() - t0:.0f}s")
            return
        except HostError as exc:
            if "wrong credentials" in str(exc):
                raise
        now = time.monotonic()
        if now - t0 > limit:
            raise HostError(
                record.name,
                f"{waiting_for} did not answer within {limit:.0f}s of boot; console tail:\n"
                + console_tail(record),
                hint="under TCG a loaded machine boots slowly: raise "
                "COMPOUND_QEMU_HOST_BOOT_TIMEOUT, or see the whole console in "
                f"{console_log(record)}",
            )
        if now - last_report >= 15:
            last_report = now
            lines = console_tail(record, 1)
            progress(f"waiting for {waiting_for} ({now - t0:.0f}s): {lines[-100:]}")
        time.sleep(2)


def stop(record: HostRecord, grace: float = STOP_GRACE) -> None:
    """ACPI power button through QMP; killed if still running after ``grace``."""
    n = pid(record)
    if n is None:
        return
    from compound.errors import VMError
    from compound.runtimes.vm.qemu import qmp

    with contextlib.suppress(VMError):
        qmp(qmp_socket(record), "system_powerdown")
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not running(record):
            # its command line empties as it starts exiting: wait until it
            # has let go of the disk (a `start` or `rm` right after needs it)
            _wait_gone(n, 10)
            return
        time.sleep(0.5)
    _kill(n)


def _wait_gone(n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # it is not our child: wait for /proc to let it go
    while Path(f"/proc/{n}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _kill(n: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(n, signal.SIGKILL)
    _wait_gone(n, 5)


def destroy(record: HostRecord) -> None:
    """Kill QEMU (the disk goes with the record) and remove the tap."""
    n = pid(record)
    if n is not None:
        _kill(n)
    if record.machine.get("tap"):
        _remove_tap(record)
        remove_bridge_if_unused()
