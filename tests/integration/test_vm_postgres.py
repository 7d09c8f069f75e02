"""PostgreSQL in a VM queried from a container (issue 10's "seeds' own example").

One project, through the real CLI, real engine and real QEMU (TCG here):
`db` is local/postgres:15 as a VM with PGDATA on a named volume; `client` is
the same image as a container, running psql against `db` by service name
over TCP with the superuser's password (scram-sha-256 from pg_hba.conf).
It creates a table, inserts and reads back; then the VM is recreated
(an environment change, stop-first) and the row is still there, served by a
new launcher from the same data directory that the old postmaster shut down
cleanly (its stop signal, SIGINT), without a second initdb.

Cost: one VM boot with initdb, one boot without.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.apps import App

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  db:
    image: local/postgres:15
    x-compound:
      runtime: vm
      vm: {memory: 256m}
    expose: ["5432"]   # slirp forwards declared ports only; not needed once VMs own their IP
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: s3cret
      RELEASE: "${RELEASE:-1}"
    volumes: [pgdata:/var/lib/postgresql/data]
    # SIGINT = fast shutdown: a checkpoint through 9p under TCG took longer
    # than the default 10 s on a loaded host, and the next start had to recover
    stop_grace_period: 60s
    deploy:
      update_config: {order: stop-first}   # never two postmasters on one PGDATA
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "app", "-q"]
      interval: 2s
      # long: the check runs through the guest agent, which answers slowly
      # while initdb keeps the one emulated vCPU busy, and today an agent
      # reply later than this timeout aborts `up --wait` (see pg report)
      timeout: 120s
      retries: 90
  client:
    image: local/postgres:15
    command: ["sleep", "infinity"]   # not "postgres": the entrypoint just execs it
    init: true
    environment: {PGHOST: db, PGUSER: app, PGPASSWORD: s3cret, PGDATABASE: app}
volumes:
  pgdata: {}
"""


def _psql(app: App, sql: str, timeout: float = 60.0) -> str:
    """psql in the client container; retried while the server comes up."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = app.run(
            "exec", "-T", "client", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql
        )
        if code == 0:
            return out.strip()
        if time.monotonic() > deadline:
            pytest.fail(f"psql {sql!r} exited {code}:\n{out}", pytrace=False)
        time.sleep(1)


def _db_instance(app: App) -> dict[str, object]:
    rows = [r for r in json.loads(app.ok("ps", "--json")) if r["service"] == "db"]
    assert len(rows) == 1, rows
    return dict(rows[0])


def test_postgres_vm_queried_from_container(app: App) -> None:
    app.write(COMPOSE)
    app.ok("up", "-d", "--wait", "--wait-timeout", "1200")  # initdb under TCG on a loaded host
    first = _db_instance(app)
    assert first["runtime"] == "vm", first

    _psql(app, "CREATE TABLE t (id int PRIMARY KEY, note text)")
    _psql(app, "INSERT INTO t VALUES (1, 'written from a container')")
    assert _psql(app, "SELECT note FROM t WHERE id = 1") == "written from a container"
    # the server runs in the guest: its kernel is not the host's
    server_host = _psql(app, "SELECT inet_server_addr()")
    assert server_host, "expected a TCP connection (inet_server_addr is null over a socket)"

    assert "entrypoint: database ready in" in app.ok("logs", "db")

    app.env = {"RELEASE": "2"}
    app.ok("up", "-d", "--wait", "--wait-timeout", "1200")
    second = _db_instance(app)
    assert second["runtime"] == "vm", second
    assert second["id"] != first["id"], f"db was not recreated: {first} -> {second}"

    assert _psql(app, "SELECT note FROM t WHERE id = 1") == "written from a container"
    # the new instance found a cluster that the old one had shut down cleanly
    # (SIGINT, the image's stop signal: fast shutdown), so no initdb, no recovery
    logs = app.ok("logs", "db")
    assert "initdb" not in logs, logs[-3000:]
    assert "database system was shut down at" in logs, logs[-3000:]
