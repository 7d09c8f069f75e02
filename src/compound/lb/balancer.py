"""A service's load balancer as the orchestrator drives it.

    lb = ensure(client, project, service, backends)   # create or adopt; converge
    lb.add(Backend("p-web-3", "172.20.0.5"))         # health-gated: UP by a real check first
    lb.drain("p-web-1"); lb.remove("p-web-1")        # no new requests, sessions end, gone
    lb.sync(backends)                                # the server set, whatever happened before
    remove(client, "p", "web")

Adding: the server is created in maintenance (``add server``), its health
check enabled, then set to *drain*: checks run but it gets no traffic. Only
once a check has really passed (HAProxy assumes a new server is up before
its first check) is it set *ready*. Draining: *drain* until its current
sessions reach zero, or the timeout, after which the remaining sessions are
shut; then *maint*, and ``del server``. After every change the config file
is rewritten with the ready servers, so an LB restart keeps the set.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from compound.engine import Client
from compound.errors import LoadBalancerError, ServiceError
from compound.runtimes.base import LABEL_CONFIG_HASH, Instance
from compound.runtimes.hostops import atomic_write
from compound.runtimes.instances import list_load_balancers
from compound.spec.model import Project, Service

from . import container, runtime_api
from .config import (
    CONFIG_NAME,
    SOCKET_NAME,
    Backend,
    LBConfig,
    Mode,
    backend_name,
    render,
    server_args,
    valid_server_name,
)
from .image import ensure_lb_image
from .runtime_api import ServerState

ADD_TIMEOUT = 30.0  # seconds for a new server to pass its first health check
DRAIN_TIMEOUT = 30.0  # seconds for a drained server's sessions to end
READY_TIMEOUT = 20.0  # seconds for a started LB to answer on its admin socket
POLL = 0.1


@dataclass
class LoadBalancer:
    client: Client
    project: str
    service: str
    name: str  # container name
    container_id: str
    mode: Mode
    maxconn: int | None
    targets: tuple[int, ...]
    network: str  # engine network where backends are reached
    run_dir: Path
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def socket(self) -> Path:
        return self.run_dir / SOCKET_NAME

    @property
    def config_path(self) -> Path:
        return self.run_dir / CONFIG_NAME

    # -- reading ----------------------------------------------------------------

    def servers(self) -> list[ServerState]:
        """Every server of every backend (one backend per published port)."""
        try:
            return runtime_api.servers(self.socket)
        except LoadBalancerError as exc:
            raise self._error(exc.message) from exc

    def backend_for(self, inst: Instance) -> Backend:
        """The Backend of an instance: its address on the LB's network."""
        ip = container.ip_on(inst, self.network)
        if ip is None:
            raise ServiceError(
                self.service,
                f"instance {inst.name} has no address on network {self.network!r}, "
                f"so load balancer {self.name} cannot reach it",
                hint="is it running, and on the same networks as the service?",
            )
        return Backend(inst.name, ip)

    # -- changing ---------------------------------------------------------------

    def add(self, backend: Backend, *, timeout: float = ADD_TIMEOUT) -> None:
        """Add one instance; returns once HAProxy's check passed and it gets traffic."""
        self.add_many([backend], timeout=timeout)

    def add_many(self, backends: Sequence[Backend], *, timeout: float = ADD_TIMEOUT) -> None:
        """Add several at once, checked in parallel. Those that pass within
        ``timeout`` get traffic; the others are taken out again and named in
        the error raised."""
        with self._lock:
            present = {(s.backend, s.name): s for s in self.servers()}
            todo: dict[str, Backend] = {}
            for b in backends:
                if not valid_server_name(b.name):
                    raise ServiceError(
                        self.service, f"{b.name!r} cannot name a load balancer server"
                    )
                rows = [present[k] for k in self._refs(b.name) if k in present]
                if any(r.address != b.address for r in rows):
                    raise self._error(
                        f"server {b.name} is already there at {rows[0].address}, not {b.address}",
                        hint="remove it first (sync does)",
                    )
                if len(rows) == len(self.targets) and all(r.admin == "ready" for r in rows):
                    continue  # already serving
                todo[b.name] = b
            if not todo:
                return
            for b in todo.values():
                for t in self.targets:
                    ref = f"{backend_name(t)}/{b.name}"
                    if (backend_name(t), b.name) not in present:  # else: an add cut short
                        self._expect(
                            f"add server {ref} {server_args(b, t, self.maxconn)}",
                            "New server registered.",
                        )
                    self._expect(f"enable health {ref}", "")
                    self._expect(f"set server {ref} state drain", "")

            def healthy(rows: list[ServerState]) -> set[str]:
                ok = Counter(r.name for r in rows if r.name in todo and r.healthy)
                return {n for n in todo if ok[n] == len(self.targets)}

            last = self._wait_until(lambda rows: healthy(rows) == set(todo), timeout)
            passed = set(todo) if last is None else healthy(last)
            for name in passed:
                for t in self.targets:
                    self._expect(f"set server {backend_name(t)}/{name} state ready", "")
            for name in set(todo) - passed:
                self._delete(name, timeout=5.0)
            self.persist()
            if last is not None:
                bad = [
                    f"{r.name} at {r.address}:{r.port} (last check {r.check}, {r.operational})"
                    for r in last
                    if r.name in todo and r.name not in passed and not r.healthy
                ]
                raise self._error(
                    f"waited {timeout:.0f}s for {', '.join(sorted(set(todo) - passed))} to pass "
                    "the health check; not healthy: " + ", ".join(bad),
                    hint="does the instance listen on its network address (not 127.0.0.1 only)"
                    f" on port(s) {', '.join(map(str, self.targets))}?",
                )

    def drain(self, name: str, *, timeout: float = DRAIN_TIMEOUT) -> int:
        """No new sessions for ``name``; wait for its sessions to end (at most
        ``timeout``, then they are shut), then maintenance. Returns how many
        sessions had to be shut."""
        with self._lock:
            present = {(s.backend, s.name) for s in self.servers()}
            refs = [f"{be}/{name}" for be, n in self._refs(name) if (be, n) in present]
            if not refs:
                return 0
            for ref in refs:
                self._expect(f"set server {ref} state drain", "")
            self.persist()
            rows = self._wait_until(
                lambda rows: sum(r.sessions for r in rows if r.name == name) == 0, timeout
            )
            cut = 0
            if rows is not None:  # timed out: shut what is left
                cut = sum(r.sessions for r in rows if r.name == name)
                for ref in refs:
                    self._expect(f"shutdown sessions server {ref}", "")
            for ref in refs:
                self._expect(f"set server {ref} state maint", "")
            return cut

    def remove(self, name: str, *, timeout: float = DRAIN_TIMEOUT) -> None:
        """Take ``name`` out: drained first unless it is in maintenance already."""
        with self._lock:
            rows = self._by_name().get(name)
            if not rows:
                return
            if any(r.admin != "maint" for r in rows):
                self.drain(name, timeout=timeout)
            self._delete(name, timeout=timeout)
            self.persist()

    def sync(self, backends: Iterable[Backend], *, timeout: float = ADD_TIMEOUT) -> None:
        """Make the server set exactly ``backends``: new ones added (healthy
        first), then the others drained and removed. A server whose address
        changed (its container was recreated) is replaced."""
        with self._lock:
            wanted = {b.name: b for b in backends}
            current = self._by_name()
            moved = [
                n
                for n, rows in current.items()
                if n in wanted and rows[0].address != wanted[n].address
            ]
            for name in moved:
                self.remove(name, timeout=timeout)
            self.add_many(list(wanted.values()), timeout=timeout)
            for name in sorted(set(current) - set(wanted)):
                self.remove(name, timeout=timeout)
            self.persist()

    def persist(self) -> None:
        """Rewrite the config with the servers that are ready now."""
        with self._lock:
            first = backend_name(self.targets[0])
            ready = tuple(
                Backend(s.name, s.address)
                for s in self.servers()
                if s.backend == first and s.admin == "ready"
            )
            write_config(self, ready)

    # -- helpers ----------------------------------------------------------------

    def wait_answering(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: LoadBalancerError | None = None
        while time.monotonic() < deadline:
            try:
                runtime_api.command(self.socket, "show info", timeout=2.0)
                return
            except LoadBalancerError as exc:
                last = exc
                time.sleep(POLL)
        raise self._error(
            f"HAProxy did not answer on {self.socket} within {timeout:.0f}s: "
            f"{last.message if last else 'no answer'}",
            hint=f"see `docker logs {self.name}`",
        )

    def _by_name(self) -> dict[str, list[ServerState]]:
        out: dict[str, list[ServerState]] = {}
        for s in self.servers():
            out.setdefault(s.name, []).append(s)
        return out

    def _expect(self, line: str, *ok: str) -> None:
        try:
            runtime_api.expect(self.socket, line, *ok)
        except LoadBalancerError as exc:
            raise self._error(exc.message) from exc

    def _delete(self, name: str, *, timeout: float) -> None:
        """maint + del server on every backend; HAProxy refuses while the
        server still holds connections, so retry until ``timeout``."""
        for t in self.targets:
            ref = f"{backend_name(t)}/{name}"
            deadline = time.monotonic() + timeout
            while True:
                try:
                    answer = runtime_api.command(self.socket, f"set server {ref} state maint")
                    if "No such server" in answer:
                        break
                    answer = runtime_api.command(self.socket, f"del server {ref}").strip()
                except LoadBalancerError as exc:
                    raise self._error(exc.message) from exc
                if answer in ("Server deleted.", "No such server.") or "No such server" in answer:
                    break
                if time.monotonic() >= deadline:
                    raise self._error(f"HAProxy did not delete server {ref}: {answer}")
                time.sleep(POLL)

    def _wait_until(
        self, done: Callable[[list[ServerState]], bool], timeout: float
    ) -> list[ServerState] | None:
        """Poll until ``done``; None then, else the last state seen at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.servers()
            if done(rows):
                return None
            if time.monotonic() >= deadline:
                return rows
            time.sleep(POLL)

    def _refs(self, name: str) -> list[tuple[str, str]]:
        """(backend, server) of ``name`` in every backend."""
        return [(backend_name(t), name) for t in self.targets]

    def _error(self, message: str, hint: str | None = None) -> ServiceError:
        return ServiceError(self.service, f"load balancer {self.name}: {message}", hint=hint)


def write_config(lb: LoadBalancer, servers: tuple[Backend, ...]) -> None:
    text = render(
        LBConfig(
            service=lb.service,
            mode=lb.mode,
            maxconn=lb.maxconn,
            targets=lb.targets,
            servers=servers,
            socket_uid=_uid(),
            socket_gid=_gid(),
        )
    )
    atomic_write(lb.config_path, text.encode())


def _uid() -> int:
    return os.getuid()


def _gid() -> int:
    return os.getgid()


# --- the LB's lifecycle ---------------------------------------------------------


def _handle(client: Client, spec: container.LBSpec, cid: str) -> LoadBalancer:
    return LoadBalancer(
        client=client,
        project=spec.project,
        service=spec.service,
        name=spec.name,
        container_id=cid,
        mode=spec.mode,
        maxconn=spec.maxconn,
        targets=spec.targets,
        network=spec.networks[0],
        run_dir=container.run_dir_for(spec.name),
    )


def ensure(
    client: Client,
    project: Project,
    service: Service,
    backends: Iterable[Backend],
    *,
    timeout: float = ADD_TIMEOUT,
) -> LoadBalancer:
    """The service's LB, created or adopted, running and serving exactly
    ``backends`` (see :meth:`LoadBalancer.sync`). An LB made from a different
    spec (ports, networks, mode, image) is replaced."""
    image = ensure_lb_image(client)
    spec = container.spec_for(project, service, image.tag)
    existing = container.find(client, project.name, service.name)
    if existing is not None and existing.labels.get(LABEL_CONFIG_HASH) != spec.digest():
        container.remove_container(client, existing.id)
        existing = None
    run_dir = container.run_dir_for(spec.name)
    if existing is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        lb = _handle(client, spec, "")
        write_config(lb, ())
        lb.container_id = container.create(client, spec, run_dir)
        container.start(client, spec.name, lb.container_id)
    else:
        lb = _handle(client, spec, existing.id)
        if not lb.config_path.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            write_config(lb, ())
        if not existing.running:
            container.start(client, spec.name, existing.id)
    lb.wait_answering()
    lb.sync(backends, timeout=timeout)
    return lb


def get(client: Client, project: Project, service: Service) -> LoadBalancer | None:
    """The service's running LB as it is, or None."""
    existing = container.find(client, project.name, service.name)
    if existing is None:
        return None
    return _handle(client, container.spec_for(project, service, existing.image), existing.id)


def remove(client: Client, project: str, service: str) -> bool:
    """Remove the service's LB and its run dir; whether there was one."""
    existing = container.find(client, project, service)
    container.remove_run_dir(container.lb_name(project, service))
    if existing is None:
        return False
    container.remove_container(client, existing.id)
    container.remove_run_dir(existing.name)
    return True


def remove_load_balancers(
    client: Client, project: str, services: Iterable[str] | None = None
) -> list[str]:
    """Remove the project's LBs (of ``services`` only, if given); their names."""
    only = set(services) if services is not None else None
    removed = []
    for inst in list_load_balancers(client, project):
        if only is not None and inst.service not in only:
            continue
        container.remove_container(client, inst.id)
        container.remove_run_dir(inst.name)
        removed.append(inst.name)
    return removed
