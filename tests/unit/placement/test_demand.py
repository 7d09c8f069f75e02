from __future__ import annotations

import pytest

from compound.errors import SpecError, SpecErrors
from compound.placement import VM_OVERHEAD_CPUS, VM_OVERHEAD_MEMORY, parse_constraint
from compound.placement.demand import Constraint, service_demands
from compound.placement.inventory import Host
from compound.spec.model import VMOptions, XCompound
from tests.unit.advisor.helpers import GiB, MiB, proj, svc


def by_name(project):
    return {d.service: d for d in service_demands(project)}


def test_container_demand_is_the_reservation_times_nothing_more():
    d = by_name(proj(svc("web", runtime="container", replicas=3, cpus=0.5, memory=GiB)))["web"]
    assert (d.replicas, d.cpus, d.memory, d.runtime) == (3, 0.5, GiB, "container")
    assert d.key == "demo/web" and d.instance_name(2) == "demo-web-2"


def test_vm_demand_adds_the_documented_overhead():
    d = by_name(proj(svc("erp", runtime="vm", cpus=1, memory=2 * GiB)))["erp"]
    assert d.cpus == 1 + VM_OVERHEAD_CPUS
    assert d.memory == 2 * GiB + VM_OVERHEAD_MEMORY


def test_vm_guest_memory_counts_when_larger_than_the_reservation():
    s = svc("erp", runtime="vm", memory=GiB)
    s = s.model_copy(update={"x_compound": XCompound(runtime="vm", vm=VMOptions(memory=4 * GiB))})
    assert by_name(proj(s))["erp"].memory == 4 * GiB + VM_OVERHEAD_MEMORY


def test_auto_runtime_follows_the_advice():
    p = proj(svc("a", hints={"tenant": "x"}), svc("b", hints={"tenant": "y"}), svc("c"))
    got = {n: d.runtime for n, d in by_name(p).items()}
    assert got == {"a": "vm", "b": "vm", "c": "container"}


def test_defaults_apply_without_reservations():
    d = by_name(proj(svc("x", runtime="container")))["x"]
    assert (d.cpus, d.memory) == (0.25, 256 * MiB)


def test_latency_critical_work_requires_the_advised_bare_metal():
    d = by_name(proj(svc("t", hints={"latency": "critical"})))["t"]
    assert d.required_class == "bare-metal" and d.latency_critical
    assert by_name(proj(svc("u")))["u"].required_class is None


def test_placement_options_are_carried():
    s = svc(
        "w",
        constraints=("node.labels.zone == a", "node.hostname != h1"),
        preferences=({"spread": "node.labels.rack"},),
        max_per_node=2,
        mode="global",
    )
    d = by_name(proj(s))["w"]
    assert d.constraints == (
        Constraint("node.labels.zone", "==", "a"),
        Constraint("node.hostname", "!=", "h1"),
    )
    assert (d.spread, d.max_per_host, d.global_) == ("rack", 2, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("node.labels.zone==a", Constraint("node.labels.zone", "==", "a")),
        ("node.labels.ssd != 'true'", Constraint("node.labels.ssd", "!=", "true")),
        ("node.platform.os == windows", Constraint("node.platform.os", "==", "windows")),
    ],
)
def test_constraint_syntax(text, expected):
    assert parse_constraint(text) == expected


def test_constraints_match_hosts():
    h = Host("h1", 1, GiB, labels={"zone": "a"}, os="linux")
    assert Constraint("node.labels.zone", "==", "a").matches(h)
    assert Constraint("node.labels.rack", "!=", "r1").matches(h)  # absent label is not r1
    assert not Constraint("node.hostname", "!=", "h1").matches(h)
    assert Constraint("node.platform.os", "==", "linux").matches(h)


@pytest.mark.parametrize(
    "bad", ["zone=a", "node.role == manager", "node.labels. == x", "engine.labels.x == y"]
)
def test_unsupported_constraints_say_what_is(bad):
    assert isinstance(parse_constraint(bad), str)


def test_bad_constraints_and_preferences_are_spec_errors_with_paths():
    p = proj(
        svc("w", constraints=("node.role == manager",), preferences=({"binpack": "x"},)),
    )
    with pytest.raises(SpecErrors) as info:
        service_demands(p)
    paths = [e.location.path for e in info.value.errors]
    assert paths == [
        "services.w.deploy.placement.constraints[0]",
        "services.w.deploy.placement.preferences[0]",
    ]
    assert "node.labels.<name>" in info.value.errors[0].message


def test_one_bad_constraint_is_one_spec_error():
    with pytest.raises(SpecError):
        service_demands(proj(svc("w", constraints=("garbage",))))
