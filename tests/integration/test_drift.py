"""`compound diff` and `up --recreate-drifted` against the real engine and a
real guest: files changed through `exec` are drift, writes into volumes are
not, a changed file (environment) is config drift, and recreating the
drifted instance (only that one) gets back to a clean state."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.apps import App

pytestmark = pytest.mark.integration

WRITES = (
    "echo x > /newfile && echo y >> /etc/passwd && rm /var/www/index.html"
    " && echo kept > /data/deep/in-volume"
)


def _diff(app: App, *args: str) -> dict[str, Any]:
    code, out = app.run("diff", "--json", *args)
    assert code == 0, out
    data: dict[str, Any] = json.loads(out)
    return data


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["instance"]: i for i in report["instances"]}


def _ids(app: App) -> dict[str, str]:
    return {r["name"]: r["id"] for r in json.loads(app.ok("ps", "--json"))}


@pytest.mark.timeout(240)
def test_container_drift_is_listed_and_only_the_drifted_instance_is_recreated(app: App) -> None:
    app.write(
        """
        services:
          web:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_signal: SIGKILL
            scale: 2
            environment: {LEVEL: "1"}
            volumes: [data:/data/deep]
          db:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_signal: SIGKILL
        volumes:
          data: {}
        """
    )
    app.ok("up", "-d")
    web1, web2, db = (f"{app.name}-{s}" for s in ("web-1", "web-2", "db-1"))
    fresh = _diff(app)
    assert fresh["drifted"] is False, fresh
    assert {i["instance"] for i in fresh["instances"]} == {web1, web2, db}
    assert app.run("diff", "--exit-code") == (0, app.ok("diff"))

    assert app.run("exec", "-T", "web", "sh", "-c", WRITES)[0] == 0
    report = _diff(app)
    assert report["drifted"] is True and report["config"] == []
    rows = _by_name(report)
    # the volume's mount point (/data, /data/deep) and the write into it are not drift
    assert rows[web1]["changes"] == [
        {"kind": "C", "path": "/etc/passwd"},
        {"kind": "A", "path": "/newfile"},
        {"kind": "D", "path": "/var/www/index.html"},
    ]
    assert rows[web1]["counts"] == {"A": 1, "C": 1, "D": 1}
    assert (rows[web2]["drifted"], rows[db]["drifted"]) == (False, False)
    code, text = app.run("diff", "--exit-code", "web")
    assert code == 3, text
    assert "3 paths (1 added, 1 changed, 1 deleted)" in text
    assert "  D /var/www/index.html" in text and web2 not in text

    before = _ids(app)
    plan = app.ok("up", "-d", "--recreate-drifted", "--dry-run")
    assert f"recreate {web1}: drifted: 3 paths" in plan, plan
    app.ok("up", "-d", "--recreate-drifted")
    after = _ids(app)
    assert after[web1] != before[web1]
    assert (after[web2], after[db]) == (before[web2], before[db])
    assert _diff(app)["drifted"] is False
    assert app.ok("exec", "-T", "web", "cat", "/data/deep/in-volume").strip() == "kept"

    # a different value in the file is config drift, not file drift
    app.write(app.file.read_text().replace('LEVEL: "1"', 'LEVEL: "2"'))
    changed = _diff(app)
    assert changed["drifted"] is True
    assert sorted((c["instance"], c["reason"]) for c in changed["config"]) == [
        (web1, "configuration changed"),
        (web2, "configuration changed"),
    ]
    assert not any(i["drifted"] for i in changed["instances"])
    assert app.run("diff", "--exit-code", "db")[0] == 0


def _guest_ready(app: App, timeout: float = 90.0) -> None:
    """The guest agent answers (exec works): bounded poll."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = app.run("exec", "-T", "vm", "true")
        if code == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"guest agent not answering after {timeout:.0f}s: {out}", pytrace=False)
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_vm_drift_from_the_guest_root_but_not_its_volume(app: App) -> None:
    app.write(
        """
        services:
          vm:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            volumes: [data:/data/deep]
            x-compound:
              runtime: vm
              vm: {memory: 128m}
        volumes:
          data: {}
        """
    )
    try:
        app.ok("up", "-d")
        _guest_ready(app)
        vm1 = f"{app.name}-vm-1"
        fresh = _by_name(_diff(app))[vm1]
        assert (fresh["drifted"], fresh["unknown"], fresh["changes"]) == (False, None, [])

        assert app.run("exec", "-T", "vm", "sh", "-c", WRITES)[0] == 0
        rows = _by_name(_diff(app))
        assert rows[vm1]["changes"] == [
            {"kind": "C", "path": "/etc/passwd"},
            {"kind": "A", "path": "/newfile"},
            {"kind": "D", "path": "/var/www/index.html"},
        ]

        before = _ids(app)[vm1]
        app.ok("up", "-d", "--recreate-drifted")
        assert _ids(app)[vm1] != before  # a new launcher: a new, empty overlay
        _guest_ready(app)
        after = _by_name(_diff(app))[vm1]
        assert (after["drifted"], after["unknown"]) == (False, None)
        assert app.run("exec", "-T", "vm", "test", "-e", "/newfile")[0] == 1
        assert app.ok("exec", "-T", "vm", "cat", "/data/deep/in-volume").strip() == "kept"
    finally:
        app.run("down", "-v")


def test_the_engines_init_is_not_drift(app: App) -> None:
    """`init: true` bind-mounts docker-init into the container's /sbin: the
    engine's doing, not a change to the instance."""
    app.write("""
        services:
          a:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            init: true
          b:
            image: local/python:3
            command: ["sleep", "3600"]
            init: true
        """)
    app.ok("up", "-d")
    report = json.loads(app.ok("diff", "--json"))
    assert report["drifted"] is False, report
    assert sorted(i["service"] for i in report["instances"]) == ["a", "b"]
    assert all(i["changes"] == [] and i["unknown"] is None for i in report["instances"]), report
