"""The dashboard in real headless Chromium (Debian's, driven by Playwright),
and /metrics for a VM, on one hybrid project: a container and a VM.

This module boots the suite's only VM for `compound serve`; both tests share
it. Screenshots go to test-artifacts/serve/ (gitignored)."""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.integration.conftest import remove_project
from tests.integration.serve.server import ServeProcess

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"  # Debian's package; no `playwright install`
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "serve"

HYBRID = """
name: {name}
services:
  web:
    image: local/busybox:latest
    command: ["sh", "-c", "echo hello-from-$$GREETING; exec httpd -f -p 8000"]
    environment: {{GREETING: {greeting}}}
    stop_grace_period: 1s
    deploy: {{update_config: {{order: start-first, monitor: 1s}}}}
  billing:
    image: local/busybox:latest
    command: ["sh", "-c", "echo billing-ready; exec httpd -f -p 8000"]
    x-compound: {{runtime: vm, vm: {{memory: 128m, vcpus: 1}}}}
"""


@pytest.fixture(scope="module")
def hybrid(
    tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient, busybox_image: str
) -> Iterator[ServeProcess]:
    name = f"serve-ui-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("hybrid")
    compose = root / "compose.yaml"
    compose.write_text(textwrap.dedent(HYBRID.format(name=name, greeting="v1")))
    server = ServeProcess(compose, root / "state").start()
    server.project = name
    try:
        job = server.act(f"/api/v1/projects/{name}/up", {"wait": True, "wait_timeout": 300})
        assert job["result"]["plan"]["project"] == name
        yield server
    finally:
        server.stop()
        remove_project(engine, name)


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_dashboard_shows_both_runtimes_updates_live_and_rolls_back(hybrid: ServeProcess) -> None:
    p = hybrid.project
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(hybrid.url)
            # log in with the keyboard only
            expect(page.locator("#token")).to_be_focused()
            page.keyboard.type(hybrid.tokens["operator"])
            page.keyboard.press("Enter")
            vm = page.locator('#instances tr[data-runtime="vm"]')
            container = page.locator('#instances tr[data-runtime="container"]')
            expect(vm).to_have_count(1)
            expect(container).to_have_count(1)
            expect(vm.locator(".kernel")).to_have_text(re.compile(r"^\d+\.\d+"))  # its own kernel
            expect(container.locator(".kernel")).to_have_text("shared")  # the host's
            expect(vm).to_contain_text(f"{p}-billing-1")
            expect(page.locator("#advice")).to_contain_text("billing")
            expect(page.locator("#logs")).to_contain_text("web-1 | hello-from-v1")
            expect(page.locator("#logs")).to_contain_text("billing-1 | billing-ready")
            expect(page.locator("#live")).to_have_text("live")
            # sparklines fill from /metrics every 3 s
            expect(vm.locator('.metric[data-kind="mem"]')).to_contain_text("MiB", timeout=15000)
            _shot(page, "1-services")

            # a rolling update of `web`, started from the page and followed live
            hybrid.compose.write_text(textwrap.dedent(HYBRID.format(name=p, greeting="v2")))
            page.locator("#up").click()
            done = page.locator('#jobs li[data-state="succeeded"]', has_text="up")
            expect(done).to_have_count(1, timeout=120000)
            expect(page.locator("#history li[data-revision='2']")).to_contain_text("(live)")
            expect(page.locator("#logs")).to_contain_text("hello-from-v2", timeout=30000)
            _shot(page, "2-updated")

            # roll back, behind a confirmation
            page.locator("#history li[data-revision='2'] button.rollback").click()
            expect(page.locator("#confirm")).to_be_visible()
            expect(page.locator("#confirm-text")).to_contain_text("web")
            _shot(page, "3-confirm-rollback")
            page.locator("#confirm-ok").click()
            rolled = page.locator('#jobs li[data-state="succeeded"]', has_text="rollback")
            expect(rolled).to_have_count(1, timeout=120000)
            expect(page.locator("#history li[data-revision='3']")).to_contain_text("rollback")
            expect(page.locator("#logs")).to_contain_text("hello-from-v1", timeout=30000)
            _shot(page, "4-rolled-back")

            # a read-only token sees everything and no action
            ro = browser.new_page(viewport={"width": 1400, "height": 1100})
            ro.goto(hybrid.url)
            ro.locator("#token").fill(hybrid.tokens["read-only"])
            ro.locator("#token").press("Enter")
            expect(ro.locator('#instances tr[data-runtime="vm"]')).to_have_count(1)
            expect(ro.locator("#up")).to_be_hidden()
            expect(ro.locator("#history button.rollback")).to_be_hidden()
            expect(ro.locator("#instances button").first).to_be_hidden()
            _shot(ro, "5-read-only")
        finally:
            browser.close()
    # what the page did, the API confirms
    web = next(
        r for r in hybrid.get(f"/api/v1/projects/{p}/instances").json() if r["service"] == "web"
    )
    logs = hybrid.get(f"/api/v1/projects/{p}/logs?service=web&tail=5").text
    assert web["status"] == "running" and "hello-from-v1" in logs, logs
    audit = hybrid.get(f"/api/v1/audit?project={p}").json()
    assert [a["action"] for a in audit[:2]] == ["rollback", "up"]
    assert all(a["outcome"] == "succeeded" for a in audit[:2])


def _launcher_memory(container_id: str) -> int:
    """The launcher's cgroup as `docker stats` counts it (v1 or v2)."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    for d in (
        Path(f"/sys/fs/cgroup/{'' if v2 else 'memory/'}docker/{container_id}"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"),
    ):
        if d.is_dir():
            usage = int((d / ("memory.current" if v2 else "memory.usage_in_bytes")).read_text())
            stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
            inactive = int(stat.get("inactive_file" if v2 else "total_inactive_file", 0))
            return usage - inactive
    raise AssertionError(f"no cgroup for {container_id}")


def test_metrics_of_a_vm_come_from_its_launcher_cgroup_and_qmp(hybrid: ServeProcess) -> None:
    p = hybrid.project
    billing = next(
        r for r in hybrid.get(f"/api/v1/projects/{p}/instances").json() if r["service"] == "billing"
    )
    assert billing["runtime"] == "vm"

    def series(text: str, family: str, inst: str) -> float:
        m = re.search(rf'^{family}{{[^}}]*instance="{inst}"[^}}]*}} (\S+)$', text, re.M)
        assert m, (family, inst)
        return float(m.group(1))

    text = hybrid.get("/metrics").text
    direct = _launcher_memory(billing["id"])
    scraped = series(text, "compound_instance_memory_bytes", billing["name"])
    # QEMU with a booted guest: tens of MiB, and the same figure the cgroup gives
    assert scraped > 16 << 20, scraped
    assert abs(scraped - direct) <= max(0.05 * direct, 2 << 20), (scraped, direct)
    assert series(text, "compound_vm_guest_memory_bytes", billing["name"]) == 128 << 20
    assert series(text, "compound_instance_cpu_seconds_total", billing["name"]) > 0.5
    series(text, "compound_vm_disk_read_bytes_total", billing["name"])
    series(text, "compound_instance_network_receive_bytes_total", billing["name"])
    web = f"{p}-web-1"
    assert 0 < series(text, "compound_instance_memory_bytes", web) < scraped
    assert re.search(
        rf'^compound_instances{{health="[^"]+",project="{p}",runtime="vm"}} 1.0$', text, re.M
    )
