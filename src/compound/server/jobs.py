"""Actions run as jobs: one thread each, progress kept and published.

A job is accepted only once it holds its project's lock (the same file
lock the CLI's writers take), so two actions on one project never
interleave: the second is refused at once (409) rather than queued behind
an `up` that may take minutes. The job's thread owns the lock from then
on; a client that disconnects changes nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compound.errors import CompoundError, ProjectBusyError
from compound.server.events import EventBus
from compound.state.audit import AuditStore
from compound.state.lock import ProjectLock, lock_path

_SAVE_EVERY = 0.5  # seconds between writes of a running job's events


class JobProgress:
    """The reconciler's Progress protocol, recorded and published."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def update(self, item: str, status: str, detail: str = "", *, done: bool = False) -> None:
        self._job.event({"item": item, "status": status, "detail": detail, "done": done})

    def fail(self, item: str, detail: str) -> None:
        self._job.event(
            {"item": item, "status": "Error", "detail": detail, "done": True, "failed": True}
        )

    def note(self, text: str) -> None:
        self._job.event({"note": text})


class Job:
    def __init__(self, manager: JobManager, project: str, action: str, target: str, who: str):
        self.id = uuid.uuid4().hex[:16]
        self.project, self.action, self.target, self.who = project, action, target, who
        self.state = "running"
        self.created = time.time()
        self.finished: float | None = None
        self.result: Any = None
        self.error: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []
        self._manager = manager
        self._lock = threading.Lock()
        self._saved = 0.0
        self.done = threading.Event()

    def event(self, data: dict[str, Any]) -> None:
        with self._lock:
            entry = {"t": round(time.time() - self.created, 3), **data}
            self.events.append(entry)
        self._manager.bus.publish(
            "job.progress", {"job": self.id, "project": self.project, "action": self.action, **data}
        )
        if time.monotonic() - self._saved > _SAVE_EVERY:
            self._saved = time.monotonic()
            self._manager.audit.save_job(self.id, self.state, list(self.events))

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            events = list(self.events)
        return {
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
            "events": events,
        }


class JobManager:
    def __init__(self, audit: AuditStore, bus: EventBus, state_dir: Path) -> None:
        self.audit = audit
        self.bus = bus
        self.state_dir = state_dir
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        # jobs a previous server process left running ended with it
        self.interrupted = audit.interrupt_unfinished()

    def submit(
        self,
        project: str,
        action: str,
        target: str,
        who: str,
        work: Callable[[JobProgress], Any],
    ) -> Job:
        """Start ``work`` in its own thread once the project's lock is held;
        ProjectBusyError (409) if another action holds it."""
        lock = ProjectLock(lock_path(self.state_dir, project), project)
        try:
            lock.acquire(wait=False)
        except ProjectBusyError as exc:
            self.audit.record(who, action, project, target, outcome="refused", detail=exc.message)
            raise ProjectBusyError(
                exc.message, hint="GET /api/v1/jobs shows what runs; ask again once it ended"
            ) from None
        job = Job(self, project, action, target, who)
        try:
            self.audit.add_job(job.id, project, action, target, who)
            self.audit.record(who, action, project, target, outcome="accepted", job=job.id)
        except BaseException:
            lock.release()
            raise
        with self._lock:
            self._jobs[job.id] = job
        self.bus.publish("job.started", {"job": job.id, "project": project, "action": action})
        thread = threading.Thread(
            target=self._run, args=(job, lock, work), name=f"job-{job.id}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: Job, lock: ProjectLock, work: Callable[[JobProgress], Any]) -> None:
        try:
            job.result = work(JobProgress(job))
            job.state = "succeeded"
        except CompoundError as exc:
            job.error = exc.to_json()
            job.state = "failed"
        except Exception as exc:  # a bug: the job fails, the server stays up
            job.error = {"error": type(exc).__name__, "message": str(exc), "hint": None}
            job.state = "failed"
        finally:
            lock.release()
            job.finished = time.time()
            detail = (job.error or {}).get("message") or ""
            self.audit.save_job(job.id, job.state, job.to_json()["events"], job.result, job.error)
            self.audit.complete(job.id, job.state, str(detail))
            self.bus.publish(
                "job.finished",
                {"job": job.id, "project": job.project, "action": job.action, "state": job.state},
            )
            job.done.set()

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job.to_json()
        row = self.audit.job(job_id)  # from an earlier server process
        return row.to_json() if row else None

    def list(self, project: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        out = []
        for row in self.audit.jobs(limit, project):
            live = self.get(row.id) if row.state == "running" else None
            out.append({k: v for k, v in (live or row.to_json()).items() if k != "events"})
        return out
