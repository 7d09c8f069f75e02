"""Ctrl-C before the command runs (while the CLI's modules load) ends in one
line and exit 130, like Ctrl-C during a command."""

from __future__ import annotations

import sys
import types

import pytest

from compound.cli import entry


def test_ctrl_c_while_loading_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loading = types.ModuleType("compound.cli.main")

    def interrupted_import(name: str) -> object:  # what an import cut by SIGINT raises
        raise KeyboardInterrupt

    loading.__getattr__ = interrupted_import  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "compound.cli.main", loading)
    with pytest.raises(SystemExit) as exc:
        entry.run()
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert err == "interrupted\n"


def test_typer_interrupt_inside_a_command_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from compound.cli.main import app, main

    @app.command("interrupt-me", hidden=True)
    def _interrupt() -> None:
        raise KeyboardInterrupt

    try:
        assert main(["interrupt-me"]) == 130
    finally:
        app.registered_commands.pop()
    assert capsys.readouterr().err.strip() == "interrupted"
