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
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from compound.dirs import state_dir
from compound.errors import StateError

SCHEMA_VERSION = 2
_T = TypeVar("_T")


class _Retry(Exception):
    """The file was found damaged mid-transaction and replaced: run it again."""


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
    return state_dir() / "state.db"


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


def _to_stderr(message: str) -> None:
    sys.stderr.write(f"WARN {message}\n")


class Store:
    """The store. ``warn`` is told what the user should know: a damaged file
    moved aside, revisions that could not be read (each once)."""

    def __init__(
        self, path: Path | None = None, *, warn: Callable[[str], None] = _to_stderr
    ) -> None:
        self.path = path or default_path()
        self.warnings: list[str] = []
        self._warn = warn
        # up's service threads look up revisions (rollback): one connection, serialised
        self._lock = threading.RLock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise self._error(exc) from exc
            self._set_aside(exc)
            try:
                self._db = self._open()
            except (sqlite3.Error, OSError) as again:
                raise self._error(again) from again
        except OSError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> StateError:
        return StateError(
            f"cannot open the state store {self.path}: {exc}",
            hint="check permissions, or point COMPOUND_STATE_DIR at a writable directory",
        )

    def _open(self) -> sqlite3.Connection:
        # owner-only from the start: the deployed specs hold environments, and
        # SQLite gives its -wal and -shm files the database file's mode
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700)
        # Create it owner-only if it is new; never open and close an existing
        # one here: closing any descriptor of a file drops every POSIX lock
        # this process holds on it, SQLite's own included (another Store in
        # this process then fails with "disk I/O error")
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        for f in _files(self.path):
            with contextlib.suppress(OSError):
                f.chmod(0o600)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            self._migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        """A damaged file never blocks: what runs is read from the engines,
        so compound moves the file aside and starts a fresh history."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{uuid.uuid4().hex[:6]}")
        for f in _files(self.path):
            with contextlib.suppress(OSError):
                f.rename(aside.with_name(aside.name + f.name.removeprefix(self.path.name)))
        self._note(
            f"the state store {self.path} was damaged ({exc}); it was moved to {aside} and a"
            " fresh one started: revision history before now is only in that file, and what"
            " runs is read from the engine as always"
        )

    def _note(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            self._warn(message)

    def _recover(self, exc: sqlite3.DatabaseError) -> bool:
        """Damage found while reading or writing: set the file aside and open
        a fresh one; True if the caller should try once more."""
        if not _damaged(exc):
            return False
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._set_aside(exc)
            try:
                self._db = self._open()
            except (sqlite3.Error, OSError) as again:
                raise self._error(again) from again
        return True

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        columns = {r[1] for r in db.execute("PRAGMA table_info(revisions)")}
        if "specs" not in columns:  # schema 1
            db.execute("ALTER TABLE revisions ADD COLUMN specs TEXT NOT NULL DEFAULT '{}'")
        db.execute(
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
            except sqlite3.DatabaseError as exc:
                if self._recover(exc):
                    raise _Retry from exc
                raise StateError(f"state store {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: {exc}") from exc

    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """``fn`` in a transaction, once more on a fresh file if the first
        attempt found the old one damaged."""
        try:
            with self._tx() as db:
                return fn(db)
        except _Retry:
            with self._tx() as db:
                return fn(db)

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

        def insert(db: sqlite3.Connection) -> int:
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

        return self._write(insert)

    def finish(self, project: str, number: int, outcome: str, result: dict[str, Any]) -> None:
        self._write(
            lambda db: db.execute(
                "UPDATE revisions SET finished = ?, outcome = ?, result = ?"
                " WHERE project = ? AND number = ?",
                (time.time(), outcome, _dumps(result), project, number),
            )
        )

    def history(self, project: str, limit: int | None = None) -> list[Revision]:
        sql = "SELECT * FROM revisions WHERE project = ? ORDER BY number DESC"
        args: tuple[Any, ...] = (project,)
        if limit:
            sql += " LIMIT ?"
            args = (project, limit)
        return self._rows(self._query(sql, args))

    def get(self, project: str, number: int) -> Revision | None:
        rows = self._query(
            "SELECT * FROM revisions WHERE project = ? AND number = ?", (project, number)
        )
        found = self._rows(rows)
        return found[0] if found else None

    def live(self, project: str) -> Revision | None:
        """The newest revision whose ``up`` succeeded: what should be running."""
        rows = self._query(
            "SELECT * FROM revisions WHERE project = ? AND outcome = 'succeeded'"
            " ORDER BY number DESC",
            (project,),
        )
        found = self._rows(rows[:1]) or self._rows(rows)  # the newest that can be read
        return found[0] if found else None

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
        out = []
        for r in rows:
            try:
                out.append((r["number"], _obj(r["specs"]), _obj(r["result"])))
            except ValueError as exc:
                self._skipped(project, r["number"], exc)
        return out

    def _rows(self, rows: list[sqlite3.Row]) -> list[Revision]:
        out = []
        for r in rows:
            try:
                out.append(self._row(r))
            except (ValueError, TypeError) as exc:
                self._skipped(r["project"], r["number"], exc)
        return out

    def _skipped(self, project: str, number: int, exc: Exception) -> None:
        self._note(f"revision {number} of {project} in {self.path} cannot be read ({exc}); skipped")

    def mark_abandoned(self, project: str) -> int:
        """Revisions left 'running' by a killed compound become 'interrupted'."""
        return self._write(
            lambda db: (
                db.execute(
                    "UPDATE revisions SET outcome = 'interrupted', finished = COALESCE(finished, ?)"
                    " WHERE project = ? AND outcome = 'running'",
                    (time.time(), project),
                ).rowcount
            )
        )

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        for attempt in (1, 2):
            try:
                with self._lock:
                    self._db.row_factory = sqlite3.Row
                    return list(self._db.execute(sql, args).fetchall())
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or not self._recover(exc):
                    raise StateError(f"state store {self.path}: {exc}") from exc
        raise AssertionError("unreachable")

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
            model=_obj(r["model"]),
            plan=_obj(r["plan"]),
            decisions=_obj(r["decisions"]),
            result=_obj(r["result"]),
            specs=_obj(r["specs"]),
        )


def _obj(text: str) -> dict[str, Any]:
    """A JSON object column; anything else is a damaged row (ValueError)."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value


def _files(path: Path) -> list[Path]:
    """The database and the files SQLite keeps beside it."""
    return [
        path.with_name(path.name + s)
        for s in ("", "-wal", "-shm", "-journal")
        if path.with_name(path.name + s).exists()
    ]


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
