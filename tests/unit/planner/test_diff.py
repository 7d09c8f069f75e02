import pytest

from compound.errors import SpecError
from compound.planner.diff import UpOptions, desired_hash, make_plan
from compound.planner.graph import start_levels, with_dependencies
from tests.unit.fakes import instance, project, service


def _plan(p, actual=(), **opts):
    ids = {n: "sha256:img" for n in p.services}
    return make_plan(p, actual, image_ids=ids, opts=UpOptions(**opts))


def _hash(p, name):
    return desired_hash(p.services[name], "sha256:img")


def test_fresh_project_creates_everything_in_dependency_order():
    p = project(service("web", depends=["api"]), service("api", depends=["db"]), service("db"))
    plan = _plan(p)
    assert [sp.service for sp in plan.services] == ["db", "api", "web"]
    assert all(s.action == "create" for sp in plan.services for s in sp.steps)
    assert [(r.kind, r.name, r.action) for r in plan.resources] == [
        ("network", "demo_default", "create")
    ]
    assert plan.for_service("web").depends_on == ("api",)


def test_unchanged_service_is_kept_and_changed_one_recreated():
    p = project(service("web"), service("db"))
    actual = [instance("web", hash_=_hash(p, "web")), instance("db", hash_="old")]
    plan = _plan(p, actual)
    assert plan.for_service("web").summary == "unchanged"
    step = plan.for_service("db").steps[0]
    assert (step.action, step.reason) == ("recreate", "configuration changed")


def test_new_image_id_under_same_tag_is_a_change():
    p = project(service("web"))
    inst = instance("web", hash_=_hash(p, "web"))
    plan = make_plan(p, [inst], image_ids={"web": "sha256:rebuilt"})
    assert plan.for_service("web").steps[0].action == "recreate"


def test_scale_up_and_down():
    p = project(service("web", scale=3))
    h = _hash(p, "web")
    plan = _plan(p, [instance("web", 1, hash_=h)])
    assert [(s.action, s.number) for s in plan.for_service("web").steps] == [
        ("keep", 1),
        ("create", 2),
        ("create", 3),
    ]
    plan = _plan(p, [instance("web", n, hash_=h) for n in range(1, 6)], scale={"web": 2})
    assert sorted((s.action, s.number) for s in plan.for_service("web").steps) == [
        ("keep", 1),
        ("keep", 2),
        ("remove", 3),
        ("remove", 4),
        ("remove", 5),
    ]


def test_stopped_instance_is_started_not_recreated():
    p = project(service("web"))
    plan = _plan(p, [instance("web", hash_=_hash(p, "web"), status="exited", exit_code=0)])
    assert plan.for_service("web").steps[0].action == "start"


def test_force_and_no_recreate():
    p = project(service("web"))
    same = instance("web", hash_=_hash(p, "web"))
    assert _plan(p, [same], force_recreate=True).for_service("web").steps[0].action == "recreate"
    stale = instance("web", hash_="old")
    assert _plan(p, [stale], no_recreate=True).for_service("web").steps[0].action == "keep"


def test_selected_services_pull_in_dependencies_unless_no_deps():
    p = project(service("web", depends=["db"]), service("db"), service("other"))
    assert [sp.service for sp in _plan(p, services=("web",)).services] == ["db", "web"]
    assert [sp.service for sp in _plan(p, services=("web",), no_deps=True).services] == ["web"]
    assert with_dependencies(p, ["web"]) == {"web", "db"}


def test_orphans_noted_or_removed():
    p = project(service("web"))
    orphan = instance("gone")
    plan = _plan(p, [orphan])
    assert plan.orphans == (orphan,) and not plan.remove_orphans
    assert "--remove-orphans" in plan.notes[0]
    assert _plan(p, [orphan], remove_orphans=True).changed


def test_oneoff_instances_are_ignored():
    p = project(service("web"))
    plan = _plan(p, [instance("web", oneoff=True)])
    assert plan.for_service("web").steps[0].action == "create"


def test_dependency_restart_when_dependency_recreated():
    from compound.spec.model import Dependency

    p = project(service("db"), service("web", depends_on={"db": Dependency(restart=True)}))
    actual = [instance("db", hash_="old"), instance("web", hash_=_hash(p, "web"))]
    plan = _plan(p, actual)
    assert plan.for_service("web").steps[0].action == "restart"


def test_runtime_change_recreates():
    p = project(service("web"))
    inst = instance("web", hash_=_hash(p, "web"), runtime="vm")
    plan = _plan(p, [inst])
    assert plan.for_service("web").steps[0].reason == "runtime changed"


def test_levels_and_cycle_error():
    p = project(service("a", depends=["b"]), service("b"), service("c"))
    assert start_levels(p) == [["b", "c"], ["a"]]
    cyc = project(service("a", depends=["b"]), service("b", depends=["a"]))
    with pytest.raises(SpecError, match="cycle"):
        start_levels(cyc)


def test_plan_json_is_serialisable():
    import json

    p = project(service("web"))
    data = _plan(p).to_json()
    assert json.loads(json.dumps(data))["services"][0]["steps"][0]["action"] == "create"


def test_missing_image_note_says_how_to_get_it_without_a_registry() -> None:
    from compound.planner.diff import missing_image_note
    from compound.spec.model import BuildSpec, Service

    pulled = missing_image_note(Service(name="web", image="shop/web:2"))
    assert "`up` pulls it" in pulled and "docker save shop/web:2" in pulled
    assert "make" not in pulled  # means something on any host, not only in compound's repo
    built = missing_image_note(Service(name="web", build=BuildSpec(context="/src/web")))
    assert "builds it" in built and "/src/web" in built
    never = missing_image_note(Service(name="web", image="x", pull_policy="never"))
    assert "will fail" in never
