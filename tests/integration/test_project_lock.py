"""One writer per project, with real processes and the real engine: two
`up`s started together on a new project leave one network and one
instance, and a network duplicated by an older compound is repaired."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from compound.runtimes.base import LABEL_NETWORK, LABEL_PROJECT
from compound.state.lock import ProjectLock, lock_path
from compound.state.store import default_path
from tests.integration.apps import App
from tests.integration.fixtures_apps import _purge

pytestmark = pytest.mark.integration
COMPOUND = str(Path(sys.executable).with_name("compound"))
FILE = """\
services:
  app:
    image: local/busybox:latest
    command: ["sleep", "3600"]
    init: true
"""


def _compound(project: str, file: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMPOUND, "--progress", "plain", "-f", str(file), "-p", project, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def projects(tmp_path: Path, app: App) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        _purge(app.client, name)


def _networks(client: docker.DockerClient, project: str) -> list[dict[str, object]]:
    return [
        n
        for n in client.api.networks(filters={"label": f"{LABEL_PROJECT}={project}"})
        if n.get("Name") == f"{project}_default"
    ]


@pytest.mark.timeout(600)
def test_concurrent_ups_on_a_new_project_never_duplicate(
    app: App, tmp_path: Path, projects: list[str]
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(FILE)
    for round_ in range(20):
        project = f"{app.name}-r{round_}"
        projects.append(project)
        pair = [_compound(project, file, "up", "-d") for _ in range(2)]
        outs = [p.communicate(timeout=240)[0] for p in pair]
        assert [p.returncode for p in pair] == [0, 0], outs
        assert "Traceback" not in "".join(outs)
        assert len(_networks(app.client, project)) == 1, (round_, outs)
        instances = app.client.containers.list(
            all=True, filters={"label": f"{LABEL_PROJECT}={project}"}
        )
        assert len(instances) == 1, (round_, [c.name for c in instances], outs)
        again = _compound(project, file, "up", "-d")
        out = again.communicate(timeout=120)[0]
        assert again.returncode == 0, out
        _purge(app.client, project)


def test_a_second_writer_waits_or_fails_fast(app: App, tmp_path: Path, projects: list[str]) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(FILE)
    project = f"{app.name}-ff"
    projects.append(project)
    held = ProjectLock(lock_path(default_path().parent, project), project)
    held.acquire()  # this test process is "the other compound"
    try:
        busy = _compound(project, file, "--no-lock-wait", "up", "-d")
        out = busy.communicate(timeout=120)[0]
        assert busy.returncode == 1, out
        assert f"project {project!r} is being changed by" in out and f"pid {os.getpid()}" in out
        assert "Traceback" not in out
        waiting = _compound(project, file, "up", "-d")
        # read until it says it waits (however long its start takes on a
        # loaded host), then check it still does
        said = ""
        assert waiting.stdout is not None
        deadline = time.monotonic() + 120
        while "waiting for" not in said and time.monotonic() < deadline:
            line = waiting.stdout.readline()
            if not line:
                break
            said += line
        assert "waiting for" in said and f"pid {os.getpid()}" in said, said
        time.sleep(1)
        assert waiting.poll() is None  # still waiting for the lock
    finally:
        held.release()
    out = said + waiting.communicate(timeout=240)[0]
    assert waiting.returncode == 0, out
    assert len(app.client.containers.list(filters={"label": f"{LABEL_PROJECT}={project}"})) == 1


def test_a_network_duplicated_by_an_older_compound_is_repaired(
    app: App, projects: list[str]
) -> None:
    app.write(FILE)
    name = f"{app.name}_default"
    labels = {LABEL_PROJECT: app.name, LABEL_NETWORK: "default"}
    ids = [
        app.client.api.create_network(name, labels=labels, check_duplicate=False)["Id"]
        for _ in range(2)
    ]
    assert len(_networks(app.client, app.name)) == 2
    app.ok("up", "-d")
    left = _networks(app.client, app.name)
    assert len(left) == 1 and left[0]["Id"] in ids
    app.ok("up", "-d")
    app.ok("down")
    assert _networks(app.client, app.name) == []
