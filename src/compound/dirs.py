"""Where compound keeps its per-user state: one rule for every package
(the history database, the hosts' records, the projects' SSH keys)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["state_dir", "xdg_state_dir"]


def xdg_state_dir() -> Path:
    """``$XDG_STATE_HOME/compound`` (``~/.local/state/compound`` by default)."""
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "compound"


def state_dir() -> Path:
    """``$COMPOUND_STATE_DIR``, else :func:`xdg_state_dir`."""
    base = os.environ.get("COMPOUND_STATE_DIR")
    return Path(base) if base else xdg_state_dir()
