"""``compound host create --driver qemu``: a real Debian 12 + docker.io VM
booted by QEMU (TCG here) as a Docker host, used through its Docker
context, measured, refused VMs by the planner, stopped and removed.

One host for the module (a boot costs about a minute idle, minutes at load);
the base disk is built once per machine and cached (first use shows its
progress). The host gets its own bridge and subnet, so a user's own qemu
hosts are never touched.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from compound.hosts import drivers, qemu_host, records
from compound.runtimes.hostops import cache_root
from tests.integration.apps import App

NAME = "qh-test"
ENV = {
    # a fixed directory: ~/.ssh/config includes its ssh_config once, not once per run
    "COMPOUND_HOSTS_DIR": str(cache_root() / "qemu-host" / "test-hosts"),
    "COMPOUND_QEMU_BRIDGE": "cmpd-qht0",
    "COMPOUND_QEMU_HOST_SUBNET": "10.213.250.0/24",
}


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        _teardown()
        try:
            yield ENV
        finally:
            _teardown()


def _teardown() -> None:
    for r in records.load_all():
        drivers.remove(r, force=True)


def _app(engine: docker.DockerClient, tmp_path: Path, name: str, body: str) -> App:
    app = App(name, tmp_path / name, engine)
    app.write(body, env=ENV)
    return app


@pytest.fixture(scope="module")
def created(
    env: dict[str, str], engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> str:
    app = _app(engine, tmp_path_factory.mktemp("qh"), "qh-create", "services: {}\n")
    return app.ok("host", "create", NAME, "--driver", "qemu", "--memory", "1g", "--cpus", "1")


def _row(app: App) -> dict[str, object]:
    rows = json.loads(app.ok("host", "ls", "--json"))
    assert [r["name"] for r in rows] == [NAME]
    return rows[0]  # type: ignore[no-any-return]


def test_create_boots_a_docker_host_measured_on_itself(
    created: str, engine: docker.DockerClient, tmp_path: Path
) -> None:
    # progress while it boots, then the summary
    assert "booting 10.213.250." in created and "dockerd answers after" in created
    assert f"{NAME}: ready (virtual, 1 CPUs" in created
    app = _app(engine, tmp_path, "qh-ls", "services: {}\n")
    r = _row(app)
    f = r["facts"]
    assert isinstance(f, dict)
    assert r["driver"] == "qemu" and r["state"] == "running"
    # its own address on its own bridge, not this machine's
    assert ipaddress.ip_address(str(r["address"])) in ipaddress.ip_network("10.213.250.0/24")
    assert r["address"] != qemu_host.gateway()
    # measured in the guest: systemd-detect-virt, nproc, MemTotal, os-release, dockerd
    assert f["class"] == "virtual" and f["virt"] == "qemu"
    assert f["cpus"] == 1
    assert 700 * 2**20 < f["memory"] <= 2**30
    assert str(f["os_name"]).startswith("Debian GNU/Linux 12")
    assert f["kernel"].endswith("-cloud-amd64") and f["kernel"] != os.uname().release
    assert str(f["engine"]).startswith("20.10.")
    # TCG emulates SVM/VMX, but a VM there would be nested in emulation: no KVM
    assert f["kvm"] is False and "TCG guest" in str(f["kvm_reason"])
    key = Path(str(r["identity_file"]))
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.parent.stat().st_mode & 0o777 == 0o700
    text = app.ok("host", "ls")
    assert NAME in text and "PRIVATE KEY" not in text
    assert app.ok("host", "env", NAME).splitlines()[0] == f"export DOCKER_CONTEXT={NAME}"


def test_a_container_runs_on_it_through_its_docker_context(
    created: str, busybox_image: str
) -> None:
    saved = subprocess.run(["docker", "save", busybox_image], capture_output=True, check=True)
    load = subprocess.run(
        ["docker", "--context", NAME, "load"],
        input=saved.stdout,
        capture_output=True,
        timeout=120,
    )
    assert load.returncode == 0, load.stderr.decode()
    run = subprocess.run(
        # no network: a veth and iptables rules cost tens of seconds under TCG
        ["docker", "--context", NAME, "run", "--rm", "--network", "none", busybox_image, "sh", "-c",
         "uname -r; cat /proc/cpuinfo | grep -c ^processor"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    kernel, cpus = run.stdout.split()
    # the guest's kernel, not this machine's: the container ran in the VM
    assert kernel == records.load(NAME).facts["kernel"] and kernel != os.uname().release
    assert cpus == "1"


def test_plan_refuses_vms_on_it_and_names_it(
    created: str, engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(
        engine,
        tmp_path,
        "qh-plan",
        """
        services:
          db:
            image: local/busybox:latest
            x-compound: {runtime: vm}
        """,
    )
    code, out = app.run("plan")
    assert code == 1
    assert f"host(s) {NAME} have no KVM that boots" in out
    assert "x-compound.vm.accel: tcg" in out and "Traceback" not in out


def test_stop_powers_it_down_and_rm_leaves_nothing(
    created: str, engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(engine, tmp_path, "qh-stop", "services: {}\n")
    r = records.load(NAME)
    pid = qemu_host.pid(r)
    assert pid is not None
    app.ok("host", "stop", NAME)
    assert not Path(f"/proc/{pid}").exists()
    # ACPI power-down, not the kill after the grace period
    assert "reboot: Power down" in qemu_host.console_log(r).read_text(errors="replace")
    assert json.loads(app.ok("host", "inspect", NAME))["state"] == "stopped"
    app.ok("host", "rm", NAME)
    assert not records.exists(NAME)
    assert subprocess.run(["ip", "link", "show", qemu_host.tap_name(NAME)]).returncode != 0
    ctx = subprocess.run(["docker", "context", "inspect", NAME], capture_output=True)
    assert ctx.returncode != 0
