"""What `compound serve` did and was asked to do: the audit trail and its jobs.

Two tables beside the revisions, in the same SQLite file (owner-only,
WAL): ``audit`` (who, what, when, outcome: one row per action, written
when it is asked for and completed when it ends, so a killed server loses
no record) and ``jobs`` (an action's state and its progress events).
A server that starts again marks the jobs it did not finish
``interrupted``: their threads died with the old process.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compound.errors import StateError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    who      TEXT NOT NULL,      -- the token's name (operator | read-only)
    action   TEXT NOT NULL,      -- up, down, rollback, restart, ...
    project  TEXT NOT NULL,
    target   TEXT NOT NULL DEFAULT '',
    job      TEXT,
    outcome  TEXT NOT NULL,      -- accepted | succeeded | failed | refused | interrupted
    detail   TEXT NOT NULL DEFAULT '',
    finished REAL
);
CREATE TABLE IF NOT EXISTS jobs (
    id       TEXT PRIMARY KEY,
    project  TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL DEFAULT '',
    who      TEXT NOT NULL,
    state    TEXT NOT NULL,      -- running | succeeded | failed | interrupted
    created  REAL NOT NULL,
    finished REAL,
    result   TEXT NOT NULL DEFAULT 'null',
    error    TEXT NOT NULL DEFAULT 'null',
    events   TEXT NOT NULL DEFAULT '[]'
);
"""

UNFINISHED = ("running",)


@dataclass(frozen=True)
class JobRow:
    id: str
    project: str
    action: str
    target: str
    who: str
    state: str
    created: float
    finished: float | None
    result: Any
    error: Any
    events: list[dict[str, Any]]

    def to_json(self, *, events: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "project": self.project,
            "action": self.action,
            "target": self.target,
            "who": self.who,
            "state": self.state,
            "created": self.created,
            "finished": self.finished,
            "result": self.result,
            "error": self.error,
        }
        if events:
            data["events"] = self.events
        return data


class AuditStore:
    """Its own connection to the store's file (one writer at a time, WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(
                path, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StateError(
                f"cannot open the audit tables in {path}: {exc}",
                hint="check permissions, or point COMPOUND_STATE_DIR at a writable directory",
            ) from exc

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args).fetchall())
            except sqlite3.Error as exc:
                raise StateError(f"audit store {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- audit ---------------------------------------------------------------------

    def record(
        self,
        who: str,
        action: str,
        project: str,
        target: str = "",
        *,
        outcome: str,
        job: str | None = None,
        detail: str = "",
    ) -> int:
        finished = None if outcome == "accepted" else time.time()
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO audit (at, who, action, project, target, job, outcome, detail,"
                    " finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (time.time(), who, action, project, target, job, outcome, detail, finished),
                )
            except sqlite3.Error as exc:
                raise StateError(f"audit store {self.path}: {exc}") from exc
            return int(cur.lastrowid or 0)

    def complete(self, job: str, outcome: str, detail: str = "") -> None:
        self._run(
            "UPDATE audit SET outcome = ?, detail = ?, finished = ? WHERE job = ?",
            (outcome, detail[:2000], time.time(), job),
        )

    def audit(self, limit: int = 100, project: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE project = ?", (project,)) if project else ("", ())
        rows = self._run(f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [dict(r) for r in rows]

    # --- jobs ----------------------------------------------------------------------

    def add_job(self, job_id: str, project: str, action: str, target: str, who: str) -> None:
        self._run(
            "INSERT INTO jobs (id, project, action, target, who, state, created)"
            " VALUES (?, ?, ?, ?, ?, 'running', ?)",
            (job_id, project, action, target, who, time.time()),
        )

    def save_job(
        self,
        job_id: str,
        state: str,
        events: list[dict[str, Any]],
        result: Any = None,
        error: Any = None,
    ) -> None:
        finished = None if state in UNFINISHED else time.time()
        self._run(
            "UPDATE jobs SET state = ?, events = ?, result = ?, error = ?, finished = ?"
            " WHERE id = ?",
            (
                state,
                json.dumps(events, default=str),
                json.dumps(result, default=str),
                json.dumps(error, default=str),
                finished,
                job_id,
            ),
        )

    def job(self, job_id: str) -> JobRow | None:
        rows = self._run("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, limit: int = 100, project: str | None = None) -> list[JobRow]:
        where, args = ("WHERE project = ?", (project,)) if project else ("", ())
        rows = self._run(
            f"SELECT * FROM jobs {where} ORDER BY created DESC LIMIT ?", (*args, limit)
        )
        return [_job(r) for r in rows]

    def interrupt_unfinished(self) -> list[str]:
        """Jobs a previous server left running: their threads are gone."""
        ids = [r["id"] for r in self._run("SELECT id FROM jobs WHERE state = 'running'")]
        for job_id in ids:
            self._run(
                "UPDATE jobs SET state = 'interrupted', finished = ?, error = ? WHERE id = ?",
                (
                    time.time(),
                    json.dumps({"error": "Interrupted", "message": "the server stopped"}),
                    job_id,
                ),
            )
            self.complete(job_id, "interrupted", "the server stopped before the job ended")
        return ids


def _job(r: sqlite3.Row) -> JobRow:
    return JobRow(
        id=r["id"],
        project=r["project"],
        action=r["action"],
        target=r["target"],
        who=r["who"],
        state=r["state"],
        created=r["created"],
        finished=r["finished"],
        result=json.loads(r["result"]),
        error=json.loads(r["error"]),
        events=json.loads(r["events"]),
    )
