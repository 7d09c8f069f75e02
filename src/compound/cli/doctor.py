"""``compound doctor``: what this host offers compound, and what to do about it.

    compound doctor [--quick] [--prepare] [--json]

One row per check, each ``ok``, ``warn``, ``fail`` or ``skip`` (not probed),
with a detail and, on problems, a hint. Checks: the Docker Engine (version,
API, storage driver, cgroup version), QEMU, qemu-img, mkfs.ext4 (``-d``
support, tried for real on a 1 MiB image), the guest kernel and initramfs
(prepared if missing: may download and build), KVM (``/dev/kvm`` and a real
boot probe, cached per host boot), the launcher image (built only with
``--prepare``), the VM caches, whether the host is itself a VM, CPUs and
memory.

``--quick`` skips everything that may take more than a second (kernel and
initramfs preparation, the KVM boot probe) and reports it as ``skip``
("not probed"), with what the cache already holds. ``--prepare`` also builds
the launcher image (mmdebstrap: minutes on first use).

Exit code 0 when no check failed, 1 otherwise. A check that raises is that
check's failure; no traceback reaches the user.

JSON (``--json``, on stdout)::

    {"checks": [{"name", "status", "detail", "hint"}],
     "host_facts": {"kvm_usable", "host_is_vm", "os", "arch", "cpus", "memory"}}
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from compound.advisor import HostFacts
from compound.errors import UsageError
from compound.hostfacts import host_facts
from compound.hosts.doctor_checks import check_swarm_networking
from compound.runtimes.base import HostCheck
from compound.runtimes.hostcheck import (
    CheckDef,
    CheckEnv,
    GiB,
    Verdict,
    check_local_image,
    fail,
    human_size,
    ok,
    run_checks,
    skip,
    warn,
)
from compound.runtimes.hostops import digest
from compound.runtimes.registry import host_checks

# What one idle VM costs the host (launcher + QEMU, NOTES.md: 262 MiB RSS).
VM_MEMORY_MIB = 260

# the checks run with one shared environment (an earlier check's findings feed later ones)
DoctorEnv = CheckEnv
Check = HostCheck
__all__ = [
    "CHECKS",
    "CheckDef",
    "DoctorEnv",
    "Verdict",
    "doctor",
    "fail",
    "ok",
    "skip",
    "warn",
]


# -- the checks -------------------------------------------------------------------------


def check_lb_image(env: DoctorEnv) -> Verdict:
    from compound.lb import image as lb_image

    key = digest(lb_image.image().recipe())
    return check_local_image(
        env,
        f"{lb_image.REPOSITORY}:{key[:12]}",
        key,
        lb_image.REPOSITORY,
        lambda client: lb_image.ensure_lb_image(client).tag,
        first_use="the first `up` of a replicated service with published ports builds it"
        " (mmdebstrap, about 20 s)",
    )


def check_host(env: DoctorEnv) -> Verdict:
    facts = host_facts()
    if facts.host_is_vm is None:
        return warn("cannot tell whether this host is a VM (/proc/cpuinfo unreadable)")
    if facts.host_is_vm:
        return ok("a virtual machine (CPUID hypervisor flag): KVM needs nested virtualization")
    return ok("bare metal (no CPUID hypervisor flag)")


def check_resources(env: DoctorEnv) -> Verdict:
    facts = host_facts()
    cpus = f"{facts.cpus:g}" if facts.cpus is not None else "?"
    mem = human_size(facts.memory) if facts.memory is not None else "?"
    detail = f"{cpus} CPUs, {mem} memory, {facts.arch or '?'}"
    if facts.arch not in (None, "x86_64", "amd64"):
        return warn(detail, "VM guests are x86-64: on this architecture QEMU emulates them")
    if facts.memory is not None and facts.memory < 2 * GiB:
        return warn(
            detail, f"each VM costs about {VM_MEMORY_MIB} MiB on top of its guest; add memory"
        )
    return ok(detail)


# each runtime's fingerprint (runtimes/registry.py: the Docker Engine, then
# QEMU, tools, guest kernel, KVM, launcher image and caches), then what
# compound itself runs on any runtime, then the host
CHECKS: tuple[CheckDef, ...] = (
    *host_checks(),
    CheckDef("load balancer image", check_lb_image),
    CheckDef("host", check_host),
    CheckDef("cpus/memory", check_resources),
    CheckDef("swarm networking", check_swarm_networking),
)


# -- output ----------------------------------------------------------------------------

_STYLE: dict[str, str] = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def facts_json(env: DoctorEnv) -> dict[str, object]:
    facts: HostFacts = host_facts()
    if env.accel is not None:
        facts = dataclasses.replace(facts, kvm_usable=env.accel.accel == "kvm")
    return facts.to_json()


def report_json(checks: Sequence[HostCheck], env: DoctorEnv) -> dict[str, object]:
    return {"checks": [c.to_json() for c in checks], "host_facts": facts_json(env)}


def render_table(console: Console, checks: Sequence[HostCheck]) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("CHECK", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("DETAIL")
    for c in checks:
        detail = Text(c.detail)
        if c.hint:
            detail.append(f"\n→ {c.hint}", style="cyan")
        table.add_row(c.name, Text(c.status, style=_STYLE.get(c.status, "")), detail)
    console.print(table)
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("fail", "warn", "skip")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "all ok"
    console.print(Text(summary, style="bold red" if counts["fail"] else "bold"))


def _progress_for(
    console: Console, mode: str
) -> Callable[[str], contextlib.AbstractContextManager[object]]:
    @contextlib.contextmanager
    def step(text: str) -> Iterator[object]:
        if mode == "quiet":
            yield None
            return
        t0 = time.monotonic()
        if console.is_terminal and mode != "plain":
            with console.status(text) as status:
                yield status
            return
        console.print(Text(f"… {text}"))
        yield None
        console.print(Text(f"  done in {time.monotonic() - t0:.1f}s"))

    return step


def doctor(
    *,
    quick: bool,
    prepare: bool,
    json_out: bool,
    out: Console,
    err: Console,
    progress_mode: str = "auto",
    checks: Sequence[CheckDef] | None = None,
) -> int:
    """Run the checks, print the report, return the exit code."""
    if quick and prepare:
        raise UsageError("--quick and --prepare cannot be combined")
    env = DoctorEnv(quick=quick, prepare=prepare, progress=_progress_for(err, progress_mode))
    results = run_checks(env, CHECKS if checks is None else checks)
    if json_out:
        sys.stdout.write(json.dumps(report_json(results, env), indent=2) + "\n")
    else:
        render_table(out, results)
    return 1 if any(c.status == "fail" for c in results) else 0
