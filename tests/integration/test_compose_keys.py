"""Compose keys the engine applies as written, seen from inside a real container."""

from __future__ import annotations

import json

import pytest

from tests.integration.apps import App

pytestmark = pytest.mark.integration


def test_link_alias_labels_file_and_engine_keys_reach_the_container(app: App) -> None:
    (app.dir / "labels.env").write_text("team=payments\ntier=backend\n")
    app.write("""
        services:
          db:
            image: local/busybox:latest
            command: ["sleep", "300"]
            volumes: ["/data"]
          web:
            image: local/busybox:latest
            command: ["sleep", "300"]
            links: ["db:database"]
            label_file: labels.env
            labels: {tier: frontend}
            volumes_from: ["db:ro"]
            extra_hosts:
              multi.internal: ["10.1.0.5", "10.1.0.6"]
            cpu_period: 100ms
            cpu_quota: 50000
            oom_kill_disable: false
            mem_swappiness: 10
    """)
    app.ok("up", "-d")
    # the link's alias resolves for the linking container (Compose's meaning)
    app.ok("exec", "web", "ping", "-c1", "-W3", "database")
    hosts = app.ok("exec", "web", "cat", "/etc/hosts")
    assert "10.1.0.5\tmulti.internal" in hosts and "10.1.0.6\tmulti.internal" in hosts
    # volumes_from: db's anonymous volume, read-only
    mounts = app.ok("exec", "web", "cat", "/proc/mounts")
    assert any(" /data " in line and " ro," in line for line in mounts.splitlines())
    (row,) = [r for r in json.loads(app.ok("ps", "--json")) if r["service"] == "web"]
    attrs = app.client.api.inspect_container(row["id"])
    assert attrs["HostConfig"]["CpuPeriod"] == 100_000
    assert attrs["HostConfig"]["CpuQuota"] == 50_000
    assert attrs["HostConfig"]["MemorySwappiness"] == 10
    labels = attrs["Config"]["Labels"]
    assert labels["team"] == "payments" and labels["tier"] == "frontend"
