"""Top-level include: short and long forms, own directory and environment,
nesting, cycles, and conflicts reported with both locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from compound.errors import SpecError, SpecErrors
from compound.spec import LoadOptions, LoadResult, load_project, to_compose_dict


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _load(root: Path, env: dict[str, str] | None = None) -> LoadResult:
    return load_project(
        LoadOptions(files=["compose.yaml"], cwd=str(root), project_name="inc", environ=env or {})
    )


def _error(root: Path) -> SpecError:
    with pytest.raises((SpecError, SpecErrors)) as info:
        _load(root)
    raised = info.value
    errors = raised.errors if isinstance(raised, SpecErrors) else [raised]
    assert len(errors) == 1, [e.render() for e in errors]
    error = errors[0]
    assert isinstance(error, SpecError)
    return error


def test_short_form_imports_services_with_their_own_directory(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml", "include: [db/compose.yaml]\nservices:\n  web: {image: w}\n")
    _write(
        tmp_path / "db" / "compose.yaml",
        "services:\n  db:\n    build: ./image\n    volumes: ['./data:/var/lib/db']\n"
        "    env_file: db.env\nvolumes:\n  cache: {}\n",
    )
    _write(tmp_path / "db" / "db.env", "MODE=primary\n")
    project = _load(tmp_path).project
    db = project.services["db"]
    assert db.build is not None and db.build.context == str(tmp_path / "db" / "image")
    assert db.volumes[0].source == str(tmp_path / "db" / "data")
    assert db.environment == {"MODE": "primary"}
    assert set(project.services) == {"web", "db"}
    assert "cache" in to_compose_dict(project)["volumes"]


def test_long_form_project_directory_and_env_file(tmp_path: Path) -> None:
    _write(
        tmp_path / "compose.yaml",
        "include:\n  - path: [apps/a.yaml, apps/a.override.yaml]\n"
        "    project_directory: apps/root\n    env_file: apps/a.env\n",
    )
    _write(tmp_path / "apps" / "a.yaml", "services:\n  a:\n    image: ${A_IMAGE}\n")
    _write(tmp_path / "apps" / "a.override.yaml", "services:\n  a:\n    volumes: ['./x:/x']\n")
    _write(tmp_path / "apps" / "a.env", "A_IMAGE=alpha:1\n")
    a = _load(tmp_path).project.services["a"]
    assert a.image == "alpha:1"  # from the include's own env_file
    assert a.volumes[0].source == str(tmp_path / "apps" / "root" / "x")
    # the process environment wins over the include's env file
    assert _load(tmp_path, {"A_IMAGE": "beta:2"}).project.services["a"].image == "beta:2"


def test_includes_nest_and_a_cycle_is_named(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml", "include: [b/compose.yaml]\n")
    _write(
        tmp_path / "b" / "compose.yaml", "include: [../c/compose.yaml]\nservices: {b: {image: b}}\n"
    )
    _write(tmp_path / "c" / "compose.yaml", "services: {c: {image: c}}\n")
    assert set(_load(tmp_path).project.services) == {"b", "c"}
    _write(
        tmp_path / "c" / "compose.yaml", "include: [../b/compose.yaml]\nservices: {c: {image: c}}\n"
    )
    error = _error(tmp_path)
    assert "include cycle" in error.message
    assert "b/compose.yaml → c/compose.yaml → b/compose.yaml" in error.message
    assert error.location.file == "c/compose.yaml" and error.location.line == 1


def test_a_conflict_names_both_files(tmp_path: Path) -> None:
    _write(
        tmp_path / "compose.yaml",
        "include:\n  - one.yaml\n  - two.yaml\nservices:\n  web: {image: w}\n",
    )
    _write(tmp_path / "one.yaml", "services:\n  api: {image: a1}\n")
    _write(tmp_path / "two.yaml", "services:\n\n  api: {image: a2}\n")
    error = _error(tmp_path)
    assert error.location.file == "two.yaml" and error.location.line == 3
    assert "service 'api' is defined twice" in error.message and "one.yaml:2:3" in error.message
    # the including file defining an imported service: refused too, both places named
    _write(tmp_path / "two.yaml", "services:\n  other: {image: o}\n")
    _write(tmp_path / "one.yaml", "services:\n  web: {image: a1}\n")
    error = _error(tmp_path)
    assert error.location.file == "compose.yaml" and error.location.line == 5
    assert "one.yaml:2:3" in error.message


def test_a_missing_file_is_located(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml", "services: {a: {image: a}}\ninclude:\n  - nowhere.yaml\n")
    error = _error(tmp_path)
    assert "included file not found" in error.message
    assert error.location.line == 3
