"""What the normalisation steps share: project facts, the environment, error sinks."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from pydantic import ValidationError

from compound.errors import Location

from .nodes import Locator, Path, Problems, render_path


class Invalid(Exception):
    """One bad value; caught per field so that every problem gets reported."""

    def __init__(self, path: Path, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


def invalid(path: Path, message: str, hint: str | None = None) -> NoReturn:
    raise Invalid(path, message, hint)


@dataclass
class Context:
    project: str
    working_dir: str
    env: Mapping[str, str]  # process environment + .env (process wins)
    locate: Locator
    problems: Problems
    warn_text: Callable[[str], None]
    used_env: dict[str, str] = field(default_factory=dict)

    def lookup(self, name: str) -> str | None:
        """A project variable, remembered as used when set."""
        value = self.env.get(name)
        if value is not None:
            self.used_env[name] = value
        return value

    def warn(self, path: Path, message: str) -> None:
        loc: Location = self.locate(path)
        self.warn_text(f"{loc.render()}: {render_path(path)}: {message}")

    def report(self, exc: Invalid) -> None:
        self.problems.add(exc.path, exc.message, exc.hint)

    def host_path(self, path: str) -> str:
        """A host path made absolute against the project directory, ``~`` expanded."""
        home = self.env.get("HOME") or os.path.expanduser("~")
        if path == "~" or path.startswith("~/"):
            path = home + path[1:]
        return os.path.normpath(os.path.join(self.working_dir, path))

    def guarded(self, path: Path, fn: Callable[[], Any]) -> Any:
        """``fn()``, or None after recording why it failed."""
        try:
            return fn()
        except Invalid as exc:
            self.report(exc)
        except ValidationError as exc:  # a value the model refuses: say which one
            first = exc.errors()[0]
            where = (*path, *(p for p in first["loc"] if isinstance(p, str | int)))
            self.problems.add(where, f"invalid value: {first['msg']}")
        return None
