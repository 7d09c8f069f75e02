"""A rolling update of a VM service: a new image (so a new base disk), the
same volume, start-first beside the running guest, then rollback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from compound.runtimes.base import LABEL_PROJECT
from compound.runtimes.vm.launcher import run_dir_for
from tests.integration.apps import App
from tests.integration.test_vm_compose import _container_of as _cgroup
from tests.integration.test_vm_compose import _launchers, _qemu_pids
from tests.integration.test_vm_compose import vm_app as vm_app  # the fixture

pytestmark = pytest.mark.integration


def _build(app: App, tag: str, version: str) -> str:
    (app.dir / "Dockerfile").write_text(
        f"FROM local/busybox:latest\nRUN echo {version} > /version\n"
    )
    image, _ = app.client.images.build(path=str(app.dir), tag=tag, rm=True)
    return str(image.id)


@pytest.mark.timeout(420)
def test_vm_service_rolls_to_a_new_image_and_back(vm_app: App) -> None:
    app = vm_app
    tag = f"local/{app.name}:latest"
    app.dir.mkdir(parents=True, exist_ok=True)
    app.write(f"""
        services:
          api:
            image: {tag}
            command:
              - sh
              - -c
              - "cat /version >> /data/boots; touch /tmp/ready; exec httpd -f -p 8000 -h /data"
            expose: ["8000"]
            volumes: ["data:/data"]
            healthcheck:
              test: ["CMD", "test", "-f", "/tmp/ready"]
              interval: 1s
              retries: 60
            x-compound: {{runtime: vm}}
        volumes:
          data: {{}}
        """)
    try:
        first = _build(app, tag, "1")
        app.ok("up", "-d", "--wait")
        (old,) = _launchers(app)
        second = _build(app, tag, "2")
        plan = json.loads(app.ok("up", "--dry-run", "--json"))
        assert [s["summary"] for s in plan["services"]] == ["recreate"]
        app.ok("up", "-d", "--wait")
        (new,) = _launchers(app)
        assert new.id != old.id and new.name == f"{app.name}-api-1"
        assert new.labels["io.compound.image-id"] == second != first
        # the new guest booted the new image and found the old guest's writes
        code, out = app.run("exec", "api", "cat", "/version", "/data/boots")
        assert (code, out.split()) == (0, ["2", "1", "2"])
        assert not Path(old.labels["io.compound.vm.run-dir"]).exists()

        # the predecessor's QEMU is gone, the successor's runs
        def qemu_of(container_id: str) -> list[int]:
            return [p for p in _qemu_pids() if container_id in _cgroup(p)]

        assert qemu_of(new.id) and not qemu_of(old.id)
        app.ok("rollback", "api")
        (back,) = _launchers(app)
        assert back.labels["io.compound.image-id"] == first
        app.ok("up", "--wait", "--no-recreate", "-d")  # waits for health only
        code, out = app.run("exec", "api", "cat", "/version", "/data/boots")
        assert (code, out.split()) == (0, ["1", "1", "2", "1"])
        leftovers = app.client.containers.list(
            all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}
        )
        assert [c.name for c in leftovers] == [f"{app.name}-api-1"]
        # one run dir: the live guest's (each instance has its own)
        dirs = list(run_dir_for("x").parent.glob(f"{app.name}-*"))
        assert dirs == [Path(back.labels["io.compound.vm.run-dir"])]
    finally:
        app.run("down", "-v")
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


@pytest.mark.timeout(600)
def test_sigkill_during_a_vm_update_then_up_converges(vm_app: App) -> None:
    """Kill compound at several moments of a VM service's update (creating the
    successor, booting it, retiring the predecessor); the next `up` leaves one
    launcher with one QEMU, the new configuration, and the volume's data."""
    import os
    import signal
    import sys
    import time

    app = vm_app
    body = """
        services:
          api:
            image: local/busybox:latest
            command: ["sh", "-c", "echo $$V >> /data/boots; exec httpd -f -p 8000 -h /data"]
            environment: {{V: "{v}"}}
            expose: ["8000"]
            volumes: ["data:/data"]
            x-compound: {{runtime: vm}}
        volumes:
          data: {{}}
        """
    app.write(body.format(v="0"))
    app.ok("up", "-d")
    # `up` returns once the entrypoint starts; its first line may take a
    # moment more on a loaded host, and round 1 stops this guest first
    deadline = time.monotonic() + 60
    while app.run("exec", "api", "cat", "/data/boots")[1].split()[:1] != ["0"]:
        assert time.monotonic() < deadline, "the first guest never wrote its line"
        time.sleep(0.5)
    compound = os.path.join(os.path.dirname(sys.executable), "compound")
    for round_, delay in enumerate((0.5, 2.0, 4.0), start=1):
        app.write(body.format(v=str(round_)))
        proc = subprocess.Popen(
            [compound, "--progress", "plain", "-f", str(app.file), "-p", app.name, "up", "-d"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        app.ok("up", "-d")
        launchers = _launchers(app)
        assert [c.name for c in launchers] == [f"{app.name}-api-1"], f"round {round_}"
        (live,) = launchers
        env = dict(e.split("=", 1) for e in live.attrs["Config"]["Env"] if "=" in e)
        assert live.labels["io.compound.config-hash"]
        code, out = app.run("exec", "api", "tail", "-n", "1", "/data/boots")
        assert (code, out.strip()) == (0, str(round_)), env
        qemu = [p for p in _qemu_pids() if live.id in _cgroup(p)]
        assert qemu, "the live launcher runs QEMU"
        others = {
            c.id
            for c in app.client.containers.list(
                all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}
            )
        } - {live.id}
        assert not others
    code, out = app.run("exec", "api", "cat", "/data/boots")
    # the volume kept every boot's line: no update touched it
    assert out.split()[0] == "0" and out.split()[-1] == "3"


@pytest.mark.timeout(400)
def test_vm_update_to_a_crashing_version_rolls_back_and_the_old_vm_serves(vm_app: App) -> None:
    """start-first with failure_action: rollback and a monitor window: a new
    version whose entrypoint exits 3 a moment after it starts fails the
    update, as it does for a container, and the old VM, never stopped, still
    answers by name. (The window is wide: a guest's second takes many on a
    host loaded with other VMs' emulation.)"""
    app = vm_app
    body = """
        services:
          api:
            image: local/busybox:latest
            command:
              - sh
              - -c
              - >-
                if [ "$$V" = 2 ]; then sleep 1; exit 3; fi;
                echo "v$$V" > /tmp/v; exec httpd -f -p 8000 -h /tmp
            environment: {{V: "{v}"}}
            deploy:
              update_config: {{order: start-first, failure_action: rollback, monitor: 40s}}
            x-compound: {{runtime: vm}}
          client:
            image: local/busybox:latest
            command: ["sleep", "600"]
        """
    app.write(body.format(v="1"))
    app.ok("up", "-d")
    (old,) = _launchers(app)
    app.write(body.format(v="2"))
    code, out = app.run("up", "-d")
    assert code == 1, out
    assert "api" in out and "rolled back" in out.lower(), out
    (live,) = _launchers(app)
    assert live.id == old.id and live.status == "running"
    served = app.ok("exec", "client", "wget", "-q", "-O", "-", "http://api:8000/v")
    assert served.strip() == "v1"
