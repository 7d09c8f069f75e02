"""The runtime decision is a planner step: `up`, `--dry-run`, `pull` and
`build` act on the same typed decision, and the history records it."""

from __future__ import annotations

import pytest

from compound.advisor import HostFacts
from compound.planner.diff import UpOptions, make_plan
from compound.planner.runtime import RuntimeDecision, decide_runtimes, decisions_json
from compound.reconcile.prepare import prepare_services
from compound.reconcile.progress import NullProgress
from compound.reconcile.session import Session
from compound.runtimes.kind import Runtime
from compound.spec.model import XCompound
from tests.unit.fakes import FakeDriver, project, service

HOST = HostFacts(kvm_usable=True, host_is_vm=False, os="linux", arch="x86_64", cpus=2.0)


class FakeVMDriver(FakeDriver):
    name = "vm"


def _auto_tenant_project():  # type: ignore[no-untyped-def]
    tenant = service("tenant", x_compound=XCompound(runtime="auto", hints={"trust": "untrusted"}))
    return project(service("shop"), tenant)


def test_auto_resolves_through_the_advisor_and_declared_runtimes_stay():
    p = _auto_tenant_project()
    decided = decide_runtimes(p, ["shop", "tenant"], HOST)
    assert decided["shop"] == RuntimeDecision(Runtime.CONTAINER, "container")
    assert decided["tenant"].runtime is Runtime.VM
    assert decided["tenant"].declared == "auto"
    assert any("untrusted" in why for why in decided["tenant"].why)


def test_the_plan_carries_the_decision_and_the_history_record_of_it():
    p = _auto_tenant_project()
    decided = decide_runtimes(p, ["shop", "tenant"], HOST)
    plan = make_plan(p, [], image_ids={}, decisions=decided, opts=UpOptions())
    assert plan.for_service("tenant").runtime is Runtime.VM
    assert plan.decisions == decided
    record = decisions_json(plan.decisions)
    assert record["tenant"]["runtime"] == "vm" and record["tenant"]["declared"] == "auto"
    assert record["shop"] == {"runtime": "container", "declared": "container", "why": ["declared"]}


def test_an_undecided_auto_service_is_a_programming_error_not_a_guess():
    p = _auto_tenant_project()
    with pytest.raises(ValueError, match="decide_runtimes"):
        make_plan(p, [], image_ids={}, opts=UpOptions())


def test_pull_and_build_prepare_an_auto_service_that_resolved_to_vm_with_the_vm_driver():
    # the bug: lifecycle.py fell back to the container driver for runtime: auto
    p = _auto_tenant_project()
    containers, vms = FakeDriver(), FakeVMDriver()
    session = Session(p, client=None, drivers={"container": containers, "vm": vms})  # type: ignore[arg-type]
    failures = prepare_services(  # what `compound pull` and `compound build` run
        p,
        ["shop", "tenant"],
        session.decide(["shop", "tenant"]),
        session.drivers,
        policy="always",
        verb="Pulled",
        progress=NullProgress(),
    )
    assert failures == {}
    assert containers.calls == [("prepare", "shop")]
    assert vms.calls == [("prepare", "tenant")]
