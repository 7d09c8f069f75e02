"""Decisions: scenarios written from the design's descriptions, ties,
confidence, counterfactuals and the JSON schema."""

from __future__ import annotations

import json

import pytest

from compound.advisor import HostFacts, advise, decide
from compound.advisor.evidence import project_evidence
from compound.advisor.hints import project_hints
from compound.errors import UsageError
from tests.unit.advisor.helpers import GiB, advice_for, fired, one, proj, svc

# --- scenarios from the descriptions -------------------------------------------


def test_trading_system_runs_in_a_container_on_bare_metal():
    a = one(svc("matching-engine", hints={"latency": "critical"}))
    assert (a.runtime, a.host_class) == ("container", "bare-metal")
    assert {"latency-no-hypervisor", "latency-bare-metal"} <= fired(a)


def test_new_microservice_with_replicas_is_a_container():
    a = one(svc("api", replicas=6, healthcheck=True, hints={"density": True}))
    assert a.runtime == "container"
    assert {"replicas", "density", "healthcheck"} <= fired(a)


def test_legacy_monolith_needing_systemd_is_a_vm():
    assert one(svc("erp", hints={"legacy": True})).runtime == "vm"


def test_service_needing_a_specific_kernel_is_a_vm():
    a = one(svc("storage", hints={"kernel": {"version": "5.10", "modules": ["zfs"]}}))
    assert a.runtime == "vm"
    assert "kernel 5.10 and modules zfs" in a.factors[0].why


def test_kernel_tuning_sysctls_need_a_vm_but_namespaced_ones_do_not():
    assert one(svc("es", sysctls={"vm.max_map_count": "262144"})).runtime == "vm"
    ok = one(svc("web", sysctls={"net.core.somaxconn": "1024", "kernel.shmmax": "1"}))
    assert "kernel-sysctls" not in fired(ok)


def test_net_sysctls_with_host_network_are_host_wide():
    a = one(svc("lb", network_mode="host", sysctls={"net.ipv4.ip_forward": "1"}))
    assert "kernel-sysctls" in fired(a)


def test_windows_workload_on_a_linux_host_is_a_vm():
    a = one(svc("dotnet", platform="windows/amd64"))
    assert a.runtime == "vm" and a.confidence > 0.8
    assert "(platform)" in a.factors[0].why


def test_windows_workload_on_a_windows_host_can_be_a_container():
    a = one(svc("dotnet", hints={"os": "windows"}), HostFacts(os="windows"))
    assert "windows-guest" not in fired(a)


def test_tenants_that_must_not_share_a_kernel_get_vms():
    p = proj(svc("a", hints={"tenant": "acme"}), svc("b", hints={"tenant": "globex"}), svc("c"))
    a, b, c = advise(p)
    assert (a.runtime, b.runtime) == ("vm", "vm")
    assert "globex" in a.factors[0].why
    assert c.runtime == "container"  # no tenant hint: no tenancy requirement


def test_one_tenant_everywhere_needs_no_vm_boundary():
    p = proj(svc("a", hints={"tenant": "acme"}), svc("b", hints={"tenant": "acme"}))
    assert [x.runtime for x in advise(p)] == ["container", "container"]


def test_becomes_vm_if_tenant_differs_from_its_neighbours():
    a = one(svc("a", hints={"tenant": "acme"}))
    assert "runtime becomes vm if its tenant differs from its neighbours'" in a.would_change


def test_untrusted_code_is_a_vm():
    assert one(svc("plugin", hints={"trust": "untrusted"})).runtime == "vm"


def test_privileged_workload_is_confined_in_a_vm_unless_trusted():
    assert one(svc("p", privileged=True)).runtime == "vm"
    trusted = one(svc("p", privileged=True, hints={"trust": "trusted"}))
    assert trusted.runtime == "container" and "privileged" not in fired(trusted)


def test_host_agent_is_a_container():
    a = one(svc("node-exporter", pid="host", binds=("/proc", "/sys")))
    assert a.runtime == "container" and a.confidence > 0.9


def test_device_access_favours_a_container_on_bare_metal():
    a = one(svc("gpu", devices=("/dev/nvidia0",)))
    assert (a.runtime, a.host_class) == ("container", "bare-metal")


def test_small_application_goes_on_a_vm_host():
    assert one(svc("blog", cpus=0.5, memory=GiB)).host_class == "virtual"


def test_application_filling_a_box_goes_on_bare_metal():
    a = one(svc("analytics", replicas=2, cpus=16, memory=64 * GiB))
    assert a.host_class == "bare-metal" and "capacity-full" in fired(a)


def test_the_box_is_the_host_when_doctor_knows_it_is_physical():
    host = HostFacts(host_is_vm=False, cpus=4, memory=8 * GiB)
    assert "capacity-full" in fired(one(svc("x", cpus=2, memory=GiB), host))


def test_mixed_windows_and_linux_share_hardware_on_a_vm_host():
    p = proj(svc("web"), svc("legacy-win", hints={"os": "windows"}))
    assert all("mixed-os" in fired(a) for a in advise(p))


def test_disaster_recovery_and_automation_prefer_virtual_hosts():
    a = one(svc("crm", hints={"disaster_recovery": True, "automation": True}))
    assert a.host_class == "virtual" and a.host_confidence > 0.75


def test_hypervisor_licences_to_avoid_mean_bare_metal():
    assert one(svc("db", replicas=1, hints={"licensing": True})).host_class == "bare-metal"


def test_containers_inside_a_vm_for_isolation_with_agility():
    a = one(svc("saas", replicas=8, hints={"tenant": "acme", "trust": "untrusted"}))
    assert a.host_class == "virtual" and "containers-in-vm" in fired(a)


def test_no_kvm_makes_vms_slow_so_containers_win_ties():
    a = one(svc("x", privileged=True), HostFacts(kvm_usable=False))
    assert a.runtime == "container"  # privileged (3) vs kvm-unavailable (3): a tie
    assert a.tie


def test_nested_virtualisation_is_a_small_cost():
    a = one(svc("x"), HostFacts(kvm_usable=True, host_is_vm=True))
    assert "nested-virt" in fired(a) and a.runtime == "container"


# --- ties and defaults ---------------------------------------------------------


def test_no_factor_means_container_either_and_no_tie():
    a = advice_for(proj(svc("x", cpus=8, memory=40 * GiB)), "x")  # 25%..50% of a box
    assert a.factors[0].rule == "resource-pools"  # host only
    assert (a.runtime, a.tie, a.confidence) == ("container", False, 0.5)


def test_runtime_tie_resolves_to_container_and_says_so():
    a = one(svc("x", hints={"os": "windows"}, network_mode="host"))
    assert a.runtime_score == 0 and a.tie and a.runtime == "container"
    assert a.confidence == 0.5


def test_host_tie_is_either_and_says_so():
    a = one(svc("x", cpus=8, memory=40 * GiB, hints={"licensing": True, "automation": True}))
    assert a.host_score == 1  # licensing 3 vs automation 3 + resource-pools 1
    b = one(svc("y", cpus=0.5, memory=GiB, hints={"licensing": True}))
    assert b.host_score == 0 and b.host_class == "either" and b.host_tie  # 3 vs 2 + 1


# --- confidence, counterfactuals, determinism ----------------------------------


def test_confidence_formula():
    a = one(svc("u", hints={"trust": "untrusted"}))  # 8 vs 0
    assert a.confidence == round(0.5 + 0.5 * 8 / (8 + 2), 2)
    b = one(svc("c", replicas=2, hints={"legacy": True}))  # 4 vs 2
    assert b.confidence == round(0.5 + 0.5 * 2 / (6 + 2), 2)


def test_would_change_lists_the_reasons_first_then_strongest_additions():
    a = one(svc("erp", replicas=1, hints={"legacy": True}))
    runtime = [w for w in a.would_change if w.startswith("runtime")]
    assert runtime[0] == "runtime becomes container if it did not need a full OS"
    assert len(runtime) <= 3


def test_would_change_is_only_what_alone_flips_the_decision():
    a = one(svc("u", hints={"trust": "untrusted", "tenant": "acme"}), HostFacts(kvm_usable=True))
    # 8 for vm; removing untrusted alone leaves vm? no: tenant has no neighbour, so it flips
    assert "runtime becomes container if it were trusted" in a.would_change
    b = one(svc("u", replicas=3, hints={"trust": "untrusted", "legacy": True}))
    assert not any(w.startswith("runtime") for w in b.would_change if "trusted" in w)


def test_capacity_counterfactuals_are_consistent():
    from compound.advisor.decide import _would_change
    from compound.advisor.rules import RULES

    a = one(svc("s"))  # small: capacity-small fires; capacity-full cannot fire with it
    changes = [t for _, t in _would_change(RULES, fired(a), "host", a.host_score, "virtual")]
    # firing capacity-full silences capacity-small: 2 - 2 - 2 < 0, not a tie
    assert "host class becomes bare-metal if it needed at least 50% of a physical box" in changes


def test_decisions_are_deterministic_and_independent_of_other_services_order():
    s = [svc("a", hints={"tenant": "x"}), svc("b", hints={"tenant": "y"}), svc("c", replicas=3)]
    first = {a.service: a for a in advise(proj(*s))}
    second = {a.service: a for a in advise(proj(*reversed(s)))}
    assert first == second


def test_decide_is_pure_over_evidence():
    p = proj(svc("a", hints={"latency": "critical"}))
    ev = project_evidence(p, project_hints(p))["a"]
    assert decide(ev) == decide(ev)


def test_effective_runtime_follows_the_file_unless_auto():
    assert one(svc("x", runtime="vm")).effective_runtime == "vm"
    assert one(svc("x", runtime="container", hints={"legacy": True})).effective_runtime == (
        "container"
    )
    assert one(svc("x", runtime="auto", hints={"legacy": True})).effective_runtime == "vm"


def test_only_requested_services_are_advised_but_all_are_validated():
    p = proj(svc("a"), svc("b"))
    assert [a.service for a in advise(p, services=["b"])] == ["b"]
    with pytest.raises(UsageError) as info:
        advise(p, services=["c"])
    assert "no such service: c" in info.value.message


def test_json_schema_is_stable():
    a = one(svc("x", replicas=2))
    data = json.loads(json.dumps(a.to_json()))
    assert list(data) == [
        "service",
        "declared_runtime",
        "runtime",
        "effective_runtime",
        "confidence",
        "tie",
        "runtime_score",
        "host_class",
        "host_confidence",
        "host_tie",
        "host_score",
        "factors",
        "would_change",
    ]
    assert list(data["factors"][0]) == ["rule", "factor", "axis", "toward", "weight", "why"]
