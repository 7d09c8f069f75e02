"""ContainerDriver and the project-level helpers against the real Docker Engine."""

from __future__ import annotations

import io
import os
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from compound.engine.resources import (
    ensure_network,
    ensure_volume,
    project_resources,
    remove_networks,
    remove_volumes,
)
from compound.errors import (
    EngineError,
    ImageNotFoundError,
    NoSuchInstanceError,
    NotSupportedError,
    ServiceError,
)
from compound.runtimes.base import LABEL_PROJECT, Instance
from compound.runtimes.container import ContainerDriver
from compound.runtimes.instances import list_instances
from compound.spec.model import (
    BuildSpec,
    FileObject,
    FileReference,
    Healthcheck,
    Logging,
    Network,
    PortSpec,
    Project,
    Service,
    ServiceNetwork,
    Ulimit,
    Volume,
    VolumeMount,
)

pytestmark = pytest.mark.integration

HTTPD = (
    "sh",
    "-c",
    "mkdir -p /www && echo hello-compound > /www/index.html && exec httpd -f -p 80 -h /www",
)
SLEEP = ("sleep", "300")


@pytest.fixture
def driver(engine: docker.DockerClient) -> ContainerDriver:
    return ContainerDriver(engine)


def up(driver: ContainerDriver, project: Project, name: str, number: int = 1) -> Instance:
    """What the reconciler does for one new instance."""
    service = project.service(name)
    for net in project.networks.values():
        ensure_network(driver.client, project, net)
    for vol in project.volumes.values():
        ensure_volume(driver.client, project, vol)
    driver.prepare(project, service)
    inst = driver.create(project, service, number, service.config_hash())
    driver.start(inst)
    return driver.inspect(inst.id)


def run_to_end(driver: ContainerDriver, project: Project, name: str) -> tuple[int, str]:
    inst = up(driver, project, name)
    code = driver.wait(inst, timeout=60)
    return code, "\n".join(line.text for line in driver.logs(inst))


def until(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- ports, images ---------------------------------------------------------------


def test_httpd_with_published_port(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    web = Service(
        name="web",
        image=busybox_image,
        command=HTTPD,
        ports=(PortSpec(target=80, host_ip="127.0.0.1"),),
    )
    inst = up(driver, make_project(web), "web")
    assert inst.status == "running"
    assert inst.name.endswith("-web-1") and inst.number == 1 and inst.runtime == "container"
    (binding,) = [p for p in inst.ports if p.target == 80]
    assert binding.host_ip == "127.0.0.1" and binding.host_port > 0
    assert fetch(f"http://127.0.0.1:{binding.host_port}/").strip() == "hello-compound"
    assert inst.config_hash == web.config_hash()
    assert inst.image_id.startswith("sha256:")


def test_port_conflict_is_a_clear_service_error(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    port = str(free_port())
    a = Service(
        name="a", image=busybox_image, command=SLEEP, ports=(PortSpec(target=80, published=port),)
    )
    b = Service(
        name="b", image=busybox_image, command=SLEEP, ports=(PortSpec(target=80, published=port),)
    )
    project = make_project(a, b)
    up(driver, project, "a")
    with pytest.raises(ServiceError) as err:
        up(driver, project, "b")
    assert err.value.message == f"service 'b': port {port} is already in use on the host"
    assert err.value.hint == "free it or change the published port"


def test_missing_image_fails_fast(driver: ContainerDriver, make_project) -> None:
    svc = Service(name="x", image="registry.invalid/nothing/here:1")
    start = time.monotonic()
    with pytest.raises(ImageNotFoundError) as err:
        driver.prepare(make_project(svc), svc)
    assert time.monotonic() - start < 15  # a guard against hanging, not a benchmark
    assert "is not available locally and could not be pulled" in err.value.message
    assert "docker load" in (err.value.hint or "")


def test_pull_policy_never_does_not_pull(driver: ContainerDriver, make_project) -> None:
    svc = Service(name="x", image="registry.invalid/nothing:2", pull_policy="never")
    with pytest.raises(ImageNotFoundError, match="pull_policy: never"):
        driver.prepare(make_project(svc), svc)


def test_build_with_inline_dockerfile_and_cleared_entrypoint(
    driver: ContainerDriver, make_project, busybox_image: str, tmp_path: Path, engine
) -> None:
    (tmp_path / "hello.txt").write_text("from-context\n")
    build = BuildSpec(
        context=str(tmp_path),
        dockerfile_inline=(
            f"FROM {busybox_image}\nARG WORD\nCOPY hello.txt /hello.txt\n"
            'RUN echo "$WORD" > /word.txt\nENTRYPOINT ["echo", "from-entrypoint"]\n'
        ),
        args={"WORD": "built-arg"},
        labels={"test.label": "yes"},
    )
    svc = Service(name="app", build=build, command=("cat", "/hello.txt", "/word.txt"))
    cleared = svc.model_copy(update={"name": "cleared", "entrypoint": ()})
    project = make_project(svc, cleared)
    messages: list[str] = []
    image_id = driver.prepare(project, svc, lambda s, m: messages.append(m))
    tag = f"{project.name}-app"
    try:
        assert engine.api.inspect_image(tag)["Id"] == image_id
        assert engine.api.inspect_image(tag)["Config"]["Labels"]["test.label"] == "yes"
        assert any("Step" in m for m in messages)
        code, out = run_to_end(driver, project, "app")
        assert (code, out) == (0, "from-entrypoint cat /hello.txt /word.txt")
        # An explicit empty entrypoint clears the image's (Compose `entrypoint: []`).
        cleared_project = make_project(
            svc, cleared.model_copy(update={"image": tag, "build": None})
        )
        code, out = run_to_end(driver, cleared_project, "cleared")
        assert (code, out) == (0, "from-context\nbuilt-arg")
    finally:
        for c in list_instances(engine, project.name):
            driver.remove(c)
        engine.api.remove_image(tag, force=True)


# --- process settings ------------------------------------------------------------------


def test_environment_command_entrypoint_workdir_user(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    svc = Service(
        name="env",
        image=busybox_image,
        entrypoint=("sh", "-c"),
        command=('echo "$FOO|$(pwd)|$(id -u):$(id -g)|${DROPPED-unset}"',),
        environment={"FOO": "bar baz", "DROPPED": None},
        working_dir="/tmp",
        user="65534:65534",
    )
    assert run_to_end(driver, make_project(svc), "env") == (0, "bar baz|/tmp|65534:65534|unset")


def test_healthcheck_reaches_healthy(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    svc = Service(
        name="web",
        image=busybox_image,
        command=HTTPD,
        healthcheck=Healthcheck(
            test=("CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/"),
            interval=0.5,
            timeout=2,
            retries=3,
        ),
    )
    inst = up(driver, make_project(svc), "web")
    assert inst.health in ("starting", "healthy")
    until(lambda: driver.inspect(inst.id).health == "healthy", what="healthy")


def test_healthcheck_disable(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(
        name="x", image=busybox_image, command=SLEEP, healthcheck=Healthcheck(disable=True)
    )
    assert up(driver, make_project(svc), "x").health is None


# --- volumes ------------------------------------------------------------------------


def test_named_volume_survives_recreate(
    driver: ContainerDriver, make_project, busybox_image: str, engine
) -> None:
    svc = Service(
        name="db",
        image=busybox_image,
        command=("sh", "-c", "echo run >> /data/log; cat /data/log"),
        volumes=(VolumeMount(type="volume", source="data", target="/data"),),
    )
    project = make_project(svc, volumes=("data",))
    first = up(driver, project, "db")
    assert driver.wait(first, timeout=30) == 0
    driver.remove(first, volumes=True)  # anonymous volumes only: named ones stay
    driver.remove(first)  # a second remove is a no-op
    code, out = run_to_end(driver, project, "db")
    assert (code, out) == (0, "run\nrun")
    vol = engine.api.inspect_volume(f"{project.name}_data")
    assert vol["Labels"][LABEL_PROJECT] == project.name


def test_bind_mounts(
    driver: ContainerDriver, make_project, busybox_image: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_text("on-the-host\n")
    created = tmp_path / "made" / "by-engine"
    svc = Service(
        name="b",
        image=busybox_image,
        command=(
            "sh",
            "-c",
            "cat /in/f.txt; touch /in/x 2>/dev/null || echo read-only; ls -d /made",
        ),
        volumes=(
            VolumeMount(type="bind", source=str(src), target="/in", read_only=True),
            VolumeMount(type="bind", source=str(created), target="/made"),
        ),
    )
    assert run_to_end(driver, make_project(svc), "b") == (0, "on-the-host\nread-only\n/made")
    assert created.is_dir()  # create_host_path (the default) made it


def test_bind_mount_without_create_host_path_must_exist(
    driver: ContainerDriver, make_project, busybox_image: str, tmp_path: Path
) -> None:
    missing = tmp_path / "absent"
    svc = Service(
        name="b",
        image=busybox_image,
        command=SLEEP,
        volumes=(
            VolumeMount(type="bind", source=str(missing), target="/x", create_host_path=False),
        ),
    )
    with pytest.raises(ServiceError, match=f"bind mount source {missing} does not exist"):
        up(driver, make_project(svc), "b")
    assert not missing.exists()


def test_tmpfs(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(
        name="t",
        image=busybox_image,
        command=("sh", "-c", "grep -E ' /(scratch|short) ' /proc/mounts | sort"),
        volumes=(
            VolumeMount(type="tmpfs", target="/scratch", tmpfs_size=1 << 20, tmpfs_mode=0o1770),
        ),
        tmpfs=("/short:size=65536",),
    )
    code, out = run_to_end(driver, make_project(svc), "t")
    assert code == 0
    scratch, short = out.splitlines()
    assert scratch.startswith("tmpfs /scratch tmpfs") and "size=1024k" in scratch
    assert "mode=1770" in scratch
    assert short.startswith("tmpfs /short tmpfs") and "size=64k" in short


def test_volume_subpath_is_not_supported_on_this_engine(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    svc = Service(
        name="s",
        image=busybox_image,
        volumes=(VolumeMount(type="volume", source="v", target="/v", subpath="sub"),),
    )
    project = make_project(svc, volumes=("v",))
    with pytest.raises(NotSupportedError, match="subpath"):
        driver.create(project, svc, 1, "h")


# --- secrets and configs ---------------------------------------------------------------


def test_secrets_from_file_content_and_environment(
    driver: ContainerDriver, make_project, busybox_image: str, tmp_path: Path
) -> None:
    secret_file = tmp_path / "pw.txt"
    secret_file.write_text("s3cret\n")
    svc = Service(
        name="app",
        image=busybox_image,
        command=(
            "sh",
            "-c",
            "cat /run/secrets/pw /etc/app.conf /run/secrets/token; echo;"
            "stat -c '%a %u %g' /etc/app.conf /run/secrets/token",
        ),
        secrets=(
            FileReference(source="pw", target="/run/secrets/pw"),
            FileReference(source="token", target="/run/secrets/token"),
        ),
        configs=(
            FileReference(
                source="conf", target="/etc/app.conf", mode=0o440, uid="65534", gid="65534"
            ),
        ),
    )
    project = make_project(
        svc,
        secrets={
            "pw": FileObject(key="pw", name="pw", file=str(secret_file)),
            "token": FileObject(key="token", name="token", environment="TOKEN"),
        },
        configs={"conf": FileObject(key="conf", name="conf", content="key=value\n")},
        environment={"TOKEN": "tok-123"},
    )
    code, out = run_to_end(driver, project, "app")
    assert code == 0
    assert out.splitlines() == ["s3cret", "key=value", "tok-123", "440 65534 65534", "444 0 0"]


# --- logs, exec, stats -----------------------------------------------------------------


def test_logs_tail_timestamps_streams(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    svc = Service(
        name="talk",
        image=busybox_image,
        # The engine copies stdout and stderr separately: order across the two
        # streams is only defined when the writes are apart in time.
        command=("sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo oops >&2"),
    )
    inst = up(driver, make_project(svc), "talk")
    assert driver.wait(inst, timeout=30) == 0
    lines = list(driver.logs(inst))
    assert [(line.stream, line.text) for line in lines] == [
        *(("stdout", f"line{i}") for i in range(1, 6)),
        ("stderr", "oops"),
    ]
    assert all(line.service == "talk" and line.instance == inst.name for line in lines)
    assert [line.text for line in driver.logs(inst, tail=2)] == ["line5", "oops"]
    stamped = list(driver.logs(inst, timestamps=True, tail=1))
    assert stamped[0].text == "oops" and stamped[0].timestamp and stamped[0].timestamp[:2] == "20"
    assert len(list(driver.logs(inst, since="1h"))) == 6
    assert list(driver.logs(inst, since=str(int(time.time()) + 3600))) == []


def test_logs_of_a_tty_container(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(
        name="tty", image=busybox_image, tty=True, command=("sh", "-c", "echo a; echo b >&2")
    )
    inst = up(driver, make_project(svc), "tty")
    assert driver.wait(inst, timeout=30) == 0
    assert [(line.stream, line.text) for line in driver.logs(inst)] == [
        ("stdout", "a"),
        ("stdout", "b"),
    ]


def test_logs_follow(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(
        name="f", image=busybox_image, command=("sh", "-c", "echo one; sleep 1; echo two; sleep 1")
    )
    inst = up(driver, make_project(svc), "f")
    assert [line.text for line in driver.logs(inst, follow=True)] == ["one", "two"]


def test_exec(
    driver: ContainerDriver, make_project, busybox_image: str, engine, tmp_path: Path
) -> None:
    out, err = io.BytesIO(), io.BytesIO()
    svc = Service(name="x", image=busybox_image, command=SLEEP)
    inst = up(driver, make_project(svc), "x")
    captured = ContainerDriver(engine, stdout=out, stderr=err)
    code = captured.exec(
        inst,
        ["sh", "-c", 'echo "out $V $(pwd) $(id -u)"; echo err >&2; exit 3'],
        env={"V": "v1"},
        workdir="/tmp",
        user="65534",
    )
    assert code == 3
    assert out.getvalue() == b"out v1 /tmp 65534\n" and err.getvalue() == b"err\n"
    assert driver.exec_capture(inst, ["sh", "-c", "echo hi; exit 0"]) == (0, b"hi\n", b"")
    # interactive: our stdin goes to the process, its stdout comes back demultiplexed
    stdin_file = tmp_path / "stdin"
    stdin_file.write_bytes(b"typed line\n")
    out2, err2 = io.BytesIO(), io.BytesIO()
    with stdin_file.open("rb") as stdin:
        interactive = ContainerDriver(engine, stdin=stdin, stdout=out2, stderr=err2)
        code = interactive.exec(
            inst, ["sh", "-c", "read l; echo got:$l; echo e >&2; exit 5"], interactive=True
        )
    assert (code, out2.getvalue(), err2.getvalue()) == (5, b"got:typed line\n", b"e\n")


def test_exec_interactive_from_a_pipe_and_with_a_tty(
    driver: ContainerDriver, make_project, busybox_image: str, engine
) -> None:
    inst = up(driver, make_project(Service(name="x", image=busybox_image, command=SLEEP)), "x")
    for tty in (False, True):
        read_end, write_end = os.pipe()
        os.write(write_end, b"typed line\n")
        os.close(write_end)
        out, err = io.BytesIO(), io.BytesIO()
        with os.fdopen(read_end, "rb") as stdin:
            piped = ContainerDriver(engine, stdin=stdin, stdout=out, stderr=err)
            code = piped.exec(
                inst, ["sh", "-c", "read l; echo got:$l; exit 4"], interactive=True, tty=tty
            )
        assert code == 4
        # a tty echoes what it is sent and ends lines with CR LF
        assert b"got:typed line" + (b"\r\n" if tty else b"\n") in out.getvalue()


def test_stats(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(name="x", image=busybox_image, command=SLEEP, mem_limit=64 << 20)
    stats = driver.stats(up(driver, make_project(svc), "x"))
    assert stats["memory_limit"] == 64 << 20
    assert stats["pids"] >= 1
    assert set(stats) >= {"cpu_percent", "memory_usage", "net_rx", "net_tx", "block_read"}


# --- stop, kill, wait ----------------------------------------------------------------------

TRAP = "trap 'echo got-{sig}; exit 7' {sig}; echo ready; while true; do sleep 0.1; done"


def test_stop_sends_stop_signal(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(
        name="s",
        image=busybox_image,
        command=("sh", "-c", TRAP.format(sig="USR1")),
        stop_signal="SIGUSR1",
    )
    inst = up(driver, make_project(svc), "s")
    until(lambda: any(line.text == "ready" for line in driver.logs(inst)), what="ready")
    driver.stop(inst, grace=20)
    after = driver.inspect(inst.id)
    assert (after.status, after.exit_code) == ("exited", 7)
    assert [line.text for line in driver.logs(inst)][-1] == "got-USR1"
    driver.stop(after)  # stopping a stopped instance is fine


def test_stop_grace_period_then_kill(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    svc = Service(
        name="stubborn",
        image=busybox_image,
        command=("sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"),
        stop_grace_period=1.5,
    )
    inst = up(driver, make_project(svc), "stubborn")
    assert inst.details["stop_timeout"] == 2  # the engine counts whole seconds; we round up
    start = time.monotonic()
    driver.stop(inst)  # grace from the service's stop_grace_period
    took = time.monotonic() - start
    assert 1.5 <= took < 15
    assert driver.inspect(inst.id).exit_code == 137


def test_kill_and_wait(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(name="k", image=busybox_image, command=SLEEP)
    inst = up(driver, make_project(svc), "k")
    with pytest.raises(ServiceError, match=r"did not exit within 0\.5s"):
        driver.wait(inst, timeout=0.5)
    driver.kill(inst, "SIGKILL")
    assert driver.wait(inst, timeout=30) == 137
    driver.kill(inst)  # killing a stopped instance is a no-op


def test_wait_returns_exit_code(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(name="w", image=busybox_image, command=("sh", "-c", "exit 42"))
    inst = up(driver, make_project(svc), "w")
    assert driver.wait(inst, timeout=30) == 42
    assert driver.inspect(inst.id).exit_code == 42


def test_vanished_container(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    svc = Service(name="v", image=busybox_image, command=SLEEP)
    project = make_project(svc)
    inst = up(driver, project, "v")
    driver.remove(inst)
    driver.remove(inst)
    driver.stop(inst)
    driver.kill(inst)
    with pytest.raises(NoSuchInstanceError):
        driver.inspect(inst.id)
    assert list_instances(driver.client, project.name) == []


# --- networks -------------------------------------------------------------------------------


def test_aliases_on_a_second_network(
    driver: ContainerDriver, make_project, busybox_image: str
) -> None:
    web = Service(
        name="web",
        image=busybox_image,
        command=HTTPD,
        networks={
            "default": ServiceNetwork(),
            "back": ServiceNetwork(aliases=("www.internal",)),
        },
    )
    client = Service(
        name="client",
        image=busybox_image,
        command=(
            "sh",
            "-c",
            "nslookup www.internal >/dev/null && wget -q -O- http://www.internal/ "
            "&& wget -q -O- http://web/",
        ),
        networks={"back": ServiceNetwork()},
    )
    project = make_project(web, client, networks=("default", "back"))
    inst = up(driver, project, "web")
    assert inst.networks == tuple(sorted((f"{project.name}_default", f"{project.name}_back")))
    code, out = run_to_end(driver, project, "client")
    assert (code, out) == (0, "hello-compound\nhello-compound")


def test_network_mode_service(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    web = Service(name="web", image=busybox_image, command=HTTPD)
    side = Service(
        name="side",
        image=busybox_image,
        network_mode="service:web",
        command=("sh", "-c", "sleep 0.5; wget -q -O- http://127.0.0.1/"),
    )
    project = make_project(web, side)
    up(driver, project, "web")
    assert run_to_end(driver, project, "side") == (0, "hello-compound")


def test_networks_and_volumes_lifecycle(make_project, engine: docker.DockerClient) -> None:
    project = make_project(
        Service(name="x", image="unused"),
        networks=("default", Network(key="ext", name="compound-test-absent-net", external=True)),
        volumes=("data",),
    )
    default, ext = project.networks["default"], project.networks["ext"]
    assert ensure_network(engine, project, default) is True
    assert ensure_network(engine, project, default) is False
    with pytest.raises(EngineError) as err:
        ensure_network(engine, project, ext)
    assert "compound-test-absent-net" in err.value.message
    assert err.value.hint == "create it: `docker network create compound-test-absent-net`"
    changed = default.model_copy(update={"internal": True})
    with pytest.raises(EngineError, match="different configuration") as err:
        ensure_network(engine, project, changed)
    assert "compound down" in (err.value.hint or "")

    data = project.volumes["data"]
    assert ensure_volume(engine, project, data) is True
    assert ensure_volume(engine, project, data) is False
    with pytest.raises(EngineError, match="does not exist"):
        ensure_volume(
            engine, project, Volume(key="e", name="compound-test-absent-vol", external=True)
        )

    nets, vols = project_resources(engine, project.name)
    assert (nets, vols) == ((default.name,), (data.name,))
    assert remove_networks(engine, project.name) == [default.name]
    assert remove_volumes(engine, project.name) == [data.name]
    assert project_resources(engine, project.name) == ((), ())


# --- listing and the kitchen sink ---------------------------------------------------------------


def test_list_instances(driver: ContainerDriver, make_project, busybox_image: str) -> None:
    a = Service(name="a", image=busybox_image, command=SLEEP)
    b = Service(name="b", image=busybox_image, command=("true",))
    project = make_project(a, b)
    for n in (2, 1):
        up(driver, project, "a", n)
    done = up(driver, project, "b")
    driver.wait(done, timeout=30)
    every = list_instances(driver.client, project.name)
    assert [(i.service, i.number) for i in every] == [("a", 1), ("a", 2), ("b", 1)]
    assert [i.number for i in list_instances(driver.client, project.name, "a")] == [1, 2]
    running = list_instances(driver.client, project.name, include_stopped=False)
    assert [i.service for i in running] == ["a", "a"]
    assert list_instances(driver.client, project.name, oneoff=True) == []
    run = driver.create(project, b, 1, "h", oneoff=True)
    assert "-b-run-" in run.name and run.oneoff
    assert [i.id for i in list_instances(driver.client, project.name, oneoff=True)] == [run.id]


def test_kitchen_sink_is_accepted_by_the_engine(
    driver: ContainerDriver, make_project, busybox_image: str, engine
) -> None:
    svc = Service(
        name="sink",
        image=busybox_image,
        command=("sh", "-c", "cat /etc/hosts; hostname; echo ok; sleep 300"),
        hostname="sinkhost",
        domainname="example.test",
        labels={"my.label": "1"},
        restart="on-failure:3",
        cpus=0.5,
        cpu_shares=512,
        cpuset="0",
        mem_limit=128 << 20,
        mem_reservation=64 << 20,
        pids_limit=64,
        shm_size=32 << 20,
        read_only=True,
        tmpfs=("/tmp",),
        cap_add=("NET_ADMIN",),
        cap_drop=("MKNOD",),
        devices=("/dev/null:/dev/mynull:rwm",),
        security_opt=("no-new-privileges:true",),
        ulimits={"nofile": Ulimit(soft=1024, hard=2048)},
        sysctls={"net.core.somaxconn": "1024"},
        init=True,
        stop_signal="SIGINT",
        stop_grace_period=3,
        extra_hosts={"db.example": "10.1.2.3"},
        dns=("1.1.1.1",),
        dns_search=("example.test",),
        dns_opt=("ndots:2",),
        ipc="private",
        group_add=("65534",),
        oom_score_adj=100,
        logging=Logging(driver="json-file", options={"max-size": "1m"}),
        expose=("9000-9001",),
    )
    inst = up(driver, make_project(svc), "sink")
    assert inst.status == "running"
    info = engine.api.inspect_container(inst.id)
    host = info["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (500_000_000, 128 << 20, 64)
    assert host["ReadonlyRootfs"] and host["Init"] and host["ShmSize"] == 32 << 20
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["ExtraHosts"] == ["db.example:10.1.2.3"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert info["Config"]["StopSignal"] == "SIGINT" and info["Config"]["StopTimeout"] == 3
    assert set(info["Config"]["ExposedPorts"]) == {"9000/tcp", "9001/tcp"}
    until(lambda: any(line.text == "ok" for line in driver.logs(inst)), what="output")
    lines = [line.text for line in driver.logs(inst)]
    assert "10.1.2.3\tdb.example" in lines and "sinkhost" in lines
