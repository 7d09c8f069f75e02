"""The project cache (cli/project_cache.py): a kept project is the project a
load gives, and any change to what the load read, looked for, or the
environment is a miss; `config`'s own cache stays right on top of it."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from compound.cli import project_cache
from compound.spec import LoadOptions, LoadResult, load_project

CORPUS = Path(__file__).parent.parent / "corpus" / "valid"
VALID = sorted(CORPUS.glob("*.yaml"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPOUND_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COMPOUND_NO_CONFIG_CACHE", raising=False)
    return tmp_path / "cache" / "projects"


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.pickle")) if cache.exists() else []


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_a_kept_project_is_the_loaded_project(
    path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("API_TOKEN", "tok-123")
    monkeypatch.setenv("USER_NAME", "ann")
    opts = LoadOptions(files=[path.name])
    fresh = load_project(opts)
    first = project_cache.load(opts)  # a miss: loads and keeps it
    assert len(_entries(cache)) == 1
    kept = project_cache._replay(project_cache.key_for(opts) or "")
    assert kept is not None
    reads, again = kept
    assert str(path) in reads
    for result in (first, again):
        assert isinstance(result, LoadResult)
        assert result.warnings == fresh.warnings
        assert result.project == fresh.project
        assert result.project.model_dump(mode="json") == fresh.project.model_dump(mode="json")


def test_any_change_to_what_the_load_saw_is_a_miss(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:${TAG:-1}\n")
    opts = LoadOptions(project_name="pc")

    def image() -> str | None:
        return project_cache.load(opts).project.services["web"].image

    assert image() == "nginx:1"
    assert project_cache._replay(project_cache.key_for(opts) or "") is not None
    (tmp_path / ".env").write_text("TAG=2\n")  # a file the load looked for, absent before
    assert project_cache._replay(project_cache.key_for(opts) or "") is None
    assert image() == "nginx:2"
    (tmp_path / ".env").write_text("TAG=3\n")  # a file it read
    assert image() == "nginx:3"
    monkeypatch.setenv("TAG", "4")  # the environment
    assert image() == "nginx:4"
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    image: httpd\n")
    assert image() == "httpd"
    assert image() == "httpd"
    assert project_cache.load(LoadOptions(project_name="other")).project.name == "other"


def test_turned_off_stdin_and_caller_environments_are_never_kept(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    assert project_cache.key_for(LoadOptions(files=["-"])) is None
    assert project_cache.key_for(LoadOptions(environ={})) is None
    assert project_cache.key_for(LoadOptions(cwd=str(tmp_path))) is None
    monkeypatch.setenv("COMPOUND_NO_CONFIG_CACHE", "1")
    assert project_cache.key_for(LoadOptions()) is None
    project_cache.load(LoadOptions())
    assert _entries(cache) == []


def test_a_damaged_or_foreign_entry_is_a_miss_and_is_replaced(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    opts = LoadOptions(project_name="pc")
    project_cache.load(opts)
    (entry,) = _entries(cache)
    key = project_cache.key_for(opts) or ""
    entry.write_bytes(entry.read_bytes()[:-20])  # truncated
    assert project_cache._replay(key) is None
    assert project_cache.load(opts).project.services["web"].image == "nginx"
    assert project_cache._replay(key) is not None
    entry.chmod(0o620)  # someone else could have written it: never unpickled
    assert project_cache._replay(key) is None
    entry.chmod(0o600)
    with entry.open("wb") as fh:  # well-formed, but not a load's answer
        pickle.dump({"reads": {}, "pydantic": "0"}, fh)
        pickle.dump("not a project", fh)
    assert project_cache._replay(key) is None
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


def test_only_the_newest_projects_are_kept(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    monkeypatch.setattr(project_cache, "KEEP", 3)
    for i in range(5):
        project_cache.load(LoadOptions(project_name=f"pc{i}"))
    assert len(_entries(cache)) == 3


CODE = "from compound.cli.entry import run; run()"


def _run(cwd: Path, *args: str) -> tuple[str, set[str]]:
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write('\\nMODULES ' + ' '.join(sys.modules)))\n" + CODE
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "DOCKER_HOST": "unix:///nonexistent"},
    )
    modules = set(r.stderr.rpartition("MODULES ")[2].split())
    return r.stdout, modules


def test_a_kept_project_imports_no_loader_and_no_yaml(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    _, modules = _run(tmp_path, "-p", "pc", "config", "--services")
    assert "compound.spec.loader" in modules
    out, modules = _run(tmp_path, "-p", "pc", "config", "--json")
    assert '"web"' in out
    # another command line: config's cache misses, the project is kept
    assert "compound.cli.main" in modules
    assert "compound.spec.loader" not in modules and "yaml" not in modules


def test_config_from_a_kept_project_is_still_refreshed_by_an_edit(tmp_path: Path) -> None:
    # `config` answered through a kept project must still record what the load
    # read, or its own cache would answer with the old file after an edit
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1\n")
    _run(tmp_path, "-p", "pc", "config", "--services")  # keeps the project
    out, _ = _run(tmp_path, "-p", "pc", "config")  # from the kept project
    assert "nginx:1" in out
    out, modules = _run(tmp_path, "-p", "pc", "config")
    assert "nginx:1" in out and "compound.cli.main" not in modules  # config's own cache
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:2\n")
    out, _ = _run(tmp_path, "-p", "pc", "config")
    assert "nginx:2" in out
