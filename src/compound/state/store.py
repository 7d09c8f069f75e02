"""SQLite store of desired state and history.

It records every ``up`` as a revision: the resolved model, the plan, the
outcome and the time. It is never asked what is running; the engines are.
One file per user (``$COMPOUND_STATE_DIR`` or ``$XDG_STATE_HOME/compound``),
WAL mode so a reader never blocks an ``up`` in progress.

``specs`` keeps each service exactly as it was deployed (environment
included, like the engine's own container configs) so a rollback can
recreate it; the file is readable by its owner only. ``model`` is the
redacted copy that ``history`` and ``config`` show.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compound.errors import StateError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    project   TEXT    NOT NULL,
    number    INTEGER NOT NULL,          -- 1, 2, 3 … within the project
    command   TEXT    NOT NULL,
    started   REAL    NOT NULL,
    finished  REAL,
    outcome   TEXT    NOT NULL,          -- running | succeeded | failed | interrupted
    model     TEXT    NOT NULL,          -- resolved project, secrets redacted
    plan      TEXT    NOT NULL,
    decisions TEXT    NOT NULL DEFAULT '{}',  -- why each service runs where it does
    result    TEXT    NOT NULL DEFAULT '{}',  -- done / failed / not started
    specs     TEXT    NOT NULL DEFAULT '{}',  -- per service: full spec, hash, image id
    UNIQUE (project, number)
);
CREATE INDEX IF NOT EXISTS revisions_project ON revisions (project, number);
"""


def default_path() -> Path:
    base = os.environ.get("COMPOUND_STATE_DIR")
    if base:
        return Path(base) / "state.db"
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "compound" / "state.db"


@dataclass(frozen=True)
class Revision:
    id: int
    project: str
    number: int
    command: str
    started: float
    finished: float | None
    outcome: str
    model: dict[str, Any]
    plan: dict[str, Any]
    decisions: dict[str, Any]
    result: dict[str, Any]
    specs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The row without the bulky model, for listings and --json."""
        return {
            "revision": self.number,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "outcome": self.outcome,
            "plan": self.plan,
            "decisions": self.decisions,
            "result": self.result,
        }


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # up's service threads look up revisions (rollback): one connection, serialised
            self._lock = threading.RLock()
            self._db = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
            self._migrate()
            with contextlib.suppress(OSError):
                self.path.chmod(0o600)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(
                f"cannot open the state store {self.path}: {exc}",
                hint="check permissions, or point COMPOUND_STATE_DIR at a writable directory",
            ) from exc

    def _migrate(self) -> None:
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(revisions)")}
        if "specs" not in columns:  # schema 1
            self._db.execute("ALTER TABLE revisions ADD COLUMN specs TEXT NOT NULL DEFAULT '{}'")
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: {exc}") from exc

    def begin(
        self,
        project: str,
        command: str,
        model: dict[str, Any],
        plan: dict[str, Any],
        decisions: dict[str, Any] | None = None,
        specs: dict[str, Any] | None = None,
    ) -> int:
        """Record a revision as running; returns its per-project number."""
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM revisions WHERE project = ?", (project,)
            ).fetchone()
            number = int(row[0])
            db.execute(
                "INSERT INTO revisions (project, number, command, started, outcome, model, plan,"
                " decisions, specs) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                (
                    project,
                    number,
                    command,
                    time.time(),
                    _dumps(model),
                    _dumps(plan),
                    _dumps(decisions or {}),
                    _dumps(specs or {}),
                ),
            )
        return number

    def finish(self, project: str, number: int, outcome: str, result: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE revisions SET finished = ?, outcome = ?, result = ?"
                " WHERE project = ? AND number = ?",
                (time.time(), outcome, _dumps(result), project, number),
            )

    def history(self, project: str, limit: int | None = None) -> list[Revision]:
        sql = "SELECT * FROM revisions WHERE project = ? ORDER BY number DESC"
        args: tuple[Any, ...] = (project,)
        if limit:
            sql += " LIMIT ?"
            args = (project, limit)
        return [self._row(r) for r in self._query(sql, args)]

    def get(self, project: str, number: int) -> Revision | None:
        rows = self._query(
            "SELECT * FROM revisions WHERE project = ? AND number = ?", (project, number)
        )
        return self._row(rows[0]) if rows else None

    def live(self, project: str) -> Revision | None:
        """The newest revision whose ``up`` succeeded: what should be running."""
        rows = self._query(
            "SELECT * FROM revisions WHERE project = ? AND outcome = 'succeeded'"
            " ORDER BY number DESC LIMIT 1",
            (project,),
        )
        return self._row(rows[0]) if rows else None

    def deployed_spec(
        self, project: str, service: str, config_hash: str
    ) -> tuple[int, dict[str, Any]] | None:
        """The newest revision that deployed ``service`` with this config hash."""
        for number, specs, _result in self.deployments(project):
            spec = specs.get(service)
            if spec and spec.get("config_hash") == config_hash:
                return number, spec
        return None

    def previous_spec(
        self, project: str, service: str, running: set[str]
    ) -> tuple[int, dict[str, Any]] | None:
        """What ``service`` ran before its current configuration: the newest
        revision that deployed it successfully with another configuration
        than the newest one still running (``running``: the instances'
        config hashes; several after a paused update)."""
        current: str | None = None
        for number, specs, result in self.deployments(project):
            spec = specs.get(service)
            if not spec:
                continue
            config_hash = spec.get("config_hash")
            if current is None:
                if config_hash in running:
                    current = config_hash
                continue
            if config_hash != current and service in result.get("done", ()):
                return number, spec
        return None

    def deployments(self, project: str) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
        """(number, specs, result) of every revision, newest first: what the
        rollback lookups need, without parsing each revision's model and plan."""
        rows = self._query(
            "SELECT number, specs, result FROM revisions WHERE project = ? ORDER BY number DESC",
            (project,),
        )
        return [(r["number"], json.loads(r["specs"]), json.loads(r["result"])) for r in rows]

    def mark_abandoned(self, project: str) -> int:
        """Revisions left 'running' by a killed compound become 'interrupted'."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE revisions SET outcome = 'interrupted', finished = COALESCE(finished, ?)"
                " WHERE project = ? AND outcome = 'running'",
                (time.time(), project),
            )
            return cur.rowcount

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            with self._lock:
                self._db.row_factory = sqlite3.Row
                return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.path}: {exc}") from exc

    @staticmethod
    def _row(r: sqlite3.Row) -> Revision:
        return Revision(
            id=r["id"],
            project=r["project"],
            number=r["number"],
            command=r["command"],
            started=r["started"],
            finished=r["finished"],
            outcome=r["outcome"],
            model=json.loads(r["model"]),
            plan=json.loads(r["plan"]),
            decisions=json.loads(r["decisions"]),
            result=json.loads(r["result"]),
            specs=json.loads(r["specs"]),
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
