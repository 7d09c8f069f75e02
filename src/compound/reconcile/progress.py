"""How the reconciler reports what it is doing; the CLI decides how it looks."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def update(self, item: str, status: str, detail: str = "", *, done: bool = False) -> None:
        """``item`` is a service, network or volume label; ``done`` ends its line."""

    def fail(self, item: str, detail: str) -> None: ...

    def note(self, text: str) -> None: ...


class NullProgress:
    def update(self, item: str, status: str, detail: str = "", *, done: bool = False) -> None:
        return None

    def fail(self, item: str, detail: str) -> None:
        return None

    def note(self, text: str) -> None:
        return None
