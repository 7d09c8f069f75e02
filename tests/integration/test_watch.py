"""`compound watch` and image volumes against the real engine and a real VM.

One project, started once (one VM boot for the module): a container and a
VM both sync ``./src`` (the VM's rule is ``sync+exec``), a built container
rebuilds on a change of its context, and both the container and the VM
mount an image volume. The watch runs as the real CLI in a subprocess,
and ends by SIGINT, as Ctrl-C ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from compound.engine import connect
from compound.runtimes.vm.launcher import run_dir_for
from tests.integration.apps import App
from tests.integration.conftest import BUSYBOX, remove_project

Event = dict[str, Any]


class Watch:
    """A running `compound watch --json` and the events it printed."""

    def __init__(self, app: App) -> None:
        exe = Path(sys.executable).with_name("compound")
        self.proc = subprocess.Popen(
            [str(exe), "-f", str(app.file), "-p", app.name, "watch", "--no-up", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[Event] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def wait_for(self, match: Callable[[Event], bool], timeout: float, what: str) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if match(event):
                    return event
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        pytest.fail(f"no {what} within {timeout:.0f}s; events: {self.events}; stderr: {err}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, Watch]]:
    client = connect()
    name = f"wwatch{uuid.uuid4().hex[:8]}"
    app = App(name, tmp_path_factory.mktemp("watch") / name, client)
    (app.dir / "src").mkdir()
    (app.dir / "src" / "a.txt").write_text("v1\n")
    (app.dir / "ctx").mkdir()
    (app.dir / "ctx" / "Dockerfile").write_text(
        f'FROM {BUSYBOX}\nCOPY stamp /stamp\nCMD ["sleep", "3600"]\n'
    )
    (app.dir / "ctx" / "stamp").write_text("1\n")
    image_volume = f"""
              - type: image
                source: {BUSYBOX}
                target: /img
                image: {{subpath: etc}}"""
    app.write(f"""
        services:
          web:
            image: {BUSYBOX}
            command: ["sleep", "3600"]
            stop_signal: SIGKILL
            volumes:{image_volume}
            develop:
              watch:
                - {{path: ./src, action: sync, target: /app, ignore: ["*.tmp"]}}
          vm:
            image: {BUSYBOX}
            command: ["sleep", "3600"]
            volumes:{image_volume}
            develop:
              watch:
                - path: ./src
                  action: sync+exec
                  target: /app
                  exec:
                    command: ["sh", "-c", "cat /app/a.txt > /tmp/seen.txt"]
            x-compound: {{runtime: vm, vm: {{memory: 128m}}}}
          built:
            build: ./ctx
            stop_signal: SIGKILL
            develop:
              watch:
                - {{path: ./ctx, action: rebuild}}
        """)
    watch: Watch | None = None
    try:
        app.ok("up", "-d")
        watch = Watch(app)
        yield app, watch
    finally:
        if watch is not None:
            watch.stop()
        app.run("down", "-v")
        remove_project(client, name)
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.api.remove_image(f"{name}-built", force=True)
        for d in run_dir_for("x").parent.glob(f"{name}-*"):
            shutil.rmtree(d, ignore_errors=True)


def _exec(app: App, service: str, *cmd: str) -> tuple[int, str]:
    return app.run("exec", "-T", service, *cmd)


@pytest.mark.timeout(240)
def test_image_volume_is_the_image_read_only_in_a_container_and_a_vm(
    watched: tuple[App, Watch],
) -> None:
    app, _ = watched
    for service in ("web", "vm"):
        code, out = _exec(app, service, "cat", "/img/passwd")
        assert code == 0 and out.startswith("root:x:0:0:"), (service, out)
        code, out = _exec(app, service, "touch", "/img/new")
        assert code != 0 and "Read-only file system" in out, (service, out)
    volumes = app.client.api.volumes(filters={"label": f"io.compound.project={app.name}"})
    names = [v["Name"] for v in volumes["Volumes"] or []]
    assert len([n for n in names if n.startswith(f"{app.name}_image-")]) == 1, names


@pytest.mark.timeout(240)
def test_watch_syncs_an_edit_into_a_container_and_a_vm(watched: tuple[App, Watch]) -> None:
    app, watch = watched
    watch.wait_for(lambda e: e["event"] == "watching", 60, "watching event")
    (app.dir / "src" / "a.txt").write_text("v2\n")
    (app.dir / "src" / "scratch.tmp").write_text("ignored\n")
    # web's rule ignores *.tmp; vm's has no ignore
    for service, paths in (("web", ["/app/a.txt"]), ("vm", ["/app/a.txt", "/app/scratch.tmp"])):
        event = watch.wait_for(
            lambda e, s=service: e["event"] == "synced" and e["service"] == s,  # type: ignore[misc]
            90,
            f"sync to {service}",
        )
        assert event["paths"] == paths, event
        assert _exec(app, service, "cat", "/app/a.txt") == (0, "v2\n")
    ran = watch.wait_for(lambda e: e["event"] == "exec", 60, "the sync+exec command")
    assert ran["exit_code"] == 0 and ran["instance"] == f"{app.name}-vm-1", ran
    assert _exec(app, "vm", "cat", "/tmp/seen.txt") == (0, "v2\n")
    code, _ = _exec(app, "web", "test", "-e", "/app/scratch.tmp")
    assert code == 1

    (app.dir / "src" / "a.txt").unlink()
    watch.wait_for(
        lambda e: e["event"] == "synced" and e["service"] == "web" and e["deleted"] == 1,
        60,
        "the deletion in web",
    )
    assert _exec(app, "web", "test", "-e", "/app/a.txt")[0] == 1


@pytest.mark.timeout(240)
def test_a_rebuild_rule_recreates_the_service(watched: tuple[App, Watch]) -> None:
    app, watch = watched
    watch.wait_for(lambda e: e["event"] == "watching", 60, "watching event")
    before = app.client.api.containers(filters={"name": f"{app.name}-built-1"})[0]["Id"]
    (app.dir / "ctx" / "stamp").write_text("2\n")
    watch.wait_for(lambda e: e["event"] == "rebuilt", 120, "the rebuild")
    after = app.client.api.containers(filters={"name": f"{app.name}-built-1"})[0]["Id"]
    assert after != before
    assert _exec(app, "built", "cat", "/stamp") == (0, "2\n")


def test_ctrl_c_stops_the_watch_cleanly(watched: tuple[App, Watch]) -> None:
    app, watch = watched
    assert watch.stop() == 0
    assert watch.events[-1]["event"] == "stopped"
    # the services keep running: watching ended, not the project
    assert _exec(app, "web", "true")[0] == 0
    assert os.path.isdir(app.dir / "src")
