"""Legacy VM disks as services: ``x-compound: {runtime: vm, vm: {disk: ...}}``.

The disk boots through its own bootloader (SeaBIOS, or OVMF when it has an
EFI system partition on GPT) in the same launcher container as an image VM,
on the same tap networking: launcher.sh serves the guest its address by
DHCP. The disk itself is bind-mounted read-only; each instance boots from a
qcow2 overlay whose backing file is the disk (in the launcher's writable
layer, or on a Docker volume when ``persistent: true``).

What compound knows about such a guest is what it finds offline at create
time (diskread.py: OS, firmware, whether qemu-guest-agent is installed):
- readiness is "QEMU runs", and, when the guest has the agent, the agent
  answering (up to LEGACY_BOOT_TIMEOUT, then an error with the console tail);
- logs are the serial console: only what the guest writes to ttyS0
  (``console=ttyS0`` on its kernel command line);
- stop is an ACPI power-down over QMP, the grace period, then a kill;
- exec and CMD healthchecks go through qemu-guest-agent when it is installed,
  else NotSupportedError (a TCP/HTTP check from another service still works);
  guestexec.py runs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from compound.errors import VMError
from compound.spec.model import Volume

from .cloudseed import LABEL as SEED_LABEL
from .cloudseed import SEED_DIR
from .diskread import DiskFacts, disk_facts
from .guestexec import LABEL_VM_AGENT as LABEL_VM_AGENT
from .guestexec import LABEL_VM_DISK as LABEL_VM_DISK
from .launcher import IN_STATE
from .qemu import Accel, GuestAgent, qmp

LABEL_VM_OS = "io.compound.vm.os"
LABEL_VM_FIRMWARE = "io.compound.vm.firmware"
LABEL_VM_CLOUD_INIT = "io.compound.vm.cloud-init"
LABEL_VM_PERSIST = "io.compound.vm.persist-volume"
# on the volume holding a persistent disk service's overlay: the service
LABEL_VM_OVERLAY_OF = "io.compound.vm.disk-overlay-of"

IN_DISK = PurePosixPath("/compound/disk")
IN_PERSIST = PurePosixPath("/var/lib/compound/persist")
IN_RUN = PurePosixPath("/compound/run")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
# systemd + a distro kernel under TCG on a loaded host: minutes, not seconds
LEGACY_BOOT_TIMEOUT = float(os.environ.get("COMPOUND_LEGACY_BOOT_TIMEOUT", "900"))
DEFAULT_LEGACY_MEMORY_MIB = 1024


@dataclass(frozen=True)
class LegacyPlan:
    disk: Path
    facts: DiskFacts
    overlay: PurePosixPath
    persist_volume: str | None


_facts_cache: dict[tuple[str, int, int], DiskFacts] = {}


def facts_for(path: Path) -> DiskFacts:
    """Disk facts, once per (path, size, mtime) in this process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _facts_cache:
        _facts_cache[key] = disk_facts(path)
    return _facts_cache[key]


def disk_id(path: Path) -> str:
    """What stands for the image id of a disk service (config hash, labels)."""
    st = path.stat()
    raw = f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()
    return "disk:" + hashlib.sha256(raw).hexdigest()[:16]


def persist_volume_name(project: str, service: str) -> str:
    return overlay_volume(project, service).name


def overlay_volume(project: str, service: str) -> Volume:
    """The project volume holding a ``persistent: true`` disk service's
    overlay: labelled as the project's (so ``compound volume ls/backup/
    restore`` and ``down -v`` see it) and as this service's overlay (so a
    backup can refuse to copy it while QEMU has it open)."""
    key = f"{service}-disk-overlay"
    return Volume(key=key, name=f"{project}_{key}", labels={LABEL_VM_OVERLAY_OF: service})


def plan(project: str, service: str, disk: str, persistent: bool, firmware: str) -> LegacyPlan:
    path = Path(disk).resolve()  # the label lift compares against
    facts = facts_for(path)
    if firmware != "auto":
        facts = replace(facts, firmware=firmware)
    if persistent:
        vol = persist_volume_name(project, service)
        return LegacyPlan(path, facts, IN_PERSIST / "root.qcow2", vol)
    return LegacyPlan(path, facts, IN_STATE / "root.qcow2", None)


def qemu_argv(name: str, accel: Accel, memory_mib: int, vcpus: int, lp: LegacyPlan) -> list[str]:
    """QEMU for a disk that boots itself: a PC with virtio disk, the serial
    console to a file and to the container's stdout (the service's logs),
    QMP and the guest agent's port; launcher.sh adds the NICs (virtio-pci)."""
    run = IN_RUN
    argv = [
        "qemu-system-x86_64",
        "-name",
        name.replace(",", ",,"),
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-machine",
        "q35" if lp.facts.firmware == "uefi" else "pc",
        "-accel",
        accel if accel == "kvm" else "tcg,tb-size=256",
        "-cpu",
        "host" if accel == "kvm" else "max",
        "-m",
        f"{memory_mib}M",
        "-smp",
        str(vcpus),
        "-chardev",
        f"file,id=console,path=/dev/stdout,logfile={run}/console.log",
        "-serial",
        "chardev:console",
        "-chardev",
        f"socket,id=qmp,path={run}/qmp.sock,server=on,wait=off",
        "-mon",
        "chardev=qmp,mode=control",
        "-drive",
        f"id=root,file={lp.overlay},format=qcow2,if=none,discard=unmap,cache=writeback",
        "-device",
        "virtio-blk-pci,drive=root,bootindex=0",
        "-device",
        "virtio-serial-pci,id=vser",
        "-chardev",
        f"socket,id=qga,path={run}/qga.sock,server=on,wait=off",
        "-device",
        "virtserialport,bus=vser.0,chardev=qga,name=org.qemu.guest_agent.0",
    ]
    if lp.facts.cloud_init:
        # the NoCloud seed: the run dir's seed/ as a read-only FAT volume
        # labelled cidata, made by QEMU itself (cloudseed.py says why)
        argv += [
            "-drive",
            f"if=none,id=seed,driver=vvfat,dir={run}/{SEED_DIR},label={SEED_LABEL},read-only=on",
            "-device",
            "virtio-blk-pci,drive=seed",
        ]
    if lp.facts.firmware == "uefi":
        argv += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={IN_STATE}/OVMF_VARS.fd",
        ]
    return argv


def launcher_conf_extra(lp: LegacyPlan) -> dict[str, str]:
    return {
        "COMPOUND_LEGACY": lp.facts.format,
        "COMPOUND_OVERLAY": str(lp.overlay),
        "COMPOUND_FIRMWARE": lp.facts.firmware,
        "COMPOUND_DEVICE_SUFFIX": "pci",
    }


def labels(lp: LegacyPlan) -> dict[str, str]:
    out = {
        LABEL_VM_DISK: str(lp.disk),
        LABEL_VM_OS: lp.facts.os,
        LABEL_VM_FIRMWARE: lp.facts.firmware,
        LABEL_VM_AGENT: "yes" if lp.facts.guest_agent else "no",
        LABEL_VM_CLOUD_INIT: "yes" if lp.facts.cloud_init else "no",
    }
    if lp.persist_volume:
        out[LABEL_VM_PERSIST] = lp.persist_volume
    return out


def guest_hostname(service: str, number: int, declared: str | None) -> str:
    """The hostname cloud-init gives the guest: the service's ``hostname:``,
    else the service name (``-N`` for replicas after the first), made a
    valid hostname."""
    import re

    name = declared or (service if number <= 1 else f"{service}-{number}")
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "vm"


def is_legacy(instance_labels: dict[str, str]) -> bool:
    return LABEL_VM_DISK in instance_labels


def wait_ready(
    run_dir: Path,
    agent: bool,
    running: Any,
    fail: Any,
    timeout: float | None = None,
) -> None:
    """QEMU running (QMP says so), then, for a guest with the agent, the
    agent answering; ``running()`` says whether the launcher still runs,
    ``fail(what)`` makes the error (with the console tail)."""
    timeout = LEGACY_BOOT_TIMEOUT if timeout is None else timeout
    started = time.monotonic()
    qmp_ok = False
    while True:
        if not running():
            raise fail("the launcher exited before the guest booted")
        if not qmp_ok:
            with contextlib.suppress(VMError):  # qmp() says every failure so
                qmp_ok = (qmp(run_dir / "qmp.sock", "query-status", timeout=2) or {}).get(
                    "status"
                ) == "running"
            if qmp_ok and not agent:
                return
        else:
            try:
                with GuestAgent(run_dir / "qga.sock", timeout=3) as ga:
                    ga.call("guest-ping", {})
                return
            except (VMError, OSError):  # not up yet (OSError: the socket broke mid-call)
                pass
        if time.monotonic() - started > timeout:
            what = "its guest agent did not answer" if qmp_ok else "QEMU did not start"
            raise fail(f"the legacy guest did not boot in {timeout:.0f}s ({what})")
        time.sleep(1.0)


def power_down(run_dir: Path, agent: bool) -> bool:
    """ACPI power button over QMP; False when QMP does not answer. A guest
    may ignore the button (no acpid, no logind: minimal servers often have
    neither), so a guest with the agent is also asked to shut down."""
    try:
        qmp(run_dir / "qmp.sock", "system_powerdown", timeout=5)
    except VMError:  # QEMU already gone or not up
        return False
    if agent:
        # guest-shutdown runs `shutdown -P +0`, which on systemd needs logind
        # and D-Bus; `poweroff` reaches init directly (systemd or SysV)
        with (
            contextlib.suppress(VMError, OSError),
            GuestAgent(run_dir / "qga.sock", timeout=3) as ga,
        ):
            try:
                ga.call("guest-shutdown", {"mode": "powerdown"})
            except VMError:
                ga.call("guest-exec", {"path": "/sbin/poweroff", "arg": []})
    return True
