"""Start the server: tokens, state, the listen address's rules, uvicorn."""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compound.engine import connect
from compound.errors import UsageError
from compound.server.app import ServerState, create_app, watch_engine
from compound.server.events import EventBus
from compound.server.jobs import JobManager
from compound.server.projects import ProjectSet
from compound.server.tokens import load_or_create
from compound.spec import LoadOptions
from compound.state.audit import AuditStore
from compound.state.store import Store


@dataclass(frozen=True)
class ServeOptions:
    listen: str = "127.0.0.1:8765"
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure_remote: bool = False  # bind beyond loopback without TLS, on purpose


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {listen!r}: expected HOST:PORT", hint="e.g. 127.0.0.1:8765")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:  # a name: loopback only if every address it has is
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_bind(opts: ServeOptions) -> tuple[str, int]:
    host, port = parse_listen(opts.listen)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if not is_loopback(host) and not opts.tls_cert and not opts.insecure_remote:
        raise UsageError(
            f"--listen {opts.listen}: other machines could reach the API, tokens in clear text",
            hint="give --tls-cert and --tls-key, or --insecure-listen if the network is trusted",
        )
    return host, port


def build_state(projects: Sequence[LoadOptions], say: Callable[[str], None]) -> ServerState:
    store = Store(warn=lambda m: say(f"WARN {m}"))
    state_dir = store.path.parent
    tokens, fresh = load_or_create(state_dir / "serve-tokens.json")
    if fresh:
        say(f"created tokens (shown once; only their digests are kept in {state_dir}):")
        for role, token in fresh.items():
            say(f"  {role:<10} {token}")
    audit = AuditStore(store.path)
    bus = EventBus()
    jobs = JobManager(audit, bus, state_dir)
    if jobs.interrupted:
        say(f"{len(jobs.interrupted)} job(s) of an earlier server were marked interrupted")
    return ServerState(
        projects=ProjectSet(projects),
        tokens=tokens,
        store=store,
        client=connect(),
        audit=audit,
        jobs=jobs,
        bus=bus,
        backups=state_dir / "backups",
    )


def serve(
    opts: ServeOptions,
    projects: Sequence[LoadOptions],
    say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> None:
    import uvicorn

    host, port = check_bind(opts)
    state = build_state(projects, say)
    threading.Thread(target=watch_engine, args=(state,), daemon=True, name="engine-events").start()
    scheme = "https" if opts.tls_cert else "http"
    say(f"serving {', '.join(state.projects.names()) or 'no project'} on {scheme}://{host}:{port}/")
    uvicorn.run(
        create_app(state),
        host=host,
        port=port,
        ssl_certfile=opts.tls_cert,
        ssl_keyfile=opts.tls_key,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
    )
