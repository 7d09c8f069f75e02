"""A fast start is a matter of what is imported: `--version` and `--help`
import no engine client, no pydantic, no jsonschema, no YAML, no rich;
`config` of a valid file no engine client and no jsonschema; `ps` none of the
planner, the verbs, the advisor or the load balancer; `up --swarm` none of
the single-host reconciler. Checked in a fresh interpreter (sys.modules),
never by timing. bench/cli_start.py has the figures."""

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


def _fresh_modules(code: str, cwd: Path) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )
    return set(json.loads(r.stdout.splitlines()[-1]))


# what `up`, `down`, `rollback`, `diff` and `advise` need, and `ps` does not
SINGLE_HOST_WRITERS = (
    "compound.planner",
    "compound.advisor",
    "compound.placement",
    "compound.hostfacts",
    "compound.lb",
    "compound.reconcile.up",
    "compound.reconcile.down",
    "compound.reconcile.rollback",
    "compound.reconcile.rolling",
    "compound.reconcile.apply",
    "compound.reconcile.drift",
    "compound.reconcile.frontends",
    "compound.runtimes.images",
)


def test_ps_imports_no_planner_verbs_advisor_or_load_balancer(tmp_path: Path) -> None:
    # the modules `compound ps` runs (a module-level check: no engine needed)
    modules = _fresh_modules(
        "import compound.cli.inspect_cmds, compound.reconcile.session, compound.reconcile.views",
        tmp_path,
    )
    assert "compound.reconcile.session" in modules
    assert _loaded(modules, SINGLE_HOST_WRITERS) == []


def test_atomic_writes_do_not_import_the_driver_interface(tmp_path: Path) -> None:
    # hosts/ writes its records with runtimes.hostops on the Swarm path
    modules = _fresh_modules("import compound.runtimes.hostops", tmp_path)
    assert _loaded(modules, ("compound.runtimes.base", "pydantic", "docker")) == []


def test_up_swarm_imports_no_single_host_machinery(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    probe = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules))))\n"
        "from compound.cli.entry import run; run()"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, "-p", "probe", "up", "--swarm"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    # no Swarm formed: it stops at its first question to the manager, after
    # everything it imports and loads before that
    assert r.returncode == 1 and "no Swarm formed yet" in r.stderr, r.stderr
    modules = set(json.loads(r.stdout.splitlines()[-1]))
    assert "compound.hosts.deploy" in modules
    heavy = (
        "compound.reconcile",
        "compound.planner",
        "compound.lb",
        "compound.runtimes.vm",
        "compound.runtimes.container",
        "jsonschema",
    )
    assert _loaded(modules, heavy) == []
