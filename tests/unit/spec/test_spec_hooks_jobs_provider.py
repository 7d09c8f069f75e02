"""Hooks, jobs and provider services: loaded typed, shown resolved by `config`."""

from __future__ import annotations

from pathlib import Path

from compound.spec import LoadOptions, load_project, to_compose_dict

VALID = Path(__file__).parent.parent / "corpus" / "valid" / "hooks_jobs_provider.yaml"


def test_the_keys_load_typed_and_config_shows_them_resolved() -> None:
    result = load_project(LoadOptions(files=[VALID.name], cwd=str(VALID.parent), environ={}))
    project = result.project
    assert not [w for w in result.warnings if "hook" in str(w) or "post_start" in str(w)]
    web = project.services["web"]
    first = web.post_start[0]
    assert first.command == ("chown", "-R", "1001:1001", "/data")  # shell words, as Compose
    assert (first.user, first.privileged, first.working_dir) == ("root", True, "/data")
    assert first.environment == {"REASON": "startup"}
    assert web.pre_stop[0].environment == {"FLUSH": "1"}
    assert web.pre_start[0].image == "busybox"
    migrate, seed = project.services["migrate"], project.services["seed"]
    assert migrate.job and migrate.replicas == 3 and seed.job and seed.replicas == 1
    db = project.services["database"]
    assert db.provider is not None and db.replicas == 0
    assert db.provider.options == {"type": ("mysql",), "size": ("256",), "tag": ("a", "b")}

    shown = to_compose_dict(project)["services"]
    assert shown["web"]["post_start"][0] == {
        "command": ["chown", "-R", "1001:1001", "/data"],
        "user": "root",
        "privileged": True,
        "working_dir": "/data",
        "environment": {"REASON": "startup"},
    }
    assert shown["web"]["pre_start"][0]["image"] == "busybox"
    assert shown["migrate"]["deploy"]["mode"] == "replicated-job"
    assert shown["database"]["provider"] == {
        "type": "awesomecloud",
        "options": {"type": "mysql", "size": "256", "tag": ["a", "b"]},
    }
