"""The check `up` runs before starting on one host, and multi-application plans."""

from __future__ import annotations

import pytest

from compound.errors import UsageError
from compound.placement import capacity_warnings, host_from_facts, host_shortfall, place
from tests.unit.advisor.helpers import GiB, proj, svc
from tests.unit.placement.helpers import host


def test_nothing_to_warn_about_when_reservations_fit():
    p = proj(svc("web", runtime="container", replicas=3, cpus=1, memory=GiB))
    assert capacity_warnings(p, host_from_facts("local", 4, 8 * GiB)) == []


def test_warns_with_totals_and_the_instances_that_do_not_fit():
    p = proj(svc("web", runtime="container", replicas=6, cpus=1, memory=GiB))
    warnings = capacity_warnings(p, host_from_facts("local", 4, 8 * GiB))
    assert warnings[0] == "reservations need 6 CPUs and 6.0 GiB; host local has 4 CPUs and 8.0 GiB"
    assert warnings[1].startswith("demo-web-5, demo-web-6 would not fit: no room")


def test_one_host_ignores_constraints_spread_tenants_and_missing_kvm():
    p = proj(
        svc("a", runtime="container", replicas=3, constraints=("node.labels.zone == x",)),
        svc("b", runtime="vm", hints={"tenant": "other"}),
        svc("c", runtime="container", hints={"tenant": "mine", "latency": "critical"}),
    )
    local = host_from_facts("local", 8, 16 * GiB, kvm=False, host_is_vm=True)
    packing = host_shortfall(p, local)
    assert not packing.unplaced and packing.placed == 5


def test_place_plans_several_applications_and_refuses_duplicate_names():
    shop = proj(svc("web", runtime="container", replicas=2), name="shop")
    crm = proj(svc("web", runtime="container", replicas=2), name="crm")
    packing = place([shop, crm], [host("a"), host("b")])
    names = {
        packing.demands[i].instance_name(n)
        for i, a in enumerate(packing.assignment)
        for n, _ in enumerate(a, 1)
    }
    assert names == {"shop-web-1", "shop-web-2", "crm-web-1", "crm-web-2"}
    with pytest.raises(UsageError, match="both named 'shop'"):
        place([shop, shop], [host("a")])
