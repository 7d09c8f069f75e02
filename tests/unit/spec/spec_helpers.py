"""Helpers shared by the spec-layer tests (imported as a plain module)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from compound.errors import SpecError, SpecErrors
from compound.spec import LoadResult

BASE_ENV = {"HOME": "/home/tester"}

Loader = Callable[..., LoadResult]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def spec_errors(exc: SpecError | SpecErrors) -> list[SpecError]:
    return list(exc.errors) if isinstance(exc, SpecErrors) else [exc]
