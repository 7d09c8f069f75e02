import pytest

from compound.planner.diff import UpOptions, make_plan
from compound.reconcile.apply import Applier
from tests.unit.fakes import HEALTHY, FakeDriver, project, service


def _apply(p, driver, **kw):
    plan = make_plan(p, [], image_ids={}, opts=UpOptions())
    applier = Applier(
        p,
        plan,
        {"container": driver},
        ensure_resources=lambda plan, prog: None,
        dependency_timeout=5,
        **kw,
    )
    return applier.run()


def test_dependencies_start_before_dependents():
    p = project(
        service("web", depends=[("db", "service_healthy")]), service("db", healthcheck=HEALTHY)
    )
    d = FakeDriver()
    result = _apply(p, d)
    assert result.ok and sorted(result.done) == ["db", "web"]
    starts = [w for v, w in d.calls if v == "start"]
    assert starts == ["demo-db-1", "demo-web-1"]


def test_failed_service_blocks_only_its_dependents():
    p = project(service("web", depends=["db"]), service("db"), service("cache"))
    result = _apply(p, FakeDriver(fail=["db"]))
    assert result.done == ["cache"]
    assert "already in use" in result.failed["db"]
    assert "db" in result.not_started["web"]


def test_unhealthy_dependency_is_reported():
    p = project(
        service("web", depends=[("db", "service_healthy")]), service("db", healthcheck=HEALTHY)
    )
    result = _apply(p, FakeDriver(unhealthy=["db"]))
    assert "unhealthy" in result.not_started["web"]


def test_completed_successfully_condition():
    p = project(
        service("app", depends=[("migrate", "service_completed_successfully")]), service("migrate")
    )
    ok = _apply(p, FakeDriver(exit_codes={"migrate": 0}))
    assert ok.ok
    bad = _apply(p, FakeDriver(exit_codes={"migrate": 3}))
    assert "exit 3" in bad.not_started["app"]


@pytest.mark.parametrize("n", [1, 5])
def test_replicas_all_created(n):
    p = project(service("web", scale=n))
    d = FakeDriver()
    assert _apply(p, d).ok
    assert len([c for c in d.calls if c[0] == "create"]) == n
