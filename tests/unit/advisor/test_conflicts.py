"""Every conflict documented in compound.advisor.rules, resolved as documented."""

from __future__ import annotations

from compound.advisor import HostFacts, advise
from tests.unit.advisor.helpers import fired, one, proj, svc


def test_windows_versus_host_namespace_is_a_tie_resolved_to_container():
    a = one(svc("x", hints={"os": "windows"}, network_mode="host"))
    assert {"windows-guest", "host-namespace"} <= fired(a)
    assert (a.runtime, a.tie, a.runtime_score) == ("container", True, 0)


def test_isolation_beats_all_agility_factors_together():
    p = proj(
        svc(
            "a",
            replicas=4,
            healthcheck=True,
            volumes=("data",),
            binds=("/srv/a",),
            hints={"tenant": "acme", "density": True},
        ),
        svc("b", hints={"tenant": "globex"}),
    )
    a = advise(p, services=["a"])[0]
    assert {"replicas", "density", "healthcheck", "stateful-volumes", "host-binds"} <= fired(a)
    assert a.runtime == "vm" and a.runtime_score == 8 - 7


def test_isolation_beats_latency_but_the_host_stays_bare_metal():
    a = one(svc("x", hints={"trust": "untrusted", "latency": "critical"}))
    assert (a.runtime, a.host_class) == ("vm", "bare-metal")


def test_privileged_host_agent_is_a_container():
    a = one(svc("agent", privileged=True, network_mode="host"))
    assert {"privileged", "host-namespace"} <= fired(a)
    assert a.runtime == "container" and a.runtime_score == 3 - 10


def test_trusted_privileged_workload_stays_a_container():
    a = one(svc("x", privileged=True, cap_add=("SYS_ADMIN",), hints={"trust": "trusted"}))
    assert not {"privileged", "sys-admin"} & fired(a)
    assert a.runtime == "container"


def test_legacy_beats_replicas():
    a = one(svc("x", replicas=3, hints={"legacy": True}))
    assert a.runtime == "vm" and a.runtime_score == 4 - 2


def test_missing_kvm_does_not_override_legacy_or_isolation():
    no_kvm = HostFacts(kvm_usable=False)
    assert one(svc("x", hints={"legacy": True}), no_kvm).runtime == "vm"
    assert one(svc("y", hints={"trust": "untrusted"}), no_kvm).runtime == "vm"


def test_licensing_versus_automation_is_a_host_tie():
    # cpus 10 x1: 31% of a box, so neither capacity rule fires; no reservation either
    a = one(svc("x", hints={"licensing": True, "automation": True}).model_copy(update={"cpus": 10}))
    assert {"licensing", "automation"} <= fired(a)
    assert (a.host_class, a.host_tie, a.host_score) == ("either", True, 0)


def test_latency_beats_disaster_recovery_of_a_small_app():
    a = one(svc("x", hints={"latency": "critical", "disaster_recovery": True}))
    assert {"capacity-small", "disaster-recovery", "latency-bare-metal"} <= fired(a)
    assert a.host_class == "bare-metal" and a.host_score == 3 + 2 - 8


def test_latency_against_disaster_recovery_and_automation_is_a_tie():
    hints = {"latency": "critical", "disaster_recovery": True, "automation": True}
    a = one(svc("x", hints=hints))
    assert (a.host_class, a.host_tie) == ("either", True)
