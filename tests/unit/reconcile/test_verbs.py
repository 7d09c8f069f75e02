"""`up`, `down` and `rollback` through the Session façade on the fake
driver and the in-memory engine (tests/unit/fakes.py): no monkeypatching."""

from __future__ import annotations

from pathlib import Path

import pytest

from compound.errors import ApplyError, StateError
from compound.planner.diff import UpOptions
from compound.reconcile.session import Session
from compound.spec.model import Volume, VolumeMount
from compound.state.store import Store
from tests.unit.fakes import FakeDriver, FakeEngine, instance, project, service


def _session(p, tmp_path: Path, driver: FakeDriver | None = None):  # type: ignore[no-untyped-def]
    driver = driver or FakeDriver()
    engine = FakeEngine(driver)
    session = Session(
        p,
        client=None,  # type: ignore[arg-type]
        store=Store(tmp_path / "state.db"),
        drivers={"container": driver},
        engine=engine,
    )
    return session, driver, engine


def _app():  # type: ignore[no-untyped-def]
    return project(service("db"), service("web", depends=["db"]))


def test_up_creates_in_dependency_order_and_records_the_revision(tmp_path):
    session, driver, engine = _session(_app(), tmp_path)
    outcome = session.up(UpOptions())
    assert outcome.result is not None and outcome.result.ok
    starts = [what for verb, what in driver.calls if verb == "start"]
    assert starts == ["demo-db-1", "demo-web-1"]
    assert engine.networks == {"demo_default"}
    (rev,) = session.store.history("demo")
    assert rev.number == outcome.revision and rev.outcome == "succeeded"
    assert rev.decisions["web"] == {
        "runtime": "container",
        "declared": "container",
        "why": ["declared"],
    }
    assert session.live_revision() == outcome.revision


def test_a_second_up_changes_nothing_and_a_dry_run_records_nothing(tmp_path):
    session, driver, _ = _session(_app(), tmp_path)
    session.up(UpOptions())
    before = list(driver.calls)
    dry = session.up(UpOptions(), dry_run=True)
    assert dry.result is None and dry.revision is None
    assert not dry.plan.changed
    again = session.up(UpOptions())
    assert not again.plan.changed
    assert [c for c in driver.calls[len(before) :] if c[0] != "prepare"] == []
    assert len(session.store.history("demo")) == 2  # the dry run is not a revision


def test_a_failed_up_raises_and_records_a_failed_revision(tmp_path):
    session, _, _ = _session(_app(), tmp_path, FakeDriver(fail=["db"]))
    with pytest.raises(ApplyError) as err:
        session.up(UpOptions())
    assert "db" in err.value.failed
    (rev,) = session.store.history("demo")
    assert rev.outcome == "failed"


def test_down_removes_dependents_first_then_networks_and_asked_volumes(tmp_path):
    p = _app()
    data = Volume(key="data", name="demo_data")
    mount = VolumeMount(type="volume", source="data", target="/data")
    p = p.model_copy(
        update={
            "volumes": {"data": data},
            "services": {
                **p.services,
                "db": p.services["db"].model_copy(update={"volumes": (mount,)}),
            },
        }
    )
    session, driver, engine = _session(p, tmp_path)
    session.up(UpOptions())
    assert engine.volumes == {"demo_data"}
    driver.adopt(instance("web", 7, id="run-1", oneoff=True))  # a `compound run` left behind
    removed = session.down(volumes=True)
    assert sorted(removed["instances"]) == ["demo-db-1", "demo-web-1", "demo-web-7"]
    stops = [what for verb, what in driver.calls if verb == "stop"]
    assert stops.index("demo-web-1") < stops.index("demo-db-1")
    assert removed["networks"] == ["demo_default"] and removed["volumes"] == ["demo_data"]
    assert driver.instances == {} and engine.networks == set() and engine.volumes == set()


def test_down_leaves_orphans_unless_asked(tmp_path):
    session, driver, _ = _session(_app(), tmp_path)
    session.up(UpOptions())
    driver.adopt(instance("gone", id="orphan"))
    removed = session.down()
    assert "demo-gone-1" not in removed["instances"]
    assert set(driver.instances) == {"orphan"}
    assert session.down(remove_orphans=True)["instances"] == ["demo-gone-1"]


def test_rollback_returns_each_service_to_its_previous_configuration(tmp_path):
    first = _app()
    session, driver, engine = _session(first, tmp_path)
    session.up(UpOptions())
    old_hash = {i.service: i.config_hash for i in engine.instances()}
    web = first.services["web"].model_copy(update={"environment": {"MODE": "new"}})
    second = first.model_copy(update={"services": {**first.services, "web": web}})
    changed, _, _ = _session(second, tmp_path, driver)
    changed.up(UpOptions())
    new_web = {i.config_hash for i in engine.instances() if i.service == "web"}
    assert new_web != {old_hash["web"]}

    back = changed.rollback(["web"])
    assert back == {"web": 1}
    now = {i.service: i.config_hash for i in engine.instances()}
    assert now == old_hash  # web as revision 1 ran it; db untouched
    latest = changed.store.history("demo")[0]
    assert latest.command == "rollback web->1" and latest.outcome == "succeeded"


def test_rollback_with_nothing_to_go_back_to_changes_nothing(tmp_path):
    session, driver, _ = _session(_app(), tmp_path)
    session.up(UpOptions())
    before = list(driver.calls)
    with pytest.raises(StateError, match="no earlier revision deployed it"):
        session.rollback()
    assert driver.calls == before
    assert len(session.store.history("demo")) == 1
