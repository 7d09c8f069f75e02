"""Which Compose files to load when none is given with ``-f``.

Like Compose: ``COMPOSE_FILE`` first (split on ``COMPOSE_PATH_SEPARATOR`` or
the OS path separator), else the first of the standard names found in the
start directory or, failing that, its nearest parent; the matching override
file in the same directory is added after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from compound.errors import UsageError

from .files import is_file

DEFAULT_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILE_NAMES = (
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
)
STDIN = "-"


def absolute(path: str, base: str) -> str:
    """``path`` made absolute against ``base``, with ``~`` expanded."""
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def files_from_env(environ: Mapping[str, str], cwd: str) -> list[str]:
    """The files named by ``COMPOSE_FILE``, or ``[]``."""
    value = environ.get("COMPOSE_FILE", "")
    if not value:
        return []
    sep = environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
    return [absolute(p, cwd) for p in value.split(sep) if p]


def discover(start: str, warn: Callable[[str], None]) -> list[str]:
    """The standard file (and its override) nearest to ``start``; UsageError if none."""
    directory = os.path.abspath(start)
    while True:
        found = _existing(directory, DEFAULT_FILE_NAMES)
        if found:
            if len(found) > 1:
                warn(f"found multiple config files with supported names: {', '.join(found)}")
                warn(f"using {found[0]}")
            overrides = _existing(directory, OVERRIDE_FILE_NAMES)
            if len(overrides) > 1:
                warn(f"found multiple override files with supported names: {', '.join(overrides)}")
                warn(f"using {overrides[0]}")
            return [found[0], *overrides[:1]]
        parent = os.path.dirname(directory)
        if parent == directory:
            raise UsageError(
                f"no compose file found in {os.path.abspath(start)} or its parents; "
                f"looked for {', '.join(DEFAULT_FILE_NAMES)}",
                hint="use -f FILE to name the Compose file",
            )
        directory = parent


def _existing(directory: str, names: Sequence[str]) -> list[str]:
    return [os.path.join(directory, n) for n in names if is_file(os.path.join(directory, n))]
