"""`compound config` from its cache: the same answer, and a miss whenever a
file it read, a file it looked for, the environment or the command changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CODE = "from compound.cli.entry import run; run()"


def _config(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, str, bool]:
    """stdout, stderr, and whether the answer came from the cache (the
    command line was never parsed: a project from the project cache,
    cli/project_cache.py, still runs the command)."""
    probe = (
        "import sys, atexit\n"
        "atexit.register(lambda: sys.stderr.write("
        "'LOADED\\n' if 'compound.cli.main' in sys.modules else 'CACHED\\n'))\n" + CODE
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})},
    )
    assert r.returncode == 0, r.stderr
    *err, how = r.stderr.splitlines()
    return r.stdout, "\n".join(err), how == "CACHED"


def test_a_second_config_is_answered_from_the_cache_until_an_input_changes(
    tmp_path: Path,
) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:${TAG:-1}\n")
    first, _, cached = _config(tmp_path, "-p", "cc", "config")
    assert not cached and "image: nginx:1" in first
    again, _, cached = _config(tmp_path, "-p", "cc", "config")
    assert cached and again == first

    (tmp_path / ".env").write_text("TAG=2\n")  # a file the load looked for, absent before
    out, _, cached = _config(tmp_path, "-p", "cc", "config")
    assert not cached and "image: nginx:2" in out

    out, _, cached = _config(tmp_path, "-p", "cc", "config", env={"TAG": "3"})  # the environment
    assert not cached and "image: nginx:3" in out

    (tmp_path / "compose.yaml").write_text("services:\n  api:\n    image: nginx\n")
    out, _, cached = _config(tmp_path, "-p", "cc", "config")
    assert not cached and "api:" in out

    (tmp_path / "compose.override.yaml").write_text("services:\n  api:\n    image: httpd\n")
    out, _, cached = _config(tmp_path, "-p", "cc", "config")
    assert not cached and "image: httpd" in out

    out, _, cached = _config(tmp_path, "-p", "cc", "config", "--json")  # another command line
    assert not cached and out.lstrip().startswith("{")


def test_a_config_with_warnings_is_never_cached(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx\n    credential_spec: {file: x}\n"
    )
    _, err, cached = _config(tmp_path, "-p", "cc", "config")
    assert not cached and "credential_spec" in err
    _, err, cached = _config(tmp_path, "-p", "cc", "config")
    assert not cached and "credential_spec" in err  # the warning is said every time


def test_the_cache_holds_no_more_than_its_limit(tmp_path: Path) -> None:
    from compound.cli import config_cache

    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    for i in range(3):
        _config(tmp_path, "-p", f"p{i}", "config", env={"COMPOUND_CACHE_DIR": str(tmp_path / "c")})
    assert len(os.listdir(tmp_path / "c" / "config")) == 3
    assert config_cache.KEEP >= 3
