"""Which accelerator really works here: KVM is tried by booting a tiny
guest (our kernel and initramfs, /init answering COMPOUND-PROBE-OK at once)
under a deadline, because an existing /dev/kvm proves nothing: nested KVM
can hang forever in the first vCPU run. The answer is cached per (kernel,
QEMU, host boot) — a reboot may change the host's KVM setup."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ._util import atomic_write, default_cache_dir, digest, locked
from .initramfs import Initramfs
from .kernel import KernelArtifacts
from .qemu import QEMU_BINARY, Accel, host_tsc_khz, qemu_version


@dataclass(frozen=True)
class AccelProbe:
    accel: Accel
    reason: str
    kvm_boot_seconds: float | None = None


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe_command(
    kernel: KernelArtifacts, initramfs: Initramfs, accel: Accel, console: Path
) -> list[str]:
    append = "console=ttyS0 quiet panic=-1 compound.probe=1"
    if accel == "tcg":
        khz = host_tsc_khz()
        append += " tsc=reliable" + (f" tsc_early_khz={khz}" if khz else "")
    return [
        QEMU_BINARY,
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-machine",
        "microvm,x-option-roms=off,isa-serial=on,rtc=on",
        "-accel",
        accel,
        "-cpu",
        "host" if accel == "kvm" else "max",
        "-m",
        "128M",
        "-kernel",
        str(kernel.vmlinux),
        "-initrd",
        str(initramfs.path),
        "-append",
        append,
        "-serial",
        f"file:{console}",
    ]


def try_boot(
    kernel: KernelArtifacts, initramfs: Initramfs, accel: Accel, timeout: float
) -> tuple[bool, float, str]:
    """Boot to /init under ``accel``; (ok, seconds, why not)."""
    with tempfile.TemporaryDirectory(prefix="compound-probe-") as tmp:
        console = Path(tmp) / "console.log"
        t0 = time.monotonic()
        proc = subprocess.Popen(
            probe_command(kernel, initramfs, accel, console),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            while time.monotonic() - t0 < timeout:
                with contextlib.suppress(FileNotFoundError):
                    if b"COMPOUND-PROBE-OK" in console.read_bytes():
                        return True, time.monotonic() - t0, ""
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    return False, 0.0, f"QEMU exited {proc.returncode}: {err.strip()[-300:]}"
                time.sleep(0.01)
            return False, 0.0, f"no boot within {timeout:.0f}s (nested KVM hangs look like this)"
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                # A vCPU stuck in the kernel may take a moment to die; don't
                # wait forever for it.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
            if proc.stderr:
                proc.stderr.close()


def probe_accel(
    kernel: KernelArtifacts,
    initramfs: Initramfs,
    cache_dir: Path | None = None,
    *,
    timeout: float = 20.0,
    refresh: bool = False,
) -> AccelProbe:
    """``kvm`` if a KVM guest boots within ``timeout``, else ``tcg``."""
    cache = cache_dir or default_cache_dir()
    key = digest(
        {
            "kernel": kernel.version,
            "initramfs": initramfs.key,
            "qemu": qemu_version(),
            "boot": boot_id(),
        }
    )
    path = cache / "accel.json"
    with locked(cache / ".accel.lock"):
        known: dict[str, dict[str, object]] = {}
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(path.read_text())
        if not refresh and key in known:
            k = known[key]
            secs = k.get("kvm_boot_seconds")
            return AccelProbe(
                accel="kvm" if k["accel"] == "kvm" else "tcg",
                reason=str(k["reason"]) + " (cached)",
                kvm_boot_seconds=float(secs) if isinstance(secs, (int, float)) else None,
            )
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            result = AccelProbe("tcg", "/dev/kvm is missing or not accessible")
        else:
            ok, secs, why = try_boot(kernel, initramfs, "kvm", timeout)
            result = (
                AccelProbe("kvm", f"a KVM guest booted in {secs:.2f}s", secs)
                if ok
                else AccelProbe("tcg", f"KVM did not work: {why}")
            )
        known = {
            key: {
                "accel": result.accel,
                "reason": result.reason,
                "kvm_boot_seconds": result.kvm_boot_seconds,
            }
        }
        atomic_write(path, json.dumps(known, indent=1).encode())
    return result


def cached_kvm_usable(cache_dir: Path | None = None) -> bool | None:
    """The last probe's answer if it was made since this host booted; None
    when no probe has run (nothing here boots a guest: advice must stay cheap)."""
    path = (cache_dir or default_cache_dir()) / "accel.json"
    try:
        with open("/proc/uptime") as f:
            booted = time.time() - float(f.read().split()[0])
        if path.stat().st_mtime < booted:
            return None
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(known, dict):  # a cache problem must not break advice
        return None
    answers = {str(v.get("accel")) for v in known.values() if isinstance(v, dict)}
    if len(answers) != 1:
        return None
    return answers.pop() == "kvm"
