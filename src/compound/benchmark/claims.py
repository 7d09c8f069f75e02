"""The seeds' claims about containers and VMs, checked against this run.

Each claim names the figures that test it and gets one verdict: "holds",
"holds with a caveat", "does not hold here", or "not measured" (a figure
was skipped: no verdict is ever given without its number). The thresholds
are the words of the claims made concrete, written here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compound.benchmark.figures import CONTAINER, Figure, Report

HOLDS = "holds"
CAVEAT = "holds with a caveat"
NOT_HERE = "does not hold here"
NOT_MEASURED = "not measured"

INSTANT_S = 1.0  # "almost instantly": a container reaches its entrypoint within a second
SIGNIFICANT = 2.0  # "significantly longer": at least twice a container's time
LESS_CLEAR = 1.5  # memory: VM/container at least this is a clear "less"
NET_SLOWER = 1.2  # latency VM/container at least this, throughput at most 1/this

Claim = dict[str, Any]


def fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    digits = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{digits} {unit}".strip()


def primary_vm(report: Report) -> str | None:
    """The VM variant a claim is judged on: KVM when measured (the fair
    case for VMs), else TCG."""
    vms = report.vm_variants
    return "vm-kvm" if "vm-kvm" in vms else (vms[0] if vms else None)


def _tcg_caveat(vm: str) -> str | None:
    return (
        "only TCG (emulated CPU) was measured here; with KVM a VM is faster"
        if vm == "vm-tcg"
        else None
    )


def _missing(report: Report, ids: list[str], vm: str | None) -> str | None:
    for fid in ids:
        f = report.figure(fid)
        if f is None:
            return f"{fid} was not measured"
        if f.skipped:
            return f"{f.title}: {f.skipped}"
        if vm is None or f.summary(CONTAINER) is None or f.ratio(vm) is None:
            return f"{f.title}: no round measured both ways"
    return None


def _claim(text: str, ids: list[str], verdict: str, measured: str, why: str) -> Claim:
    return {"claim": text, "figures": ids, "verdict": verdict, "measured": measured, "why": why}


def _with_caveats(verdict: str, why: str, caveats: list[str | None]) -> tuple[str, str]:
    extra = [c for c in caveats if c]
    if not extra or verdict == NOT_HERE:
        return verdict, why
    return CAVEAT, why + "; " + "; ".join(extra)


def _ratio_text(f: Figure, vm: str) -> str:
    ct, v, r = f.summary(CONTAINER), f.summary(vm), f.ratio(vm)
    assert ct is not None and v is not None and r is not None
    return (
        f"{f.title}: container {fmt(ct.median, f.unit)}, {vm} {fmt(v.median, f.unit)} "
        f"(VM/container {fmt(r.median, 'x')}, pairs {fmt(r.min, 'x')}-{fmt(r.max, 'x')})"
    )


def startup_claim(report: Report) -> Claim:
    text = "Containers start almost instantly; VMs take significantly longer."
    ids = ["startup.entrypoint"]
    vm = primary_vm(report)
    missing = _missing(report, ids, vm)
    if missing or vm is None:
        return _claim(text, ids, NOT_MEASURED, "", missing or "no VM variant")
    f = report.figure(ids[0])
    assert f is not None
    ct, r = f.summary(CONTAINER), f.ratio(vm)
    assert ct is not None and r is not None
    if r.median < SIGNIFICANT:
        verdict, why = (
            NOT_HERE,
            f"a VM reached its entrypoint within {SIGNIFICANT:g}x a container's time",
        )
    else:
        verdict, why = HOLDS, f"a VM took {fmt(r.median, 'x')} a container's time"
    slow = (
        f"a container took {fmt(ct.median, 's')} (over {INSTANT_S:g} s: not 'almost instantly')"
        if ct.median > INSTANT_S
        else None
    )
    verdict, why = _with_caveats(verdict, why, [slow, _tcg_caveat(vm)])
    return _claim(text, ids, verdict, _ratio_text(f, vm), why)


def memory_claim(report: Report) -> Claim:
    text = "Containers use less memory."
    ids = ["memory.pss"]
    vm = primary_vm(report)
    missing = _missing(report, ids, vm)
    if missing or vm is None:
        return _claim(text, ids, NOT_MEASURED, "", missing or "no VM variant")
    f = report.figure(ids[0])
    assert f is not None
    r = f.ratio(vm)
    assert r is not None
    density = report.figure("density.instances")
    measured = _ratio_text(f, vm)
    if density is not None and density.measured:
        parts = [
            f"{v}: {int(s.median)}" for v in density.rounds if (s := density.summary(v)) is not None
        ]
        measured += f"; idle instances started within the budget: {', '.join(parts)}"
    if r.median >= LESS_CLEAR:
        verdict, why = HOLDS, f"an idle VM used {fmt(r.median, 'x')} a container's memory (PSS)"
    elif r.median > 1.0:
        verdict, why = CAVEAT, f"a VM used only {fmt(r.median, 'x')} a container's memory"
    else:
        verdict, why = NOT_HERE, "an idle VM used no more memory than the container"
    return _claim(text, ids, verdict, measured, why)


def disk_claim(report: Report) -> Claim:
    text = "Containers use less disk."
    ids = ["disk.footprint"]
    vm = primary_vm(report)
    missing = _missing(report, ids, vm)
    if missing or vm is None:
        return _claim(text, ids, NOT_MEASURED, "", missing or "no VM variant")
    f = report.figure(ids[0])
    assert f is not None
    r = f.ratio(vm)
    assert r is not None
    if r.median >= 1.2:
        verdict, why = HOLDS, f"the VM's disk took {fmt(r.median, 'x')} the container's"
    elif r.median > 1.0:
        verdict, why = CAVEAT, f"the VM's disk took only {fmt(r.median, 'x')} the container's"
    else:
        verdict, why = NOT_HERE, "the VM took no more disk than the container"
    shared = f.details.get("shared_note")
    verdict, why = _with_caveats(verdict, why, [shared if verdict == HOLDS else None])
    return _claim(text, ids, verdict, _ratio_text(f, vm), why)


def network_claim(report: Report) -> Claim:
    text = "Container networking is faster."
    lat, thr = "network.c2t.latency_p50", "network.c2t.throughput"
    ids = [lat, thr]
    vm = primary_vm(report)
    missing = _missing(report, ids, vm)
    if missing or vm is None:
        return _claim(text, ids, NOT_MEASURED, "", missing or "no VM variant")
    fl, ft = report.figure(lat), report.figure(thr)
    assert fl is not None and ft is not None
    rl, rt = fl.ratio(vm), ft.ratio(vm)
    assert rl is not None and rt is not None
    slower_latency = rl.median >= NET_SLOWER
    lower_throughput = rt.median <= 1 / NET_SLOWER
    measured = _ratio_text(fl, vm) + "; " + _ratio_text(ft, vm)
    if slower_latency and lower_throughput:
        verdict, why = HOLDS, "reaching a VM had higher latency and lower throughput"
    elif slower_latency or lower_throughput:
        verdict = CAVEAT
        why = (
            "latency was higher but throughput comparable"
            if slower_latency
            else "throughput was lower but latency comparable"
        )
    else:
        verdict, why = NOT_HERE, "a VM answered as fast as a container"
    verdict, why = _with_caveats(verdict, why, [_tcg_caveat(vm)])
    return _claim(text, ids, verdict, measured, why)


def isolation_claim(report: Report) -> Claim:
    text = "VMs isolate better."
    iso = report.isolation
    host_k = iso.get("host_kernel")
    ct_k = (iso.get("container") or {}).get("kernel")
    vm_k = (iso.get("vm") or {}).get("kernel")
    launcher = (iso.get("vm") or {}).get("confinement") or {}
    if not (host_k and ct_k and vm_k):
        return _claim(text, [], NOT_MEASURED, "", iso.get("skipped") or "kernels not read")
    measured = f"host kernel {host_k}; the container sees {ct_k}; the VM sees {vm_k}"
    if vm_k == host_k:
        return _claim(text, [], NOT_HERE, measured, "the VM saw the host's kernel")
    verdict, why = HOLDS, "the VM runs its own kernel; the container shares the host's"
    caveats: list[str | None] = []
    if launcher.get("privileged"):
        caveats.append("its launcher container runs privileged")
    extra = launcher.get("extra_capabilities") or []
    if extra:
        caveats.append(
            "a guest escape lands in the launcher, which holds "
            + ", ".join(extra)
            + " beyond a default container"
        )
    if launcher.get("devices"):
        caveats.append("the launcher sees host devices " + ", ".join(launcher["devices"]))
    verdict, why = _with_caveats(verdict, why, caveats)
    return _claim(text, [], verdict, measured, why)


CLAIMS: tuple[Callable[[Report], Claim], ...] = (
    startup_claim,
    memory_claim,
    disk_claim,
    network_claim,
    isolation_claim,
)


def check_claims(report: Report) -> list[Claim]:
    return [claim(report) for claim in CLAIMS]
