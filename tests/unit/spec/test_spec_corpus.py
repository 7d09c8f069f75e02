"""The corpus: every invalid file fails with the error its first line announces,
every valid file loads, and its resolved form loads again to the same project."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from compound.errors import CompoundError, SpecError, SpecErrors
from compound.spec import LoadOptions, LoadResult, load_project, to_compose_dict

CORPUS = Path(__file__).parent.parent / "corpus"
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
ENV = {"HOME": "/home/tester", "API_TOKEN": "tok-123", "USER_NAME": "ann"}

# `# expect: LINE:COL PATH: MESSAGE [| HINT]`; `-:-` when the error has no position
EXPECT = re.compile(
    r"^# expect: (?P<line>\d+|-):(?P<col>\d+|-) (?P<path>.*?): (?P<message>.*?)"
    r"(?: \| (?P<hint>.*))?$"
)


def test_corpus_is_big_enough() -> None:
    assert len(INVALID) >= 25
    assert len(VALID) >= 5


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_file_reports_expected_error(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    m = EXPECT.match(first)
    assert m, f"{path.name}: first line must be '# expect: L:C path: message [| hint]'"
    with pytest.raises((SpecError, SpecErrors)) as info:
        load_project(LoadOptions(files=[path.name], cwd=str(path.parent), environ=dict(ENV)))
    raised = info.value
    assert isinstance(raised, SpecError | SpecErrors)
    errors = raised.errors if isinstance(raised, SpecErrors) else [raised]
    assert len(errors) == 1, [e.render() for e in errors]
    error = errors[0]
    loc = error.location
    assert loc.file == path.name
    assert str(loc.line if loc.line is not None else "-") == m["line"], error.render()
    assert str(loc.column if loc.column is not None else "-") == m["col"], error.render()
    assert loc.path == m["path"], error.render()
    assert m["message"] in error.message, error.render()
    if m["hint"]:
        assert error.hint and m["hint"] in error.hint, error.render()


def _load_valid(path: Path, cwd: Path | None = None, file: str | None = None) -> LoadResult:
    return load_project(
        LoadOptions(
            files=[file or path.name],
            cwd=str(cwd or path.parent),
            environ=dict(ENV),
            profiles=["*"],
        )
    )


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_file_loads(path: Path) -> None:
    result = _load_valid(path)
    assert result.project.services


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_resolved_form_loads_to_the_same_project(path: Path, tmp_path: Path) -> None:
    project = _load_valid(path).project
    resolved = to_compose_dict(project)
    # written next to the original so that the project directory is the same
    out = path.parent / f".roundtrip-{os.getpid()}-{path.stem}.yml"
    try:
        out.write_text(yaml.safe_dump(resolved, sort_keys=False))
        again = _load_valid(path, file=out.name).project
    finally:
        out.unlink(missing_ok=True)
    ignore = {"files", "environment"}
    assert again.model_dump(exclude=ignore) == project.model_dump(exclude=ignore)
    # and the output is stable
    assert to_compose_dict(again) == resolved


def test_environment_secret_never_printed() -> None:
    project = _load_valid(CORPUS / "valid" / "everything.yaml").project
    assert project.secrets["api_token"].content == "tok-123"
    dumped = yaml.safe_dump(to_compose_dict(project))
    assert "tok-123" not in dumped
    assert "API_TOKEN" in dumped


def test_corpus_errors_are_compound_errors() -> None:
    for path in INVALID:
        try:
            load_project(LoadOptions(files=[path.name], cwd=str(path.parent), environ=dict(ENV)))
        except CompoundError:
            continue
        raise AssertionError(f"{path.name} loaded")
