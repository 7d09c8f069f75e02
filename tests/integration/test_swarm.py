"""Hosts and Swarm on a real 3-node cluster of nested Docker hosts.

The cluster (three privileged-ish containers of local/dockerhost, each its
own dockerd and sshd on their own network, adopted over SSH) is built once
per session and shared by every test here; the tests run in file order and
the node-loss test comes last.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from compound.cli.main import main
from compound.hosts import drivers, records, swarm
from compound.hosts.nested_image import cache_dir
from compound.runtimes.vm import cloudseed
from tests.integration.apps import App
from tests.integration.fastdisk import ensure_fast_disk

# Host names are Docker contexts and SSH aliases, which every clone of the
# repository on this machine shares: each clone gets its own (a hash of its
# path, or $COMPOUND_TEST_SWARM_TAG), so two runs at once cannot collide.
# The test bodies say swarm-t1..3; _app puts this run's names in.
TAG = (
    os.environ.get("COMPOUND_TEST_SWARM_TAG")
    or "swarm" + hashlib.sha256(str(Path(__file__).resolve().parents[2]).encode()).hexdigest()[:4]
)
T1, T2, T3 = HOSTS = (f"{TAG}-t1", f"{TAG}-t2", f"{TAG}-t3")
PREFIX = f"{TAG}-test-host-"


@pytest.fixture(scope="module")
def cluster(engine: docker.DockerClient, busybox_image: str) -> Iterator[list[str]]:
    with pytest.MonkeyPatch.context() as mp:
        # fixed per clone: ~/.ssh/config includes its ssh_config once, not once per run
        mp.setenv("COMPOUND_HOSTS_DIR", str(cache_dir() / f"test-hosts-{TAG}"))
        mp.setenv("COMPOUND_NESTED_PREFIX", PREFIX)
        _teardown()
        try:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(3) as pool:
                list(pool.map(lambda n: drivers.create(n, "nested", labels={"rack": n[-1]}), HOSTS))
            swarm.init(list(HOSTS))
            yield list(HOSTS)
        finally:
            _teardown()


def _teardown() -> None:
    for r in records.load_all():
        drivers.remove(r, force=True)
    swarm.forget()
    drivers.remove_network_if_unused()


def _names(text: str) -> str:
    """``text`` with the canonical host names swarm-t1..3 as this run's."""
    for canonical, mine in zip(("swarm-t1", "swarm-t2", "swarm-t3"), HOSTS, strict=True):
        text = text.replace(canonical, mine)
    return text


def _app(engine: docker.DockerClient, tmp_path: Path, name: str, body: str) -> App:
    app = App(name, tmp_path / name, engine)
    app.write(_names(body))
    return app


def _run_apart(app: App, *args: str) -> tuple[int, bytes, bytes]:
    """Like App.run, with stdout and stderr kept apart (as bytes)."""
    out, err = io.BytesIO(), io.BytesIO()
    streams = [io.TextIOWrapper(b, encoding="utf-8", write_through=True) for b in (out, err)]
    with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]):
        code = main(["--progress", "plain", "-f", str(app.file), "-p", app.name, *args])
    return code, out.getvalue(), err.getvalue()


def _docker(context: str, *args: str) -> str:
    proc = subprocess.run(
        ["docker", "--context", context, *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_host_ls_shows_facts_measured_on_each_host(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(engine, tmp_path, "swarm-facts", "services: {}\n")
    rows = json.loads(app.ok("host", "ls", "--json"))
    assert [r["name"] for r in rows] == cluster
    meminfo = Path("/proc/meminfo").read_text()
    mem = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) * 1024  # type: ignore[union-attr]
    for r in rows:
        f = r["facts"]
        assert r["state"] == "running"
        # a container of this machine: same kernel, CPUs and memory, and virtual
        assert f["cpus"] == os.cpu_count()
        assert f["memory"] == mem
        assert f["class"] == "virtual" and f["virt"] not in ("none", "unknown")
        assert f["engine"] == engine.version()["Version"]
        assert f["ipvs"] is False
        assert r["labels"] == {"rack": r["name"][-1]}
        key = Path(r["identity_file"])
        assert key.stat().st_mode & 0o777 == 0o600
        # the host's Docker context works with the plain docker CLI
        assert _docker(r["name"], "info", "--format", "{{.Name}}").strip() == r["name"]
    text = app.ok("host", "ls")
    assert "PRIVATE KEY" not in text and T2 in text
    assert app.ok("host", "env", T1).splitlines()[0] == f"export DOCKER_CONTEXT={T1}"


def test_plan_takes_its_inventory_from_the_hosts(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(
        engine,
        tmp_path,
        "swarm-plan",
        """
        services:
          web: {image: local/busybox:latest, deploy: {replicas: 3}}
        """,
    )
    out = json.loads(app.ok("plan", "--json"))
    assert sorted(h["name"] for h in out["hosts"]) == sorted(cluster)


def test_swarm_ls_labels_nodes_with_facts(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(engine, tmp_path, "swarm-ls", "services: {}\n")
    nodes = json.loads(app.ok("swarm", "ls", "--json"))
    assert sorted(n["host"] for n in nodes) == sorted(cluster)
    assert [n["role"] for n in nodes].count("manager") == 1
    for n in nodes:
        assert n["state"] == "ready"
        labels = n["labels"]
        assert labels["compound.host"] == n["host"]
        assert labels["compound.class"] == "virtual"
        assert labels["compound.tenant"] == "none"
        assert labels["rack"] == n["host"][-1]


def test_bad_credentials_and_unreachable_hosts_name_the_host(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(engine, tmp_path, "swarm-bad", "services: {}\n")
    address = records.load(T1).address
    assert address
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    code, out = app.run(
        "host", "create", "swarm-bad", "--driver", "ssh", "--address", address,
        "--identity", str(stranger),
    )  # fmt: skip
    assert code == 1
    assert "host 'swarm-bad'" in out and "wrong credentials" in out
    assert "Traceback" not in out and "PRIVATE KEY" not in out
    code, out = app.run(
        "host", "create", "swarm-bad", "--driver", "ssh", "--address", address, "--port", "2"
    )
    assert code == 1
    assert "host 'swarm-bad'" in out and "cannot reach" in out
    assert not records.exists("swarm-bad")


def test_up_swarm_spans_nodes_updates_and_rolls_back(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    body = """
        services:
          api:
            image: local/busybox:latest
            command: ["sh", "-c", "echo v=$$VERSION > /www; exec httpd -f -p 8080 -h /"]
            environment: {VERSION: "%s"}
            deploy:
              replicas: 2
              placement: {constraints: ["node.labels.compound.host != swarm-t3"]}
              update_config: {monitor: 1s}
              rollback_config: {monitor: 1s}
          client:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
            deploy:
              placement: {constraints: ["node.labels.compound.host == swarm-t3"]}
        """
    app = _app(engine, tmp_path, "swarm-app", body % "1")
    try:
        app.ok("up", "--swarm")
        stack = (records.hosts_dir() / "stacks" / "swarm-app.yaml").read_text()
        assert "endpoint_mode: dnsrr" in stack
        assert "failure_action: rollback" in stack and "monitor: 1s" in stack
        rows = json.loads(app.ok("swarm", "ps", "--json"))
        api_hosts = {r["host"] for r in rows if r["service"] == "api"}
        assert api_hosts and T3 not in api_hosts
        # a container on swarm-t3 reaches the api on another node by name
        assert _fetch_from_client() == "v=1"
        app.write(_names(body % "2"))
        app.ok("up", "--swarm")
        assert _fetch_from_client() == "v=2"
        hist = json.loads(app.ok("swarm", "history"))
        assert [e["event"] for e in hist["events"]] == ["deploy", "deploy"]
        out = app.ok("swarm", "rollback", "api")
        assert "rolled back: api" in out
        assert _fetch_from_client() == "v=1"
        # exec reaches a task wherever it runs, with docker exec's options
        assert app.ok("swarm", "exec", "api", "cat", "/www").strip() == "v=1"
        out = app.ok(
            "swarm", "exec", "-w", "/tmp", "-e", "X=y z", "api", "sh", "-c", "echo $X $PWD"
        )
        assert out.strip() == "y z /tmp"
        logs = app.ok("swarm", "logs", "client", "--tail", "5")
        assert "Traceback" not in logs
    finally:
        app.ok("swarm", "down")


def _fetch_from_client(
    project: str = "swarm-app", server: str = "api:8080", path: str = "/www", timeout: float = 30
) -> str:
    """GET ``path`` from ``server`` by name, in the client task on T3; the last line."""
    if ":" not in server:
        server += ":8080"
    ids = _docker(
        T3, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={project}_client"
    ).split()
    assert ids, f"client task is not on {T3}"
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(
            # busybox's static wget crashes resolving names here; nc speaks HTTP/1.0 fine
            ["docker", "--context", T3, "exec", ids[0], "sh", "-c",
             f'printf "GET {path} HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {server.replace(":", " ")}'],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        # text mode: the response's CRLFs arrive as newlines
        head, _, body = proc.stdout.partition("\n\n")
        lines = body.strip().splitlines()
        out = lines[-1] if lines else ""
        if proc.returncode == 0 and " 200 " in head.partition("\n")[0]:
            return out
        time.sleep(0.5)
    return out


def test_rm_refuses_a_host_that_runs_services(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(engine, tmp_path, "swarm-rm", "services: {}\n")
    _docker(T2, "run", "-d", "--name", "swarm-busy", "local/busybox:latest", "sleep", "1000")
    try:
        code, out = app.run("host", "rm", T2)
        assert code == 1 and f"host '{T2}'" in out and "still runs" in out and "--force" in out
        assert records.exists(T2)
    finally:
        _docker(T2, "rm", "-f", "swarm-busy")


def test_up_swarm_runs_a_vm_service_a_container_reaches_by_name(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    """One TCG boot of a VM inside a nested node, everything asserted on it."""
    app = _app(
        engine,
        tmp_path,
        "swarm-hybrid",
        """
        services:
          vmweb:
            image: local/busybox:latest
            command: ["sh", "-c", "echo from-vm > /www; exec httpd -f -p 8080 -h /"]
            x-compound: {runtime: vm}
            deploy:
              placement: {constraints: ["node.labels.compound.host == swarm-t2"]}
          client:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
            deploy:
              placement: {constraints: ["node.labels.compound.host == swarm-t3"]}
        """,
    )
    try:
        app.ok("up", "--swarm")
        stack = yaml.safe_load((records.hosts_dir() / "stacks" / "swarm-hybrid.yaml").read_text())
        vm = stack["services"]["vmweb"]
        manager = records.load(T1).address
        # the containerDisk, from the Swarm's own registry on the manager, by digest
        assert re.fullmatch(rf"{manager}:5000/compound-vmdisk@sha256:[0-9a-f]{{64}}", vm["image"])
        assert vm["cap_drop"] == ["ALL"] and "MKNOD" in vm["cap_add"]
        assert "node.labels.compound.vm == yes" in vm["deploy"]["placement"]["constraints"]
        rows = json.loads(app.ok("swarm", "ps", "--json"))
        assert {(r["service"], r["host"], r["state"]) for r in rows} == {
            ("vmweb", T2, "running"),
            ("client", T3, "running"),
        }
        # the container on swarm-t3 reaches the VM on swarm-t2 by name, and
        # what answers is the guest: its kernel, not this machine's
        assert _fetch_from_client("swarm-hybrid", "vmweb", "/www", timeout=60) == "from-vm"
        guest_kernel = _fetch_from_client("swarm-hybrid", "vmweb", "/proc/sys/kernel/osrelease")
        assert guest_kernel and guest_kernel != os.uname().release
        # exec runs in the guest (not the launcher), in the service's root, as
        # single-host exec: the exit code passed through, stdout and stderr apart
        script = "cat /proc/sys/kernel/osrelease /www; echo to-stderr >&2; exit 3"
        code, raw_out, raw_err = _run_apart(app, "swarm", "exec", "vmweb", "sh", "-c", script)
        assert (code, raw_out.decode().split(), raw_err.decode()) == (
            3,
            [guest_kernel, "from-vm"],
            "to-stderr\n",
        )
        # ... with the user, working dir and environment asked for
        out = app.ok(
            "swarm", "exec", "-u", "nobody", "-w", "/tmp", "-e", "GREETING=hi there",
            "vmweb", "sh", "-c", 'echo "$(id -un) $PWD $GREETING"',
        )  # fmt: skip
        assert out.strip() == "nobody /tmp hi there"
        # the guest agent has no terminal to give: said, not faked
        code, out = app.run("swarm", "exec", "-it", "vmweb", "sh")
        assert code != 0 and "interactive or tty exec into a VM" in out and "without -it" in out
        assert "Traceback" not in out
        # the guest took the launcher's overlay address on a tap (not the
        # user-networking fallback): /dev/net/tun was made in the task
        launcher = _docker(
            T2, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=swarm-hybrid_vmweb",
        ).split()  # fmt: skip
        effective = _docker(T2, "exec", launcher[0], "cat", "/compound/run/state/effective")
        assert "net eth0 tap0" in effective and "net user" not in effective
        # the same file again: the same digest, the VM is left running as it was
        app.ok("up", "--swarm")
        again = yaml.safe_load((records.hosts_dir() / "stacks" / "swarm-hybrid.yaml").read_text())
        assert again["services"]["vmweb"]["image"] == vm["image"]
        assert _docker(T2, "ps", "-q", "--filter", f"id={launcher[0]}").strip()
    finally:
        app.ok("swarm", "down")


def test_up_swarm_boots_a_vm_disk_whose_persistent_overlay_outlives_its_task(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    """A legacy disk service (tests/integration/fastdisk.py: its own
    bootloader and kernel, DHCP, qemu-guest-agent, a web server; booted in
    seconds) from its containerDisk, with persistent: true."""
    disk = ensure_fast_disk()
    app = _app(
        engine,
        tmp_path,
        "swarm-disk",
        f"""
        services:
          legacy:
            x-compound:
              runtime: vm
              vm: {{disk: {disk}, persistent: true, memory: 128M}}
            healthcheck: {{test: ["CMD", "true"]}}
            stop_grace_period: 2s
          client:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
            deploy:
              placement: {{constraints: ["node.labels.compound.host == swarm-t3"]}}
        """,
    )
    service = "swarm-disk_legacy"
    try:
        out = app.ok("up", "--swarm")
        # the overlay is a local volume: the service is pinned to its node, and told so
        assert "pinned to host" in out and "local volume 'legacy-disk-overlay'" in out
        # its healthcheck runs through the agent only on one host: said, not dropped silently
        assert "service legacy: its healthcheck is not run on the Swarm" in out
        stack = yaml.safe_load((records.hosts_dir() / "stacks" / "swarm-disk.yaml").read_text())
        vm = stack["services"]["legacy"]
        assert "/compound-vmdisk@sha256:" in vm["image"]
        assert {"type": "volume", "source": "legacy-disk-overlay",
                "target": "/var/lib/compound/persist"} in vm["volumes"]  # fmt: skip
        assert stack["volumes"]["legacy-disk-overlay"]["name"] == "swarm-disk_legacy-disk-overlay"
        host = next(
            r["host"]
            for r in json.loads(app.ok("swarm", "ps", "--json"))
            if r["service"] == "legacy"
        )
        # the disk booted through its own bootloader and kernel, took the task's
        # address by DHCP, and a container reaches its web server by name
        assert _fetch_from_client("swarm-disk", "legacy", "/greeting", timeout=120) == "from-disk"
        launcher = _docker(
            host, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
        ).split()
        effective = _docker(host, "exec", launcher[0], "cat", "/compound/run/state/effective")
        leased = re.search(r"^dhcp (\S+)$", effective, re.M)
        mac = re.search(r"^net eth0 tap0 (\S+) ", effective, re.M)
        assert leased and mac, effective
        # the disk has cloud-init: its NoCloud seed travelled in the containerDisk,
        # the launcher on the node gave it the NIC's MAC, the guest read it
        assert app.ok("swarm", "exec", "legacy", "hostname").strip() == "legacy"
        seed = app.ok("swarm", "exec", "legacy", "cat", "/var/lib/cloud/seed/network-config")
        assert f'macaddress: "{mac.group(1)}"' in seed
        user_data = app.ok("swarm", "exec", "legacy", "cat", "/var/lib/cloud/seed/user-data")
        assert cloudseed.project_key("swarm-disk")[1] in user_data
        # exec through its guest agent: a legacy guest runs it as root in /,
        # with workdir and environment said through its shell
        script = "ip -4 -o addr show dev eth0; echo to-stderr >&2; exit 4"
        code, raw_out, raw_err = _run_apart(app, "swarm", "exec", "legacy", "sh", "-c", script)
        assert code == 4 and f" {leased.group(1)}/" in raw_out.decode()
        assert raw_err.decode() == "to-stderr\n"
        out = app.ok(
            "swarm", "exec", "-w", "/www", "-e", "X=y z", "legacy", "sh", "-c", "echo $X $PWD"
        )
        assert out.strip() == "y z /www"
        # its console is the service's log
        assert "FASTDISK-READY" in app.ok("swarm", "logs", "legacy", "--tail", "50")
        # what the guest wrote outlives the task: a new task on the same node
        # boots from the same overlay
        token = os.urandom(8).hex()
        app.ok("swarm", "exec", "legacy", "sh", "-c", f"echo {token} > /token && sync")
        _docker(T1, "service", "update", "--force", "--detach", service)
        deadline = time.monotonic() + 120
        while True:
            code, out = app.run("swarm", "exec", "legacy", "cat", "/token")
            now = _docker(
                host, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
            ).split()
            if code == 0 and now and now != launcher:
                break
            assert time.monotonic() < deadline, f"no new task answered: {out[-500:]}"
            time.sleep(2)
        assert out.strip() == token
    finally:
        app.ok("swarm", "down")
        key = cloudseed.project_key("swarm-disk")[0]  # compound keeps a project's key past down
        key.unlink()
        key.with_name(key.name + ".pub").unlink()


def test_a_project_that_targets_the_swarm_needs_no_swarm_flag(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(
        engine,
        tmp_path,
        "swarm-target",
        """
        x-compound: {target: swarm}
        services:
          web:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
        """,
    )
    try:
        app.ok("up")
        rows = json.loads(app.ok("ps", "--json"))
        assert [r["service"] for r in rows] == ["web"] and rows[0]["host"] in cluster
        assert app.ok("exec", "-e", "X=on-the-swarm", "web", "sh", "-c", "echo $X").strip() == (
            "on-the-swarm"
        )
        code, out = app.run("stop")
        assert code == 2 and "`compound stop` acts on this host's engine" in out
        # nothing ran on this machine's engine
        assert not engine.containers.list(
            all=True, filters={"label": "io.compound.project=swarm-target"}
        )
    finally:
        app.ok("down")
    assert "swarm-target_web" not in _docker(T1, "service", "ls")


def test_an_image_no_node_has_fails_before_anything_is_deployed(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(
        engine,
        tmp_path,
        "swarm-noimg",
        "services:\n  web: {image: 'local/nowhere:1', command: [sleep, '1000']}\n",
    )
    code, out = app.run("up", "--swarm")
    assert code == 1, out
    assert "image local/nowhere:1: neither this machine nor host" in out
    assert "build or pull local/nowhere:1 here first" in out and "Traceback" not in out
    assert "swarm-noimg" not in _docker(T1, "service", "ls")


def test_node_loss_moves_services_and_reports_pinned_volumes(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    app = _app(
        engine,
        tmp_path,
        "swarm-loss",
        """
        services:
          web:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
            deploy: {replicas: 3}
          db:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
            volumes: [data:/data]
            deploy: {placement: {constraints: ["node.labels.compound.host == swarm-t3"]}}
        volumes:
          data: {}
        """,
    )
    app.ok("up", "--swarm")
    try:
        rows = json.loads(app.ok("swarm", "ps", "--json"))
        assert {r["host"] for r in rows if r["service"] == "web"} == set(cluster)
        app.ok("host", "stop", T3)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows = json.loads(app.ok("swarm", "ps", "--json"))
            web = [r for r in rows if r["service"] == "web" and r["state"] == "running"]
            db = [r for r in rows if r["service"] == "db"]
            if len(web) == 3 and db and "volume unavailable" in db[0]["note"]:
                break
            time.sleep(1)
        assert {r["host"] for r in web} <= {T1, T2} and len(web) == 3
        assert f"pinned to host {T3}" in db[0]["note"]
        assert db[0]["state"] != "running"
    finally:
        app.run("host", "start", T3)
        app.run("swarm", "down")


def test_leave_drains_a_node_and_the_manager_goes_last(
    cluster: list[str], engine: docker.DockerClient, tmp_path: Path
) -> None:
    """Last: it takes swarm-t2 out of the cluster for good."""
    app = _app(
        engine,
        tmp_path,
        "swarm-leave",
        """
        services:
          web:
            image: local/busybox:latest
            command: ["sleep", "100000"]
            stop_grace_period: 1s
            deploy:
              replicas: 3
              placement: {constraints: ["node.labels.compound.host != swarm-t3"]}
        """,
    )
    app.ok("up", "--swarm")
    try:
        rows = json.loads(app.ok("swarm", "ps", "--json"))
        assert T2 in {r["host"] for r in rows}
        code, out = app.run("host", "rm", T3)  # runs nothing, but is a node
        assert code == 1 and "is a worker of the Swarm" in out and f"swarm leave {T3}" in out
        code, out = app.run("swarm", "leave", T1)
        assert code == 1 and "is the Swarm's manager" in out and T2 in out
        app.ok("swarm", "leave", T2)
        assert T2 not in {n["host"] for n in json.loads(app.ok("swarm", "ls", "--json"))}
        # its tasks were started on the node left before it went: all three run on swarm-t1
        rows = json.loads(app.ok("swarm", "ps", "--json"))
        running = [r for r in rows if r["service"] == "web" and r["state"] == "running"]
        assert len(running) == 3 and {r["host"] for r in running} == {T1}
        assert _docker(T2, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    finally:
        app.run("swarm", "down")
