"""The HTTP API, the dashboard's files and ``/metrics``, in one FastAPI app.

Every route but ``/healthz`` (and the dashboard's static files, which hold
no data) needs ``Authorization: Bearer <token>``; actions need the
operator token. Reads answer from the engine and the store as the CLI's
``--json`` does; actions answer 202 with a job to follow
(``/api/v1/jobs/{id}``, or the ``/api/v1/events`` stream).
"""

from __future__ import annotations

import asyncio
import json
import platform
import queue
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from compound import __version__
from compound.advisor import advise
from compound.engine import Client
from compound.engine.events import events
from compound.errors import CompoundError
from compound.hostfacts import host_facts
from compound.placement import host_from_facts, place
from compound.reconcile.session import Session
from compound.reconcile.views import advice_json, history_rows, ps_rows, version_info
from compound.runtimes.base import LABEL_PROJECT, LABEL_SERVICE, Instance, LogLine
from compound.server import actions, errors
from compound.server.cache import ListingCache
from compound.server.errors import AuthError, NotFoundError
from compound.server.events import EventBus
from compound.server.jobs import JobManager, JobProgress
from compound.server.metrics import ProjectCollector
from compound.server.projects import ProjectSet
from compound.server.tokens import OPERATOR, Tokens
from compound.spec import to_compose_dict
from compound.spec.model import Service
from compound.state.audit import AuditStore
from compound.state.store import Store
from compound.volumes import ops

Name = Annotated[str, PathParam(min_length=1, max_length=200)]


@dataclass
class ServerState:
    projects: ProjectSet
    tokens: Tokens
    store: Store
    client: Client
    audit: AuditStore
    jobs: JobManager
    bus: EventBus
    backups: Path  # where backups made through the API are written
    listings: ListingCache = field(default_factory=ListingCache)

    def __post_init__(self) -> None:
        # anything the engine or a job says about a project makes its listing stale
        self.bus.listeners.append(lambda ev: self.listings.invalidate(str(ev.get("project"))))

    def session(self, project: str) -> Session:
        return Session(self.projects.load(project).project, self.client, self.store)


# --- request bodies ----------------------------------------------------------------------

_Services = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=200)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpRequest(_Body):
    services: _Services = []
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    wait: bool = False
    wait_timeout: float = Field(300.0, gt=0, le=3600)


class DownRequest(_Body):
    volumes: bool = False
    remove_orphans: bool = False
    timeout: float | None = Field(None, ge=0, le=3600)


class RollbackRequest(_Body):
    services: _Services = []


class ServiceRequest(_Body):
    timeout: float | None = Field(None, ge=0, le=3600)


class BackupRequest(_Body):
    consistent: bool = False


class RestoreRequest(_Body):
    archive: str = Field(
        min_length=1, max_length=255, description="A file name from the volume listing's backups"
    )


class JobAccepted(BaseModel):
    id: str
    project: str
    action: str
    target: str
    state: str
    url: str


_bearer = HTTPBearer(auto_error=False, description="operator or read-only token")


def _role(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if creds is None or not creds.credentials:
        raise AuthError(
            "this endpoint needs a token",
            status=401,
            hint="send `Authorization: Bearer <token>`; `compound serve` printed the"
            " tokens at its first start",
        )
    state: ServerState = request.app.state.compound
    found = state.tokens.role_of(creds.credentials)
    if found is None:
        raise AuthError(
            "the token is not valid", status=401, hint="use a token printed at the first start"
        )
    return found


def _operator(request: Request, who: Annotated[str, Depends(_role)]) -> str:
    if who != OPERATOR:
        state: ServerState = request.app.state.compound
        state.audit.record(
            who,
            request.url.path.rsplit("/", 1)[-1],
            str(request.path_params.get("project", "")),
            request.url.path,
            outcome="refused",
            detail="a read-only token cannot act",
        )
        raise AuthError("a read-only token cannot act", status=403, hint="use the operator token")
    return who


Reader = Annotated[str, Depends(_role)]
Operator = Annotated[str, Depends(_operator)]


# --- the app -------------------------------------------------------------------------------


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(
        title="compound",
        version=__version__,
        description="Containers and VMs from one Compose file: read, act, follow.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind a token like everything else
    )
    app.add_exception_handler(CompoundError, errors.compound_error)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(Exception, errors.unexpected_error)
    app.state.compound = state

    def submit(
        project: str, action: str, target: str, who: str, work: Callable[[JobProgress], Any]
    ) -> JSONResponse:
        job = state.jobs.submit(project, action, target, who, work)
        accepted = JobAccepted(
            id=job.id,
            project=project,
            action=action,
            target=target,
            state=job.state,
            url=f"/api/v1/jobs/{job.id}",
        )
        return JSONResponse(accepted.model_dump(), status_code=202)

    def service_of(session: Session, service: str) -> None:
        if service not in session.project.services:
            raise NotFoundError(
                f"no such service: {service!r} in project {session.project.name!r}",
                hint="services: " + ", ".join(sorted(session.project.services)),
            )

    # --- health and the dashboard (no token) ---------------------------------------

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness probe; the only API route without a token."""
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    static = resources.files("compound.server") / "static"

    @app.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text())

    app.mount("/static", StaticFiles(packages=[("compound.server", "static")]), name="static")

    # --- reads ------------------------------------------------------------------

    @app.get("/api/v1/version", tags=["health"])
    def version(who: Reader) -> dict[str, Any]:
        """`compound version --json`."""
        return version_info(lambda: state.client)

    @app.get("/api/v1/whoami", tags=["health"])
    def whoami(who: Reader) -> dict[str, str]:
        """The role of the token presented: operator or read-only."""
        return {"role": who}

    @app.get("/api/v1/projects", tags=["projects"])
    def projects(who: Reader) -> list[dict[str, Any]]:
        """Every project this server serves, with its services."""
        out = []
        for name in state.projects.names():
            project = state.projects.load(name).project
            out.append(
                {
                    "name": name,
                    "files": list(state.projects.ref(name).files),
                    "services": _services(project.services),
                }
            )
        return out

    @app.get("/api/v1/projects/{project}", tags=["projects"])
    def project_detail(project: Name, who: Reader) -> dict[str, Any]:
        loaded = state.projects.load(project).project
        return {
            "name": project,
            "files": list(state.projects.ref(project).files),
            "services": _services(loaded.services),
            "volumes": sorted(loaded.volumes),
            "networks": sorted(loaded.networks),
        }

    @app.get(
        "/api/v1/projects/{project}/instances",
        tags=["projects"],
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}},
    )
    def instances(
        project: Name,
        who: Reader,
        service: Annotated[list[str] | None, Query(max_length=200)] = None,
    ) -> Response:
        """`compound ps --all --json` (kept encoded until the project changes:
        see compound.server.cache)."""
        session = state.session(project)
        for name in service or []:
            service_of(session, name)
        names = service or []
        body = state.listings.get(
            project,
            ",".join(names),
            lambda: json.dumps(ps_rows(session, names, all_=True), default=str).encode(),
        )
        return Response(body, media_type="application/json")

    @app.get("/api/v1/projects/{project}/config", tags=["projects"])
    def config(project: Name, who: Reader) -> dict[str, Any]:
        """`compound config --json`: the resolved, normalised file."""
        return to_compose_dict(state.projects.load(project).project)

    @app.get("/api/v1/projects/{project}/advice", tags=["projects"])
    def advice(project: Name, who: Reader) -> dict[str, object]:
        """`compound advise --json`: per service, the runtime and host class, the factors."""
        loaded = state.projects.load(project).project
        return advice_json(advise(loaded, None), None)

    @app.get("/api/v1/projects/{project}/plan", tags=["projects"])
    def plan(project: Name, who: Reader) -> dict[str, Any]:
        """`compound plan --json` against this host: the capacity plan."""
        loaded = state.projects.load(project).project
        facts = host_facts()
        host = host_from_facts(
            platform.node() or "localhost",
            facts.cpus or 1,
            facts.memory or 1,
            kvm=facts.kvm_usable,
            host_is_vm=facts.host_is_vm,
        )
        return place([loaded], [host], host_facts=facts).to_json()

    @app.get("/api/v1/projects/{project}/history", tags=["projects"])
    def history(
        project: Name, who: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 20
    ) -> list[dict[str, Any]]:
        """`compound history --json`: revisions, newest first, the live one marked."""
        return history_rows(state.session(project), limit)

    @app.get("/api/v1/projects/{project}/drift", tags=["projects"])
    def drift(project: Name, who: Reader) -> dict[str, Any]:
        """`compound diff --json`."""
        return state.session(project).drift().to_json()

    @app.get("/api/v1/projects/{project}/volumes", tags=["volumes"])
    def volumes(project: Name, who: Reader) -> dict[str, Any]:
        """`compound volume ls --json`, and the backups made through this server."""
        session = state.session(project)
        rows = [{k: v for k, v in r.items() if k != "engine"} for r in ops.volume_rows(session)]
        folder = state.backups / project
        backups = (
            [
                {"archive": p.name, "bytes": p.stat().st_size, "created": p.stat().st_mtime}
                for p in sorted(folder.glob("*.tar.zst"))
            ]
            if folder.is_dir()
            else []
        )
        return {"volumes": rows, "backups": backups}

    @app.get("/api/v1/projects/{project}/logs", tags=["projects"])
    def logs(
        project: Name,
        who: Reader,
        service: Annotated[list[str] | None, Query(max_length=200)] = None,
        tail: Annotated[int, Query(ge=0, le=100000)] = 100,
        follow: bool = False,
    ) -> StreamingResponse:
        """The services' output as text lines, `<service>-<n> | <line>`; with
        ``follow`` the stream stays open until the client leaves."""
        session = state.session(project)
        for name in service or []:
            service_of(session, name)
        targets = [i for i in session.instances(service or []) if not i.oneoff]
        return StreamingResponse(
            _log_lines(session, targets, tail=tail, follow=follow),
            media_type="text/plain; charset=utf-8",
        )

    @app.get("/api/v1/hosts", tags=["hosts"])
    def hosts(who: Reader) -> list[dict[str, Any]]:
        """The hosts compound runs on: this one, measured now, then every host
        `compound host create` recorded, with the facts measured on it then
        (asking each one again would make this listing as slow as the slowest
        host; `compound host ls` does)."""
        from compound.hosts import records

        facts = host_facts()
        out = [{"name": platform.node() or "localhost", "local": True, **facts.to_json()}]
        for rec in records.load_all():
            measured = dict(rec.facts or {})
            out.append(
                {
                    "name": rec.name,
                    "local": False,
                    "driver": rec.driver,
                    "address": rec.address,
                    "tenant": rec.tenant,
                    "labels": dict(rec.labels),
                    **measured,
                    "kvm_usable": measured.get("kvm") is True,
                }
            )
        return out

    @app.get("/api/v1/jobs", tags=["jobs"])
    def jobs(
        who: Reader,
        project: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return state.jobs.list(project, limit)

    @app.get("/api/v1/jobs/{job}", tags=["jobs"])
    def job(job: Name, who: Reader) -> dict[str, Any]:
        """A job: its state, progress events, and result or error."""
        found = state.jobs.get(job)
        if found is None:
            raise NotFoundError(f"no such job: {job!r}", hint="GET /api/v1/jobs lists them")
        return found

    @app.get("/api/v1/audit", tags=["jobs"])
    def audit(
        who: Reader,
        project: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Who did what, when, and how it ended; newest first."""
        return state.audit.audit(limit, project)

    @app.get("/api/v1/events", tags=["events"], response_class=StreamingResponse)
    async def events(request: Request, who: Reader) -> StreamingResponse:
        """Server-sent events: `job.started`, `job.progress`, `job.finished`,
        and the engine's `engine` events for the served projects."""
        q = state.bus.subscribe()

        async def stream() -> AsyncIterator[str]:
            try:
                yield ": connected\n\n"
                while True:
                    try:
                        event = await asyncio.wait_for(q.get(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    data = json.dumps(event, default=str)
                    yield f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"
            finally:
                state.bus.unsubscribe(q)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    registry = CollectorRegistry()
    registry.register(ProjectCollector(lambda: [state.session(n) for n in state.projects.names()]))

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    def metrics(who: Reader) -> Response:
        """Prometheus text format: per instance CPU, memory, network, block I/O."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # --- actions (operator token; 202 + a job) ----------------------------------------

    @app.post(
        "/api/v1/projects/{project}/up",
        status_code=202,
        tags=["actions"],
        response_model=JobAccepted,
    )
    def up(project: Name, req: UpRequest, who: Operator) -> JSONResponse:
        """`compound up -d`: reconcile, rolling where the file says so."""
        session = state.session(project)
        for name in req.services:
            service_of(session, name)
        return submit(
            project,
            "up",
            " ".join(req.services),
            who,
            lambda p: actions.up(
                session,
                p,
                services=req.services,
                force_recreate=req.force_recreate,
                no_recreate=req.no_recreate,
                remove_orphans=req.remove_orphans,
                wait=req.wait,
                wait_timeout=req.wait_timeout,
            ),
        )

    @app.post(
        "/api/v1/projects/{project}/down",
        status_code=202,
        tags=["actions"],
        response_model=JobAccepted,
    )
    def down(project: Name, req: DownRequest, who: Operator) -> JSONResponse:
        session = state.session(project)
        return submit(
            project,
            "down",
            "",
            who,
            lambda p: actions.down(
                session,
                p,
                volumes=req.volumes,
                remove_orphans=req.remove_orphans,
                timeout=req.timeout,
            ),
        )

    @app.post(
        "/api/v1/projects/{project}/rollback",
        status_code=202,
        tags=["actions"],
        response_model=JobAccepted,
    )
    def rollback(project: Name, req: RollbackRequest, who: Operator) -> JSONResponse:
        session = state.session(project)
        for name in req.services:
            service_of(session, name)
        return submit(
            project,
            "rollback",
            " ".join(req.services),
            who,
            lambda p: actions.rollback(session, p, services=req.services),
        )

    @app.post(
        "/api/v1/projects/{project}/services/{service}/{verb}",
        status_code=202,
        tags=["actions"],
        response_model=JobAccepted,
    )
    def service_action(
        project: Name,
        service: Name,
        verb: Literal["start", "stop", "restart"],
        req: ServiceRequest,
        who: Operator,
    ) -> JSONResponse:
        session = state.session(project)
        service_of(session, service)
        return submit(
            project,
            verb,
            service,
            who,
            lambda p: actions.service_verb(
                session, p, service=service, verb=verb, timeout=req.timeout
            ),
        )

    @app.post(
        "/api/v1/projects/{project}/volumes/{volume}/backup",
        status_code=202,
        tags=["actions"],
        response_model=JobAccepted,
    )
    def backup(project: Name, volume: Name, req: BackupRequest, who: Operator) -> JSONResponse:
        session = state.session(project)
        _volume_of(session, volume)
        folder = state.backups / project
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        output = folder / f"{_safe(volume)}-{stamp}-{int(time.time() * 1000) % 1000:03d}.tar.zst"
        return submit(
            project,
            "volume backup",
            volume,
            who,
            lambda p: actions.backup(
                session, p, volume=volume, output=output, consistent=req.consistent
            ),
        )

    @app.post(
        "/api/v1/projects/{project}/volumes/{volume}/restore",
        status_code=202,
        tags=["actions"],
        response_model=JobAccepted,
    )
    def restore(project: Name, volume: Name, req: RestoreRequest, who: Operator) -> JSONResponse:
        session = state.session(project)
        _volume_of(session, volume)
        archive = state.backups / project / req.archive
        if "/" in req.archive or req.archive.startswith(".") or not archive.is_file():
            raise NotFoundError(
                f"no such backup: {req.archive!r}",
                hint=f"GET /api/v1/projects/{project}/volumes lists the backups",
            )
        return submit(
            project,
            "volume restore",
            volume,
            who,
            lambda p: actions.restore(session, p, volume=volume, archive=archive),
        )

    return app


def _services(services: Mapping[str, Service]) -> list[dict[str, Any]]:
    return [
        {"name": name, "image": svc.image, "runtime": svc.runtime, "replicas": svc.replicas}
        for name, svc in sorted(services.items())
    ]


def _volume_of(session: Session, volume: str) -> None:
    try:
        ref = ops.resolve(session, volume)
    except CompoundError as exc:
        raise NotFoundError(exc.message, hint=exc.hint) from exc
    if ref.key is None:  # the server acts on the project's own volumes only
        raise NotFoundError(
            f"no such volume: {volume!r} in project {session.project.name!r}",
            hint="volumes: " + (", ".join(sorted(session.project.volumes)) or "none"),
        )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


_DONE = object()


def _log_lines(
    session: Session, instances: list[Instance], *, tail: int, follow: bool
) -> Iterator[str]:
    """Every instance's lines, interleaved as they come, one pump thread each."""
    if not instances:
        return
    lines: queue.Queue[object] = queue.Queue(maxsize=10000)
    stop = threading.Event()

    def pump(inst: Instance) -> None:
        try:
            for line in session.driver_for(inst).logs(inst, follow=follow, tail=tail):
                if stop.is_set():
                    return
                lines.put(line)
        except CompoundError as exc:
            lines.put(LogLine(inst.service, inst.name, f"<logs unavailable: {exc.message}>"))
        finally:
            lines.put(_DONE)

    labels = {i.name: f"{i.service}-{i.number}" for i in instances}
    for inst in instances:
        threading.Thread(target=pump, args=(inst,), daemon=True).start()
    remaining = len(instances)
    try:
        while remaining:
            try:
                item = lines.get(timeout=1)
            except queue.Empty:
                continue
            if item is _DONE:
                remaining -= 1
                continue
            assert isinstance(item, LogLine)
            yield f"{labels.get(item.instance, item.instance)} | {item.text.rstrip(chr(10))}\n"
    finally:
        stop.set()


def watch_engine(state: ServerState) -> None:
    """Publish the engine's events for the served projects (a daemon thread)."""
    names = set(state.projects.names())
    while True:
        try:
            stream = events(state.client, labels=[LABEL_PROJECT])
            for ev in stream:
                attrs = ev.get("Actor", {}).get("Attributes", {})
                project = attrs.get(LABEL_PROJECT)
                if project not in names:
                    continue
                state.bus.publish(
                    "engine",
                    {
                        "project": project,
                        "service": attrs.get(LABEL_SERVICE, ""),
                        "kind": ev.get("Type"),
                        "action": ev.get("Action"),
                        "name": attrs.get("name"),
                    },
                )
        except CompoundError:  # the engine restarted: follow it again
            time.sleep(2)
