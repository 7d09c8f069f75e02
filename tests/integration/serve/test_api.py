"""The REST API against a real server on loopback and the real engine."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from compound.state.lock import ProjectLock, lock_path
from tests.integration.serve.server import ServeProcess

pytestmark = pytest.mark.integration


def _paths(server: ServeProcess) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document, its path parameters filled in
    with this project's names (and an unknown job)."""
    doc = server.get("/openapi.json").json()
    fill = {
        "{project}": server.project,
        "{service}": "web",
        "{verb}": "restart",
        "{volume}": "data",
        "{job}": "nosuchjob",
    }
    out = []
    for path, ops in doc["paths"].items():
        if path == "/healthz":  # the probe: the one route without a token
            continue
        for method in ops:
            for key, value in fill.items():
                path = path.replace(key, value)
            assert "{" not in path, path
            out.append((method.upper(), path))
    return out


def _shape(body: dict[str, Any]) -> None:
    """The CLI's error shape: what, where, what to do."""
    assert {"error", "message", "where", "hint"} <= set(body), body
    assert body["message"]


def test_every_endpoint_refuses_a_missing_or_wrong_token(served: ServeProcess) -> None:
    ops = _paths(served)
    assert len(ops) >= 20, ops  # reads, actions, jobs, events, metrics
    for method, path in [*ops, ("GET", "/openapi.json")]:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
            r = served.client.request(method, served.url + path, headers=headers, json={})
            assert r.status_code in (401, 403), (method, path, headers, r.status_code, r.text)
            _shape(r.json())
    assert served.get("/healthz", role=None).json()["status"] == "ok"


def test_a_read_only_token_reads_but_cannot_act(served: ServeProcess) -> None:
    actions = [(m, p) for m, p in _paths(served) if m == "POST"]
    assert {p.rsplit("/", 1)[-1] for _, p in actions} >= {
        "up",
        "down",
        "rollback",
        "restart",
        "backup",
        "restore",
    }
    before = len(served.get("/api/v1/audit?limit=1000").json())
    for _method, path in actions:
        r = served.post(path, {}, role="read-only")
        assert r.status_code == 403, (path, r.text)
        _shape(r.json())
        assert r.json()["message"] == "a read-only token cannot act"
    audit = served.get("/api/v1/audit?limit=1000").json()
    refused = audit[: len(audit) - before]  # newest first
    assert len(refused) == len(actions)
    assert {a["outcome"] for a in refused} == {"refused"} and {a["who"] for a in refused} == {
        "read-only"
    }
    # ...and every read answers the read-only token (a stream: its first bytes)
    for method, path in _paths(served):
        if method != "GET":
            continue
        with served.client.stream(
            "GET", served.url + path, headers=served.headers("read-only")
        ) as r:
            expected = 404 if path.endswith("nosuchjob") else 200
            assert r.status_code == expected, (path, r.status_code, r.read())
            next(r.iter_bytes(), None)


def test_reads_have_the_cli_json_shapes(served: ServeProcess) -> None:
    p = served.project
    rows = served.get(f"/api/v1/projects/{p}/instances").json()
    assert sorted(r["name"] for r in rows) == [f"{p}-slow-1", f"{p}-web-1", f"{p}-web-2"]
    assert {r["runtime"] for r in rows} == {"container"} and {r["kernel"] for r in rows} == {
        "shared"
    }
    assert {
        "name",
        "service",
        "runtime",
        "kernel",
        "accel",
        "boot_time",
        "health",
        "ports",
        "status",
    } <= set(rows[0])
    history = served.get(f"/api/v1/projects/{p}/history").json()
    assert history[-1]["revision"] == 1 and history[-1]["command"] == "up"
    assert sum(h["live"] for h in history) == 1
    advice = served.get(f"/api/v1/projects/{p}/advice").json()
    assert advice["version"] == 1 and {s["service"] for s in advice["services"]} == {"web", "slow"}
    assert all("factors" in s and "would_change" in s for s in advice["services"])
    plan = served.get(f"/api/v1/projects/{p}/plan").json()
    assert plan and "hosts" in json.dumps(plan)
    drift = served.get(f"/api/v1/projects/{p}/drift").json()
    assert drift["project"] == p
    vols = served.get(f"/api/v1/projects/{p}/volumes").json()
    assert [v["key"] for v in vols["volumes"]] == ["data"]
    logs = served.get(f"/api/v1/projects/{p}/logs?service=web&tail=10").text
    assert re.search(r"^web-1 \| web-ready-", logs, re.M), logs


def test_unknown_names_are_404_and_bad_bodies_422_in_the_error_shape(served: ServeProcess) -> None:
    p = served.project
    for path in (
        "/api/v1/projects/nosuch/instances",
        f"/api/v1/projects/{p}/instances?service=nosuch",
        "/api/v1/jobs/nosuch",
    ):
        r = served.get(path)
        assert r.status_code == 404, (path, r.text)
        _shape(r.json())
    for path, body in (
        (f"/api/v1/projects/{p}/services/nosuch/restart", {}),
        (f"/api/v1/projects/{p}/volumes/nosuch/backup", {}),
        (f"/api/v1/projects/{p}/volumes/data/restore", {"archive": "nosuch.tar.zst"}),
        (f"/api/v1/projects/{p}/up", {"services": ["nosuch"]}),
        ("/api/v1/projects/nosuch/down", {}),
    ):
        r = served.post(path, body)
        assert r.status_code == 404, (path, r.text)
        _shape(r.json())
    for body in ({"force_recreate": "maybe"}, {"surprise": 1}, {"wait_timeout": -1}):
        r = served.post(f"/api/v1/projects/{p}/up", body)
        assert r.status_code == 422, r.text
        _shape(r.json())
        assert r.json()["where"].startswith("body"), r.json()
    r = served.client.post(
        f"{served.url}/api/v1/projects/{p}/up",
        content=b"{not json",
        headers={**served.headers(), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "Traceback" not in r.text
    _shape(r.json())


def test_job_lifecycle_of_an_up_with_sse_events(served: ServeProcess) -> None:
    p = served.project
    events: list[dict[str, Any]] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream(
            "GET", served.url + "/api/v1/events", headers=served.headers("read-only"), timeout=120
        ) as r:
            for line in r.iter_lines():
                connected.set()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "job.finished":
                        return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert connected.wait(10)
    r = served.post(f"/api/v1/projects/{p}/up", {"services": ["web"], "force_recreate": True})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["state"] == "running" and accepted["url"] == f"/api/v1/jobs/{accepted['id']}"
    running = served.get(accepted["url"]).json()
    job = served.wait_job(accepted["id"])
    t.join(60)
    assert job["state"] == "succeeded", job
    assert job["result"]["revision"] == 2 and job["result"]["plan"]["project"] == p
    # a rolling update, batch by batch, as the CLI's progress shows it
    details = [e.get("detail") for e in job["events"] if e.get("item") == "web"]
    assert "update: 1/2 (start-first)" in details and "update: 2/2 (start-first)" in details
    assert f"{p}-web-2-next" in details, details
    # the events arrived live, in order, before the end: started, progress..., finished
    mine = [e for e in events if e.get("job") == accepted["id"]]
    kinds = [e["type"] for e in mine]
    assert kinds[0] == "job.started" and kinds[-1] == "job.finished", kinds
    assert kinds.count("job.progress") >= 4, kinds
    assert any(e["type"] == "engine" and e["project"] == p for e in events), events
    assert running["state"] in ("running", "succeeded")
    audit = served.get(f"/api/v1/audit?project={p}").json()
    row = next(a for a in audit if a["job"] == accepted["id"])
    assert (row["who"], row["action"], row["outcome"]) == ("operator", "up", "succeeded")
    assert row["finished"] >= row["at"]
    history = served.get(f"/api/v1/projects/{p}/history").json()
    assert history[0]["revision"] == 2 and history[0]["live"]


def test_a_second_action_on_a_busy_project_is_409(served: ServeProcess) -> None:
    p = served.project
    # a slow job: `slow` ignores SIGTERM, so its restart waits its 2 s grace
    r = served.post(f"/api/v1/projects/{p}/services/slow/restart", {"timeout": 2})
    assert r.status_code == 202, r.text
    for path in (f"/api/v1/projects/{p}/up", f"/api/v1/projects/{p}/down"):
        busy = served.post(path, {})
        assert busy.status_code == 409, busy.text
        _shape(busy.json())
    assert served.wait_job(r.json()["id"])["state"] == "succeeded"
    # the CLI's writers take the same lock: one holding it refuses the server too
    lock = ProjectLock(lock_path(served.state_dir, p), p)
    lock.acquire(wait=False)
    try:
        assert served.post(f"/api/v1/projects/{p}/up", {}).status_code == 409
    finally:
        lock.release()
    refused = [
        a for a in served.get(f"/api/v1/audit?project={p}").json() if a["outcome"] == "refused"
    ]
    assert len(refused) >= 3


def test_a_client_that_disconnects_does_not_cancel_its_job(served: ServeProcess) -> None:
    p = served.project
    body = b"{}"
    request = (
        f"POST /api/v1/projects/{p}/services/web/restart HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {served.tokens['operator']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", served.port)) as s:
        s.sendall(request)  # and hang up without reading the answer
    deadline = time.monotonic() + 10
    job: dict[str, Any] = {}
    while time.monotonic() < deadline and not job:
        job = next(
            (
                j
                for j in served.get(f"/api/v1/jobs?project={p}").json()
                if j["action"] == "restart" and j["target"] == "web"
            ),
            {},
        )
    assert job, "the job was not started"
    assert served.wait_job(job["id"])["state"] == "succeeded"


def test_backup_and_restore_through_jobs(served: ServeProcess) -> None:
    p = served.project
    job = served.act(f"/api/v1/projects/{p}/volumes/data/backup", {})
    archive = job["result"]["archive"].rsplit("/", 1)[-1]
    listed = served.get(f"/api/v1/projects/{p}/volumes").json()["backups"]
    assert archive in [b["archive"] for b in listed]
    # a restore under running writers fails as a job, with the CLI's error and hint
    r = served.post(f"/api/v1/projects/{p}/volumes/data/restore", {"archive": archive})
    failed = served.wait_job(r.json()["id"])
    assert failed["state"] == "failed" and "in use" in failed["error"]["message"], failed
    assert "compound stop web" in failed["error"]["hint"]
    served.act(f"/api/v1/projects/{p}/services/web/stop", {})
    restored = served.act(f"/api/v1/projects/{p}/volumes/data/restore", {"archive": archive})
    assert restored["result"]["files"] == job["result"]["files"]
    served.act(f"/api/v1/projects/{p}/services/web/start", {})


def test_metrics_have_each_container_series(served: ServeProcess) -> None:
    p = served.project
    text = served.get("/metrics").text
    for inst in (f"{p}-web-1", f"{p}-web-2", f"{p}-slow-1"):
        for family in (
            "cpu_seconds_total",
            "memory_bytes",
            "network_receive_bytes_total",
            "blkio_read_bytes_total",
        ):
            assert re.search(
                rf'^compound_instance_{family}{{[^}}]*instance="{inst}"', text, re.M
            ), (inst, family)
    mem = re.search(
        rf'^compound_instance_memory_bytes{{[^}}]*instance="{p}-web-1"[^}}]*}} (\S+)', text, re.M
    )
    assert mem and 0 < float(mem.group(1)) < 64 << 20
    assert re.search(
        rf'^compound_instances{{health="running",project="{p}",runtime="container"}} 3.0',
        text,
        re.M,
    )
    assert re.search(
        rf'^compound_revisions_total{{command="up",outcome="succeeded",project="{p}"}}', text, re.M
    )


def test_a_restarted_server_reports_its_unfinished_job_interrupted(served: ServeProcess) -> None:
    p = served.project
    # its own state dir: a first start, its own tokens
    second = ServeProcess(served.compose, served.state_dir / "second").start()
    second.project = p
    try:
        r = second.post(f"/api/v1/projects/{p}/services/slow/restart", {"timeout": 5})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        time.sleep(0.5)
        second.stop(signal.SIGKILL)
        assert second.proc is not None and second.proc.returncode == -9
        tokens = dict(second.tokens)
        again = ServeProcess(served.compose, second.state_dir, tokens).start()
        try:
            job = again.get(f"/api/v1/jobs/{job_id}").json()
            assert job["state"] == "interrupted", job
            row = next(a for a in again.get("/api/v1/audit").json() if a["job"] == job_id)
            assert row["outcome"] == "interrupted" and row["who"] == "operator"
            assert "interrupted" in again.log.read_text()
        finally:
            again.stop()
    finally:
        second.stop()
