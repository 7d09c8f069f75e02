"""Properties of every packing, whatever the input: the hard rules hold and
every instance is placed or reported with a reason."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compound.placement import Host, ServiceDemand, pack
from compound.placement.demand import Constraint
from compound.placement.pack import STRATEGIES, capacity_millicpus, eligible, millicpus

GiB = 1024**3
MiB = 1024**2

labels = st.fixed_dictionaries({}, optional={"zone": st.sampled_from(["a", "b", "c"])})


@st.composite
def inventories(draw) -> list[Host]:
    n = draw(st.integers(1, 10))
    return [
        Host(
            name=f"h{i}",
            cpus=draw(st.sampled_from([1, 2, 4, 8, 1.5])),
            memory=draw(st.sampled_from([1, 2, 4, 8])) * GiB,
            host_class=draw(st.sampled_from(["bare-metal", "virtual"])),
            os=draw(st.sampled_from(["linux", "linux", "linux", "windows"])),
            kvm=draw(st.booleans()),
            labels=draw(labels),
            tenant=draw(st.sampled_from([None, None, None, "acme"])),
        )
        for i in range(n)
    ]


constraints = st.lists(
    st.sampled_from(
        [
            Constraint("node.labels.zone", "==", "a"),
            Constraint("node.labels.zone", "!=", "b"),
            Constraint("node.hostname", "!=", "h0"),
            Constraint("node.platform.os", "==", "linux"),
        ]
    ),
    max_size=2,
    unique=True,
).map(tuple)


@st.composite
def demand_lists(draw) -> list[ServiceDemand]:
    n = draw(st.integers(1, 8))
    out = []
    for i in range(n):
        is_global = draw(st.integers(0, 9)) == 0
        out.append(
            ServiceDemand(
                project="p",
                service=f"s{i}",
                replicas=0 if is_global else draw(st.integers(0, 9)),
                cpus=draw(st.sampled_from([0.1, 0.25, 0.5, 1, 2, 3])),
                memory=draw(st.sampled_from([64, 256, 512, 1024, 3000])) * MiB,
                runtime=draw(st.sampled_from(["container", "container", "vm"])),
                os=draw(st.sampled_from(["linux", "linux", "linux", "windows"])),
                tenant=draw(st.sampled_from([None, None, "acme", "globex"])),
                required_class=draw(st.sampled_from([None, None, "bare-metal"])),
                constraints=draw(constraints),
                spread=draw(st.sampled_from([None, None, "zone"])),
                max_per_host=draw(st.sampled_from([None, None, 1, 2])),
                global_=is_global,
            )
        )
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts=inventories(), demands=demand_lists(), strategy=st.sampled_from(STRATEGIES))
def test_hard_rules_always_hold(hosts, demands, strategy):
    p = pack(demands, hosts, strategy=strategy)
    cpu = [0] * len(hosts)
    mem = [0] * len(hosts)
    container_tenants: dict[int, set[str]] = {}
    for i, d in enumerate(demands):
        placed = p.assignment[i]
        elig = [h for h, host in enumerate(hosts) if eligible(d, host)]
        for h in placed:
            assert eligible(d, hosts[h]), (d, hosts[h])  # OS, KVM, class, tenant, constraints
            cpu[h] += millicpus(d.cpus)
            mem[h] += d.memory
            if d.runtime == "container":
                container_tenants.setdefault(h, set()).add(d.tenant or "")
        per_host = Counter(placed)
        if d.global_:
            assert max(per_host.values(), default=0) <= 1
        else:
            cap = d.max_per_host or math.ceil(d.replicas / max(1, len(elig)))
            assert max(per_host.values(), default=0) <= max(cap, 1)  # spread / anti-affinity
    # capacity, and the packing's own accounting agrees with ours
    for h, host in enumerate(hosts):
        assert cpu[h] <= capacity_millicpus(host.cpus) and mem[h] <= host.memory
        assert (cpu[h], mem[h]) == (p.cpu_used[h], p.mem_used[h])
    # tenants that must not share a kernel never share a host's containers
    assert all(len(t) == 1 for t in container_tenants.values())
    # every instance is placed or reported unplaced, with a reason
    unplaced = {u.key: u for u in p.unplaced}
    used = set(p.used_hosts)
    for i, d in enumerate(demands):
        u = unplaced.get(d.key)
        if u is not None:
            assert u.reason and u.count > 0
        if d.global_:
            missing = set(u.hosts) if u else set()
            holders = {hosts[h].name for h in p.assignment[i]}
            for h in used:
                if eligible(d, hosts[h]):
                    assert hosts[h].name in holders | missing
        else:
            numbers = u.numbers if u else ()
            assert len(p.assignment[i]) + len(numbers) == d.replicas
            assert numbers == tuple(range(len(p.assignment[i]) + 1, d.replicas + 1))
    if not p.unplaced:
        assert p.lower_bound.hosts <= p.hosts_used


@settings(max_examples=150, deadline=None)
@given(hosts=inventories(), demands=demand_lists())
def test_packing_is_deterministic(hosts, demands):
    a = pack(demands, hosts)
    b = pack(demands, hosts)
    assert a.assignment == b.assignment and a.unplaced == b.unplaced


@settings(max_examples=150, deadline=None)
@given(
    n_hosts=st.integers(1, 12),
    sizes=st.lists(
        st.tuples(st.integers(1, 6), st.sampled_from([0.25, 0.5, 1])), min_size=1, max_size=6
    ),
)
def test_unconstrained_work_that_fits_is_all_placed(n_hosts, sizes):
    # 8-CPU hosts; replicas never exceed the host count, total under half the capacity
    hosts = [Host(f"h{i}", 8, 64 * GiB) for i in range(n_hosts)]
    demands = [
        ServiceDemand("p", f"s{i}", min(r, n_hosts), c, 256 * MiB, "container")
        for i, (r, c) in enumerate(sizes)
    ]
    if sum(d.replicas * d.cpus for d in demands) > 4 * n_hosts:
        return
    p = pack(demands, hosts)
    assert not p.unplaced
    assert p.lower_bound.hosts <= p.hosts_used
