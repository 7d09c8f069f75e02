"""The fast schema check answers as jsonschema does: on every document the
loader validates for the corpus, the examples and 600 fuzzed mutants of them
(a wrong "valid" would hide an error; a wrong "invalid" only costs time)."""

from __future__ import annotations

import contextlib
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from compound.errors import CompoundError
from compound.spec import LoadOptions, load_project, validate
from compound.spec.fastvalid import FastValidator, Unsupported
from compound.spec.schema import compose_schema
from tests.fuzz.mutate import ROOT, mutate, seeds


def _documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    real = validate.validate_document

    def spy(data: dict[str, Any], locate: Any) -> Any:
        seen.append(data)
        return real(data, locate)

    monkeypatch.setattr("compound.spec.loader.validate_document", spy)
    rng = random.Random(16)
    sources = [(p, p.read_text()) for p in seeds()]
    for n in range(600 + len(sources)):
        origin, text = sources[n % len(sources)]
        case = tmp_path / f"m{n % 20}"
        if not case.exists():
            case.mkdir()
            files = origin.parent / "files"
            if files.is_dir():
                shutil.copytree(files, case / "files")
        (case / "compose.yaml").write_text(text if n < len(sources) else mutate(text, rng))
        with contextlib.suppress(CompoundError):
            load_project(LoadOptions(files=["compose.yaml"], cwd=str(case), environ={}))
    return seen


def test_fast_check_agrees_with_jsonschema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jsonschema import Draft201909Validator

    documents = _documents(tmp_path, monkeypatch)
    slow = Draft201909Validator(compose_schema())
    fast = FastValidator(compose_schema())
    verdicts = {True: 0, False: 0}
    for doc in documents:
        try:
            answer = fast.is_valid(doc)
        except Unsupported:
            continue
        assert answer == slow.is_valid(doc), doc
        verdicts[answer] += 1
    # both verdicts were exercised, on most of the documents
    assert verdicts[True] >= 20 and verdicts[False] >= 20, verdicts
    assert sum(verdicts.values()) >= 0.9 * len(documents)


def test_every_keyword_of_the_schema_is_understood() -> None:
    # the modernised schema itself never sends a document to the slow path
    assert FastValidator(compose_schema()).is_valid({"services": {"a": {"image": "x"}}})
    assert ROOT.is_dir()


def test_invalid_cases() -> None:
    fast = FastValidator(compose_schema())
    assert not fast.is_valid({"services": {"a": {"image": 3}}})
    assert not fast.is_valid({"services": {"a": {"enviroment": {}}}})
    assert not fast.is_valid({"services": {"a": {"ports": ["80", "80"]}}})
    assert not fast.is_valid({"services": {"a": {"cpu_count": True}}})
