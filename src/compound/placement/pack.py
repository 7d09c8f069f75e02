"""Packing instances onto hosts: fewest hosts, balanced within them.

Hard rules (never broken; tests/unit/placement/test_properties.py checks them
on random inputs, bench/placement.py re-checks them at full size):

* **capacity**: the cpus and memory of a host's instances never exceed it
  (reservations, plus the VM overhead for vm instances, see ``demand``).
* **spread (anti-affinity)**: a host holds at most ``max_replicas_per_node``
  replicas of a service when the file sets it, otherwise
  ``ceil(replicas / eligible hosts)``: one per host whenever there are enough
  hosts, and never a placement refused only because there are few.
* **tenants**: all *containers* on a host belong to one tenant (no tenant
  hint counts as a tenant of its own, ""), because they share its kernel. VMs
  have their own kernel, so VMs of any tenant may share a host. A host with a
  ``tenant`` in the inventory takes only that tenant's instances (it may still
  stay unused: dedication is a permission, not an obligation). A global
  container service claims every host it runs on for its tenant: give node
  agents the tenant of the hosts' workloads, or run them as VMs.
* **OS and runtime**: Linux containers on Linux hosts; Windows containers only
  on Windows hosts; VMs (Windows guests included) on Linux hosts with
  ``kvm: true``, or any Linux host when the VM's file accepts TCG
  (``x-compound.vm.accel: tcg``; ``vm_needs_kvm=False`` for the single-host
  check, where TCG is slow but works).
* **constraints**: every ``node.labels`` / ``node.hostname`` /
  ``node.platform.os`` constraint, and the advised host class for
  latency-critical work.

Soft: the advised host class orders which hosts are opened first; a
``spread`` preference spreads replicas evenly over a label's values among the
chosen hosts first, then anywhere.

Algorithm (``strategy="balanced"``), built for 10^6 instances in pure Python:

1. *Groups and signatures.* A service's replicas are identical: one group.
   Groups with the same static requirements share a signature, whose eligible
   hosts are computed once, ordered best-to-open-first: dedicated to its
   tenant, then least *pressure* (demand of all signatures that may use a
   host, per eligible host: hosts others depend on are opened last), then the
   advised class, then largest.
2. *Choose the hosts (fluid).* Signatures are taken most constrained first
   (fewest eligible hosts). Each one's total demand is treated as divisible and
   poured into already chosen hosts, then into newly opened ones, up to
   ``fill`` of their capacity; it also opens enough hosts for its spread
   (``replicas / cap``, per label value for a spread preference), and the
   tenant whose containers a host will run is decided here.
3. *Worst fit.* Groups, most constrained first and largest first, go one
   replica per host onto the least-loaded eligible chosen hosts (dominant
   utilisation), which spreads load evenly and leaves room for small groups.
4. *Overflow.* Whatever still does not fit opens new hosts, best first. If
   that was needed, steps 2-4 are retried with a looser ``fill`` (1.0, 0.98,
   0.95) and the packing with the fewest unplaced instances, then fewest
   hosts, is kept.

Why not first-fit decreasing: with one replica per host, late small groups
with hundreds of replicas need hundreds of hosts with room; FFD has filled the
early hosts to the brim, so they open a tail of nearly empty hosts, and generic
work eats scarce (ssd, KVM, bare-metal) hosts before constrained work arrives.
On the 10^6-instance benchmark FFD used 35% more hosts than the lower bound;
this algorithm uses about 3% more.

``strategy="first-fit"`` is the naive baseline the benchmark compares with:
services in input order, each instance on the first host in inventory order
that takes it.

The lower bound reported beside the hosts used is documented at
:func:`lower_bound`: resources (largest hosts first), spread, and tenants.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from compound.placement.demand import ServiceDemand
from compound.placement.inventory import Host

MILLI = 1000  # cpus are packed as integer millicpus: exact and fast


def millicpus(cpus: float) -> int:
    """A demand in millicpus, rounded up (after dropping float noise: 0.085 CPU
    is 85, not 86)."""
    return max(1, math.ceil(round(cpus * MILLI, 6)))


def capacity_millicpus(cpus: float) -> int:
    return round(cpus * MILLI)


@dataclass(frozen=True)
class Unplaced:
    """Instances of one service that found no host, and why."""

    key: str
    numbers: tuple[int, ...]  # replica numbers (1-based) left unplaced
    reason: str
    hosts: tuple[str, ...] = ()  # global services: the used hosts it could not join

    @property
    def count(self) -> int:
        return len(self.numbers) + len(self.hosts)


@dataclass(frozen=True)
class LowerBound:
    hosts: int
    by: str  # cpus | memory | spread | tenants
    cpus: int
    memory: int
    spread: int
    tenants: int
    exceeds_inventory: bool = False


@dataclass
class Packing:
    """Where every instance went, what did not fit, and how good that is."""

    hosts: Sequence[Host]
    demands: Sequence[ServiceDemand]
    assignment: list[list[int]]  # per demand: host index of replica 1, 2, ...
    unplaced: list[Unplaced]
    cpu_used: list[int]  # millicpus per host
    mem_used: list[int]  # bytes per host
    lower_bound: LowerBound
    strategy: str
    seconds: float
    kernel_tenant: list[str | None] = field(default_factory=list)  # tenant of a host's containers

    @property
    def used_hosts(self) -> list[int]:
        return [i for i in range(len(self.hosts)) if self.cpu_used[i] or self.mem_used[i]]

    @property
    def hosts_used(self) -> int:
        return len(self.used_hosts)

    @property
    def placed(self) -> int:
        return sum(len(a) for a in self.assignment)

    @property
    def unplaced_count(self) -> int:
        return sum(u.count for u in self.unplaced)

    def utilisation(self, host: int) -> tuple[float, float]:
        h = self.hosts[host]
        return (
            self.cpu_used[host] / (h.cpus * MILLI),
            self.mem_used[host] / h.memory,
        )

    def gap(self) -> float:
        """Hosts used above the lower bound, as a fraction of the bound."""
        lb = self.lower_bound.hosts
        return (self.hosts_used - lb) / lb if lb else 0.0

    def balance(self) -> dict[str, float]:
        """Spread of the dominant utilisation (max of cpu%, mem%) over used hosts:
        min, 5th percentile, mean, max and standard deviation."""
        loads = sorted(max(self.utilisation(i)) for i in self.used_hosts)
        if not loads:
            return {"min": 0.0, "p5": 0.0, "mean": 0.0, "max": 0.0, "stdev": 0.0}
        mean = sum(loads) / len(loads)
        var = sum((x - mean) ** 2 for x in loads) / len(loads)
        return {
            "min": round(loads[0], 4),
            "p5": round(loads[len(loads) // 20], 4),
            "mean": round(mean, 4),
            "max": round(max(loads), 4),
            "stdev": round(math.sqrt(var), 4),
        }

    def instances_on(self) -> list[list[tuple[int, int]]]:
        """Per host: (demand index, replica number) of the instances on it."""
        out: list[list[tuple[int, int]]] = [[] for _ in self.hosts]
        for d, hosts in enumerate(self.assignment):
            for n, h in enumerate(hosts, 1):
                out[h].append((d, n))
        return out

    def to_json(self, *, instances: bool = True) -> dict[str, object]:
        """Stable schema, version 1::

        {"version": 1, "strategy", "balanced", "seconds",
         "summary": {"instances", "placed", "unplaced", "hosts", "hosts_used",
                     "lower_bound", "lower_bound_by", "gap", "balance": {...}},
         "hosts": [{"name", "class", "os", "cpus", "memory", "cpus_used",
                    "memory_used", "cpu_pct", "mem_pct", "tenant", "instances": [...]}],
         "placements": [{"instance", "service", "project", "host", "runtime"}],
         "unplaced": [{"service", "project", "instances", "hosts", "count", "reason"}]}
        """
        per_host = self.instances_on()
        host_rows: list[dict[str, object]] = []
        for i in self.used_hosts:
            host = self.hosts[i]
            cpu, mem = self.utilisation(i)
            row: dict[str, object] = {
                "name": host.name,
                "class": host.host_class,
                "os": host.os,
                "cpus": host.cpus,
                "memory": host.memory,
                "cpus_used": self.cpu_used[i] / MILLI,
                "memory_used": self.mem_used[i],
                "cpu_pct": round(cpu * 100, 1),
                "mem_pct": round(mem * 100, 1),
                "tenant": self.kernel_tenant[i] if self.kernel_tenant else None,
                "instance_count": len(per_host[i]),
            }
            if instances:
                row["instances"] = [self.demands[d].instance_name(n) for d, n in per_host[i]]
            host_rows.append(row)
        placements: list[dict[str, object]] = []
        if instances:
            for d, where in enumerate(self.assignment):
                dem = self.demands[d]
                for n, h in enumerate(where, 1):
                    placements.append(
                        {
                            "instance": dem.instance_name(n),
                            "service": dem.service,
                            "project": dem.project,
                            "host": self.hosts[h].name,
                            "runtime": dem.runtime,
                        }
                    )
        by_key = {d.key: d for d in self.demands}
        unplaced_rows: list[dict[str, object]] = []
        for u in self.unplaced:
            dem = by_key[u.key]
            unplaced_rows.append(
                {
                    "service": dem.service,
                    "project": dem.project,
                    "instances": [dem.instance_name(n) for n in u.numbers],
                    "hosts": list(u.hosts),
                    "count": u.count,
                    "reason": u.reason,
                }
            )
        lb = self.lower_bound
        return {
            "version": 1,
            "strategy": self.strategy,
            "seconds": round(self.seconds, 3),
            "summary": {
                "instances": self.placed + self.unplaced_count,
                "placed": self.placed,
                "unplaced": self.unplaced_count,
                "hosts": len(self.hosts),
                "hosts_used": self.hosts_used,
                "lower_bound": lb.hosts,
                "lower_bound_by": lb.by,
                "lower_bound_exceeds_inventory": lb.exceeds_inventory,
                "gap": round(self.gap(), 4),
                "balance": self.balance(),
            },
            "hosts": host_rows,
            "placements": placements,
            "unplaced": unplaced_rows,
        }


# --- internals ---------------------------------------------------------------


def eligible(d: ServiceDemand, host: Host, vm_needs_kvm: bool = True) -> bool:
    """Static eligibility: everything that does not change while packing."""
    if host.tenant is not None and host.tenant != d.tenant:
        return False
    if d.required_class is not None and host.host_class != d.required_class:
        return False
    if d.runtime == "container":
        if host.os != d.os:
            return False
    elif host.os != "linux" or (vm_needs_kvm and not host.kvm and not d.tcg_ok):
        return False
    return all(c.matches(host) for c in d.constraints)


class _Group:
    """The identical replicas of one service, in packing units."""

    __slots__ = ("c", "cap", "d", "elig", "m", "need", "r", "sid", "spread", "tk")

    def __init__(self, d: int, r: int, c: int, m: int) -> None:
        self.d = d  # index into demands
        self.r = r  # replicas wanted
        self.c = c  # millicpus per replica
        self.m = m  # bytes per replica
        self.need = r  # replicas not placed yet
        self.cap = 1  # replicas per host at most
        self.sid = 0  # signature
        self.tk: str | None = None  # kernel tenant ("" = none) for containers, None for VMs
        self.elig: list[int] = []  # statically eligible hosts, inventory order
        self.spread: list[int] | None = None  # per host: id of its spread-label value


class _Packer:
    """Mutable packing state over integer arrays indexed by host."""

    def __init__(
        self, demands: Sequence[ServiceDemand], hosts: Sequence[Host], vm_needs_kvm: bool
    ) -> None:
        self.demands = demands
        self.hosts = hosts
        self.vm_needs_kvm = vm_needs_kvm
        n = len(hosts)
        self.capc = [capacity_millicpus(h.cpus) for h in hosts]
        self.capm = [h.memory for h in hosts]
        self.fc = list(self.capc)  # free millicpus
        self.fm = list(self.capm)  # free bytes
        self.kt: list[str | None] = [None] * n  # tenant of the host's containers
        self.opened = bytearray(n)
        self.load = [0.0] * n  # dominant utilisation, kept current during worst fit
        self.assignment: list[list[int]] = [[] for _ in demands]
        self.unplaced: list[Unplaced] = []
        self.groups: list[_Group] = []
        self.globals: list[_Group] = []
        self.sig_pool: list[list[int]] = []  # per signature: its hosts, best to open first
        self.host_sigs: list[list[int]] = [[] for _ in hosts]
        self.cands: dict[int, list[int]] = {}  # per signature: its opened hosts
        self.sig_spread: list[list[int] | None] = []  # per signature: label value per host
        self.maxc = max(self.capc, default=1) or 1
        self.maxm = max(self.capm, default=1) or 1
        self._static: dict[tuple[object, ...], list[int]] = {}
        self._build()

    # -- setup --

    def _eligible_hosts(self, d: ServiceDemand) -> list[int]:
        key = (d.os, d.runtime, d.required_class, d.tenant, d.constraints, d.tcg_ok)
        found = self._static.get(key)
        if found is None:
            found = [i for i, h in enumerate(self.hosts) if eligible(d, h, self.vm_needs_kvm)]
            self._static[key] = found
        return found

    def _build(self) -> None:
        """Groups, and signatures: groups with the same requirements share
        eligible hosts and an opening order, computed once."""
        sig_ids: dict[tuple[object, ...], int] = {}
        sig_first: list[ServiceDemand] = []
        sig_elig: list[list[int]] = []
        sig_load: list[float] = []
        for i, d in enumerate(self.demands):
            if d.replicas <= 0 and not d.global_:
                continue
            g = _Group(i, d.replicas, millicpus(d.cpus), max(1, d.memory))
            g.elig = self._eligible_hosts(d)
            g.tk = (d.tenant or "") if d.runtime == "container" else None
            if d.global_:
                g.r = g.need = len(g.elig)
                self.globals.append(g)
                continue
            if d.max_per_host:
                g.cap = d.max_per_host
            else:
                g.cap = max(1, math.ceil(d.replicas / max(1, len(g.elig))))
            if d.spread is not None:
                values: dict[str | None, int] = {}
                g.spread = [
                    values.setdefault(h.labels.get(d.spread), len(values)) for h in self.hosts
                ]
            key = (
                d.os,
                d.runtime,
                d.required_class,
                d.tenant,
                d.constraints,
                d.prefer,
                g.tk,
                d.spread,
                d.tcg_ok,
            )
            sid = sig_ids.setdefault(key, len(sig_ids))
            if sid == len(sig_first):
                self.sig_spread.append(g.spread)
                sig_first.append(d)
                sig_elig.append(g.elig)
                sig_load.append(0.0)
                for h in g.elig:
                    self.host_sigs[h].append(sid)
            sig_load[sid] += g.r * max(g.c / self.maxc, g.m / self.maxm)
            g.sid = sid
            self.groups.append(g)
        # Pressure on a host: the demand that may use it per eligible host,
        # summed over signatures. Hosts others depend on are opened last.
        pressure = [0.0] * len(self.hosts)
        for load, elig in zip(sig_load, sig_elig, strict=True):
            share = load / max(1, len(elig))
            for h in elig:
                pressure[h] += share
        self.sig_pool = [
            self._pool(elig, d, pressure) for elig, d in zip(sig_elig, sig_first, strict=True)
        ]

    def _pool(self, elig: list[int], d: ServiceDemand, pressure: list[float]) -> list[int]:
        """A signature's hosts, best to open first: dedicated to its tenant,
        least wanted by others, the advised class, largest, inventory order."""
        hosts, capc, capm, maxc, maxm = self.hosts, self.capc, self.capm, self.maxc, self.maxm

        def rank(h: int) -> tuple[bool, float, bool, float, int]:
            host = hosts[h]
            return (
                host.tenant is None or d.tenant is None,
                round(pressure[h], 2),
                d.prefer != "either" and host.host_class != d.prefer,
                -(capc[h] / maxc + capm[h] / maxm),
                h,
            )

        return sorted(elig, key=rank)

    # -- global services --

    def reserve_globals(self) -> None:
        """A global service runs on every used host: reserve it everywhere now,
        release it on hosts left unused at the end."""
        fc, fm, kt = self.fc, self.fm, self.kt
        for g in self.globals:
            for h in g.elig:
                if fc[h] >= g.c and fm[h] >= g.m and (g.tk is None or kt[h] in (None, g.tk)):
                    fc[h] -= g.c
                    fm[h] -= g.m
                    if g.tk is not None:
                        kt[h] = g.tk
                    self.assignment[g.d].append(h)

    def settle_globals(self) -> None:
        if self.globals and not any(self.opened):
            for g in self.globals:  # nothing else to run: the global services define the hosts
                for h in self.assignment[g.d]:
                    self.opened[h] = 1
        for g in self.globals:
            kept: list[int] = []
            placed = set(self.assignment[g.d])
            for h in self.assignment[g.d]:
                if self.opened[h]:
                    kept.append(h)
                else:
                    self.fc[h] += g.c
                    self.fm[h] += g.m
            self.assignment[g.d] = kept
            missing = tuple(
                self.hosts[h].name for h in g.elig if self.opened[h] and h not in placed
            )
            if missing:
                self.unplaced.append(
                    Unplaced(
                        self.demands[g.d].key,
                        (),
                        "global service: no room, or another tenant's containers, on "
                        f"{len(missing)} used host(s)",
                        missing,
                    )
                )
        for h in range(len(self.hosts)):
            if not self.opened[h]:
                self.kt[h] = None  # claims by reservations on hosts left unused

    # -- phase 1: choose the hosts --

    def select(self, fill: float) -> None:
        """Fluid: treat each signature's demand as divisible and open just
        enough hosts to hold it at ``fill`` of their capacity, most
        constrained signatures first so scarce hosts go to those that need
        them. Also opens enough hosts for each signature's spread
        (replicas / cap), and decides which tenant's containers each host runs."""
        n_sig = len(self.sig_pool)
        dc = [0.0] * n_sig
        dm = [0.0] * n_sig
        breadth = [0] * n_sig
        tks: list[str | None] = [None] * n_sig
        for g in self.groups:
            dc[g.sid] += g.r * g.c
            dm[g.sid] += g.r * g.m
            breadth[g.sid] = max(breadth[g.sid], math.ceil(g.r / g.cap))
            tks[g.sid] = g.tk
        slack = 1.0 - fill
        rc = [self.fc[h] - slack * self.capc[h] for h in range(len(self.hosts))]
        rm = [self.fm[h] - slack * self.capm[h] for h in range(len(self.hosts))]
        chosen, kt = self.opened, self.kt
        maxc, maxm = self.maxc, self.maxm
        order = sorted(
            range(n_sig),
            key=lambda s: (len(self.sig_pool[s]), -(dc[s] / maxc + dm[s] / maxm), s),
        )
        for s in order:
            big_c, big_m, tk = dc[s], dm[s], tks[s]
            if big_c <= 0 or not self.sig_pool[s]:
                continue
            # Spread: hosts needed per label value (an even share of the
            # breadth), else just `breadth` hosts whatever their labels.
            sv = self.sig_spread[s]
            want: dict[int, int] = {}
            if sv is not None:
                per_value = Counter(sv[h] for h in self.sig_pool[s])
                share = math.ceil(breadth[s] / len(per_value))
                want = {v: min(share, n) for v, n in per_value.items()}
            short = len(want) if sv is not None else breadth[s]  # hosts/values still missing
            left = 1.0  # the fraction of this signature's demand still without a host
            for opening in (False, True):  # hosts already chosen first, then new ones
                for h in self.sig_pool[s]:
                    if left <= 1e-12 and short <= 0:
                        break
                    if bool(chosen[h]) == opening:
                        continue
                    t = kt[h]
                    if tk is not None and t is not None and t != tk:
                        continue
                    a = min(left, rc[h] / big_c, rm[h] / big_m)
                    helps = want.get(sv[h], 0) > 0 if sv is not None else short > 0
                    if a <= 0 and not helps:
                        continue  # neither room nor needed for spread
                    if opening:
                        chosen[h] = 1
                    if sv is not None:
                        if want.get(sv[h], 0) > 0:
                            want[sv[h]] -= 1
                            short -= want[sv[h]] == 0
                    else:
                        short -= 1
                    if a > 0:
                        left -= a
                        rc[h] -= a * big_c
                        rm[h] -= a * big_m
                    if tk is not None:
                        kt[h] = tk  # counted for this tenant's containers: keep it theirs

    # -- phase 2: worst fit over them --

    def constrained_order(self) -> list[_Group]:
        """Fewest eligible hosts first (the least choice), then largest first."""
        maxc, maxm = self.maxc, self.maxm
        return sorted(
            self.groups,
            key=lambda g: (len(g.elig), g.sid, -max(g.c / maxc, g.m / maxm), g.d),
        )

    def place_worst_fit(self, order: list[_Group]) -> None:
        fc, fm, kt, capc, capm = self.fc, self.fm, self.kt, self.capc, self.capm
        opened, load = self.opened, self.load
        for h in range(len(self.hosts)):
            if opened[h]:
                load[h] = max(1 - fc[h] / capc[h], 1 - fm[h] / capm[h])
        for g in order:
            lst = self.cands.get(g.sid)
            if lst is None:
                tk = g.tk
                lst = [
                    h
                    for h in self.sig_pool[g.sid]
                    if opened[h] and (tk is None or kt[h] is None or kt[h] == tk)
                ]
                self.cands[g.sid] = lst
            lst.sort(key=load.__getitem__)  # least loaded first (stable: ties keep pool order)
            if g.cap == 1 and g.spread is None:
                self._worst_fit_one(g, lst)
            else:
                self._worst_fit_general(g, lst)

    def _worst_fit_one(self, g: _Group, lst: list[int]) -> None:
        """The hot loop: one replica per host."""
        fc, fm, kt, capc, capm, load = self.fc, self.fm, self.kt, self.capc, self.capm, self.load
        c, m, tk = g.c, g.m, g.tk
        out = self.assignment[g.d]
        need = g.need
        for h in lst:
            if not need:
                break
            a = fc[h]
            b = fm[h]
            if a < c or b < m:
                continue
            if tk is not None:
                t = kt[h]
                if t is not None and t != tk:
                    continue
                kt[h] = tk
            a -= c
            b -= m
            fc[h] = a
            fm[h] = b
            x = 1 - a / capc[h]
            y = 1 - b / capm[h]
            load[h] = x if x > y else y
            out.append(h)
            need -= 1
        g.need = need

    def _worst_fit_general(self, g: _Group, lst: list[int]) -> None:
        """Several replicas per host and/or a spread preference (two passes:
        at most an even share per label value first, then anywhere)."""
        fc, fm, kt, capc, capm, load = self.fc, self.fm, self.kt, self.capc, self.capm, self.load
        c, m, tk, cap, spread = g.c, g.m, g.tk, g.cap, g.spread
        out = self.assignment[g.d]
        taken: Counter[int] = Counter(out)
        quota = 0
        counts: list[int] = []
        if spread is not None:
            quota = max(1, math.ceil(g.r / max(1, len({spread[h] for h in g.elig}))))
            counts = [0] * (max(spread, default=0) + 1)
            for h in out:
                counts[spread[h]] += 1
        for even in (True, False) if spread is not None else (False,):
            for h in lst:
                if not g.need:
                    return
                a = fc[h]
                b = fm[h]
                if a < c or b < m:
                    continue
                t = kt[h]
                if tk is not None and t is not None and t != tk:
                    continue
                k = min(cap - taken[h], g.need, a // c, b // m)
                if even and spread is not None:
                    k = min(k, quota - counts[spread[h]])
                if k <= 0:
                    continue
                if spread is not None:
                    counts[spread[h]] += k
                taken[h] += k
                fc[h] = a - k * c
                fm[h] = b - k * m
                if tk is not None:
                    kt[h] = tk
                load[h] = max(1 - fc[h] / capc[h], 1 - fm[h] / capm[h])
                out.extend([h] * k)
                g.need -= k

    def overflow(self, order: list[_Group]) -> None:
        """What worst fit could not place opens new hosts, best first."""
        fc, fm, kt, opened = self.fc, self.fm, self.kt, self.opened
        for g in order:
            if not g.need:
                continue
            lst = self.cands.setdefault(g.sid, [])
            lst.sort(key=self.load.__getitem__)
            self._worst_fit_general(g, lst)  # hosts other groups opened since
            taken: Counter[int] = Counter(self.assignment[g.d])
            c, m, tk = g.c, g.m, g.tk
            for h in self.sig_pool[g.sid]:
                if not g.need:
                    break
                a = fc[h]
                b = fm[h]
                if opened[h] or a < c or b < m:
                    continue
                if tk is not None and kt[h] is not None and kt[h] != tk:
                    continue
                opened[h] = 1
                for s in self.host_sigs[h]:
                    if s in self.cands:
                        self.cands[s].append(h)
                k = min(g.cap - taken[h], g.need, a // c, b // m)
                fc[h] = a - k * c
                fm[h] = b - k * m
                if tk is not None:
                    kt[h] = tk
                self.load[h] = max(1 - fc[h] / self.capc[h], 1 - fm[h] / self.capm[h])
                self.assignment[g.d].extend([h] * k)
                taken[h] += k
                g.need -= k

    def release_unused(self) -> None:
        """Hosts chosen in phase 1 that stayed empty are not used after all."""
        used = bytearray(len(self.hosts))
        for g in self.groups:
            for h in self.assignment[g.d]:
                used[h] = 1
        for h in range(len(self.hosts)):
            if self.opened[h] and not used[h]:
                self.opened[h] = 0
                self.kt[h] = None

    # -- naive first fit, the baseline --

    def run_first_fit(self) -> None:
        """Each instance in input order onto the first host (inventory order)
        that takes it. A service's replicas resume where the previous one
        stopped, which is exactly per-instance first fit: every host skipped
        before had no room or already held its share of the service."""
        fc, fm, kt, opened = self.fc, self.fm, self.kt, self.opened
        for g in self.groups:
            c, m, tk, cap = g.c, g.m, g.tk, g.cap
            out = self.assignment[g.d]
            for h in g.elig:
                if not g.need:
                    break
                a = fc[h]
                b = fm[h]
                if a < c or b < m:
                    continue
                if tk is not None and kt[h] is not None and kt[h] != tk:
                    continue
                k = min(cap, g.need, a // c, b // m)
                fc[h] = a - k * c
                fm[h] = b - k * m
                if tk is not None:
                    kt[h] = tk
                opened[h] = 1
                out.extend([h] * k)
                g.need -= k

    # -- why something did not fit --

    def explain(self, g: _Group) -> str:
        if not g.elig:
            return self._no_eligible(self.demands[g.d])
        big_c = max(self.capc[h] for h in g.elig)
        big_m = max(self.capm[h] for h in g.elig)
        if not any(self.capc[h] >= g.c and self.capm[h] >= g.m for h in g.elig):
            return (
                f"each instance needs {_cpus(g.c)} CPUs and {_mem(g.m)}; the largest eligible "
                f"host has {_cpus(big_c)} CPUs and {_mem(big_m)}"
            )
        if g.cap * len(g.elig) < g.r:
            return (
                f"spread: at most {g.cap} replica(s) per host on {len(g.elig)} eligible host(s) "
                f"leaves room for {g.cap * len(g.elig)} of {g.r}"
            )
        note = ""
        if g.tk is not None:
            other = sum(1 for h in g.elig if self.kt[h] not in (None, g.tk))
            if other:
                note = (
                    f"; {other} of them run another tenant's containers, and containers of "
                    f"{'tenant ' + g.tk if g.tk else 'no tenant'} must not share their kernel"
                )
        free_c = sum(self.fc[h] for h in g.elig)
        free_m = sum(self.fm[h] for h in g.elig)
        return (
            f"no room: {len(g.elig)} eligible host(s) have {_cpus(free_c)} CPUs and "
            f"{_mem(free_m)} free in all, but none of those without a replica yet has "
            f"{_cpus(g.c)} CPUs and {_mem(g.m)} for one more{note}"
        )

    def _no_eligible(self, d: ServiceDemand) -> str:
        """Name the requirement no host meets, or say they only clash together."""
        kvm = self.vm_needs_kvm and not d.tcg_ok
        reqs: list[tuple[str, Callable[[Host], bool]]] = []
        if d.runtime == "container":
            reqs.append((f"os: {d.os} (for {d.os} containers)", lambda h: h.os == d.os))
        else:
            reqs.append(
                (
                    "os: linux" + (" and kvm: true (for VMs)" if kvm else " (for VMs)"),
                    lambda h: h.os == "linux" and (h.kvm or not kvm),
                )
            )
        if d.required_class is not None:
            cls = d.required_class
            reqs.append(
                (f"class: {cls} (latency-critical, as advised)", lambda h: h.host_class == cls)
            )
        reqs.append(
            (
                f"no tenant or tenant: {d.tenant}" if d.tenant else "no dedicated tenant",
                lambda h: h.tenant is None or h.tenant == d.tenant,
            )
        )
        for c in d.constraints:
            reqs.append((f"'{c}'", c.matches))
        for text, ok in reqs:
            if not any(ok(h) for h in self.hosts):
                if d.runtime == "vm" and kvm and text.startswith("os: linux"):
                    return self._no_kvm(text)
                return f"no host has {text}"
        return "no host has all of: " + ", ".join(text for text, _ in reqs)

    def _no_kvm(self, text: str) -> str:
        """A VM asked of hosts without virtualization: name them."""
        linux = [h.name for h in self.hosts if h.os == "linux"]
        shown = ", ".join(linux[:8]) + (f" (+{len(linux) - 8} more)" if len(linux) > 8 else "")
        return (
            f"no host has {text}: host(s) {shown} have no KVM that boots "
            "(`compound host ls` shows why); set x-compound.vm.accel: tcg to accept "
            "TCG there (slow), or add a host with KVM"
        )

    def finish(self, order: Sequence[_Group]) -> None:
        for g in order:
            placed = len(self.assignment[g.d])
            if placed < g.r:
                self.unplaced.append(
                    Unplaced(
                        self.demands[g.d].key,
                        tuple(range(placed + 1, g.r + 1)),
                        self.explain(g),
                    )
                )

    def result(self, strategy: str, seconds: float) -> Packing:
        n = len(self.hosts)
        placed = [(len(self.assignment[g.d]), g.c, g.m, g.cap, g.tk) for g in self.groups]
        placed += [(len(self.assignment[g.d]), g.c, g.m, 1, g.tk) for g in self.globals]
        return Packing(
            hosts=self.hosts,
            demands=self.demands,
            assignment=self.assignment,
            unplaced=self.unplaced,
            cpu_used=[self.capc[h] - self.fc[h] for h in range(n)],
            mem_used=[self.capm[h] - self.fm[h] for h in range(n)],
            lower_bound=lower_bound(placed, self.hosts),
            strategy=strategy,
            seconds=seconds,
            kernel_tenant=list(self.kt),
        )


def _cpus(milli: int) -> str:
    return f"{milli / MILLI:g}"


def _mem(size: int) -> str:
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


def _cover(total: int, capacities: list[int]) -> tuple[int, bool]:
    """Fewest hosts whose capacities (largest first) reach ``total``."""
    if total <= 0:
        return 0, False
    acc = 0
    for i, cap in enumerate(sorted(capacities, reverse=True), 1):
        acc += cap
        if acc >= total:
            return i, False
    return len(capacities), True


def lower_bound(
    placed: Sequence[tuple[int, int, int, int, str | None]], hosts: Sequence[Host]
) -> LowerBound:
    """``placed``: per service (instances, millicpus each, bytes each, per-host
    cap, kernel tenant of its containers or None for VMs). Each part is a true
    bound; the largest is reported:

    * cpus, memory: the fewest hosts whose capacities, largest first, cover the demand;
    * spread: the most hosts one service needs, ``ceil(instances / cap)``;
    * tenants: containers of different tenants never share a host, so the
      spread needs of each tenant's containers add up.
    """
    total_c = sum(n * c for n, c, _, _, _ in placed)
    total_m = sum(n * m for n, _, m, _, _ in placed)
    by_c, over_c = _cover(total_c, [capacity_millicpus(h.cpus) for h in hosts])
    by_m, over_m = _cover(total_m, [h.memory for h in hosts])
    by_s = max((math.ceil(n / cap) for n, _, _, cap, _ in placed if n), default=0)
    per_tenant: dict[str, int] = {}
    for n, _, _, cap, tk in placed:
        if n and tk is not None:
            per_tenant[tk] = max(per_tenant.get(tk, 0), math.ceil(n / cap))
    by_t = sum(per_tenant.values())
    best = max(by_c, by_m, by_s, by_t)
    by = next(
        name
        for name, value in (("cpus", by_c), ("memory", by_m), ("spread", by_s), ("tenants", by_t))
        if value == best
    )
    return LowerBound(best, by, by_c, by_m, by_s, by_t, over_c or over_m)


STRATEGIES = ("balanced", "first-fit")
# Host selection plans hosts this full; if worst fit then has to open more
# hosts, the next, looser fill is tried and the best packing kept.
FILLS = (1.0, 0.98, 0.95)


def pack(
    demands: Sequence[ServiceDemand],
    hosts: Sequence[Host],
    *,
    strategy: str = "balanced",
    vm_needs_kvm: bool = True,
) -> Packing:
    """Place every instance of ``demands`` on ``hosts``; see the module docstring.

    ``strategy``: ``balanced`` (choose the hosts, then worst fit; the default)
    or ``first-fit`` (the naive baseline: input order, inventory order).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    t0 = time.perf_counter()
    if strategy == "first-fit":
        packer = _Packer(demands, hosts, vm_needs_kvm)
        packer.reserve_globals()
        packer.run_first_fit()
        packer.settle_globals()
        packer.finish(packer.groups)
        return packer.result(strategy, time.perf_counter() - t0)
    best: tuple[tuple[int, int], _Packer] | None = None
    for fill in FILLS:
        packer = _Packer(demands, hosts, vm_needs_kvm)
        packer.reserve_globals()
        order = packer.constrained_order()
        packer.select(fill)
        chosen = sum(packer.opened)
        packer.place_worst_fit(order)
        clean = not any(g.need for g in order)
        packer.overflow(order)
        packer.release_unused()
        packer.settle_globals()
        packer.finish(order)
        score = (sum(u.count for u in packer.unplaced), sum(packer.opened))
        if best is None or score < best[0]:
            best = (score, packer)
        if clean or sum(packer.opened) <= chosen:
            break  # worst fit needed no host beyond the selection: looser fills cannot beat it
    assert best is not None
    return best[1].result(strategy, time.perf_counter() - t0)
