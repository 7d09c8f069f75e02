"""Terminal output: live progress, tables, colours for log prefixes."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # imported where a live display is drawn: `print_json` (every --json) needs none
    from rich.console import Console, Group
    from rich.live import Live

PREFIX_COLOURS = (
    "cyan",
    "yellow",
    "green",
    "magenta",
    "blue",
    "bright_cyan",
    "bright_yellow",
    "bright_green",
    "bright_magenta",
    "bright_blue",
)


def colour_for(index: int) -> str:
    return PREFIX_COLOURS[index % len(PREFIX_COLOURS)]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


@dataclass
class _Line:
    status: str
    detail: str
    done: bool = False
    failed: bool = False
    started: float = 0.0


class LiveProgress:
    """Compose-style progress: one line per item, spinner until done.

    On a terminal it redraws in place; elsewhere (CI, pipes) it prints each
    item once when it finishes, so logs stay readable.
    """

    def __init__(self, console: Console, title: str, mode: str = "auto") -> None:
        self.console = console
        self.title = title
        tty = console.is_terminal
        self.mode = "tty" if mode == "tty" or (mode == "auto" and tty) else mode
        if self.mode == "auto":
            self.mode = "plain"
        self._lines: dict[str, _Line] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._t0 = time.monotonic()

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        if self.mode == "tty":
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=10, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(exc_type, exc, tb)

    def update(self, item: str, status: str, detail: str = "", *, done: bool = False) -> None:
        with self._lock:
            line = self._lines.get(item)
            if line is None:
                line = self._lines[item] = _Line(status, detail, started=time.monotonic())
            line.status, line.detail, line.done = status, detail, done or line.done
            self._refresh(item, line)

    def fail(self, item: str, detail: str) -> None:
        with self._lock:
            line = self._lines.setdefault(item, _Line("Error", detail, started=time.monotonic()))
            line.status, line.detail, line.done, line.failed = "Error", detail, True, True
            self._refresh(item, line)

    def note(self, text: str) -> None:
        if self.mode == "quiet":
            return
        if self._live is not None:
            self._live.console.print(f"[yellow]![/] {text}")
        else:
            self.console.print(f"! {text}", markup=False)

    def _refresh(self, item: str, line: _Line) -> None:
        if self._live is not None:
            self._live.update(self._render())
        elif self.mode == "plain" and line.done:
            mark = "✘" if line.failed else "✔"
            took = time.monotonic() - line.started
            detail = f" {line.detail}" if line.detail else ""
            self.console.print(
                f"{mark} {item:<28} {line.status}{detail} ({took:.1f}s)",
                markup=False,
                highlight=False,
            )

    def _render(self) -> Group:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        for item, line in self._lines.items():
            if line.failed:
                mark: Any = Text("✘", style="red")
            elif line.done:
                mark = Text("✔", style="green")
            else:
                mark = Spinner("dots", style="blue")
            style = "red" if line.failed else ("green" if line.done else "blue")
            table.add_row(
                mark,
                Text(item),
                Text(line.status, style=style),
                Text(line.detail, style="dim", overflow="ellipsis", no_wrap=True),
            )
        took = time.monotonic() - self._t0
        head = Text(f"[+] {self.title} {len(self._lines)} items, {took:.1f}s", style="bold")
        return Group(head, table)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class ByteProgress:
    """One transfer measured in bytes (volume backup/restore), in the modes
    of LiveProgress: a rich bar on a terminal, a line per quarter of the way
    in plain mode (CI logs), nothing when quiet. Thread-safe ``advance``."""

    def __init__(self, console: Console, title: str, mode: str = "auto") -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console, self.title = console, title
        tty = console.is_terminal
        self.mode = "tty" if mode == "tty" or (mode == "auto" and tty) else mode
        if self.mode == "auto":
            self.mode = "plain"
        self._total: int | None = None
        self._done = 0
        self._next_note = 0.25
        self._lock = threading.Lock()
        self._bar = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            if self.mode == "tty"
            else None
        )
        self._task = self._bar.add_task(title, total=None) if self._bar else None

    def __enter__(self) -> ByteProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def total(self, nbytes: int | None) -> None:
        with self._lock:
            self._total = nbytes
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=nbytes)

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._done += nbytes
            done, total = self._done, self._total
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, nbytes)
        elif self.mode == "plain" and total and done / total >= self._next_note:
            self._next_note += 0.25
            self.console.print(
                f"  {self.title}: {human_bytes(done)} of {human_bytes(total)}",
                markup=False,
                highlight=False,
            )
