"""Placement benchmark: a seeded synthetic fleet through compound's packer.

    python bench/placement.py [--instances 1000000 --services 2000 --hosts 10000] [--seed 7]

Builds real Compose models (``Project``/``Service``) in applications of 100
services, derives demand through the advisor exactly as ``compound plan``
does, then packs them twice on the same input: compound's first-fit
decreasing + balance, and a naive first-fit baseline (input order, inventory
order). Prints throughput, hosts used, lower bound, gap, and writes JSON and
Markdown to ``bench/results/placement-<date>-<hostname>.{json,md}``.

The workload (all seeded):

* hosts: 64 CPUs / 256 GiB each; 30% bare-metal (KVM), 70% virtual (half with
  nested KVM); labels zone=a|b|c and ssd=true on 25%; 2% Windows hosts;
  3% bare-metal hosts dedicated to tenant ``bank``.
* services: replicas 100-900 scaled to the exact instance count; 0.1-2 CPUs
  and 1-8 GiB per CPU; 8% pinned to a zone, 3% excluded from one, 6% need
  ssd, 5% spread over zones, 3% latency-critical (bare metal only), 8%
  declared vm, 3 multi-tenant applications whose services are
  ``runtime: auto`` with tenant hints (the advisor makes them VMs), one
  application of tenant ``bank`` in containers, and 6 Windows services (3 as
  VMs, 3 as Windows containers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from compound.placement.demand import ServiceDemand, service_demands
from compound.placement.inventory import Host
from compound.placement.pack import Packing, eligible, millicpus, pack
from compound.spec.model import (
    Deploy,
    DeployResources,
    Placement,
    Project,
    Resources,
    Service,
    XCompound,
)

GiB = 1024**3
MiB = 1024**2
APP_SIZE = 100


def make_hosts(n: int, rng: random.Random) -> list[Host]:
    hosts = []
    for i in range(n):
        r = rng.random()
        labels = {"zone": rng.choice("abc")}
        if rng.random() < 0.25:
            labels["ssd"] = "true"
        if r < 0.02:
            hosts.append(Host(f"win-{i:05d}", 64, 256 * GiB, "virtual", "windows", False, labels))
        elif r < 0.05:
            hosts.append(
                Host(f"bank-{i:05d}", 64, 256 * GiB, "bare-metal", "linux", True, labels, "bank")
            )
        elif r < 0.32:
            hosts.append(Host(f"bm-{i:05d}", 64, 256 * GiB, "bare-metal", "linux", True, labels))
        else:
            kvm = rng.random() < 0.5
            hosts.append(Host(f"vm-{i:05d}", 64, 256 * GiB, "virtual", "linux", kvm, labels))
    return hosts


def _kinds(services: int) -> list[tuple[int, int, str]]:
    """(application, index in it, kind) per service; kinds: plain, tenant, bank, win-vm, win-ct."""
    apps = math.ceil(services / APP_SIZE)
    tenant_apps = {1, 5, 9} if apps > 9 else {1} if apps > 1 else set()
    bank_app = 3 if apps > 3 else None
    out = []
    windows = 0
    for k in range(services):
        a, j = divmod(k, APP_SIZE)
        kind = "tenant" if a in tenant_apps else "bank" if a == bank_app else "plain"
        if kind == "plain" and j % 17 == 16 and windows < 6:
            kind = "win-vm" if windows < 3 else "win-ct"
            windows += 1
        out.append((a, j, kind))
    return out


# Replicas per kind at most: a tenant with few hosts, a few Windows instances.
CAPS = {"bank": 90, "win-vm": 120, "win-ct": 12}


def _replicas(kinds: list[str], instances: int, rng: random.Random) -> list[int]:
    """100-900 per service, capped per kind, scaled so the total is exact."""
    raw = [rng.randint(100, 900) for _ in kinds]
    fixed = {
        i: min(r, CAPS[k]) for i, (r, k) in enumerate(zip(raw, kinds, strict=True)) if k in CAPS
    }
    free = [i for i in range(len(kinds)) if i not in fixed]
    left = instances - sum(fixed.values())
    total = sum(raw[i] for i in free) or 1
    out = [fixed.get(i, 0) for i in range(len(kinds))]
    for i in free:
        out[i] = max(1, raw[i] * left // total)
    i = 0
    while free and sum(out) != instances:  # exact total, one replica at a time
        j = free[i % len(free)]
        if sum(out) < instances:
            out[j] += 1
        elif out[j] > 1:
            out[j] -= 1
        i += 1
    return out


def make_projects(services: int, instances: int, rng: random.Random) -> list[Project]:
    kinds = _kinds(services)
    replicas = _replicas([k for _, _, k in kinds], instances, rng)
    apps: dict[int, dict[str, Service]] = {}
    for (a, j, kind), r in zip(kinds, replicas, strict=True):
        name = f"s{j:03d}"
        cpus = rng.choices([0.1, 0.25, 0.5, 1.0, 2.0], [20, 30, 30, 15, 5])[0] * 0.85
        mem = int(cpus * rng.choices([1, 2, 4, 8], [20, 35, 35, 10])[0] * GiB) // MiB * MiB
        constraints: list[str] = []
        preferences: list[dict[str, str]] = []
        hints: dict[str, Any] = {}
        runtime = "container"
        u = rng.random()
        if u < 0.08:
            constraints.append(f"node.labels.zone == {rng.choice('abc')}")
        elif u < 0.11:
            constraints.append(f"node.labels.zone != {rng.choice('abc')}")
        elif u < 0.17:
            constraints.append("node.labels.ssd == true")
        elif u < 0.22:
            preferences.append({"spread": "node.labels.zone"})
        v = rng.random()
        if v < 0.03:
            hints["latency"] = "critical"
        elif v < 0.11:
            runtime = "vm"
        if kind == "tenant":  # the advisor turns these into VMs: tenants differ
            runtime = "auto"
            hints["tenant"] = f"t{a}-{j % 2}"
        elif kind == "bank":  # one tenant's containers: its own kernels, dedicated hosts
            hints = {"tenant": "bank"}
            runtime = "container"
        elif kind.startswith("win"):
            hints = {"os": "windows"}
            runtime = "auto" if kind == "win-vm" else "container"
            constraints, preferences = [], []
        apps.setdefault(a, {})[name] = Service(
            name=name,
            image=f"app{a}/{name}:1",
            deploy=Deploy(
                replicas=r,
                resources=DeployResources(reservations=Resources(cpus=cpus, memory=mem)),
                placement=Placement(constraints=tuple(constraints), preferences=tuple(preferences)),
            ),
            x_compound=XCompound(runtime=runtime, hints=hints),  # type: ignore[arg-type]
        )
    return [
        Project(name=f"app{a:02d}", working_dir="/", files=(), services=svcs)
        for a, svcs in apps.items()
    ]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "arch": platform.machine(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "git_commit": commit or None,
        "load_average": [round(x, 2) for x in os.getloadavg()],  # other work slows timings
    }


def summary(p: Packing, name: str) -> dict[str, Any]:
    return {
        "strategy": name,
        "seconds": round(p.seconds, 2),
        "placed": p.placed,
        "unplaced": p.unplaced_count,
        "placements_per_second": round(p.placed / p.seconds) if p.seconds else None,
        "hosts_used": p.hosts_used,
        "lower_bound": p.lower_bound.hosts,
        "lower_bound_by": p.lower_bound.by,
        "gap_pct": round(p.gap() * 100, 2),
        "utilisation": p.balance(),
        "unplaced_reasons": sorted({u.reason for u in p.unplaced})[:10],
    }


def check(p: Packing, demands: list[ServiceDemand]) -> list[str]:
    """The hard rules, verified independently of the packer's own bookkeeping."""
    problems = []
    hosts = p.hosts
    cpu = [0] * len(hosts)
    mem = [0] * len(hosts)
    tenants: dict[int, set[str]] = {}
    eligible_count: dict[tuple[object, ...], int] = {}
    for d, where in zip(demands, p.assignment, strict=True):
        key = (d.os, d.runtime, d.required_class, d.tenant, d.constraints)
        if key not in eligible_count:
            eligible_count[key] = sum(1 for h in hosts if eligible(d, h))
        cap = d.max_per_host or math.ceil(d.replicas / max(1, eligible_count[key]))
        counts: dict[int, int] = {}
        for h in where:
            counts[h] = counts.get(h, 0) + 1
            cpu[h] += millicpus(d.cpus)
            mem[h] += d.memory
            if d.runtime == "container":
                tenants.setdefault(h, set()).add(d.tenant or "")
        if counts and max(counts.values()) > (1 if d.global_ else cap):
            problems.append(f"{d.key}: more than {cap} replica(s) on one host")
        if any(not eligible(d, hosts[h]) for h in counts):
            problems.append(f"{d.key}: placed on an ineligible host")
        placed = len(where)
        unplaced = sum(u.count for u in p.unplaced if u.key == d.key)
        if not d.global_ and placed + unplaced != d.replicas:
            problems.append(f"{d.key}: {placed} placed + {unplaced} unplaced != {d.replicas}")
    for i, h in enumerate(hosts):
        if cpu[i] > h.cpus * 1000 or mem[i] > h.memory:
            problems.append(f"{h.name} over capacity")
    problems += [f"{hosts[h].name} mixes tenants {t}" for h, t in tenants.items() if len(t) > 1]
    return problems[:20]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instances", type=int, default=1_000_000)
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    hosts = make_hosts(args.hosts, rng)
    projects = make_projects(args.services, args.instances, rng)
    t0 = time.perf_counter()
    demands = [d for p in projects for d in service_demands(p)]
    t_demand = time.perf_counter() - t0
    total = sum(d.replicas for d in demands)
    print(f"workload: {total:,} instances of {len(demands):,} services onto {len(hosts):,} hosts")
    print(f"demand (advisor + reservations + VM overhead): {t_demand:.2f} s")

    results: dict[str, Any] = {}
    ffd = pack(demands, hosts)
    results["compound"] = summary(ffd, "compound: host selection + worst fit")
    problems = check(ffd, demands)
    if not args.no_baseline:
        ff = pack(demands, hosts, strategy="first-fit")
        results["baseline"] = summary(ff, "baseline: naive first fit")
        problems += check(ff, demands)

    for r in results.values():
        print(
            f"{r['strategy']}: {r['seconds']:.2f} s, {r['placements_per_second']:,} placements/s, "
            f"{r['placed']:,} placed, {r['unplaced']:,} unplaced, hosts used {r['hosts_used']:,} "
            f"vs lower bound {r['lower_bound']:,} ({r['lower_bound_by']}): gap {r['gap_pct']}%, "
            f"utilisation {r['utilisation']}"
        )
    target_time = ffd.seconds <= 60
    target_gap = ffd.gap() <= 0.05
    print(
        f"targets: time <= 60 s {'met' if target_time else 'MISSED'}, "
        f"gap <= 5% {'met' if target_gap else 'MISSED'}; hard-rule check: "
        f"{problems or 'ok'}"
    )

    info = machine()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%S")
    base = Path(args.out) / f"placement-{stamp}_{info['hostname']}"
    base.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "placement",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "workload": {
            "instances": total,
            "services": len(demands),
            "hosts": len(hosts),
            "seed": args.seed,
            "vm_instances": sum(d.replicas for d in demands if d.runtime == "vm"),
            "latency_critical_instances": sum(d.replicas for d in demands if d.latency_critical),
            "windows_instances": sum(d.replicas for d in demands if d.os == "windows"),
            "constrained_services": sum(1 for d in demands if d.constraints),
            "spread_services": sum(1 for d in demands if d.spread),
            "tenant_services": sum(1 for d in demands if d.tenant),
        },
        "demand_seconds": round(t_demand, 2),
        "results": results,
        "targets": {"seconds": 60, "gap_pct": 5, "time_met": target_time, "gap_met": target_gap},
        "hard_rule_problems": problems,
    }
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        f"# Placement benchmark, {doc['date']}",
        "",
        f"Machine: {info['hostname']}, {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']} ({info['implementation']}), {info['platform']}, "
        f"commit {info['git_commit']}, load average {info['load_average']}",
        "",
        f"Workload: {total:,} instances of {len(demands):,} services onto {len(hosts):,} hosts "
        f"(seed {args.seed}); {doc['workload']['vm_instances']:,} VM instances, "
        f"{doc['workload']['latency_critical_instances']:,} latency-critical, "
        f"{doc['workload']['windows_instances']:,} Windows, "
        f"{doc['workload']['constrained_services']} constrained and "
        f"{doc['workload']['spread_services']} spread services, "
        f"{doc['workload']['tenant_services']} tenant services.",
        "",
        "| strategy | seconds | placements/s | placed | unplaced | hosts used | lower bound "
        "| gap | utilisation min / p5 / mean / max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results.values():
        u = r["utilisation"]
        lines.append(
            f"| {r['strategy']} | {r['seconds']:.2f} | {r['placements_per_second']:,} | "
            f"{r['placed']:,} | {r['unplaced']:,} | {r['hosts_used']:,} | {r['lower_bound']:,} | "
            f"{r['gap_pct']}% | {u['min']:.0%} / {u['p5']:.0%} / {u['mean']:.0%} / "
            f"{u['max']:.0%} |"
        )
    lines += [
        "",
        f"Demand derivation (advisor for every service): {t_demand:.2f} s, not included above.",
        f"Targets: <= 60 s: {'met' if target_time else 'missed'}; "
        f"within 5% of the lower bound: {'met' if target_gap else 'missed'}.",
        f"Hard rules re-checked after packing: {problems or 'no violation'}.",
        "",
    ]
    base.with_suffix(".md").write_text("\n".join(lines))
    print(f"wrote {base}.json and {base}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
