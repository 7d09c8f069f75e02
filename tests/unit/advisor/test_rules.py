"""The rule table: well formed, every rule reachable, every factor encoded."""

from __future__ import annotations

import pytest

from compound.advisor import RULES, HostFacts, ImageFacts, advise
from compound.advisor.rules import (
    DECISIVE,
    MODERATE,
    PREFERENCE,
    REQUIREMENT,
    SIGNIFICANT,
    STRONG,
)
from compound.spec.model import Healthcheck
from tests.unit.advisor.helpers import GiB, advice_for, fired, proj, svc

LINUX = HostFacts(kvm_usable=True, host_is_vm=False, arch="x86_64")

# rule id → (project, service, host facts, image facts): a scenario where it fires
SCENARIOS = {
    "windows-guest": (proj(svc("w", hints={"os": "windows"})), "w", None, None),
    "host-namespace": (proj(svc("n", network_mode="host")), "n", None, None),
    "vm-disk": (proj(svc("d", image=None, vm_disk="/srv/erp.qcow2")), "d", None, None),
    "multitenant": (
        proj(svc("a", hints={"tenant": "acme"}), svc("b", hints={"tenant": "globex"})),
        "a",
        None,
        None,
    ),
    "untrusted": (proj(svc("u", hints={"trust": "untrusted"})), "u", None, None),
    "legacy-full-os": (proj(svc("l", hints={"legacy": True})), "l", None, None),
    "kernel-specific": (proj(svc("k", hints={"kernel": ["zfs"]})), "k", None, None),
    "kernel-modules": (proj(svc("m", cap_add=("SYS_MODULE",))), "m", None, None),
    "kernel-sysctls": (proj(svc("s", sysctls={"vm.max_map_count": "262144"})), "s", None, None),
    "host-agent": (proj(svc("h", binds=("/var/run/docker.sock",))), "h", None, None),
    "privileged": (proj(svc("p", privileged=True)), "p", None, None),
    "latency-no-hypervisor": (proj(svc("t", hints={"latency": "critical"})), "t", None, None),
    "kvm-unavailable": (proj(svc("x")), "x", HostFacts(kvm_usable=False), None),
    "sys-admin": (proj(svc("a", cap_add=("CAP_SYS_ADMIN",))), "a", None, None),
    "foreign-arch": (proj(svc("f")), "f", LINUX, {"f": ImageFacts(os="linux", arch="arm64")}),
    "replicas": (proj(svc("r", replicas=3)), "r", None, None),
    "density": (proj(svc("d", hints={"density": True})), "d", None, None),
    "devices": (proj(svc("g", devices=("/dev/ttyUSB0:/dev/ttyUSB0",))), "g", None, None),
    "net-admin": (proj(svc("v", cap_add=("net_admin",))), "v", None, None),
    "host-binds": (proj(svc("b", binds=("/srv/www",))), "b", None, None),
    "stateful-volumes": (proj(svc("db", volumes=("pgdata",))), "db", None, None),
    "healthcheck": (proj(svc("hc", healthcheck=True)), "hc", None, None),
    "nested-virt": (proj(svc("n")), "n", HostFacts(kvm_usable=True, host_is_vm=True), None),
    "latency-bare-metal": (proj(svc("t", hints={"latency": "critical"})), "t", None, None),
    "licensing": (proj(svc("l", hints={"licensing": True})), "l", None, None),
    "disaster-recovery": (proj(svc("d", hints={"disaster_recovery": True})), "d", None, None),
    "automation": (proj(svc("a", hints={"automation": True})), "a", None, None),
    "mixed-os": (proj(svc("w", hints={"os": "windows"}), svc("l")), "l", None, None),
    "capacity-small": (proj(svc("s")), "s", None, None),
    "capacity-full": (proj(svc("big", replicas=4, cpus=8, memory=32 * GiB)), "big", None, None),
    "devices-hardware": (proj(svc("g", devices=("/dev/nvidia0",))), "g", None, None),
    "containers-in-vm": (
        proj(svc("c", replicas=5, hints={"trust": "untrusted"})),
        "c",
        None,
        None,
    ),
    "resource-pools": (proj(svc("r", cpus=1.0)), "r", None, None),
}


def test_ids_are_unique_and_every_rule_has_a_scenario():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    assert set(SCENARIOS) == set(ids)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_each_rule_fires_in_its_scenario(rule):
    project, service, host, images = SCENARIOS[rule.id]
    advice = advice_for(project, service, host, image_facts=images)
    assert rule.id in fired(advice)
    factor = next(f for f in advice.factors if f.rule == rule.id)
    assert factor.toward == rule.toward and factor.weight == rule.weight
    assert "{" not in factor.why  # every template field was filled


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_each_rule_is_silent_for_a_plain_service(rule):
    always = {"capacity-small"}  # a plain service is small, which is a fact
    advice = advice_for(proj(svc("plain", runtime="container")), "plain", LINUX)
    assert (rule.id in fired(advice)) == (rule.id in always)


def test_weights_come_from_the_documented_scale():
    scale = {DECISIVE, REQUIREMENT, STRONG, SIGNIFICANT, MODERATE, PREFERENCE}
    assert {r.weight for r in RULES} <= scale
    for r in RULES:
        assert r.axis == ("runtime" if r.toward in ("container", "vm") else "host")
        assert r.factor and r.why and r.when and r.unless


def test_every_factor_of_the_design_is_cited_by_a_rule():
    factors = " ".join(r.factor.lower() for r in RULES)
    for word in (
        "latency",
        "capacity",
        "mixed workloads",
        "disaster recovery",
        "existing investment",
        "automation",
        "resource pools",
        "licens",
        "multitenancy",
        "microservices",
        "fast start",
        "dense packing",
        "rapid scaling",
        "portability",
        "legacy",
        "full operating system",
        "specific kernel",
        "os configuration",
        "another os",
        "containers inside a vm",
    ):
        assert word in factors, word


def test_healthcheck_none_or_disabled_does_not_count():
    for hc in (Healthcheck(test=("NONE",)), Healthcheck(test=("CMD", "x"), disable=True)):
        a = advise(proj(svc("s", healthcheck=False).model_copy(update={"healthcheck": hc})))[0]
        assert "healthcheck" not in fired(a)
