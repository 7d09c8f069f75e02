"""Legacy VM disks (issue #12), with a real Debian 12 disk built by
images/legacy-disk.sh (cached under ~/.cache/compound/legacy/ by recipe
hash; the first build takes ~5 minutes, then it is a path lookup):

- test_disk_service_beside_container: the disk boots through its own
  extlinux as a service (persistent: true), its cloud-init takes hostname,
  network and the project's SSH key from compound's NoCloud seed, it gets
  the service's address by DHCP, and a container queries nginx -> the
  Python app on it by name; exec and the healthcheck go through its
  qemu-guest-agent; ps shows the OS and firmware; a backup of its overlay
  volume is refused while it runs; stop powers it down; then the overlay is
  backed up, damaged, restored, and holds what the guest wrote. Beside it,
  in the same project (booting at the same time, so little extra wall
  time), a GPT disk with only an EFI system partition is found to need
  UEFI and boots through OVMF, whose shell runs the partition's
  startup.nsh: its line on the service's console is the proof.
- test_lift_then_container_answers: `compound lift` makes an image and a
  compose fragment; the container answers the same query with the same data
  (seeded into a named volume from the disk's /var/lib/app).
- test_export_boots_under_bare_qemu: `compound export` of the lifted image
  boots under a bare qemu-system-x86_64 command and answers the same query.
- test_interrupted_lift_and_export_leave_nothing: SIGTERM/SIGINT in the
  middle of either leaves no image, file, temporary, mount or loop device.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from compound.runtimes.vm import cloudseed
from tests.integration.apps import App
from tests.integration.conftest import remove_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "local/python:3"
QUERY = (
    "import urllib.request,sys;"
    "print(urllib.request.urlopen('http://%s/kv/greeting', timeout=10).read().decode().strip())"
)
PUT = (
    "import urllib.request as u;"
    "print(u.urlopen(u.Request('http://%s/kv/token', data=b'%s', method='PUT'), timeout=10)"
    ".read().decode().strip())"
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


@pytest.fixture(scope="module")
def uefi_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPT disk with one EFI system partition (FAT, made with mkfs.vfat
    and mcopy) holding a startup.nsh for OVMF's shell: no OS, built in
    milliseconds, so not cached."""
    d = tmp_path_factory.mktemp("uefi")
    disk, esp = d / "uefi.raw", d / "esp.img"
    with open(disk, "wb") as f:
        f.truncate(24 << 20)
    subprocess.run(
        ["sfdisk", "-q", str(disk)],
        input=b"label: gpt\nstart=2048, size=32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n",
        check=True,
    )
    with open(esp, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.vfat", "-n", "ESP", str(esp)], check=True, capture_output=True)
    (d / "startup.nsh").write_bytes(b"echo COMPOUND-UEFI-OK\r\n")
    subprocess.run(["mcopy", "-i", str(esp), str(d / "startup.nsh"), "::/startup.nsh"], check=True)
    with open(disk, "r+b") as f:
        f.seek(1 << 20)
        f.write(esp.read_bytes())
    return disk


def _until_ok(app: App, *args: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        code, out = app.run(*args)
        if code == 0:
            return out
        if time.monotonic() > deadline:
            pytest.fail(f"compound {' '.join(args)}: {out[-800:]}", pytrace=False)
        time.sleep(2)


# systemd + cloud-init under TCG: ~2 minutes on a quiet host, but 6-12 on a
# host running other VM suites at once (load 15-25 on 2 cores); the wait
# matches COMPOUND_LEGACY_BOOT_TIMEOUT (900 s)
@pytest.mark.timeout(1500)
def test_disk_service_beside_container(
    legacy_disk: Path, uefi_disk: Path, engine: docker.DockerClient, tmp_path: Path
) -> None:
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    app = App(name, tmp_path, engine)
    app.write(
        f"""
        services:
          erp:
            x-compound:
              runtime: vm
              vm: {{disk: {legacy_disk}, persistent: true}}
            healthcheck:
              test: ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1/health')"]
              interval: 5s
              retries: 100
          client:
            image: {PYTHON}
            command: ["sleep", "infinity"]
          uefi:
            x-compound:
              runtime: vm
              vm: {{disk: {uefi_disk}, memory: 256M}}
            stop_grace_period: 2s
        """
    )
    overlay = f"{name}_erp-disk-overlay"
    token = uuid.uuid4().hex
    try:
        app.ok("up", "-d", "--wait", "--wait-timeout", "900")
        rows = {r["service"]: r for r in json.loads(app.ok("ps", "--json"))}
        assert rows["erp"]["runtime"] == "vm"
        assert rows["erp"]["os"] == "Debian 12"
        assert rows["erp"]["firmware"] == "bios"
        assert (rows["uefi"]["firmware"], rows["uefi"]["os"]) == ("uefi", "unknown")
        out = app.ok("exec", "client", "python3", "-c", QUERY % "erp")
        assert out.strip().splitlines()[-1] == "hello-legacy"
        # the guest took the service's address by DHCP and resolves the others
        out = app.ok("exec", "erp", "getent", "hosts", "client")
        assert "client" in out
        # exec through the guest agent, with the exit code; cloud-init set
        # the hostname from the seed (the disk's own is "legacy")
        code, out = app.run("exec", "erp", "sh", "-c", "cat /etc/hostname; exit 3")
        assert code == 3 and out.strip().splitlines()[-1] == "erp"
        # ... read the seed (a FAT volume labelled cidata), brought eth0 up
        # from its network-config (the disk's interfaces file has no eth0),
        # and installed the project's SSH key for the default user
        out = app.ok("exec", "erp", "cat", "/var/lib/cloud/instance/datasource")
        assert "DataSourceNoCloud" in out
        assert "eth0" in app.ok("exec", "erp", "cat", "/etc/network/interfaces.d/50-cloud-init")
        _, public = cloudseed.project_key(name)
        out = app.ok("exec", "erp", "cat", "/home/debian/.ssh/authorized_keys")
        assert public in out
        # the persistent overlay is a project volume; no backup while QEMU has it open
        vols = {v["name"]: v for v in json.loads(app.ok("volume", "ls", "--json"))}
        assert vols[overlay]["exists"] and vols[overlay]["running"]
        code, out = app.run("volume", "backup", overlay, "-o", str(tmp_path / "running.tar"))
        assert code != 0 and "stop it first" in out and not (tmp_path / "running.tar").exists()
        out = app.ok("exec", "client", "python3", "-c", PUT % ("erp", token))
        assert out.strip().splitlines()[-1] == "stored"
        # OVMF booted the ESP of the UEFI disk (its shell ran startup.nsh)
        deadline = time.monotonic() + 120
        while "COMPOUND-UEFI-OK" not in (out := app.ok("logs", "uefi")):
            assert time.monotonic() < deadline, f"OVMF did not run startup.nsh:\n{out[-1500:]}"
            time.sleep(2)
        app.ok("rm", "-s", "-f", "uefi")
        # logs are the serial console
        assert "legacy login" in app.ok("logs", "erp") or "Debian GNU/Linux 12" in app.ok(
            "logs", "erp"
        )
        t0 = time.monotonic()
        app.ok("stop", "-t", "60", "erp")
        rows = {r["service"]: r for r in json.loads(app.ok("ps", "-a", "--json"))}
        assert rows["erp"]["status"] == "exited" and rows["erp"]["exit_code"] == 0
        assert time.monotonic() - t0 < 60  # powered down, not killed at the end of the grace
        # stopped: the overlay is consistent; back it up, damage it, restore it
        backup = tmp_path / "overlay.tar.zst"
        app.ok("volume", "backup", overlay, "-o", str(backup))
        before = _in_volume(
            engine, overlay, f"sha256sum /v/root.qcow2; grep -c {token} /v/root.qcow2"
        )
        assert before.split()[-1] != "0"  # what the guest wrote is in the overlay
        _in_volume(engine, overlay, "truncate -s 4096 /v/root.qcow2")
        app.ok("volume", "restore", overlay, str(backup))
        assert (
            _in_volume(engine, overlay, f"sha256sum /v/root.qcow2; grep -c {token} /v/root.qcow2")
            == before
        )
        app.ok("down", "-v")
        assert not [v for v in engine.volumes.list() if v.name == overlay]
    finally:
        app.run("down", "-v")
        remove_project(engine, name)
        _remove_key(name)


def _in_volume(engine: docker.DockerClient, volume: str, script: str) -> str:
    out = engine.containers.run(
        PYTHON, ["sh", "-c", script], volumes={volume: {"bind": "/v"}}, remove=True
    )
    return out.decode() if isinstance(out, bytes) else str(out)


def _remove_key(project: str) -> None:
    """The test project's SSH key (compound keeps a project's key past down)."""
    key = cloudseed.state_dir() / "ssh" / f"{project}_ed25519"
    key.unlink(missing_ok=True)
    key.with_name(key.name + ".pub").unlink(missing_ok=True)


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
    # the cron job is a schedule with a host-side suggestion, in --json and the fragment
    schedules = report["schedules"]
    assert isinstance(schedules, list) and len(schedules) == 1
    job: dict[str, str] = schedules[0]
    assert (job["source"], job["schedule"], job["user"]) == ("cron", "* * * * *", "app")
    assert job["suggestion"].startswith(
        f"host crontab: * * * * * compound exec -T -u app {report['service']} sh -c"
    )
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


def _interrupt_when(argv: list[str], line: str, sig: int, cwd: Path) -> tuple[int, str]:
    """Run compound ``argv``, send ``sig`` once its progress says ``line``."""
    compound = os.path.join(os.path.dirname(sys.executable), "compound")
    proc = subprocess.Popen(
        [compound, "--progress", "plain", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )
    assert proc.stdout is not None
    seen = []
    for out in proc.stdout:
        seen.append(out)
        if line in out:
            time.sleep(0.5)  # in the middle of it
            proc.send_signal(sig)
            break
    rest = proc.communicate(timeout=120)[0]
    return proc.returncode, "".join(seen) + rest


def _mounts_and_loops() -> tuple[set[str], set[str]]:
    with open("/proc/self/mounts") as f:
        mounts = {ln.split()[1] for ln in f if "compound-" in ln or ".export-" in ln}
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return mounts, set(loops.splitlines())


def test_interrupted_lift_and_export_leave_nothing(
    legacy_disk: Path,
    lifted: tuple[str, dict[str, object], Path],
    engine: docker.DockerClient,
    tmp_path: Path,
) -> None:
    mounts, loops = _mounts_and_loops()
    repo = f"legacy-test/cut-{uuid.uuid4().hex[:8]}"
    code, out = _interrupt_when(
        ["lift", str(legacy_disk), "-t", f"{repo}:v1", "-o", str(tmp_path / "cut.yaml")],
        "importing the root filesystem",
        signal.SIGTERM,
        tmp_path,
    )
    assert code == 130 and "interrupted" in out, out
    assert not (tmp_path / "cut.yaml").exists() and not list(tmp_path.glob(".cut.yaml.*"))
    assert not engine.images.list(name=repo)  # neither NAME:TAG nor a temporary tag
    tag = lifted[0]
    code, out = _interrupt_when(
        ["export", tag, "-o", str(tmp_path / "cut.qcow2")],
        "copying the files",
        signal.SIGINT,
        tmp_path,
    )
    assert code == 130 and "interrupted" in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no disk, no .export-* dir
    assert _mounts_and_loops() == (mounts, loops)  # nothing left attached
