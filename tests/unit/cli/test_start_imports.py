"""A fast start is a matter of what is imported: `--version` and `--help`
import no engine client, no pydantic, no jsonschema, no YAML, no rich, and
`config` of a valid file no engine client and no jsonschema. Checked in a
fresh interpreter (sys.modules), never by timing. bench/cli_start.py has the
figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("docker", "requests", "pydantic", "jsonschema", "yaml", "rich", "compound.reconcile")
PROBE = """
import contextlib, io, json, sys
from compound.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _imports(args: list[str], cwd: Path) -> tuple[int, set[str]]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )
    out = json.loads(r.stdout.splitlines()[-1])
    return out["code"], set(out["modules"])


def _loaded(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["config", "--help"]])
def test_version_and_help_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    code, modules = _imports(args, tmp_path)
    assert code == 0
    assert _loaded(modules, HEAVY) == []
    assert "compound.cli.lifecycle" not in modules or args == ["--help"]


def test_config_imports_no_engine_client_and_no_jsonschema(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    code, modules = _imports(["-p", "probe", "config"], tmp_path)
    assert code == 0
    engine = ("docker", "requests", "jsonschema", "rich", "compound.reconcile")
    assert _loaded(modules, engine) == []
    # only the module that defines `config` was imported
    assert "compound.cli.inspect_cmds" in modules
    assert "compound.cli.lifecycle" not in modules


def test_an_invalid_file_is_still_explained(tmp_path: Path) -> None:
    # the fast schema check said no: jsonschema explains where and why
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    prots: []\n")
    r = subprocess.run(
        [sys.executable, "-m", "compound.cli.main", "-p", "probe", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1
    assert "compose.yaml:4" in r.stderr and "'prots'" in r.stderr, r.stderr
