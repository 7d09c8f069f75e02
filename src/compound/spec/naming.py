"""Project names, normalised and checked like Compose."""

from __future__ import annotations

import re

_VALID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

INVALID_NAME_HINT = (
    "a project name may contain only lowercase letters, digits, '-' and '_', "
    "and must start with a letter or digit"
)


def normalize_project_name(name: str) -> str:
    """Lowercase, keep only ``[a-z0-9_-]``, drop leading ``-``/``_`` (Compose's rule)."""
    kept = "".join(c for c in name.lower() if c in "abcdefghijklmnopqrstuvwxyz0123456789_-")
    return kept.lstrip("_-")


def is_valid_project_name(name: str) -> bool:
    return bool(_VALID.match(name))


def engine_name(project: str, key: str) -> str:
    """The engine name of a project-scoped network, volume, secret or config."""
    return f"{project}_{key}"
