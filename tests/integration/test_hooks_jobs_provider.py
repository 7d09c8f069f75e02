"""Lifecycle hooks, run-to-completion jobs and a provider service, through
the real CLI against the real engine (the VM side: test_vm_compose.py)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.integration.apps import App

pytestmark = pytest.mark.integration

BUSYBOX = "local/busybox:latest"

# A provider as Compose's protocol describes it, a real executable: it logs
# how it was called and answers with JSON lines (info, debug, setenv, rawsetenv).
PROVIDER = """\
#!/bin/sh
echo "$*" >> "$(dirname "$0")/calls.log"
case "$3" in
  up)
    echo '{"type": "info", "message": "allocating a database"}'
    echo '{"type": "debug", "message": "not shown"}'
    echo '{"type": "setenv", "message": "URL=mysql://db.example:3306/shop"}'
    echo '{"type": "rawsetenv", "message": "SHOP_DB_TOKEN=s3cr3t"}'
    ;;
  down)
    echo '{"type": "info", "message": "released"}'
    ;;
esac
"""


def _provider(app: App, name: str = "fakecloud") -> Path:
    bindir = app.dir / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / name
    script.write_text(PROVIDER)
    script.chmod(0o755)
    app.env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    return bindir / "calls.log"


def _rows(app: App, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(app.ok("ps", "--json", *args))
    return rows


def test_hooks_jobs_and_a_provider_feeding_a_container(app: App) -> None:
    calls = _provider(app)
    app.write(f"""
        services:
          database:
            provider:
              type: fakecloud
              options: {{size: 256, zone: [a, b]}}
          migrate:                      # two completions, before the app starts
            image: {BUSYBOX}
            command: [sh, -c, "echo ran >> /data/migrations; echo migrated"]
            volumes: [data:/data]
            deploy:
              mode: replicated-job
              replicas: 2
          app:
            image: {BUSYBOX}
            command: [sh, -c, "env > /tmp/env; exec sleep 300"]
            user: nobody
            stop_signal: SIGKILL
            volumes: [data:/data]
            depends_on:
              database: {{condition: service_started}}
              migrate: {{condition: service_completed_successfully}}
            pre_start:                  # once, in a one-off with the service's volumes
              - command: [sh, -c, "echo initialised-by-$$(id -u) > /data/pre_start"]
                user: root
            post_start:
              - command:
                  [sh, -c, "echo $$GREETING $$(id -u) $$(pwd) > /data/post_start; chmod 777 /data"]
                user: root
                working_dir: /tmp
                environment: {{GREETING: hello}}
            pre_stop:
              - command: [sh, -c, "echo flushed-by-$$(id -u) > /data/pre_stop"]
          reader:
            image: {BUSYBOX}
            command: [sleep, "300"]
            stop_signal: SIGKILL
            volumes: [data:/data]
        volumes:
          data: {{}}
        """)
    out = app.ok("up", "-d")
    assert "Completed 2 completed" in out, out

    # the provider ran as the protocol says, and its variables reached the dependent
    assert calls.read_text().splitlines() == [
        f"compose --project-name={app.name} up --size=256 --zone=a --zone=b database"
    ]
    env = app.ok("exec", "-T", "app", "cat", "/tmp/env")
    assert "DATABASE_URL=mysql://db.example:3306/shop" in env
    assert "SHOP_DB_TOKEN=s3cr3t" in env
    assert "DATABASE_URL" not in app.ok("exec", "-T", "reader", "env")  # not a dependent

    # pre_start ran before the instance, in a one-off that is gone
    assert app.ok("exec", "-T", "reader", "cat", "/data/pre_start").strip() == "initialised-by-0"
    names = [c.name for c in app.client.containers.list(all=True)]
    assert not [n for n in names if n.startswith(f"{app.name}-app-pre_start")], names

    # post_start: in the instance, with the hook's user, working_dir, environment, privileges
    assert app.ok("exec", "-T", "reader", "cat", "/data/post_start").split() == [
        "hello",
        "0",
        "/tmp",
    ]

    # the job: both instances completed, shown as such without --all
    rows = [r for r in _rows(app) if r["service"] == "migrate"]
    assert sorted((r["number"], r["status"], r["exit_code"]) for r in rows) == [
        (1, "completed", 0),
        (2, "completed", 0),
    ]
    table = app.ok("ps")
    assert "completed" in table
    # an unchanged job is converged: a second up runs nothing again
    again = app.ok("up", "-d")
    assert "unchanged" in again, again
    migrations = app.ok("exec", "-T", "reader", "cat", "/data/migrations").split()
    assert migrations == ["ran", "ran"]
    # what a finished job wrote is its work, not drift
    assert "no drift" in app.ok("diff", "--exit-code", "migrate")

    # pre_stop runs before the stop, as the service's user
    app.ok("stop", "app")
    assert app.ok("exec", "-T", "reader", "cat", "/data/pre_stop").strip() == "flushed-by-65534"

    app.ok("down")
    assert calls.read_text().splitlines()[-1] == (
        f"compose --project-name={app.name} down --size=256 --zone=a --zone=b database"
    )


def test_failing_hooks_jobs_and_a_missing_provider_say_what_failed(app: App) -> None:
    app.write(f"""
        services:
          web:
            image: {BUSYBOX}
            command: [sleep, "300"]
            stop_signal: SIGKILL
            post_start:
              - command: [sh, -c, "true"]
              - command: [sh, -c, "echo cannot-register >&2; exit 3"]
          guard:
            image: {BUSYBOX}
            command: [sleep, "300"]
            stop_signal: SIGKILL
            pre_stop:
              - command: [sh, -c, "echo busy; exit 5"]
          batch:
            image: {BUSYBOX}
            command: [sh, -c, "echo attempt; exit 4"]
            deploy:
              mode: replicated-job
              restart_policy: {{condition: on-failure, max_attempts: 1}}
        """)
    code, out = app.run("up", "-d")
    assert code == 1, out
    assert "Traceback" not in out
    assert "service 'web': post_start[1] hook" in out and "exited with code 3" in out, out
    assert "cannot-register" in out, out
    assert "job instance" in out and "exit code 4 after 2 attempts" in out, out
    rows = {r["service"]: r for r in _rows(app, "-a")}
    assert rows["batch"]["status"] == "failed" and rows["batch"]["exit_code"] == 4
    assert app.ok("logs", "batch").count("attempt") == 2

    # a failing pre_stop aborts the stop (the spec's rule), saying how to stop anyway
    code, out = app.run("stop", "guard")
    assert code == 1, out
    assert "pre_stop[0] hook" in out and "exited with code 5" in out and "kill" in out, out
    rows = {r["service"]: r for r in _rows(app, "-a")}
    assert rows["guard"]["status"] == "running"
    app.ok("kill", "guard")
    app.ok("down")

    # a provider binary that does not exist: named, with what to do
    app.write(
        textwrap.dedent(f"""
        services:
          db:
            provider: {{type: no-such-provider-xyz}}
          web:
            image: {BUSYBOX}
            depends_on: [db]
        """)
    )
    code, out = app.run("up", "-d")
    assert code == 1, out
    assert "services.db.provider.type" in out and "'no-such-provider-xyz'" in out, out
    assert "docker-no-such-provider-xyz" in out and "PATH" in out, out
    assert "Traceback" not in out
