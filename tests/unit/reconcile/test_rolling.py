"""Rolling updates against the in-memory driver: order, batches, health
gate, failure actions, rollback, the load balancer hooks."""

import pytest

from compound.planner.diff import UpOptions, desired_hash, make_plan
from compound.planner.update import backend_service, update_policy
from compound.reconcile import rolling
from compound.reconcile.apply import Applier
from compound.reconcile.rolling import Desired
from compound.spec.model import Deploy, PortSpec, UpdateConfig, VolumeMount
from tests.unit.fakes import HEALTHY, FakeDriver, instance, project, service


@pytest.fixture(autouse=True)
def _no_settle(monkeypatch):
    monkeypatch.setattr(rolling, "SETTLE", 0.0)


def _deploy(replicas=1, **update):
    return Deploy(replicas=replicas, update_config=UpdateConfig(**update) if update else None)


def _running(svc, n, hash_="old"):
    return [instance(svc, i, hash_=hash_, id=f"old{i}") for i in range(1, n + 1)]


class FakeFrontend:
    def __init__(self, log):
        self.log = log

    def add(self, inst):
        self.log.append(("lb-add", inst.name))

    def drain(self, inst):
        self.log.append(("lb-drain", inst.name))

    def remove(self, inst):
        self.log.append(("lb-remove", inst.name))

    def sync(self, instances):
        self.log.append(("lb-sync", ",".join(sorted(i.name for i in instances))))


def _apply(p, driver, actual, **kw):
    plan = make_plan(p, actual, image_ids={}, opts=UpOptions())
    applier = Applier(
        p,
        plan,
        {"container": driver},
        ensure_resources=lambda plan, prog: None,
        dependency_timeout=5,
        **kw,
    )
    return applier.run(), plan


def _verbs(d, *verbs):
    return [(v, w) for v, w in d.calls if v in verbs]


def test_stop_first_replaces_one_at_a_time_in_number_order():
    p = project(service("web", deploy=_deploy(3, order="stop-first")))
    d = FakeDriver()
    old = _running("web", 3)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert result.ok
    assert _verbs(d, "stop", "create") == [
        ("stop", "demo-web-1"),
        ("create", "web-1"),
        ("stop", "demo-web-2"),
        ("create", "web-2"),
        ("stop", "demo-web-3"),
        ("create", "web-3"),
    ]
    assert {i.config_hash for i in d.instances.values()} == {desired_hash(p.services["web"], None)}


def test_parallelism_two_replaces_in_batches():
    p = project(service("web", deploy=_deploy(4, parallelism=2)))
    d = FakeDriver()
    old = _running("web", 4)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert result.ok
    creates = [w for v, w in d.calls if v in ("create", "stop")]
    # the second batch does not start before both of the first are replaced
    assert set(creates[:4]) == {"demo-web-1", "demo-web-2", "web-1", "web-2"}
    assert set(creates[4:]) == {"demo-web-3", "demo-web-4", "web-3", "web-4"}


def test_single_replica_defaults_to_start_first_with_a_successor_name():
    p = project(service("api"))
    d = FakeDriver()
    old = _running("api", 1)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert result.ok
    assert [c for c in d.calls if c[0] != "prepare"] == [
        ("create", "api-1"),
        ("start", "demo-api-1-next"),
        ("stop", "demo-api-1"),
        ("remove", "demo-api-1"),
        ("rename", "demo-api-1-next->demo-api-1"),
    ]
    (only,) = d.instances.values()
    assert only.name == "demo-api-1"


@pytest.mark.parametrize(
    ("volumes", "order"),
    [
        ((VolumeMount(type="volume", source="pgdata", target="/var/lib/pg"),), "stop-first"),
        ((VolumeMount(type="bind", source="/srv", target="/srv"),), "stop-first"),
        (
            (VolumeMount(type="volume", source="pgdata", target="/d", read_only=True),),
            "start-first",
        ),
        ((VolumeMount(type="tmpfs", target="/tmp"),), "start-first"),
    ],
)
def test_a_single_replica_that_writes_a_shared_volume_defaults_to_stop_first(volumes, order):
    # two database instances on one data directory, each in its own VM, cannot
    # see each other's lock file: never by default
    policy = update_policy(service("db", volumes=volumes), 1)
    assert policy.config.order == order


def test_declared_start_first_with_a_shared_volume_is_the_users_choice():
    svc = service(
        "db",
        volumes=(VolumeMount(type="volume", source="pgdata", target="/d"),),
        deploy=_deploy(1, order="start-first"),
    )
    assert update_policy(svc, 1).config.order == "start-first"


def test_start_first_failure_keeps_the_predecessor_serving():
    p = project(service("api", healthcheck=HEALTHY))
    d = FakeDriver()
    want = desired_hash(p.services["api"], None)
    d.unhealthy_hashes.add(want)
    old = _running("api", 1)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert "update paused" in result.failed["api"] and "unhealthy" in result.failed["api"]
    assert list(d.instances) == ["old1"]  # the failed successor is gone, the old one stays
    assert ("stop", "demo-api-1") not in d.calls


def test_start_first_successor_that_fails_to_start_is_removed_and_the_old_one_serves():
    # a VM successor whose guest never starts raises from start(), like a
    # container whose port is taken
    p = project(service("api", healthcheck=HEALTHY))
    d = FakeDriver(fail=["api"])
    old = _running("api", 1)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert "update paused" in result.failed["api"]
    assert "port 8080 is already in use" in result.failed["api"]
    assert list(d.instances) == ["old1"]  # the successor was removed
    assert ("remove", "demo-api-1-next") in d.calls
    assert ("stop", "demo-api-1") not in d.calls


def test_pause_stops_after_the_first_failed_batch():
    p = project(service("web", healthcheck=HEALTHY, deploy=_deploy(3)))
    d = FakeDriver()
    d.unhealthy_hashes.add(desired_hash(p.services["web"], None))
    old = _running("web", 3)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert "update paused after 0 of 3" in result.failed["web"]
    assert "compound rollback web" in result.failed["web"]  # the hint travels along
    assert [w for v, w in d.calls if v == "create"] == ["web-1"]
    assert {"old2", "old3"} <= set(d.instances)


def test_max_failure_ratio_tolerates_some_failures_with_continue():
    p = project(
        service(
            "web",
            healthcheck=HEALTHY,
            deploy=_deploy(2, failure_action="continue", max_failure_ratio=0.5),
        )
    )
    d = FakeDriver()
    d.unhealthy_hashes.add(desired_hash(p.services["web"], None))
    old = _running("web", 2)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    # first failure is within the ratio; the second exceeds it, but continue goes on
    assert [w for v, w in d.calls if v == "create"] == ["web-1", "web-2"]
    assert "finished with failures" in result.failed["web"]


def test_failure_action_rollback_restores_the_previous_revision():
    svc = service("web", healthcheck=HEALTHY, deploy=_deploy(2, failure_action="rollback"))
    p = project(svc)
    d = FakeDriver()
    d.unhealthy_hashes.add(desired_hash(svc, None))
    old = _running("web", 2)
    d.adopt(*old)
    asked = []

    def target(name, config_hash):
        asked.append((name, config_hash))
        return Desired(
            svc.model_copy(update={"environment": {"V": "1"}}),
            "old",
            "sha256:x",
            label="revision 7",
        )

    result, _ = _apply(p, d, old, rollback_target=target)
    assert asked == [("web", "old")]
    assert result.rolled_back == {"web": "revision 7"}
    assert "rolled back to revision 7" in result.failed["web"]
    assert sorted(i.config_hash for i in d.instances.values()) == ["old", "old"]
    assert len(d.instances) == 2


def test_rollback_without_a_previous_revision_says_so():
    p = project(service("web", healthcheck=HEALTHY, deploy=_deploy(1, failure_action="rollback")))
    d = FakeDriver()
    d.unhealthy_hashes.add(desired_hash(p.services["web"], None))
    old = _running("web", 1)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert "no earlier revision" in result.failed["web"]


def test_image_missing_fails_before_touching_a_start_first_predecessor():
    p = project(service("api"))
    d = FakeDriver()
    d.missing_image = True
    old = _running("api", 1)
    d.adopt(*old)
    result, _ = _apply(p, d, old)
    assert "not found" in result.failed["api"]
    assert list(d.instances) == ["old1"]


def test_frontend_adds_only_healthy_and_drains_before_stopping():
    ports = (PortSpec(target=80, published="8080"),)
    p = project(service("web", ports=ports, healthcheck=HEALTHY, deploy=_deploy(2)))
    d = FakeDriver()
    old = _running("web", 2)
    d.adopt(*old)
    log = []

    frontend = FakeFrontend(log)
    result, plan = _apply(p, d, old, frontend_for=lambda sp: frontend)
    assert result.ok and plan.for_service("web").load_balanced
    assert log[:3] == [
        ("lb-drain", "demo-web-1"),
        ("lb-remove", "demo-web-1"),
        ("lb-add", "demo-web-1"),
    ]
    assert log[-1] == ("lb-sync", "demo-web-1,demo-web-2")
    # replicas behind the balancer publish nothing themselves
    created = [i for i in d.instances.values()]
    assert all(
        i.config_hash == desired_hash(backend_service(p.services["web"], 2), None) for i in created
    )


def test_duplicate_numbers_from_an_interrupted_update_converge():
    svc = service("api")
    p = project(svc)
    want = desired_hash(svc, None)
    old = instance("api", 1, hash_="old", id="old1")
    successor = instance("api", 1, hash_=want, id="new1")
    successor = type(successor)(**{**successor.__dict__, "name": "demo-api-1-next"})
    d = FakeDriver()
    d.adopt(old, successor)
    result, plan = _apply(p, d, [old, successor])
    assert result.ok
    steps = [(s.action, s.instance.name if s.instance else None) for s in plan.services[0].steps]
    assert ("remove", "demo-api-1") in steps and ("keep", "demo-api-1-next") in steps
    assert list(d.instances) == ["new1"]
    assert d.instances["new1"].name == "demo-api-1"  # the successor took its name


def test_update_policy_defaults_and_blockers():
    one = service("a")
    assert update_policy(one, 1).config.order == "start-first"
    assert update_policy(one, 3).config.order == "stop-first"
    fixed = service("b", ports=(PortSpec(target=80, published="8080"),))
    assert update_policy(fixed, 1).config.order == "stop-first"
    asked = service(
        "c", ports=(PortSpec(target=80, published="8080"),), deploy=_deploy(1, order="start-first")
    )
    policy = update_policy(asked, 1)
    assert policy.config.order == "stop-first" and "fixed host ports" in (policy.note or "")
    # behind a load balancer the replicas publish nothing, so start-first works
    assert (
        update_policy(
            asked.model_copy(update={"deploy": _deploy(3, order="start-first")}), 3
        ).config.order
        == "start-first"
    )


def test_update_policy_edits_do_not_recreate():
    a = service("a")
    b = service("a", deploy=_deploy(1, parallelism=3, order="start-first"))
    assert a.config_hash() == b.config_hash()


def test_the_plan_says_how_an_update_will_roll():
    p = project(service("web", deploy=_deploy(3, parallelism=2, delay=1.5)))
    plan = make_plan(p, _running("web", 3), image_ids={}, opts=UpOptions())
    (sp,) = plan.services
    assert sp.update == "rolling stop-first, 2 at a time, 1.5s apart, on failure pause"
    assert plan.to_json()["services"][0]["update"] == sp.update
    fresh = make_plan(p, [], image_ids={}, opts=UpOptions())
    assert fresh.services[0].update is None  # nothing to replace
