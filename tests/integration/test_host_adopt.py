"""`host create --driver ssh` adopting a machine that has no Docker Engine.

The machine is a nested Docker host (a container of local/dockerhost with
its own address and sshd) whose docker.io package is purged first, with
Debian's policy-rc.d keeping its running daemon up: compound must refuse it,
naming the host and the flag, and with `--install-docker` install Debian's
docker.io there for real (apt from Debian's mirrors), then measure it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from compound.hosts import drivers, records
from compound.hosts.nested_image import cache_dir
from tests.integration.apps import App

MACHINE = "adopt-machine"
PREFIX = "adopt-test-host-"


def _in_machine(engine: docker.DockerClient, script: str) -> str:
    res = engine.containers.get(PREFIX + MACHINE).exec_run(["sh", "-c", script])
    assert isinstance(res.output, bytes)
    return res.output.decode().strip()


def _teardown() -> None:
    for r in records.load_all():
        drivers.remove(r, force=True)
    drivers.remove_network_if_unused()


@pytest.fixture(scope="module")
def bare_machine(engine: docker.DockerClient) -> Iterator[records.HostRecord]:
    """A reachable SSH machine without docker.io (its key is the nested host's)."""
    with pytest.MonkeyPatch.context() as mp:
        # its own fixed directory: not the Swarm tests' hosts, whose teardown removes all
        mp.setenv("COMPOUND_HOSTS_DIR", str(cache_dir() / "adopt-test-hosts"))
        mp.setenv("COMPOUND_NESTED_PREFIX", PREFIX)
        _teardown()
        try:
            drivers.create(MACHINE, "nested")
            purge = (
                "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && "
                "chmod 755 /usr/sbin/policy-rc.d && "
                "dpkg --purge --force-depends docker.io >/dev/null && ! command -v docker"
            )
            _in_machine(engine, purge)
            assert _in_machine(engine, "command -v docker || echo gone") == "gone"
            yield records.load(MACHINE)
        finally:
            _teardown()


def test_a_machine_without_docker_is_refused_then_installed_with_the_flag(
    bare_machine: records.HostRecord, engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = App("adopt", tmp_path / "adopt", engine)
    app.write("services: {}\n")
    assert bare_machine.address
    where = ["--address", bare_machine.address, "--identity", str(bare_machine.key_path)]
    code, out = app.run("host", "create", "adopted", "--driver", "ssh", *where)
    assert code == 1, out
    assert "host 'adopted'" in out and "has no Docker Engine" in out
    assert "--install-docker" in out and "Traceback" not in out
    assert not records.exists("adopted")

    code, out = app.run("host", "create", "adopted", "--driver", "ssh", *where, "--install-docker")
    assert code == 0, out
    adopted = records.load("adopted")
    assert adopted.facts["engine"].startswith("20.10"), adopted.facts
    # Debian's package is back on the machine, and its engine answers through the context
    status = _in_machine(engine, "dpkg-query -W -f='${Status} ${Version}' docker.io")
    assert status.startswith("install ok installed 20.10"), status
    server = subprocess.run(
        ["docker", "--context", adopted.context, "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert server.returncode == 0, server.stderr
    assert server.stdout.startswith("20.10")
