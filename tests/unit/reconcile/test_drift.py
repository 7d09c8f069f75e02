"""Drift: which listed changes are drift, how they are summarised and
reported, and the planner branch behind `up --recreate-drifted`."""

import json

from compound.errors import VMError
from compound.planner.diff import UpOptions, desired_hash, make_plan
from compound.planner.runtime import RuntimeDecision
from compound.reconcile.drift import (
    ConfigDrift,
    DriftReport,
    InstanceDrift,
    classify,
    config_drift,
    counts,
    recreate_reasons,
    summary,
    tally,
)
from compound.runtimes.base import Capabilities, Change, Instance, RootChanges
from compound.runtimes.kind import Runtime
from tests.unit.fakes import FakeDriver, instance, project, service


def _changes(*rows: str) -> tuple[Change, ...]:
    return tuple(Change(r[0], r[2:]) for r in rows)  # "A /x" -> Change("A", "/x")


def test_docker_diff_of_a_volume_mount_point_and_its_parents_is_not_drift():
    # what the engine reports for `-v vol:/data/deep` plus one real write
    root = RootChanges(_changes("A /data", "A /data/deep", "A /newfile"), managed=("/data/deep",))
    assert classify(root) == _changes("A /newfile")


def test_writes_under_a_mount_point_or_to_runtime_files_are_not_drift():
    root = RootChanges(
        _changes("A /data/deep/x", "C /etc/hosts", "D /dev/console", "C /etc/passwd"),
        managed=("/data/deep", "/etc/hosts", "/dev"),
    )
    assert classify(root) == _changes("C /etc/passwd")


def test_a_directory_changed_only_because_of_a_listed_change_below_it_is_dropped():
    root = RootChanges(
        _changes(
            "C /var", "C /var/www", "D /var/www/index.html", "C /etc", "C /etc/passwd", "C /opt"
        )
    )
    # /opt stays: nothing below it explains its change (e.g. a file added then removed)
    assert classify(root) == _changes("C /etc/passwd", "C /opt", "D /var/www/index.html")


def test_declared_secret_files_are_not_drift_but_their_neighbours_are():
    root = RootChanges(_changes("A /run", "A /run/secrets", "A /run/secrets/token", "A /run/x"))
    assert classify(root, declared=["/run/secrets/token"]) == _changes("A /run/x")


def test_result_is_sorted_and_normalised_and_root_is_never_managed():
    root = RootChanges(_changes("A /b//c/", "A /a"), managed=("/", "relative"))
    assert classify(root) == _changes("A /a", "A /b/c")


def test_tally_and_summary():
    changes = _changes("A /a", "C /b", "C /c", "D /d")
    assert counts(changes) == {"A": 1, "C": 2, "D": 1}
    assert tally(changes) == "4 paths (1 added, 2 changed, 1 deleted)"
    assert summary(changes, limit=2) == (
        "4 paths (1 added, 2 changed, 1 deleted): A /a, C /b, … 2 more"
    )
    assert summary(_changes("D /x")) == "1 path (1 deleted): D /x"
    assert summary(()) == "no changes"


def _report() -> DriftReport:
    web = instance("web", id="w1")
    db = instance("db", id="d1")
    vm = instance("vm", id="v1", runtime="vm", status="exited")
    return DriftReport(
        "demo",
        (
            InstanceDrift.of(web, _changes("A /x", "D /y")),
            InstanceDrift.of(db),
            InstanceDrift.of(vm, unknown="demo-vm-1 is exited"),
        ),
        (ConfigDrift("db", "demo-db-1", "d1", "configuration changed"),),
    )


def test_report_json_lists_every_change_and_the_config_drift():
    data = json.loads(json.dumps(_report().to_json()))
    assert data["drifted"] is True
    assert [i["instance"] for i in data["instances"]] == ["demo-web-1", "demo-db-1", "demo-vm-1"]
    web, db, vm = data["instances"]
    assert web == {
        "instance": "demo-web-1",
        "id": "w1",
        "service": "web",
        "runtime": "container",
        "drifted": True,
        "counts": {"A": 1, "C": 0, "D": 1},
        "changes": [{"kind": "A", "path": "/x"}, {"kind": "D", "path": "/y"}],
        "unknown": None,
    }
    assert (db["drifted"], db["changes"]) == (False, [])
    assert (vm["drifted"], vm["unknown"]) == (False, "demo-vm-1 is exited")
    assert data["config"] == [
        {"service": "db", "instance": "demo-db-1", "id": "d1", "reason": "configuration changed"}
    ]


def test_a_report_without_changes_or_config_drift_is_clean_even_with_unknowns():
    vm = instance("vm", runtime="vm", status="exited")
    report = DriftReport("demo", (InstanceDrift.of(vm, unknown="stopped"),), ())
    assert report.drifted is False


def test_recreate_reasons_name_only_drifted_instances():
    report = _report()
    assert recreate_reasons(report.files) == {"w1": "2 paths (1 added, 1 deleted): A /x, D /y"}


# --- the planner side ------------------------------------------------------------------


def _plan(p, actual, **opts):
    return make_plan(
        p, actual, image_ids={n: "sha256:img" for n in p.services}, opts=UpOptions(**opts)
    )


def _hash(p, name):
    return desired_hash(p.services[name], "sha256:img")


def test_recreate_drifted_recreates_only_the_drifted_instance():
    p = project(service("web", scale=2), service("db"))
    web1 = instance("web", 1, hash_=_hash(p, "web"))
    web2 = instance("web", 2, hash_=_hash(p, "web"))
    db = instance("db", hash_=_hash(p, "db"))
    plan = _plan(p, [web1, web2, db], drifted={web2.id: "1 path (1 added): A /x"})
    steps = {(s.service, s.number): s for sp in plan.services for s in sp.steps}
    assert steps["web", 2].action == "recreate"
    assert steps["web", 2].reason == "drifted: 1 path (1 added): A /x"
    assert steps["web", 2].instance == web2
    assert steps["web", 1].action == "keep"
    assert steps["db", 1].action == "keep"


def test_config_change_wins_over_drift_and_no_recreate_keeps_a_drifted_instance():
    p = project(service("web"), service("db"))
    web = instance("web", hash_="old")
    db = instance("db", hash_=_hash(p, "db"))
    drifted = {web.id: "x", db.id: "y"}
    plan = _plan(p, [web, db], drifted=drifted)
    assert plan.for_service("web").steps[0].reason == "configuration changed"
    assert plan.for_service("db").steps[0].reason == "drifted: y"
    kept = _plan(p, [web, db], drifted=drifted, no_recreate=True)
    assert [s.action for sp in kept.services for s in sp.steps] == ["keep", "keep"]


def test_config_drift_is_read_from_the_plans_recreate_steps():
    p = project(service("web"), service("db", x_compound={"runtime": "vm"}))
    web = instance("web", hash_="old", id="w")
    db = instance("db", hash_=_hash(p, "db"), id="d")  # runtime container, file says vm
    plan = make_plan(
        p,
        [web, db],
        image_ids={n: "sha256:img" for n in p.services},
        decisions={"db": RuntimeDecision(Runtime.VM, "vm")},
    )
    assert config_drift(plan) == (
        ConfigDrift("db", "demo-db-1", "d", "runtime changed"),
        ConfigDrift("web", "demo-web-1", "w", "configuration changed"),
    )
    assert config_drift(_plan(p, [])) == ()  # missing instances are not drift


# --- the session: one driver call per instance, failures become "unknown" -----------


class _ChangesDriver(FakeDriver):
    capabilities = Capabilities(changes=True)

    def __init__(self, answers: dict[str, RootChanges | Exception]) -> None:
        super().__init__()
        self.answers = answers

    def changes(self, instance: Instance) -> RootChanges:
        answer = self.answers[instance.id]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_session_file_drift_classifies_and_reports_what_it_cannot_read(monkeypatch):
    from compound.reconcile.session import Session

    p = project(
        service("web", secrets=[{"source": "token", "target": "/run/secrets/token"}]),
        service("vm"),
    )
    web, vm = instance("web", id="w"), instance("vm", id="v", runtime="vm")
    old = instance("old")  # an orphan: not the file's, not diffed
    containers = _ChangesDriver(
        {"w": RootChanges(_changes("A /run/secrets/token", "A /x"), managed=("/data",))}
    )
    vms = _ChangesDriver({"v": VMError("demo-vm-1 is exited: start it")})
    session = Session(p, client=None, drivers={"container": containers, "vm": vms})  # type: ignore[arg-type]
    monkeypatch.setattr(session, "instances", lambda services=(): [web, vm, old])
    got = {d.instance: d for d in session.file_drift()}
    assert set(got) == {"demo-web-1", "demo-vm-1"}
    assert got["demo-web-1"].changes == _changes("A /x")  # the injected secret is declared
    assert got["demo-vm-1"].unknown == "demo-vm-1 is exited: start it"
    assert not got["demo-vm-1"].drifted
    plain = Session(p, client=None, drivers={"container": FakeDriver()})  # type: ignore[arg-type]
    monkeypatch.setattr(plain, "instances", lambda services=(): [web])
    (only,) = plain.file_drift()
    assert only.unknown == "the container runtime cannot tell"
