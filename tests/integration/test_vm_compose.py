"""VM services in a Compose app, through the real CLI, with real guests.

Every VM here is a QEMU guest (TCG on the development machine) inside a
launcher container; every container is a real container. Two `up`s cover
the issue's proof list:

- test_vm_beside_containers: (a) a busybox httpd VM on the old data plane
  (`vm: {net: user, share: 9p}`) reached by name from a python container and
  from the host through a published port; (b) named
  volumes in both directions; (c) exec exit code and output; (e) a VM that
  crashes once and is restarted by its policy; (f) `ps --json` runtime,
  kernel and accel; (g) `down` leaves no launcher, QEMU or run dir.
- test_vm_entrypoint_exit_code: (d) a VM whose command exits 3 ends exited
  with 3, and its service_completed_successfully dependent is not started;
  (g) again after a failed `up`.

Every wait is bounded. The busybox `wget` segfaults in some containers here,
so the HTTP client is python's urllib from local/python:3.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from compound.runtimes.base import LABEL_PROJECT
from compound.runtimes.vm.accel import probe_accel
from compound.runtimes.vm.guestkernel import ensure_guest_kernel
from compound.runtimes.vm.initramfs import ensure_initramfs
from compound.runtimes.vm.launcher import run_dir_for
from tests.integration.apps import App

pytestmark = pytest.mark.integration

BUSYBOX = "local/busybox:latest"
PYTHON = "local/python:3"
LABEL_RUN_DIR = "io.compound.vm.run-dir"
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            got = probe()
        except Exception as exc:  # keep polling; show the last failure
            last = exc
        else:
            if got:
                return got
            last = got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s; last: {last!r}", pytrace=False)
        time.sleep(every)


def _qemu_pids() -> set[int]:
    proc = subprocess.run(
        ["pgrep", "-f", "qemu-system"], capture_output=True, text=True, timeout=10, check=False
    )
    return {int(p) for p in proc.stdout.split()}


def _container_of(pid: int) -> str:
    """The cgroup lines of a process (they name its container id)."""
    try:
        return Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return ""


def _is_ours(pid: int, container_ids: list[str]) -> bool:
    cgroup = _container_of(pid)
    return any(i in cgroup for i in container_ids)


def _expected_guest() -> tuple[str, str]:
    """(kernel version, accelerator) that VMs on this host get: the same
    calls the VM driver makes, all cached by now."""
    kernel = ensure_guest_kernel()
    accel = probe_accel(kernel, ensure_initramfs(kernel)).accel
    return kernel.version, accel


def _rows(app: App, *args: str) -> dict[str, dict[str, Any]]:
    return {r["service"]: r for r in json.loads(app.ok("ps", *args, "--json"))}


def _launchers(app: App) -> list[Any]:
    return app.client.containers.list(
        all=True,
        filters={"label": [f"{LABEL_PROJECT}={app.name}", "io.compound.runtime=vm"]},
    )


def _assert_down_leaves_nothing(app: App, qemu_before: set[int]) -> None:
    """(g): `down` leaves no launcher container, no QEMU process and no
    per-instance runtime dir of this project behind."""
    launchers = _launchers(app)
    assert launchers, "expected VM launchers before down"
    ids = [c.id for c in launchers]
    run_dirs = [Path(c.labels[LABEL_RUN_DIR]) for c in launchers]
    for c in launchers:
        run_dir = Path(c.labels[LABEL_RUN_DIR])
        assert run_dir.parent == run_dir_for(c.name).parent
        assert run_dir.name.startswith(f"{c.name}.")
    ours = {pid for pid in _qemu_pids() - qemu_before if _is_ours(pid, ids)}
    running = sum(1 for c in launchers if c.status == "running")
    assert len(ours) >= running, f"{running} running launchers but QEMU pids {ours}"
    t0 = time.monotonic()
    app.ok("down")
    assert time.monotonic() - t0 < 90
    assert _launchers(app) == []
    assert not app.client.containers.list(
        all=True, filters={"label": f"{LABEL_PROJECT}={app.name}"}
    )
    left = _qemu_pids()
    assert not (ours & left), f"QEMU processes of this project survived down: {ours & left}"
    # The pgrep count is back to what it was, apart from other projects' guests
    # (other tests or users may boot VMs meanwhile).
    new = left - qemu_before
    strays = {p for p in new if _is_ours(p, ids)}
    assert not strays, f"QEMU processes of this project after down: {strays}"
    for d in run_dirs:
        assert not d.exists(), f"run dir {d} left behind"
    cache_run = run_dir_for("x").parent
    assert not list(cache_run.glob(f"{app.name}-*")), list(cache_run.glob(f"{app.name}-*"))


def _fetch_in(app: App, service: str, url: str) -> str | None:
    code, out = app.run(
        "exec",
        "-T",
        service,
        "python3",
        "-c",
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())",
    )
    return out if code == 0 else None


def _host_get(url: str) -> str | None:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())


@pytest.fixture
def vm_app(app: App) -> Iterator[App]:
    """``app``, whose VM run dirs are gone afterwards even when a test failed
    before its own `down` (the fixture's purge removes launchers directly)."""
    yield app
    if _launchers(app):
        app.run("down", "-v")
    for d in run_dir_for("x").parent.glob(f"{app.name}-*"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(240)
def test_vm_beside_containers(vm_app: App) -> None:
    app = vm_app
    qemu_before = _qemu_pids()
    port = _free_port()
    app.write(f"""
        services:
          writer:                       # a container fills the site volume
            image: {BUSYBOX}
            command: ["sh", "-c", "echo hello-from-a-container > /www/index.html"]
            volumes: ["site:/www"]
          web:                          # the VM serves it, and writes to another volume
            image: {BUSYBOX}
            command:
              - sh
              - -c
              - "echo written-by-the-vm > /shared/vm.txt; exec httpd -f -p 80 -h /www"
            volumes: ["site:/www", "shared:/shared"]
            ports: ["127.0.0.1:{port}:80"]  # on slirp, forwarded into the guest
            depends_on:
              writer: {{condition: service_completed_successfully}}
            x-compound: {{runtime: vm, vm: {{net: user, share: 9p}}}}  # the old data plane
            post_start:                 # lifecycle hooks run in the guest, as in a container
              - command: [sh, -c, "echo hooked-$$WHO-$$(id -u) $$(pwd) > /shared/post_start"]
                working_dir: /www
                environment: {{WHO: vm}}
            pre_stop:
              - command: [sh, -c, "echo flushed-before-stop > /shared/pre_stop"]
          client:                       # a container that reaches the VM by name
            image: {PYTHON}
            command: ["python3", "-c", "import time; time.sleep(3600)"]
            stop_signal: SIGKILL
            volumes: ["shared:/shared:ro"]
          flaky:                        # crashes once, then serves: restart: on-failure
            image: {BUSYBOX}
            command:
              - sh
              - -c
              - >-
                if [ ! -f /data/ran ]; then echo 1 > /data/ran; exit 1; fi;
                exec httpd -f -p 80 -h /data
            restart: on-failure           # the restarted launcher hands its new netns over again
            volumes: ["flakydata:/data"]
            x-compound: {{runtime: vm}}
        volumes:
          site: {{}}
          shared: {{}}
          flakydata: {{}}
        """)
    app.ok("up", "-d")

    # (a) by name from a container, through Docker's DNS and the launcher's slirp forward
    out = _until("client fetches http://web/", lambda: _fetch_in(app, "client", "http://web/"), 90)
    assert "hello-from-a-container" in out
    # (a) from the host through the published port
    body = _until(
        "host fetches the published port", lambda: _host_get(f"http://127.0.0.1:{port}/"), 60
    )
    assert "hello-from-a-container" in body

    # (b) container -> VM: the VM sees the file the container wrote (it just served it,
    # and reads it directly); VM -> container: the container reads what the VM wrote
    code, out = app.run("exec", "-T", "web", "cat", "/www/index.html")
    assert code == 0 and "hello-from-a-container" in out, out
    out = _until(
        "client reads the VM's file",
        lambda: (lambda r: r[1] if r[0] == 0 else None)(
            app.run("exec", "-T", "client", "cat", "/shared/vm.txt")
        ),
        30,
    )
    assert "written-by-the-vm" in out

    # (c) exec in the VM: exit code and both output streams come back
    code, out = app.run(
        "exec", "-T", "web", "sh", "-c", "echo out-$((6*7)); echo err-x >&2; exit 7"
    )
    assert code == 7, out
    assert "out-42" in out and "err-x" in out
    code, out = app.run("exec", "-T", "web", "sh", "-c", "exit 0")
    assert code == 0, out

    # (e) flaky exited 1 once; Docker's restart policy on the launcher brought it back,
    # and the guest took over the restarted launcher's (new) network namespace
    def flaky_running() -> bool:
        row = _rows(app, "-a")["flaky"]
        # the launcher runs at once; the guest is up once its entrypoint started
        if row["status"] != "running" or row["boot_time"] is None:
            return False
        restarts = app.client.containers.get(row["id"]).attrs["RestartCount"]
        return bool(restarts >= 1)

    _until("flaky restarted and running", flaky_running, 120, every=1)
    code, out = app.run("exec", "-T", "flaky", "ls", "/data/ran")
    assert code == 0, out
    # it really serves now (its second boot got past the crash)
    _until(
        "flaky serves after its restart",
        lambda: _fetch_in(app, "client", "http://flaky/ran"),
        60,
    )

    # (f) ps: the runtime, the guest's own kernel and the accelerator per service
    kernel, accel = _expected_guest()
    rows = _rows(app, "-a")
    assert set(rows) == {"writer", "web", "client", "flaky"}
    for svc in ("web", "flaky"):
        assert rows[svc]["runtime"] == "vm", rows[svc]
        assert rows[svc]["kernel"] == kernel, rows[svc]
        assert rows[svc]["kernel"] != "shared"
        assert rows[svc]["accel"] == accel, rows[svc]
        assert rows[svc]["status"] == "running", rows[svc]
    for svc in ("writer", "client"):
        assert rows[svc]["runtime"] == "container" and rows[svc]["kernel"] == "shared"
    assert rows["writer"]["status"] == "exited" and rows["writer"]["exit_code"] == 0
    # the old data plane (slirp, 9p) as asked for web; the default for flaky
    assert (rows["web"]["network"], rows["web"]["share"]) == ("user", "9p"), rows["web"]
    assert rows["flaky"]["network"] == "tap", rows["flaky"]
    table = app.ok("ps")
    assert "vm" in table and kernel.split()[0] in table

    # (h) the VM's post_start hook ran in the guest (its env and working_dir), and
    # its pre_stop runs before the guest stops
    code, out = app.run("exec", "-T", "client", "cat", "/shared/post_start")
    assert code == 0 and out.split() == ["hooked-vm-0", "/www"], out
    app.ok("stop", "web")
    code, out = app.run("exec", "-T", "client", "cat", "/shared/pre_stop")
    assert code == 0 and out.strip() == "flushed-before-stop", out

    # (g)
    _assert_down_leaves_nothing(app, qemu_before)


@pytest.mark.timeout(180)
def test_vm_entrypoint_exit_code(vm_app: App) -> None:
    app = vm_app
    qemu_before = _qemu_pids()
    app.write(f"""
        services:
          job:                          # a run-to-completion job whose guest fails
            image: {BUSYBOX}
            command: ["sh", "-c", "echo job-says-bye; exit 3"]
            x-compound: {{runtime: vm}}
            deploy: {{mode: replicated-job}}
          after:
            image: {BUSYBOX}
            command: ["sleep", "3600"]
            depends_on:
              job: {{condition: service_completed_successfully}}
        """)
    code, out = app.run("up", "-d")
    assert code == 1, out
    assert "not started" in out and "after" in out, out
    assert "Traceback" not in out
    # up waited for the job and says how it ended
    assert "job instance" in out and "failed: exit code 3" in out, out

    # (d) the guest's exit code is the instance's exit code; ps shows the job failed
    def job_exited() -> dict[str, Any] | None:
        row = _rows(app, "-a").get("job")
        return row if row and row["status"] == "failed" else None

    row = _until("job exited", job_exited, 60)
    assert row["exit_code"] == 3, row
    assert row["runtime"] == "vm"
    rows = _rows(app, "-a")
    assert "after" not in rows or rows["after"]["status"] in ("created", "exited"), rows
    assert "job-says-bye" in app.ok("logs", "job")

    # (g) after a failed up too; the exited launcher still counts
    _assert_down_leaves_nothing(app, qemu_before)


def test_runtime_auto_decides_vm_and_up_boots_it(vm_app: App) -> None:
    """An untrusted tenant beside trusted services: the advisor says vm, `up`
    boots it as a guest, and history records the decision with its reasons."""
    app = vm_app
    qemu_before = _qemu_pids()
    app.write("""
        services:
          shop:
            image: local/busybox:latest
            command: ["sleep", "3600"]
            init: true
          tenant:
            image: local/busybox:latest
            command: ["httpd", "-f", "-p", "80"]
            expose: ["80"]
            x-compound:
              runtime: auto
              hints: {trust: untrusted}
        """)
    advice = json.loads(app.ok("advise", "tenant", "--json"))
    assert json.dumps(advice).count('"vm"') >= 1
    app.ok("up", "-d")
    rows = _rows(app)
    assert rows["tenant"]["runtime"] == "vm"
    assert rows["tenant"]["kernel"] != "shared"
    assert rows["shop"]["runtime"] == "container"
    decisions = json.loads(app.ok("history", "--json"))[0]["decisions"]
    assert decisions["tenant"]["declared"] == "auto"
    assert decisions["tenant"]["runtime"] == "vm"
    assert any("untrusted" in why for why in decisions["tenant"]["why"])
    assert "runtime: auto" in app.ok("history")
    _assert_down_leaves_nothing(app, qemu_before)


@pytest.mark.timeout(240)
def test_up_wait_means_the_guest_entrypoint_runs(vm_app: App) -> None:
    """`up --wait` returns once the guest's entrypoint runs (not once the
    launcher container does); `logs` is the application's output only; a
    guest that cannot boot fails `up` with its console, not "Healthy"."""
    app = vm_app
    qemu_before = _qemu_pids()
    app.write(f"""
        services:
          app:
            image: {BUSYBOX}
            command: ["sh", "-c", "echo app-says-hello; echo app-err >&2; exec sleep 3600"]
            x-compound: {{runtime: vm}}
        """)
    app.ok("up", "-d", "--wait")
    # no polling: by the time up --wait returned, the guest had started it
    row = _rows(app)["app"]
    assert isinstance(row["boot_time"], float) and row["boot_time"] > 0, row
    logs = _until(
        "both lines", lambda: (lambda t: t if "app-err" in t else None)(app.ok("logs", "app")), 20
    )
    assert "app-says-hello" in logs and "app-err" in logs
    for kernel_line in ("Linux version", "PCI:", "virtio", "COMPOUND-", "EXT4-fs", "Run /init"):
        assert kernel_line not in logs, logs
    console = app.ok("logs", "--console", "app")
    assert "COMPOUND-START" in console or "Linux" in console, console

    # a guest whose kernel finds no init: up fails and says why
    app.write(f"""
        services:
          app:
            image: {BUSYBOX}
            command: ["sh", "-c", "echo app-says-hello; echo app-err >&2; exec sleep 3600"]
            x-compound: {{runtime: vm}}
          broken:
            image: {BUSYBOX}
            command: ["sleep", "3600"]
            x-compound: {{runtime: vm, vm: {{kernel_args: "rdinit=/no-such-init"}}}}
        """)
    code, out = app.run("up", "-d", "--wait")
    assert code == 1, out
    assert "broken" in out and "before the guest started its entrypoint" in out, out
    assert "Healthy" not in out.split("broken")[-1], out
    assert "Traceback" not in out
    _assert_down_leaves_nothing(app, qemu_before)
