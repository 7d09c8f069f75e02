"""Discovery, .env, project naming, warnings: load_project end to end."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from compound.errors import SpecError, SpecErrors, UsageError
from compound.spec import LoadOptions, load_project
from compound.spec.discovery import discover
from compound.spec.naming import is_valid_project_name, normalize_project_name

from .spec_helpers import Loader, write

SIMPLE = "services:\n  web:\n    image: nginx\n"


# --- discovery -------------------------------------------------------------


def test_discovers_compose_yaml_and_override(load: Loader, project_dir: Path) -> None:
    write(project_dir, "compose.yaml", SIMPLE)
    write(project_dir, "compose.override.yaml", "services:\n  web:\n    image: nginx:2\n")
    project = load().project
    assert project.files == (
        str(project_dir / "compose.yaml"),
        str(project_dir / "compose.override.yaml"),
    )
    assert project.services["web"].image == "nginx:2"


def test_override_not_added_when_files_given(load: Loader, project_dir: Path) -> None:
    write(project_dir, "compose.yaml", SIMPLE)
    write(project_dir, "compose.override.yaml", "services:\n  web:\n    image: nginx:2\n")
    assert load(files=["compose.yaml"]).project.services["web"].image == "nginx"


def test_discovers_in_parent_directory(load: Loader, project_dir: Path) -> None:
    write(project_dir, "docker-compose.yml", SIMPLE)
    sub = project_dir / "a" / "b"
    sub.mkdir(parents=True)
    project = load(cwd=str(sub)).project
    assert project.working_dir == str(project_dir)
    assert project.name == "myapp"


def test_prefers_compose_yaml_and_warns_about_several(load: Loader, project_dir: Path) -> None:
    write(project_dir, "compose.yaml", SIMPLE)
    write(project_dir, "docker-compose.yml", "services:\n  other:\n    image: x\n")
    result = load()
    assert list(result.project.services) == ["web"]
    assert any("multiple config files" in w for w in result.warnings)


def test_no_file_found(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError) as info:
        discover(str(empty), lambda _m: None)
    assert f"no compose file found in {empty} or its parents" in info.value.message
    assert "compose.yaml" in info.value.message
    assert "-f" in (info.value.hint or "")


def test_compose_file_env(load: Loader, project_dir: Path) -> None:
    write(project_dir, "one.yaml", SIMPLE)
    write(project_dir, "two.yaml", "services:\n  web:\n    restart: always\n")
    project = load(env={"COMPOSE_FILE": "one.yaml:two.yaml"}).project
    assert project.services["web"].restart == "always"
    project = load(env={"COMPOSE_FILE": "one.yaml;two.yaml", "COMPOSE_PATH_SEPARATOR": ";"}).project
    assert len(project.files) == 2


def test_missing_file_is_a_usage_error(load: Loader) -> None:
    with pytest.raises(UsageError, match="compose file not found"):
        load(files=["nope.yaml"])


def test_stdin(load: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SIMPLE))
    assert load(files=["-"]).project.services["web"].image == "nginx"


def test_project_directory_option(load: Loader, project_dir: Path, tmp_path: Path) -> None:
    write(project_dir, "compose.yaml", "services:\n  web:\n    image: x\n    volumes: ['./d:/d']\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    write(other, ".env", "X=1\n")
    project = load(files=[str(project_dir / "compose.yaml")], project_directory=str(other)).project
    assert project.working_dir == str(other)
    assert project.name == "elsewhere"
    assert project.services["web"].volumes[0].source == str(other / "d")


# --- .env and environment ------------------------------------------------------------


def test_dotenv_is_read_and_process_environment_wins(load: Loader, project_dir: Path) -> None:
    write(project_dir, ".env", "TAG=from-dotenv\nOTHER=dot\n")
    text = "services:\n  web:\n    image: nginx:${TAG}\n    environment: [O=$OTHER]\n"
    assert load(text).project.services["web"].image == "nginx:from-dotenv"
    project = load(text, env={"TAG": "from-env"}).project
    assert project.services["web"].image == "nginx:from-env"
    assert project.services["web"].environment == {"O": "dot"}
    assert project.environment == {"TAG": "from-env", "OTHER": "dot"}


def test_env_file_option_replaces_dotenv(load: Loader, project_dir: Path) -> None:
    write(project_dir, ".env", "TAG=dotenv\n")
    write(project_dir, "prod.env", "TAG=prod\n")
    write(project_dir, "extra.env", "TAG=extra\nMORE=yes\n")
    text = "services:\n  web:\n    image: nginx:${TAG}-${MORE:-no}\n"
    project = load(text, env_files=["prod.env", "extra.env"]).project
    assert project.services["web"].image == "nginx:prod-yes"  # the first file wins a key
    with pytest.raises(UsageError, match="env file not found"):
        load(text, env_files=["missing.env"])


def test_dotenv_can_set_project_name_profiles_and_files(load: Loader, project_dir: Path) -> None:
    write(
        project_dir,
        "main.yaml",
        "services:\n  web: {image: x}\n  dbg: {image: y, profiles: [debug]}\n",
    )
    write(
        project_dir,
        ".env",
        "COMPOSE_PROJECT_NAME=fromenv\nCOMPOSE_PROFILES=debug\nCOMPOSE_FILE=main.yaml\n",
    )
    project = load().project
    assert project.name == "fromenv"
    assert list(project.services) == ["web", "dbg"]


def test_dotenv_errors_are_located(load: Loader, project_dir: Path) -> None:
    write(project_dir, ".env", "OK=1\nNOT VALID\n")
    with pytest.raises(SpecError) as info:
        load(SIMPLE)
    assert info.value.location.line == 2
    assert info.value.location.file and info.value.location.file.endswith(".env")


def test_compose_project_name_is_available_to_interpolation(load: Loader) -> None:
    project = load(
        "services:\n  web:\n    image: x\n    hostname: ${COMPOSE_PROJECT_NAME}-web\n"
    ).project
    assert project.services["web"].hostname == "myapp-web"


def test_unset_variable_warning(load: Loader) -> None:
    result = load("services:\n  web:\n    image: nginx:${TAG}\n    labels: [a=$TAG]\n")
    assert result.project.services["web"].image == "nginx:"
    assert result.warnings == ("the TAG variable is not set. Defaulting to a blank string.",)


# --- project name -------------------------------------------------------------------


def test_project_name_precedence(load: Loader, project_dir: Path) -> None:
    text = "name: ${FILE_NAME:-fromfile}\nservices:\n  web: {image: x}\n"
    assert load(text).project.name == "fromfile"
    assert load(text, env={"COMPOSE_PROJECT_NAME": "envname"}).project.name == "envname"
    assert (
        load(text, env={"COMPOSE_PROJECT_NAME": "envname"}, project_name="flag").project.name
        == "flag"
    )
    assert load(SIMPLE).project.name == "myapp"


def test_name_in_file_is_normalised_with_a_warning(load: Loader) -> None:
    result = load("name: My Shop!\nservices:\n  web: {image: x}\n")
    assert result.project.name == "myshop"
    assert any("normalised" in w for w in result.warnings)


def test_invalid_explicit_name_is_a_usage_error(load: Loader) -> None:
    with pytest.raises(UsageError) as info:
        load(SIMPLE, project_name="My App")
    assert "invalid project name 'My App'" in info.value.message
    assert info.value.hint == "try 'myapp'"
    with pytest.raises(UsageError, match="COMPOSE_PROJECT_NAME"):
        load(SIMPLE, env={"COMPOSE_PROJECT_NAME": "-bad"})


def test_directory_name_is_normalised(tmp_path: Path) -> None:
    directory = tmp_path / "My_Project.v2"
    directory.mkdir()
    write(directory, "compose.yaml", SIMPLE)
    project = load_project(LoadOptions(cwd=str(directory), environ={}))
    assert project.project.name == "my_projectv2"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("MyApp", "myapp"),
        ("my app", "myapp"),
        ("__x-y", "x-y"),
        ("a.b", "ab"),
        ("___", ""),
        ("9lives", "9lives"),
    ],
)
def test_normalize_project_name(raw: str, normal: str) -> None:
    assert normalize_project_name(raw) == normal
    assert is_valid_project_name(normal) == bool(normal)


def test_engine_names(load: Loader) -> None:
    project = load(
        """
services:
  web: {image: x, volumes: [data:/d, ext:/e], networks: [front, ext]}
networks:
  front: {}
  ext: {external: true}
  named: {name: custom}
volumes:
  data: {}
  ext: {external: {name: legacy}}
  named: {name: "vol-${COMPOSE_PROJECT_NAME}"}
"""
    ).project
    assert project.networks["front"].name == "myapp_front"
    assert project.networks["ext"].name == "ext"
    assert project.networks["named"].name == "custom"
    assert project.volumes["data"].name == "myapp_data"
    assert project.volumes["ext"].name == "legacy" and project.volumes["ext"].external
    assert project.volumes["named"].name == "vol-myapp"


# --- structure and warnings ------------------------------------------------------------


def test_version_is_obsolete_but_accepted(load: Loader) -> None:
    result = load('version: "3.9"\n' + SIMPLE)
    assert any("`version` is obsolete" in w for w in result.warnings)


def test_empty_sections_are_allowed(load: Loader) -> None:
    project = load("services:\n  web: {image: x}\nvolumes:\nnetworks:\n").project
    assert project.volumes == {}


def test_top_level_extensions_kept(load: Loader) -> None:
    project = load("x-meta: {owner: me}\n" + SIMPLE).project
    assert project.extensions == {"x-meta": {"owner": "me"}}


def test_errors_come_sorted_by_position(load_error: Callable[..., list[SpecError]]) -> None:
    errors = load_error(
        """
services:
  b:
    image: x
    enviroment: {}
  a:
    imag: x
    ports: 12
"""
    )
    assert [(e.location.line, e.location.path) for e in errors] == [
        (4, "services.b.enviroment"),
        (6, "services.a.imag"),
        (7, "services.a.ports"),
    ]


def test_render_of_spec_errors(load: Loader) -> None:
    with pytest.raises(SpecErrors) as info:
        load("services:\n  web:\n    image: x\n    enviroment: {}\n")
    assert info.value.render() == (
        "compose.yaml:4:5: services.web.enviroment: unknown key 'enviroment'\n"
        "  hint: did you mean 'environment'?"
    )
