"""The report's last section: what `compound advise` concludes for the
user's own services (the project in the directory the bench ran in), and
what each conclusion costs or buys according to this run's figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compound.advisor import advise
from compound.benchmark.claims import fmt, primary_vm
from compound.benchmark.figures import CONTAINER, Report
from compound.errors import CompoundError
from compound.spec.model import Project


def _cost(report: Report, fid: str, vm: str) -> str | None:
    f = report.figure(fid)
    if f is None or f.skipped:
        return None
    ct, v, r = f.summary(CONTAINER), f.summary(vm), f.ratio(vm)
    if ct is None or v is None or r is None:
        return None
    return f"{f.title} {fmt(v.median, f.unit)} vs {fmt(ct.median, f.unit)} ({fmt(r.median, 'x')})"


def in_light(report: Report, runtime: str) -> str:
    """One sentence: the measured price of a VM on this host, and what it buys."""
    vm = primary_vm(report)
    if vm is None:
        return "no VM was measured"
    costs = [
        c
        for fid in ("startup.entrypoint", "memory.pss", "network.c2t.latency_p50")
        if (c := _cost(report, fid, vm))
    ]
    iso = report.isolation.get("vm", {}).get("kernel")
    buys = f"its own kernel ({iso})" if iso else "its own kernel"
    if not costs:
        return f"as a VM it gets {buys}; no cost figure was measured"
    measured = "; ".join(costs)
    if runtime == "vm":
        return f"as a VM ({vm}) it pays, measured here: {measured}; in return it gets {buys}"
    return f"kept a container, it saves what a VM ({vm}) costs here: {measured}"


def advise_in_light(report: Report, load: Callable[[], Project] | None) -> dict[str, Any]:
    """``load`` reads the user's project (the CLI's global -f/-p apply);
    without one, or without a Compose file, the section says so."""
    if load is None:
        return {"skipped": "no project to advise on"}
    try:
        project = load()
    except CompoundError as exc:
        return {"skipped": f"no Compose project here ({exc.message.splitlines()[0]})"}
    services = []
    # exactly what `compound advise` prints (it is registered without host facts)
    for a in advise(project, None):
        services.append(
            {
                "service": a.service,
                "declared": a.declared_runtime,
                "runtime": str(a.runtime),  # what the advisor recommends
                "effective": str(a.effective_runtime),  # what `up` runs (declared wins)
                "confidence": round(a.confidence, 2),
                "why": [f.why for f in a.factors][:4],
                "in_light": in_light(report, str(a.effective_runtime)),
            }
        )
    return {"project": project.name, "services": services}
