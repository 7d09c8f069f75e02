"""The foundation against the real engine, through the CLI entry point."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import docker
import pytest

from compound.runtimes.base import LABEL_PROJECT
from tests.integration.apps import App

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_multi_service_app_with_networks_volumes_and_healthchecks(app: App) -> None:
    port = _free_port()
    app.write(f"""
        services:
          web:
            image: local/busybox:latest
            command: ["httpd", "-f", "-p", "80", "-h", "/www"]
            ports: ["127.0.0.1:{port}:80"]
            volumes: ["site:/www"]
            networks: [front]
            depends_on:
              writer: {{condition: service_completed_successfully}}
          writer:
            image: local/busybox:latest
            command: ["sh", "-c", "echo hello-from-volume > /www/index.html"]
            volumes: ["site:/www"]
            networks: [back]
          db:
            image: local/busybox:latest
            command: ["sh", "-c", "nc -ll -p 5432 -e echo pong"]
            networks:
              back:
                aliases: [database]
            healthcheck:
              test: ["CMD-SHELL", "nc 127.0.0.1 5432 </dev/null | grep -q pong"]
              interval: 1s
              retries: 20
          probe:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            networks: [back]
            depends_on:
              db: {{condition: service_healthy}}
        networks:
          front: {{}}
          back: {{}}
        volumes:
          site: {{}}
        """)
    app.ok("up", "-d")
    assert _get(f"http://127.0.0.1:{port}/").strip() == "hello-from-volume"
    # the alias resolves on the shared network, and db is healthy
    code, out = app.run("exec", "-T", "probe", "sh", "-c", "nc database 5432 </dev/null")
    assert code == 0 and "pong" in out
    rows = json.loads(app.ok("ps", "-a", "--json"))
    by_svc = {r["service"]: r for r in rows}
    assert by_svc["db"]["health"] == "healthy"
    assert by_svc["writer"]["status"] == "exited" and by_svc["writer"]["exit_code"] == 0
    assert {r["runtime"] for r in rows} == {"container"}
    # named volume survives down without -v, and is gone with -v
    app.ok("down")
    vols = [
        v.name for v in app.client.volumes.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})
    ]
    assert vols == [f"{app.name}_site"]
    assert not app.client.containers.list(
        all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}
    )
    assert not app.client.networks.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})
    app.ok("down", "-v")
    assert not app.client.volumes.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})


def test_reconcile_recreates_only_the_changed_service(app: App) -> None:
    body = """
        services:
          a:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            environment: {{VERSION: "{v}"}}
          b:
            image: local/busybox:latest
            command: ["sleep", "3600"]
        """
    app.write(body.format(v="1"))
    app.ok("up", "-d")
    before = {r["service"]: r["id"] for r in json.loads(app.ok("ps", "--json"))}
    # nothing changed: nothing touched
    plan = json.loads(app.ok("up", "-d", "--dry-run", "--json"))
    assert plan["changed"] is False
    assert plan["missing_images"] == {}  # every image is on this host
    app.write(body.format(v="2"))
    plan = json.loads(app.ok("up", "-d", "--dry-run", "--json"))
    assert {s["service"]: s["summary"] for s in plan["services"]} == {
        "a": "recreate",
        "b": "unchanged",
    }
    app.ok("up", "-d")
    after = {r["service"]: r["id"] for r in json.loads(app.ok("ps", "--json"))}
    assert after["b"] == before["b"]
    assert after["a"] != before["a"]
    env = app.client.containers.get(after["a"]).attrs["Config"]["Env"]
    assert "VERSION=2" in env
    history = json.loads(app.ok("history", "--json"))
    assert [h["outcome"] for h in history][:2] == ["succeeded", "succeeded"]
    assert history[0]["live"] is True


def test_replicas_scale_and_secrets(app: App) -> None:
    (app.dir / "token.txt").write_text("s3cret-file\n")
    app.write(
        """
        services:
          worker:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            deploy: {replicas: 3}
            secrets:
              - token
              - source: fromenv
                target: /run/secrets/other
                mode: 0400
        secrets:
          token: {file: ./token.txt}
          fromenv: {environment: DEMO_SECRET}
        """,
        env={"DEMO_SECRET": "s3cret-env"},
    )
    app.ok("up", "-d")
    rows = json.loads(app.ok("ps", "--json"))
    assert sorted(r["number"] for r in rows) == [1, 2, 3]
    code, out = app.run(
        "exec", "-T", "--index", "2", "worker", "cat", "/run/secrets/token", "/run/secrets/other"
    )
    assert code == 0 and "s3cret-file" in out and "s3cret-env" in out
    app.ok("up", "-d", "--scale", "worker=1")
    assert len(json.loads(app.ok("ps", "--json"))) == 1
    # the env secret never lands in `config` output or the store
    assert "s3cret-env" not in app.ok("config")
    assert "s3cret-env" not in json.dumps(json.loads(app.ok("history", "--json")))


def test_failed_up_reports_and_next_up_converges(app: App) -> None:
    port = _free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        app.write(f"""
            services:
              db:
                image: local/busybox:latest
                command: ["sleep", "3600"]
              web:
                image: local/busybox:latest
                command: ["httpd", "-f", "-p", "80"]
                ports: ["127.0.0.1:{port}:80"]
                depends_on: [db]
              front:
                image: local/busybox:latest
                command: ["sleep", "3600"]
                depends_on: [web]
            """)
        code, out = app.run("up", "-d")
        assert code == 1
        assert "failed:" in out and "web" in out and "in use" in out
        assert "not started: front" in out
        assert "done:" in out and "db" in out
    finally:
        blocker.close()
    app.ok("up", "-d")
    rows = {r["service"]: r["status"] for r in json.loads(app.ok("ps", "--json"))}
    assert rows == {"db": "running", "web": "running", "front": "running"}
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        pass  # the port that was taken now reaches web


def test_missing_image_fails_fast_with_advice(app: App) -> None:
    app.write("""
        services:
          ghost:
            image: nonexistent.invalid/ghost:1
        """)
    t0 = time.monotonic()
    code, out = app.run("up", "-d")
    assert code == 1
    assert "ghost" in out and "could not be pulled" in out
    assert time.monotonic() - t0 < 60  # a guard against hanging, not a speed test


def test_bad_file_gives_location_and_no_traceback(app: App) -> None:
    app.write("""
        services:
          web:
            image: local/busybox:latest
            enviroment:
              A: b
        """)
    code, out = app.run("up", "-d")
    assert code == 1
    assert "compose.yaml:4" in out and "enviroment" in out and "environment" in out
    assert "Traceback" not in out


def test_down_removes_only_this_project(app: App, other_app: App) -> None:
    for a in (app, other_app):
        a.write("""
            services:
              s:
                image: local/busybox:latest
                command: ["sleep", "3600"]
            """)
        a.ok("up", "-d")
    app.ok("down")
    assert not app.client.containers.list(
        all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}
    )
    survivors = other_app.client.containers.list(
        filters={"label": f"{LABEL_PROJECT}={other_app.name}"}
    )
    assert len(survivors) == 1


def test_orphans_are_reported_then_removed(app: App) -> None:
    app.write("""
        services:
          a: {image: local/busybox:latest, command: ["sleep", "3600"]}
          b: {image: local/busybox:latest, command: ["sleep", "3600"]}
        """)
    app.ok("up", "-d")
    app.write("""
        services:
          a: {image: local/busybox:latest, command: ["sleep", "3600"]}
        """)
    code, out = app.run("up", "-d")
    assert code == 0 and "--remove-orphans" in out
    app.ok("up", "-d", "--remove-orphans")
    names = {r["service"] for r in json.loads(app.ok("ps", "-a", "--json"))}
    assert names == {"a"}


def test_stop_start_restart_kill_rm_logs(app: App) -> None:
    app.write("""
        services:
          talker:
            image: local/busybox:latest
            command:
              - sh
              - -c
              - "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.2; done"
            stop_grace_period: 5s
        """)
    app.ok("up", "-d")
    deadline = time.monotonic() + 10
    while "started" not in app.ok("logs") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "talker-1 | started" in app.ok("logs", "--no-color")
    app.ok("stop")
    assert json.loads(app.ok("ps", "-a", "--json"))[0]["status"] == "exited"
    assert "bye" in app.ok("logs", "--tail", "1", "--no-log-prefix")
    app.ok("start")
    app.ok("restart")
    assert json.loads(app.ok("ps", "--json"))[0]["status"] == "running"
    app.ok("kill")
    app.ok("rm", "-f")
    assert json.loads(app.ok("ps", "-a", "--json")) == []


def test_run_rm_returns_exit_code(app: App) -> None:
    app.write("""
        services:
          tool:
            image: local/busybox:latest
            environment: {GREETING: hi}
        """)
    code, out = app.run("run", "--rm", "-T", "tool", "sh", "-c", "echo $GREETING; exit 7")
    assert code == 7 and "hi" in out
    assert (
        app.client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}) == []
    )


def test_profiles_and_config(app: App) -> None:
    app.write("""
        services:
          main: {image: local/busybox:latest, command: ["sleep", "3600"]}
          debug:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            profiles: [debug]
        """)
    assert app.ok("config", "--services").split() == ["main"]
    assert app.ok("--profile", "debug", "config", "--services").split() == ["debug", "main"]
    cfg = json.loads(app.ok("config", "--json"))
    assert cfg["services"]["main"]["image"] == "local/busybox:latest"


def test_interpolation_and_env_file(app: App) -> None:
    app.write("""
        services:
          s:
            image: ${IMAGE:-local/busybox:latest}
            command: ["sh", "-c", "echo ${GREETING:?set GREETING}; sleep 3600"]
        """)
    (app.dir / ".env").write_text("GREETING=bonjour\n")
    app.ok("up", "-d")
    deadline = time.monotonic() + 10
    while "bonjour" not in app.ok("logs") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "bonjour" in app.ok("logs")
    (app.dir / ".env").write_text("")
    code, out = app.run("config")
    assert code == 1 and "set GREETING" in out


def test_engine_labels_identify_everything(app: App) -> None:
    app.write("""
        services:
          s: {image: local/busybox:latest, command: ["sleep", "3600"]}
        """)
    app.ok("up", "-d")
    c = app.client.containers.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})[0]
    labels = c.labels
    assert labels["io.compound.service"] == "s"
    assert labels["io.compound.number"] == "1"
    assert labels["io.compound.runtime"] == "container"
    assert c.name == f"{app.name}-s-1"
    assert isinstance(app.client, docker.DockerClient)


def test_ctrl_c_during_up_reports_and_next_up_converges(app: App) -> None:
    import os
    import signal
    import subprocess
    import sys

    app.write("""
        services:
          slow:
            image: local/busybox:latest
            command: ["sh", "-c", "sleep 4; touch /tmp/ready; sleep 3600"]
            init: true
            healthcheck:
              test: ["CMD", "test", "-f", "/tmp/ready"]
              interval: 1s
              retries: 30
          quick:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            init: true
          after:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            init: true
            depends_on:
              slow: {condition: service_healthy}
        """)
    compound = os.path.join(os.path.dirname(sys.executable), "compound")
    proc = subprocess.Popen(
        [compound, "--progress", "plain", "-f", str(app.file), "-p", app.name, "up", "-d"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    # interrupt while `after` waits for `slow` to become healthy
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = {
            c.name
            for c in app.client.containers.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})
        }
        if f"{app.name}-slow-1" in names and f"{app.name}-quick-1" in names:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "up interrupted" in out
    assert "not started: after" in out
    assert "Traceback" not in out
    # nothing half-done that the next up cannot converge
    app.ok("up", "-d", "--wait")
    rows = {r["service"]: r for r in json.loads(app.ok("ps", "--json"))}
    assert {s: r["status"] for s, r in rows.items()} == {
        "slow": "running",
        "quick": "running",
        "after": "running",
    }
    assert rows["slow"]["health"] == "healthy"


def test_run_at_a_terminal_is_interactive(app: App) -> None:
    import os
    import pty
    import select
    import subprocess
    import sys

    app.write("""
        services:
          tool:
            image: local/busybox:latest
        """)
    compound = os.path.join(os.path.dirname(sys.executable), "compound")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [compound, "-f", str(app.file), "-p", app.name, "run", "--rm", "tool", "sh"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    typed = False
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 4096)
            except OSError:  # EIO: the child closed its side while exiting
                break
        # type only at the prompt, as a person would (ash first queries the
        # cursor position, and would take early keystrokes as the answer)
        if not typed and b"# " in seen:
            time.sleep(0.5)
            os.write(master, b"echo typed-$((6*7)); exit 4\n")
            typed = True
    assert proc.wait(timeout=30) == 4
    assert b"typed-42" in seen  # the shell evaluated what we typed at its prompt
    os.close(master)
    assert (
        app.client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}) == []
    )
