"""Small helpers of the VM runtime: its cache layout, subprocesses that fail
with VMError, atomic publication of cache entries. The generic parts live in
``compound.runtimes.hostops`` and are re-exported here."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from compound.errors import VMError
from compound.runtimes import hostops
from compound.runtimes.hostops import atomic_write, digest, locked, sha256_file

__all__ = [
    "atomic_write",
    "default_cache_dir",
    "digest",
    "locked",
    "run",
    "sha256_file",
    "staging_dir",
]


def default_cache_dir() -> Path:
    """``$COMPOUND_CACHE_DIR/vm``, else ``$XDG_CACHE_HOME/compound/vm``,
    else ``~/.cache/compound/vm``."""
    return hostops.cache_root() / "vm"


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | str | None = None,
    what: str | None = None,
    hint: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, raise VMError on failure or timeout."""
    return hostops.run(argv, timeout=timeout, cwd=cwd, what=what, hint=hint, env=env, error=VMError)


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temp dir beside ``final``, renamed onto it on success (atomic for
    readers: an entry either exists complete or not at all)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; entries are bind-mounted into launchers
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
