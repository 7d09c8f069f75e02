"""A host without virtualization asked for VMs: the plan names the hosts
and says how to accept TCG; a file that accepts TCG places its VMs there."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from compound.hosts import records
from compound.hosts.records import HostRecord
from compound.placement import pack
from compound.placement.node_constraints import node_constraints
from compound.spec.model import VMOptions
from tests.unit.advisor.helpers import GiB, proj, svc
from tests.unit.placement.helpers import dem, host, where
from tests.unit.placement.test_cli_plan import app_for, invoke


def test_vms_on_hosts_without_kvm_name_the_hosts() -> None:
    hosts = [host("qh-1", kvm=False), host("qh-2", kvm=False)]
    p = pack([dem("db", runtime="vm")], hosts)
    assert len(p.unplaced) == 1
    reason = p.unplaced[0].reason
    assert "qh-1, qh-2 have no KVM that boots" in reason
    assert "x-compound.vm.accel: tcg" in reason


def test_vms_that_accept_tcg_go_to_hosts_without_kvm() -> None:
    hosts = [host("qh-1", kvm=False), host("bm", kvm=True, cpus=1, memory=GiB)]
    p = pack([dem("db", runtime="vm", tcg_ok=True), dem("kv", runtime="vm")], hosts)
    assert where(p, "db") == ["qh-1"]
    assert where(p, "kv") == ["bm"]
    assert not p.unplaced


def test_swarm_constraints_ask_for_kvm_unless_tcg_is_accepted() -> None:
    d = dem("db", runtime="vm")
    assert "node.labels.compound.kvm == yes" in node_constraints(d)
    assert "node.labels.compound.vm == yes" in node_constraints(replace(d, tcg_ok=True))


def _recorded(name: str, kvm: bool | None) -> None:
    r = HostRecord(name=name, driver="qemu", address=f"10.213.0.{len(name)}")
    r.facts = {"class": "virtual", "cpus": 2.0, "memory": 4 * GiB, "os": "linux", "kvm": kvm}
    records.save(r)


def test_plan_from_recorded_hosts_without_kvm_fails_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPOUND_HOSTS_DIR", str(tmp_path / "hosts"))
    _recorded("qh-a", False)
    _recorded("qh-bb", None)  # the probe could not run: no promise of KVM
    vm = svc("db", runtime="vm", cpus=0.5, memory=GiB)
    result = invoke(app_for([proj(vm, name="shop")]), ["plan", "--json"])
    assert result.exit_code == 1
    reason = json.loads(result.output)["unplaced"][0]["reason"]
    assert "host(s) qh-a, qh-bb have no KVM that boots" in reason

    xc = vm.x_compound.model_copy(update={"vm": VMOptions(accel="tcg")})
    tcg = vm.model_copy(update={"x_compound": xc})
    result = invoke(app_for([proj(tcg, name="shop")]), ["plan", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["placements"][0]["host"] in ("qh-a", "qh-bb")
