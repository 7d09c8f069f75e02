"""The store: every `up` and `rollback` as a revision (SQLite)."""

from __future__ import annotations

from .store import Revision, Store

__all__ = ["Revision", "Store"]
