"""The reconciler: one module per verb, behind the Session façade.

session.py         the façade the CLI calls
snapshot.py        the one read of the engine planning needs
up.py, down.py, rollback.py, wait.py, drift.py, prepare.py   the verbs
apply.py, rolling.py, health.py, frontends.py               how up carries a plan out
project_engine.py  the engine the verbs need (a protocol); docker_engine.py: the real one
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from compound.lazy import exports

if TYPE_CHECKING:
    from .session import Session
    from .up import UpOutcome

__all__ = ["Session", "UpOutcome"]

# resolved on first use (PEP 562): `from compound.reconcile import hooks` or
# `... import views` must not import every verb first
_HOMES = {"Session": ".session", "UpOutcome": ".up"}


__getattr__ = exports(__name__, _HOMES)
