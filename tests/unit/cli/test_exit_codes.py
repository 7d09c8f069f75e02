"""The CLI's error policy, without an engine: exit codes and no tracebacks."""

from pathlib import Path

import pytest

from compound.cli.main import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_usage_errors_exit_2(capsys, tmp_path: Path):
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: x}\n")
    f = str(tmp_path / "compose.yaml")
    code, out = _run(capsys, "-f", f, "up", "--force-recreate", "--no-recreate")
    assert code == 2 and "cannot be combined" in out
    code, out = _run(capsys, "--progress", "sideways", "-f", f, "config")
    assert code == 2
    code, out = _run(capsys, "-f", f, "no-such-command")
    assert code == 2


def test_missing_file_is_a_clear_error(capsys, tmp_path: Path):
    code, out = _run(capsys, "-f", str(tmp_path / "nope.yaml"), "config")
    assert code in (1, 2) and "nope.yaml" in out and "Traceback" not in out


def test_bad_file_exit_1_with_location(capsys, tmp_path: Path):
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x\n    portz: [1]\n")
    code, out = _run(capsys, "-f", str(tmp_path / "compose.yaml"), "config")
    assert code == 1
    assert ":4:5: services.a.portz: unknown key 'portz'" in out
    assert "did you mean 'ports'?" in out


def test_config_json_and_services(capsys, tmp_path: Path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  b: {image: x}\n  a:\n    image: y\n    x-compound: {runtime: vm}\n"
    )
    f = str(tmp_path / "compose.yaml")
    code, out = _run(capsys, "-f", f, "config", "--services")
    assert code == 0 and out.split() == ["a", "b"]
    code, out = _run(capsys, "-f", f, "-p", "demo", "config", "--json")
    assert code == 0 and '"x-compound"' in out and '"name": "demo"' in out


def test_version_works_without_a_file(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = _run(capsys, "version", "--short")
    assert code == 0 and out.strip() == "0.1.0"


@pytest.mark.parametrize("line", [100, 1234])
def test_errors_render_line_numbers_verbatim(capsys, tmp_path: Path, line: int) -> None:
    # ":100:" and ":1234:" are emoji codes to a renderer that interprets them
    padding = "".join(f"# {i}\n" for i in range(line - 4))
    (tmp_path / "compose.yaml").write_text(
        padding + "services:\n  a:\n    image: x\n    portz: [1]\n"
    )
    code, out = _run(capsys, "-f", str(tmp_path / "compose.yaml"), "config")
    assert code == 1
    assert f":{line}:5: services.a.portz: unknown key 'portz'" in out, out
    assert "\U0001f4af" not in out and "\U0001f522" not in out


def test_user_text_with_markup_is_printed_verbatim(capsys, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  '[bold]a:smile:':\n    image: x\n")
    code, out = _run(capsys, "-f", str(tmp_path / "compose.yaml"), "config")
    assert code == 1
    assert "[bold]a:smile:" in out, out
