"""The import contracts (pyproject.toml [tool.importlinter]) hold, and the
check really fails on a violation of each: lint-imports run on a copy of
the package with one added (an upward import, a private module from another
package, the Docker SDK outside the engine layer and the runtimes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # the copy comes first on the path, ahead of the installed (editable) package
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "compound", tmp_path / "compound")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_hold(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    units = tree / "compound" / "spec" / "units.py"
    upward = "\nfrom compound.reconcile import session as _up  # noqa\n"
    units.write_text(units.read_text() + upward)
    result = _lint(tree)
    assert result.returncode != 0
    assert "compound.spec is not allowed to import compound.reconcile" in result.stdout
    assert "compound.spec.units -> compound.reconcile.session" in result.stdout


def test_a_private_module_imported_from_another_package_breaks_its_contract(
    tmp_path: Path,
) -> None:
    tree = _copy(tmp_path)
    main = tree / "compound" / "cli" / "main.py"
    main.write_text(main.read_text() + "\nfrom compound.runtimes.vm import _util as _p  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "compound.cli is not allowed to import compound.runtimes.vm._util" in result.stdout


def test_the_docker_sdk_imported_outside_the_engine_layer_breaks_its_contract(
    tmp_path: Path,
) -> None:
    tree = _copy(tmp_path)
    balancer = tree / "compound" / "lb" / "balancer.py"
    balancer.write_text(balancer.read_text() + "\nimport docker.errors as _sdk  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "compound.lb is not allowed to import docker" in result.stdout
    assert "compound.lb.balancer -> docker" in result.stdout
    # only that import: the engine layer and the drivers may import the SDK
    assert "Contracts: 2 kept, 1 broken." in result.stdout
    assert result.stdout.count(" -> docker") == 1
