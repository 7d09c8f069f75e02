"""Rolling updates, rollback and convergence after SIGKILL, on the real engine."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from compound.runtimes.base import LABEL_PROJECT
from tests.integration.apps import App

# A replica that records its version, answers its healthcheck once ready and
# stops at once on SIGTERM (so replacing one does not wait out a grace period).
WEB = """
services:
  web:
    image: local/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; {start}; while :; do sleep 0.2; done"]
    environment: {{VERSION: "{v}"}}
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 500ms
      retries: {retries}
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: 1, order: {order}, failure_action: {action}}}
"""
GOOD = "echo $$VERSION > /tmp/version; sleep 0.5; touch /tmp/ready"
NEVER_READY = "echo $$VERSION > /tmp/version"


def web(
    v: str,
    *,
    replicas: int = 3,
    order: str = "stop-first",
    action: str = "pause",
    start: str = GOOD,
    retries: int = 3,
) -> str:
    return WEB.format(
        v=v, replicas=replicas, order=order, action=action, start=start, retries=retries
    )


def versions(app: App) -> dict[str, str]:
    """Instance name -> the VERSION its process saw."""
    out = {}
    for c in app.client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}):
        env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"] or [])
        out[c.name] = env.get("VERSION", "")
    return out


def _time(value: str) -> float:
    from datetime import datetime

    # engine times have nanoseconds; datetime takes microseconds
    head, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


def test_rolling_update_replaces_one_batch_at_a_time_after_health(app: App) -> None:
    app.write(web("1"))
    app.ok("up", "-d", "--wait")
    app.write(web("2"))
    since = time.time()
    app.ok("up", "-d")
    assert versions(app) == {f"{app.name}-web-{i}": "2" for i in (1, 2, 3)}
    # each successor was created only after the one before it was healthy
    healthy: dict[str, float] = {}
    for ev in app.client.events(
        since=int(since),
        until=int(time.time()) + 1,
        decode=True,
        filters={"event": "health_status: healthy"},
    ):
        healthy.setdefault(ev["id"], ev["timeNano"] / 1e9)
    attrs = [app.client.api.inspect_container(f"{app.name}-web-{i}") for i in (1, 2, 3)]
    for before, after in itertools.pairwise(attrs):
        assert _time(after["Created"]) >= healthy[before["Id"]] - 0.01
    history = json.loads(app.ok("history", "--json"))
    assert history[0]["live"] is True and history[0]["outcome"] == "succeeded"


def test_start_first_single_replica_keeps_serving_and_takes_the_name(app: App) -> None:
    app.write(web("1", replicas=1, order="start-first"))
    app.ok("up", "-d", "--wait")
    old_id = app.client.containers.get(f"{app.name}-web-1").id
    # watch the project while the update runs: there is always a running instance
    app.write(web("2", replicas=1, order="start-first"))
    proc = _compound(app, "up", "-d")
    seen_running: list[int] = []
    while proc.poll() is None:
        running = app.client.containers.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})
        seen_running.append(len(running))
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    assert min(seen_running) >= 1
    assert max(seen_running) == 2  # the successor ran beside its predecessor
    assert versions(app) == {f"{app.name}-web-1": "2"}
    assert app.client.containers.get(f"{app.name}-web-1").id != old_id


def test_failed_update_rolls_back_to_the_previous_revision(app: App) -> None:
    app.write(web("1", replicas=2, action="rollback"))
    app.ok("up", "-d", "--wait")
    app.write(web("2", replicas=2, action="rollback", start=NEVER_READY, retries=2))
    code, out = app.run("up", "-d")
    assert code == 1, out
    assert "rolled back to revision 1" in out and "unhealthy" in out
    assert "Traceback" not in out
    assert versions(app) == {f"{app.name}-web-1": "1", f"{app.name}-web-2": "1"}
    history = json.loads(app.ok("history", "--json"))
    assert history[0]["outcome"] == "failed"
    assert history[0]["result"]["rolled_back"] == {"web": "revision 1"}
    assert [h["live"] for h in history] == [False, True]


def test_paused_update_then_rollback_on_demand(app: App) -> None:
    app.write(web("1", replicas=3))
    app.ok("up", "-d", "--wait")
    app.write(web("2", replicas=3, start=NEVER_READY, retries=2))
    code, out = app.run("up", "-d")
    assert code == 1 and "update paused after 0 of 3" in out, out
    assert "compound rollback web" in out
    # the first replica is the failed new version; the others were not touched
    assert sorted(versions(app).values()) == ["1", "1", "2"]
    out = app.ok("rollback", "web")
    assert "rolled back to revision 1" in out
    assert sorted(versions(app).values()) == ["1", "1", "1"]


def test_rollback_swaps_back_to_an_earlier_image(app: App) -> None:
    tag = f"local/{app.name}:latest"
    try:
        ids = []
        for version in ("1", "2"):
            df = f"FROM local/busybox:latest\nRUN echo {version} > /version\n"
            (app.dir / "Dockerfile").parent.mkdir(parents=True, exist_ok=True)
            (app.dir / "Dockerfile").write_text(df)
            image, _ = app.client.images.build(path=str(app.dir), tag=tag, rm=True)
            ids.append(image.id)
            app.write(f"""
                services:
                  app:
                    image: {tag}
                    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
                """)
            app.ok("up", "-d")
        assert app.client.containers.get(f"{app.name}-app-1").image.id == ids[1]
        app.ok("rollback")
        container = app.client.containers.get(f"{app.name}-app-1")
        assert container.image.id == ids[0]  # pinned by id: the tag points at the new one
        code, out = app.run("exec", "app", "cat", "/version")
        assert (code, out.strip()) == (0, "1")
        # rolling back again returns to the newer revision (like `rollout undo`)
        app.ok("rollback", "app")
        assert app.client.containers.get(f"{app.name}-app-1").image.id == ids[1]
    finally:
        app.client.images.remove(tag, force=True)


def test_rollback_without_history_changes_nothing(app: App) -> None:
    app.write(web("1", replicas=1))
    app.ok("up", "-d", "--wait")
    before = app.client.containers.get(f"{app.name}-web-1").id
    code, out = app.run("rollback", "web")
    assert code == 1, out
    assert "nothing to roll back to for: web (no earlier revision deployed it)" in out
    assert "nothing was changed" in out
    assert app.client.containers.get(f"{app.name}-web-1").id == before
    code, out = app.run("rollback", "nosuch")
    assert code == 2 and "no such service: nosuch" in out


def _compound(app: App, *args: str) -> subprocess.Popen[str]:
    compound = os.path.join(os.path.dirname(sys.executable), "compound")
    return subprocess.Popen(
        [compound, "--progress", "plain", "-f", str(app.file), "-p", app.name, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **app.env},
    )


@pytest.mark.parametrize("order", ["stop-first", "start-first"])
def test_sigkill_at_many_points_of_an_update_then_up_converges(app: App, order: str) -> None:
    """Kill compound at a spread of moments during rolling updates; each next
    `up` must converge: one instance per number, all new, usual names."""
    replicas = 3
    app.write(web("0", replicas=replicas, order=order))
    app.ok("up", "-d", "--wait")
    # the moments are counted from when an `up` of this project has loaded and
    # planned (what a dry run costs here, more on a loaded host), so each
    # kill lands in the update itself, not in Python's start
    started = time.monotonic()
    _compound(app, "up", "-d", "--dry-run").communicate(timeout=120)
    base = 0.8 * (time.monotonic() - started)
    delays = [base + d for d in (0.3, 0.8, 1.4, 2.0, 2.7, 3.5)]
    for round_, delay in enumerate(delays, start=1):
        app.write(web(str(round_), replicas=replicas, order=order))
        proc = _compound(app, "up", "-d")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        app.ok("up", "-d", "--wait")
        names = versions(app)
        assert names == {f"{app.name}-web-{i}": str(round_) for i in range(1, replicas + 1)}, (
            f"after a kill at {delay:.1f}s: {names}"
        )
        running = app.client.containers.list(filters={"label": f"{LABEL_PROJECT}={app.name}"})
        assert len(running) == replicas
    history = json.loads(app.ok("history", "--json"))
    assert "interrupted" in {h["outcome"] for h in history}


BALANCED = """
services:
  web:
    image: local/busybox:latest
    command:
      - sh
      - -c
      - mkdir -p /www; echo $$VERSION > /www/index.html; exec httpd -f -p 8080 -h /www
    environment: {{VERSION: "{v}"}}
    init: true  # httpd as PID 1 would ignore SIGTERM and wait out the grace period
    ports: ["127.0.0.1:{port}:8080"]
    healthcheck:
      test: ["CMD", "test", "-f", "/www/index.html"]
      interval: 500ms
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: 1, order: {order}}}
"""


class _Load:
    """Requests in a loop from a thread: what a user of the service sees."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.ok: dict[str, int] = {}
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import urllib.request

        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    body = r.read().decode().strip()
                self.ok[body] = self.ok.get(body, 0) + 1
            except Exception as exc:
                self.failed.append(repr(exc))

    def __enter__(self) -> _Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_published_replicas_update_behind_the_balancer_without_a_failed_request(
    app: App, order: str
) -> None:
    port = _free_port()
    app.write(BALANCED.format(v="1", port=port, replicas=3, order=order))
    app.ok("up", "-d", "--wait")
    lb = app.client.containers.get(f"{app.name}-web-lb")
    assert lb.labels["io.compound.role"] == "lb"
    # the replicas publish nothing; the balancer publishes the service's port
    for i in (1, 2, 3):
        assert not app.client.api.inspect_container(f"{app.name}-web-{i}")["HostConfig"][
            "PortBindings"
        ]
    url = f"http://127.0.0.1:{port}/index.html"
    with _Load(url) as load:
        time.sleep(1.0)
        app.write(BALANCED.format(v="2", port=port, replicas=3, order=order))
        app.ok("up", "-d")
        time.sleep(1.0)
    assert load.failed == [], load.failed[:5]
    assert load.ok.get("1") and load.ok.get("2"), load.ok
    assert versions(app) == {
        f"{app.name}-web-1": "2",
        f"{app.name}-web-2": "2",
        f"{app.name}-web-3": "2",
        f"{app.name}-web-lb": "",
    }
    # `ps` and the planner do not count the balancer as an instance
    rows = json.loads(app.ok("ps", "--json"))
    assert sorted(r["name"] for r in rows) == [f"{app.name}-web-{i}" for i in (1, 2, 3)]
    assert json.loads(app.ok("up", "--dry-run", "--json"))["changed"] is False


def test_scaling_moves_a_service_behind_a_balancer_and_back(app: App) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/index.html"

    def get() -> str:
        import urllib.request

        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode().strip())

    app.write(BALANCED.format(v="1", port=port, replicas=1, order="stop-first"))
    app.ok("up", "-d", "--wait")
    assert get() == "1"
    assert not app.client.containers.list(filters={"name": f"{app.name}-web-lb"})
    app.write(BALANCED.format(v="1", port=port, replicas=3, order="stop-first"))
    app.ok("up", "-d", "--wait")
    assert app.client.containers.get(f"{app.name}-web-lb").status == "running"
    assert get() == "1"
    app.write(BALANCED.format(v="1", port=port, replicas=1, order="stop-first"))
    app.ok("up", "-d", "--wait")
    assert not app.client.containers.list(all=True, filters={"name": f"{app.name}-web-lb"})
    assert get() == "1"
    out = json.loads(app.ok("down", "--json"))
    assert out["instances"] == [f"{app.name}-web-1"]


def test_sigkill_during_updates_behind_the_balancer_then_up_converges(app: App) -> None:
    """The same behind HAProxy: after each kill and `up`, the balancer routes
    to exactly the three current instances, and they answer the new version."""
    from compound.lb import container, runtime_api
    from compound.lb.config import SOCKET_NAME
    from compound.lb.frontend import server_name

    port = _free_port()
    url = f"http://127.0.0.1:{port}/index.html"
    app.write(BALANCED.format(v="0", port=port, replicas=3, order="start-first"))
    app.ok("up", "-d", "--wait")
    for round_, delay in enumerate((0.4, 1.2, 2.2, 3.2), start=1):
        app.write(BALANCED.format(v=str(round_), port=port, replicas=3, order="start-first"))
        proc = _compound(app, "up", "-d")
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        app.ok("up", "-d", "--wait")
        rows = json.loads(app.ok("ps", "--json"))
        assert sorted(r["name"] for r in rows) == [f"{app.name}-web-{i}" for i in (1, 2, 3)]
        sock = container.run_dir_for(f"{app.name}-web-lb") / SOCKET_NAME
        servers = {(s.name, s.admin) for s in runtime_api.servers(sock)}
        want = {(server_name(_as_instance(app, r["id"])), "ready") for r in rows}
        assert servers == want, f"after a kill at {delay}s"
        import urllib.request

        bodies = set()
        for _ in range(12):
            with urllib.request.urlopen(url, timeout=5) as r:
                bodies.add(r.read().decode().strip())
        assert bodies == {str(round_)}


def _as_instance(app: App, container_id: str):  # type: ignore[no-untyped-def]
    from compound.runtimes.instances import inspect_instance

    return inspect_instance(app.client, container_id)
