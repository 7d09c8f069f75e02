"""Fixtures for the spec-layer tests: write Compose files, load them, read errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from compound.errors import SpecError, SpecErrors
from compound.spec import LoadOptions, LoadResult, load_project

from .spec_helpers import BASE_ENV, Loader, spec_errors, write


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "myapp"
    directory.mkdir()
    return directory


@pytest.fixture
def load(project_dir: Path) -> Loader:
    """``load(text, env=..., **LoadOptions fields)``: write compose.yaml and load it."""

    def run(text: str | None = None, env: Mapping[str, str] | None = None, **kw: Any) -> LoadResult:
        if text is not None:
            write(project_dir, "compose.yaml", text)
        environ = {**BASE_ENV, **(env or {})}
        kw.setdefault("cwd", str(project_dir))
        return load_project(LoadOptions(environ=environ, **kw))

    return run


@pytest.fixture
def load_error(load: Loader) -> Callable[..., list[SpecError]]:
    """Like ``load`` but expects failure; returns the SpecErrors as a list."""

    def run(text: str | None = None, **kw: Any) -> list[SpecError]:
        with pytest.raises((SpecError, SpecErrors)) as info:
            load(text, **kw)
        raised = info.value
        assert isinstance(raised, SpecError | SpecErrors)
        return spec_errors(raised)

    return run
