"""Whether KVM really works on a host, measured there.

``kvm-probe.c`` sets up a vCPU the way QEMU's ``-cpu host`` does and runs
one page of guest code under a deadline (see the C file for why a mere
/dev/kvm proves nothing). It is compiled static once per machine (cached
by the hash of its source) and piped over SSH, so the host needs nothing
installed: not QEMU, not an image. On this machine, the probe agreed with
the VM runtime's QEMU boot probe (both refuse MSR 0x10a, nested KVM).

A host that runs this machine's kernel (a nested test host: same boot id)
gets the local boot probe's answer when that has run: same kernel, same KVM.
"""

from __future__ import annotations

import base64
import importlib.resources
import tempfile
from pathlib import Path
from typing import Any

from compound.hostfacts import kvm_usable
from compound.runtimes.hostops import atomic_write, cache_root, digest, locked, run

from . import ssh
from .errors import HostError
from .records import HostRecord

DEADLINE = 5  # seconds; a working vCPU answers in milliseconds
REMOTE = "/tmp/.compound-kvm-probe"


def _source() -> str:
    return importlib.resources.files("compound.hosts").joinpath("kvm-probe.c").read_text()


def binary() -> Path:
    """The static probe, compiled on first use (gcc, libc6-dev)."""
    src = _source()
    out = cache_root() / "hosts" / f"kvm-probe-{digest(src)[:16]}"
    if out.is_file():
        return out
    with locked(out.parent / ".kvm-probe.lock"):
        if out.is_file():
            return out
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            c = Path(tmp) / "kvm-probe.c"
            c.write_text(src)
            exe = Path(tmp) / "kvm-probe"
            run(
                ["gcc", "-static", "-Os", "-s", "-Wall", "-o", str(exe), str(c)],
                timeout=120,
                what="compiling the KVM probe (gcc, libc6-dev)",
            )
            atomic_write(out, exe.read_bytes(), 0o755)
    return out


def parse(line: str) -> tuple[bool, str]:
    """``kvm=1 <µs>`` | ``kvm=0 <reason>`` -> (works, reason)."""
    head, _, rest = line.strip().partition(" ")
    if head == "kvm=1":
        try:
            return True, f"a vCPU set up as -cpu host ran guest code in {int(rest) / 1000:.1f} ms"
        except ValueError:
            return True, "a vCPU set up as -cpu host ran guest code"
    if head == "kvm=0":
        return False, rest or "the probe failed"
    return False, f"the probe said nothing usable: {line.strip()[:200]!r}"


def probe(record: HostRecord, raw: dict[str, str]) -> tuple[bool | None, str]:
    """(kvm works?, why), for a host whose facts script printed ``raw``."""
    if raw.get("kvm_dev") != "1":
        return False, "no /dev/kvm"
    if record.address is None or raw.get("boot_id") == _local_boot_id():
        local = kvm_usable()
        if local is not None:
            return local, "this machine's kernel: the VM runtime's boot probe " + (
                "booted under KVM" if local else "failed (TCG only)"
            )
    try:
        out = ssh.run(
            record,
            # base64 through ssh's stdin: ssh.run speaks text
            f"base64 -d > {REMOTE} && chmod 700 {REMOTE} && "
            f"timeout -s KILL {DEADLINE + 10} {REMOTE} {DEADLINE}; rc=$?; rm -f {REMOTE}; "
            '[ "$rc" = 0 ] || echo "kvm=0 the probe was killed (exit $rc)"',
            timeout=DEADLINE + 30,
            input_text=base64.b64encode(binary().read_bytes()).decode(),
        )
    except HostError as exc:
        return None, f"probe not run: {exc}"
    return parse(out.strip().splitlines()[-1] if out.strip() else "")


def _local_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "?"


def cached(facts: dict[str, Any], raw: dict[str, str]) -> tuple[bool | None, str] | None:
    """The answer already in the record, if the host has not rebooted since."""
    kvm = facts.get("kvm")
    if isinstance(kvm, bool) and facts.get("kvm_boot_id") == raw.get("boot_id", "-"):
        return kvm, str(facts.get("kvm_reason", ""))
    return None
