"""The byte progress of volume backup/restore in its three output modes."""

from __future__ import annotations

import io

from rich.console import Console

from compound.cli.render import ByteProgress, human_bytes


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=terminal, width=100), buf


def test_plain_mode_prints_each_quarter_once() -> None:
    console, buf = _console(terminal=False)
    with ByteProgress(console, "backup ledger", "auto") as bar:
        bar.total(4_000_000)
        for _ in range(40):
            bar.advance(100_000)
    lines = buf.getvalue().splitlines()
    assert lines == [
        f"  backup ledger: {human_bytes(n * 1_000_000)} of 4.0 MB" for n in (1, 2, 3, 4)
    ]


def test_quiet_mode_prints_nothing_and_unknown_totals_are_fine() -> None:
    console, buf = _console(terminal=True)
    with ByteProgress(console, "restore", "quiet") as bar:
        bar.total(None)
        bar.advance(10)
    assert buf.getvalue() == ""


def test_terminal_mode_draws_a_bar_with_bytes() -> None:
    console, buf = _console(terminal=True)
    with ByteProgress(console, "backup ledger", "auto") as bar:
        bar.total(2_000_000)
        bar.advance(2_000_000)
    out = buf.getvalue()
    assert "backup ledger" in out and "2.0/2.0 MB" in out


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (0, 999, 1500, 2_500_000, 7_200_000_000)] == [
        "0 B",
        "999 B",
        "1.5 KB",
        "2.5 MB",
        "7.2 GB",
    ]
