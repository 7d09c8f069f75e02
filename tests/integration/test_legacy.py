"""Legacy VM disks (issue #12), with a real Debian 12 disk built by
images/legacy-disk.sh (cached under ~/.cache/compound/legacy/ by recipe
hash; the first build takes ~5 minutes, then it is a path lookup):

- test_disk_service_beside_container: the disk boots through its own
  extlinux as a service, gets the service's address by DHCP, and a
  container queries nginx -> the Python app on it by name; exec and the
  healthcheck go through its qemu-guest-agent; ps shows the OS and firmware;
  stop powers it down.
- test_lift_then_container_answers: `compound lift` makes an image and a
  compose fragment; the container answers the same query with the same data
  (seeded into a named volume from the disk's /var/lib/app).
- test_export_boots_under_bare_qemu: `compound export` of the lifted image
  boots under a bare qemu-system-x86_64 command and answers the same query.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.apps import App
from tests.integration.conftest import remove_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "local/python:3"
QUERY = (
    "import urllib.request,sys;"
    "print(urllib.request.urlopen('http://%s/kv/greeting', timeout=10).read().decode().strip())"
)


@pytest.fixture(scope="session")
def legacy_disk() -> Path:
    """The cached Debian 12 legacy disk (built on first use, with progress)."""
    res = subprocess.run(
        ["bash", str(ROOT / "images" / "legacy-disk.sh")],
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,
        check=False,
    )
    assert res.returncode == 0, "images/legacy-disk.sh failed (its log is above)"
    return Path(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lifted(
    legacy_disk: Path, engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, object], Path]]:
    """The disk lifted once: (image, --json report, compose fragment)."""
    d = tmp_path_factory.mktemp("lift")
    tag = f"legacy-test/erp-{uuid.uuid4().hex[:8]}:lifted"
    app = App("lift-cli", d, engine)
    (d / "compose.yaml").write_text("services: {}\n")
    out = app.ok("lift", str(legacy_disk), "-t", tag, "-o", str(d / "erp.yaml"), "--json")
    report = json.loads(out[out.index("{") :])
    yield tag, report, d / "erp.yaml"
    engine.images.remove(tag, force=True)


def _until_ok(app: App, *args: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        code, out = app.run(*args)
        if code == 0:
            return out
        if time.monotonic() > deadline:
            pytest.fail(f"compound {' '.join(args)}: {out[-800:]}", pytrace=False)
        time.sleep(2)


def test_disk_service_beside_container(
    legacy_disk: Path, engine: docker.DockerClient, tmp_path: Path
) -> None:
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    app = App(name, tmp_path, engine)
    app.write(
        f"""
        services:
          erp:
            x-compound:
              runtime: vm
              vm: {{disk: {legacy_disk}}}
            healthcheck:
              test: ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1/health')"]
              interval: 5s
              retries: 100
          client:
            image: {PYTHON}
            command: ["sleep", "infinity"]
        """
    )
    try:
        app.ok("up", "-d", "--wait", "--wait-timeout", "600")
        rows = {r["service"]: r for r in json.loads(app.ok("ps", "--json"))}
        assert rows["erp"]["runtime"] == "vm"
        assert rows["erp"]["os"] == "Debian 12"
        assert rows["erp"]["firmware"] == "bios"
        out = app.ok("exec", "client", "python3", "-c", QUERY % "erp")
        assert out.strip().splitlines()[-1] == "hello-legacy"
        # the guest took the service's address by DHCP and resolves the others
        out = app.ok("exec", "erp", "getent", "hosts", "client")
        assert "client" in out
        # exec through the guest agent, with the exit code
        code, out = app.run("exec", "erp", "sh", "-c", "cat /etc/hostname; exit 3")
        assert code == 3 and "legacy" in out
        # logs are the serial console
        assert "legacy login" in app.ok("logs", "erp") or "Debian GNU/Linux 12" in app.ok(
            "logs", "erp"
        )
        t0 = time.monotonic()
        app.ok("stop", "-t", "60", "erp")
        rows = {r["service"]: r for r in json.loads(app.ok("ps", "-a", "--json"))}
        assert rows["erp"]["status"] == "exited" and rows["erp"]["exit_code"] == 0
        assert time.monotonic() - t0 < 60  # powered down, not killed at the end of the grace
    finally:
        app.run("down", "-v")
        remove_project(engine, name)


def test_lift_then_container_answers(
    lifted: tuple[str, dict[str, object], Path], engine: docker.DockerClient
) -> None:
    tag, report, fragment = lifted
    assert report["os"] == "Debian GNU/Linux 12 (bookworm)"
    assert report["units"] == ["app.service", "nginx.service"]
    assert 80 in report["ports"]  # type: ignore[operator]
    assert report["users"] == ["app"]
    assert "/var/lib/app" in report["volumes"].values()  # type: ignore[attr-defined]
    assert any("cron" in n for n in report["not_carried"])  # type: ignore[attr-defined]
    text = fragment.read_text()
    assert f"image: {tag}" in text and "/var/lib/app" in text and "cron" in text
    service = str(report["service"])
    name = f"legacy-lift-{uuid.uuid4().hex[:8]}"
    app = App(name, fragment.parent / name, engine)
    # the fragment as written, plus a client beside it
    app.write(
        text.replace(
            "\nvolumes:",
            f"\n  client:\n    image: {PYTHON}\n    command: [sleep, infinity]\nvolumes:",
        )
    )
    try:
        app.ok("up", "-d")
        out = _until_ok(app, "exec", "client", "python3", "-c", QUERY % service, timeout=60)
        assert out.strip().splitlines()[-1] == "hello-legacy"
    finally:
        app.run("down", "-v")
        remove_project(engine, name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_export_boots_under_bare_qemu(
    lifted: tuple[str, dict[str, object], Path], engine: docker.DockerClient
) -> None:
    tag, _, fragment = lifted
    disk = fragment.parent / "exported.qcow2"
    app = App("export-cli", fragment.parent, engine)
    out = app.ok("export", tag, "-o", str(disk), "--format", "qcow2", "--json")
    res = json.loads(out[out.index("{") :])
    assert res["format"] == "qcow2" and disk.is_file()
    assert not list(fragment.parent.glob(".export-*"))  # no temporary left
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(disk)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert info["format"] == "qcow2"
    port = _free_port()
    console = fragment.parent / "export-console.log"
    qemu = subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-m",
            "512",
            "-nographic",
            "-nodefaults",
            "-serial",
            f"file:{console}",
            "-drive",
            f"file={disk},if=virtio,format=qcow2",
            "-nic",
            f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:80",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        got = ""
        while time.monotonic() < deadline and not got:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/kv/greeting", timeout=5) as r:
                    got = r.read().decode().strip()
            except OSError:
                time.sleep(2)
        tail = console.read_text(errors="replace")[-1500:] if console.exists() else ""
        assert got == "hello-legacy", f"no answer from the exported disk; console:\n{tail}"
    finally:
        qemu.kill()
        qemu.wait()
