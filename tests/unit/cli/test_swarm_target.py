"""A project whose file says ``x-compound: {target: swarm}``: the everyday
commands act on the Swarm, the single-host ones refuse and say why, and
``COMPOUND_TARGET`` overrides the file. No engine and no Swarm here: a
routed command reaches the Swarm code, which finds no Swarm formed."""

from pathlib import Path

import pytest

from compound.cli.main import main

SWARM_FILE = "x-compound:\n  target: swarm\nservices:\n  web: {image: local/busybox:latest}\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COMPOUND_HOSTS_DIR", str(tmp_path / "hosts"))
    monkeypatch.setenv("COMPOUND_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("COMPOUND_TARGET", raising=False)
    (tmp_path / "compose.yaml").write_text(SWARM_FILE)
    return str(tmp_path / "compose.yaml")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    "command",
    [["up", "-d"], ["down"], ["ps"], ["logs"], ["exec", "web", "true"], ["history"], ["rollback"]],
)
def test_everyday_commands_go_to_the_swarm(
    capsys: pytest.CaptureFixture[str], project: str, command: list[str]
) -> None:
    code, out = _run(capsys, "-f", project, *command)
    assert code == 1, out
    assert "no Swarm formed yet" in out and "compound swarm init" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("command", [["stop"], ["start"], ["restart"], ["top"], ["kill"]])
def test_single_host_commands_refuse_and_say_why(
    capsys: pytest.CaptureFixture[str], project: str, command: list[str]
) -> None:
    code, out = _run(capsys, "-f", project, *command)
    assert code == 2, out
    assert f"`compound {command[0]}` acts on this host's engine" in out
    assert "x-compound.target: swarm" in out and "COMPOUND_TARGET=host" in out


def test_options_the_swarm_cannot_honour_are_refused(
    capsys: pytest.CaptureFixture[str], project: str
) -> None:
    code, out = _run(capsys, "-f", project, "ps", "--quiet")
    assert code == 2 and "lists every task" in out
    code, out = _run(capsys, "-f", project, "logs", "--follow")
    assert code == 2 and "service logs -f" in out
    code, out = _run(capsys, "-f", project, "down", "-v")
    assert code == 2 and "volumes live on the nodes" in out


def test_compound_target_overrides_the_file(
    capsys: pytest.CaptureFixture[str], project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPOUND_TARGET", "host")
    code, out = _run(capsys, "-f", project, "history")
    assert code == 0 and "no revisions recorded" in out
    monkeypatch.setenv("COMPOUND_TARGET", "sky")
    code, out = _run(capsys, "-f", project, "history")
    assert code == 2 and "COMPOUND_TARGET='sky': expected host or swarm" in out


def test_a_wrong_target_in_the_file_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "compose.yaml").write_text(SWARM_FILE.replace("swarm", "cluster"))
    code, out = _run(capsys, "-f", str(tmp_path / "compose.yaml"), "config")
    assert code == 1
    assert "compose.yaml:2:3: x-compound.target: must be one of host, swarm" in out
