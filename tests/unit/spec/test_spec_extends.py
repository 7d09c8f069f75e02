"""extends: same file, other file, paths, cycles, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from compound.errors import SpecError
from compound.spec.model import Dependency

from .spec_helpers import Loader, write


def test_extends_in_same_file_merges_fields(load: Loader) -> None:
    project = load(
        """
        services:
          base:
            image: app:1
            environment: {A: "1", B: "2"}
            command: [serve]
            ports: ["80:80"]
          web:
            extends: base
            environment: {B: two}
            command: [serve, --debug]
            ports: ["443:443"]
          worker:
            extends: {service: web}
            command: [work]
        """
    ).project
    web = project.services["web"]
    assert web.image == "app:1"
    assert web.environment == {"A": "1", "B": "two"}
    assert web.command == ("serve", "--debug")
    assert [p.target for p in web.ports] == [80, 443]
    worker = project.services["worker"]
    assert worker.environment == {"A": "1", "B": "two"}
    assert worker.command == ("work",)


def test_extends_other_file_paths_relative_to_that_file(load: Loader, project_dir: Path) -> None:
    write(
        project_dir,
        "shared/common.yaml",
        """
        services:
          root:
            image: base:1
            volumes: ["./html:/html:ro", "named:/named"]
            env_file: ./common.env
            build: ./ctx
          mid:
            extends: root
            labels: {from: mid}
        """,
    )
    write(project_dir, "shared/common.env", "FROM_FILE=yes\n")
    project = load(
        """
        services:
          web:
            extends:
              file: ./shared/common.yaml
              service: mid
            volumes: ["./local:/local"]
        volumes:
          named: {}
        """
    ).project
    web = project.services["web"]
    shared = project_dir / "shared"
    assert web.image == "base:1"
    assert web.labels == {"from": "mid"}
    assert [(v.source, v.target) for v in web.volumes] == [
        (str(shared / "html"), "/html"),
        ("named", "/named"),
        (str(project_dir / "local"), "/local"),
    ]
    assert web.environment == {"FROM_FILE": "yes"}
    assert web.build is not None and web.build.context == str(shared / "ctx")


def test_extends_keeps_depends_on(load: Loader) -> None:
    project = load(
        """
        services:
          db: {image: db}
          base: {image: x, depends_on: [db]}
          web: {extends: base}
        """
    ).project
    assert project.services["web"].depends_on == {"db": Dependency()}


def test_extends_unknown_service(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services:\n  base: {image: x}\n  web:\n    extends: bsae\n")
    assert "there is no service 'bsae'" in error.message
    assert error.hint == "did you mean 'base'?"
    assert (error.location.line, error.location.path) == (4, "services.web.extends")


def test_extends_missing_file(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services:\n  web:\n    extends: {file: nope.yaml, service: x}\n")
    assert "file not found" in error.message
    assert error.location.path == "services.web.extends.file"


def test_extends_cycle_in_one_file(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error(
        """
        services:
          a: {extends: b, image: x}
          b: {extends: c}
          c: {extends: a}
        """
    )
    assert error.message == "extends cycle: a → b → c → a"


def test_extends_self(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services:\n  a: {extends: a, image: x}\n")
    assert error.message == "extends cycle: a → a"


def test_extends_cycle_across_files(
    load_error: Callable[..., list[SpecError]], project_dir: Path
) -> None:
    write(
        project_dir,
        "other.yaml",
        "services:\n  b:\n    extends: {file: compose.yaml, service: a}\n",
    )
    (error,) = load_error("services:\n  a:\n    extends: {file: other.yaml, service: b}\n")
    assert "extends cycle" in error.message
    assert "other.yaml" in error.message


def test_extends_malformed(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services:\n  web:\n    extends: {file: x.yaml}\n")
    assert "needs 'service'" in error.message
    (error,) = load_error("services:\n  web:\n    extends: 42\n")
    assert "extends must be" in error.message
