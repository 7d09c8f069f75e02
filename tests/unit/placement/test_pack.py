"""Placement scenarios: each hard rule, the objective, and the reasons."""

from __future__ import annotations

import json

import pytest

from compound.placement import lower_bound, pack
from compound.placement.demand import Constraint
from compound.placement.pack import STRATEGIES
from tests.unit.placement.helpers import GiB, dem, host, hosts, where

BOTH = pytest.mark.parametrize("strategy", STRATEGIES)


@BOTH
def test_fewest_hosts_when_everything_fits_on_one(strategy):
    p = pack([dem("a", 1, 2), dem("b", 1, 2)], hosts(3), strategy=strategy)
    assert p.hosts_used == 1 and p.lower_bound.hosts == 1 and not p.unplaced


@BOTH
def test_replicas_spread_one_per_host_when_hosts_suffice(strategy):
    p = pack([dem("web", 3, 1)], hosts(5), strategy=strategy)
    assert len(set(where(p, "web"))) == 3
    assert p.lower_bound.by == "spread" and p.lower_bound.hosts == 3


def test_replicas_share_hosts_only_as_much_as_needed():
    p = pack([dem("web", 5, 0.5)], hosts(2))
    counts = sorted(where(p, "web").count(h) for h in ("h0", "h1"))
    assert counts == [2, 3]  # ceil(5 / 2) = 3 at most per host


def test_max_replicas_per_node_is_a_hard_cap_with_a_reason():
    p = pack([dem("web", 5, 0.5, max_per_host=2)], hosts(2))
    assert p.placed == 4
    (u,) = p.unplaced
    assert u.numbers == (5,) and "spread: at most 2 replica(s) per host" in u.reason


@BOTH
def test_capacity_is_never_exceeded(strategy):
    p = pack([dem("big", 4, 5)], hosts(3), strategy=strategy)  # 8-CPU hosts: one 5-CPU each
    assert p.placed == 3 and all(c <= 8000 for c in p.cpu_used)
    assert "no room" in p.unplaced[0].reason


def test_an_instance_larger_than_every_host():
    p = pack([dem("huge", 1, 64, 512 * GiB)], hosts(2))
    assert p.placed == 0
    assert p.unplaced[0].reason.startswith("each instance needs 64 CPUs and 512.0 GiB")


@BOTH
def test_containers_of_different_tenants_never_share_a_host(strategy):
    ds = [dem("a", 2, 1, tenant="acme"), dem("b", 2, 1, tenant="globex"), dem("c", 2, 1)]
    p = pack(ds, hosts(6), strategy=strategy)
    on = {}
    for svc in "abc":
        for h in where(p, svc):
            on.setdefault(h, set()).add(svc)
    assert all(len(s) == 1 for s in on.values())  # one tenant's containers per host


def test_vms_of_other_tenants_may_share_a_host():
    ds = [dem("a", 1, 1, tenant="acme"), dem("b", 1, 1, tenant="globex", runtime="vm")]
    p = pack(ds, hosts(1))
    assert p.placed == 2 and p.hosts_used == 1


def test_tenant_separation_reason():
    ds = [dem("a", 1, 1, tenant="acme"), dem("b", 1, 1, tenant="globex")]
    p = pack(ds, hosts(1))
    (u,) = p.unplaced
    assert "another tenant's containers" in u.reason


def test_dedicated_hosts_take_only_their_tenant():
    inv = [host("shared", cpus=2), host("acme-only", tenant="acme")]
    p = pack([dem("x", 2, 1.5, runtime="vm"), dem("a", 1, 1, tenant="acme")], inv)
    assert where(p, "x") == ["shared"]  # the second one may not use acme's host
    assert [u.key for u in p.unplaced] == ["p/x"]
    assert where(p, "a") == ["acme-only"]


def test_windows_containers_only_on_windows_hosts_and_windows_vms_on_kvm():
    inv = [host("lin", kvm=False), host("lin-kvm", kvm=True), host("win", os="windows", kvm=False)]
    ds = [
        dem("wc", 1, 1, os="windows"),
        dem("wv", 1, 1, os="windows", runtime="vm"),
        dem("l", 1, 1),
    ]
    p = pack(ds, inv)
    assert where(p, "wc") == ["win"]
    assert where(p, "wv") == ["lin-kvm"]
    assert where(p, "l") != ["win"]


def test_no_eligible_host_names_the_missing_requirement():
    p = pack(
        [
            dem("w", 1, 1, os="windows"),
            dem("v", 1, 1, runtime="vm"),
            dem("t", 1, 1, required_class="bare-metal"),
            dem("z", 1, 1, constraints=(Constraint("node.labels.zone", "==", "z9"),)),
        ],
        [host("a", host_class="virtual", kvm=False)],
    )
    reasons = {p.demands[i].service: r for i, r in enumerate(u.reason for u in p.unplaced)}
    assert reasons == {
        "w": "no host has os: windows (for windows containers)",
        "v": "no host has os: linux and kvm: true (for VMs): host(s) a have no KVM that "
        "boots (`compound host ls` shows why); set x-compound.vm.accel: tcg to accept TCG "
        "there (slow), or add a host with KVM",
        "t": "no host has class: bare-metal (latency-critical, as advised)",
        "z": "no host has 'node.labels.zone == z9'",
    }


def test_requirements_that_only_clash_together():
    inv = [host("a", labels={"zone": "a"}, host_class="virtual"), host("b", labels={"zone": "b"})]
    c = (Constraint("node.labels.zone", "==", "a"),)
    p = pack([dem("t", 1, 1, required_class="bare-metal", constraints=c)], inv)
    assert p.unplaced[0].reason.startswith("no host has all of: os: linux")


def test_latency_critical_work_only_on_bare_metal():
    inv = [host("v1", host_class="virtual"), host("b1")]
    p = pack([dem("t", 1, 1, required_class="bare-metal")], inv)
    assert where(p, "t") == ["b1"]


def test_label_constraints():
    inv = [host("a", labels={"zone": "a"}), host("b", labels={"zone": "b"}), host("c")]
    eq = (Constraint("node.labels.zone", "==", "b"),)
    ne = (Constraint("node.labels.zone", "!=", "a"), Constraint("node.hostname", "!=", "c"))
    p = pack([dem("x", 1, 1, constraints=eq), dem("y", 1, 1, constraints=ne)], inv)
    assert where(p, "x") == ["b"] and where(p, "y") == ["b"]


def test_spread_preference_evens_out_over_label_values():
    inv = [host(f"{z}{i}", labels={"zone": z}) for z in "ab" for i in range(4)]
    p = pack([dem("web", 4, 1, spread="zone")], inv)
    zones = sorted(n[0] for n in where(p, "web"))
    assert zones == ["a", "a", "b", "b"]


def test_spread_preference_is_soft():
    inv = [host("a0", labels={"zone": "a"}), host("b0", cpus=1, labels={"zone": "b"})]
    p = pack([dem("web", 4, 1, spread="zone", max_per_host=4)], inv)
    assert sorted(where(p, "web")) == ["a0", "a0", "a0", "b0"]  # b0 holds one, a0 the rest


def test_global_services_run_on_every_used_host():
    ds = [dem("app", 2, 1), dem("agent", 0, 0.1, 64 * 1024**2, global_=True)]
    p = pack(ds, hosts(4))
    assert sorted(where(p, "agent")) == sorted(set(where(p, "app")))


def test_global_services_alone_use_every_eligible_host():
    p = pack([dem("agent", 0, 0.1, global_=True)], hosts(3))
    assert p.placed == 3


def test_global_service_that_does_not_fit_on_a_used_host_is_reported():
    inv = [host("small", cpus=1), host("big")]
    ds = [
        dem("app", 2, 0.2),
        dem("agent", 0, 0.75, global_=True),
        dem("logs", 0, 0.5, global_=True),  # no room left on small after the agent
    ]
    p = pack(ds, inv)
    assert sorted(where(p, "app")) == ["big", "small"]
    (u,) = p.unplaced
    assert (u.key, u.hosts, u.count) == ("p/logs", ("small",), 1)
    assert "global service" in u.reason


def test_zero_replicas_and_no_demands():
    assert pack([dem("x", 0)], hosts(1)).hosts_used == 0
    empty = pack([], hosts(2))
    assert (empty.hosts_used, empty.lower_bound.hosts, empty.gap()) == (0, 0, 0.0)


def test_balanced_strategy_evens_out_utilisation():
    ds = [dem(f"s{i}", 4, 1) for i in range(12)]  # 48 CPUs over 8-CPU hosts: 6 hosts
    p = pack(ds, hosts(10))
    assert p.hosts_used == 6
    b = p.balance()
    assert b["max"] - b["min"] < 0.01


def test_first_fit_baseline_fills_in_input_order():
    p = pack([dem("a", 1, 6), dem("b", 1, 6), dem("c", 1, 2)], hosts(3), strategy="first-fit")
    assert (where(p, "a"), where(p, "b"), where(p, "c")) == (["h0"], ["h1"], ["h0"])


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        pack([], [], strategy="magic")


def test_lower_bound_by_resources_and_for_mixed_sizes():
    inv = [host("big", 32, 64 * GiB), host("s1", 8), host("s2", 8)]
    lb = lower_bound([(40, 1000, GiB, 40, None)], inv)  # 40 CPUs: the big one and one small
    assert (lb.hosts, lb.by, lb.cpus) == (2, "cpus", 2)
    lb = lower_bound([(1, 1000, 200 * GiB, 1, None)], inv)
    assert lb.exceeds_inventory and lb.by == "memory"


def test_lower_bound_adds_up_the_spread_of_each_tenants_containers():
    placed = [(3, 100, GiB, 1, "acme"), (2, 100, GiB, 1, ""), (4, 100, GiB, 1, None)]
    lb = lower_bound(placed, hosts(10))
    assert (lb.hosts, lb.by, lb.spread, lb.tenants) == (5, "tenants", 4, 5)


def test_json_report_schema():
    p = pack([dem("web", 2, 1), dem("huge", 1, 100)], hosts(2))
    data = json.loads(json.dumps(p.to_json()))
    assert list(data) == [
        "version",
        "strategy",
        "seconds",
        "summary",
        "hosts",
        "placements",
        "unplaced",
    ]
    assert data["summary"]["placed"] == 2 and data["summary"]["unplaced"] == 1
    assert {r["instance"] for r in data["placements"]} == {"p-web-1", "p-web-2"}
    assert data["unplaced"][0]["instances"] == ["p-huge-1"]
    assert set(data["hosts"][0]) >= {"name", "cpu_pct", "mem_pct", "instances", "tenant"}
    assert (
        "placements" in p.to_json(instances=False) and not p.to_json(instances=False)["placements"]
    )
