"""Host-side helpers every runtime may use: the cache root, subprocesses with
timeouts, recipe digests, file locks and atomic writes."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from compound.errors import CompoundError


def cache_root() -> Path:
    """``$COMPOUND_CACHE_DIR``, else ``$XDG_CACHE_HOME/compound``, else
    ``~/.cache/compound``; each runtime keeps its own subdirectory."""
    env = os.environ.get("COMPOUND_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "compound"


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | str | None = None,
    what: str | None = None,
    hint: str | None = None,
    env: dict[str, str] | None = None,
    error: type[CompoundError] = CompoundError,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, raise ``error`` on failure or timeout."""
    label = what or argv[0]
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except FileNotFoundError as exc:
        raise error(f"{label}: {argv[0]} is not installed", hint=hint) from exc
    except subprocess.TimeoutExpired as exc:
        raise error(f"{label}: timed out after {timeout:.0f}s", hint=hint) from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise error(f"{label} failed (exit {proc.returncode}): " + " | ".join(tail), hint=hint)
    return proc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digest(obj: object) -> str:
    """Stable sha256 of a JSON-able value: the cache key of a recipe."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created), so two processes
    building the same cache entry do it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def host_is_vm() -> bool | None:
    """Whether this host is itself a VM; None when it cannot tell."""
    # x86 guests see the CPUID hypervisor bit as the "hypervisor" flag
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return " hypervisor" in line
    except OSError:
        return None
    return None
