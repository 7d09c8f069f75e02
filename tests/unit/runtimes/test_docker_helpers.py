"""The engine-free parts of the container runtime and of compound.engine."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest
import requests

from compound.engine import engine_errors, translate
from compound.engine.errors import service_error
from compound.engine.resources import (
    ipam_config,
    network_create_args,
    network_differences,
    volume_create_args,
)
from compound.engine.streams import frames, split_lines
from compound.errors import EngineError, EngineUnavailableError, ImageNotFoundError, ServiceError
from compound.runtimes.container import ContainerDriver, parse_since, summarize_stats
from compound.runtimes.container_config import InjectedFile, files_tar
from compound.runtimes.instances import instance_from_inspect
from compound.spec.model import BuildSpec, Network, Project, Service, Volume


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return cls("boom", response=response, explanation=explanation)


# --- engine errors ---------------------------------------------------------------


def test_engine_errors_keeps_the_engines_words() -> None:
    with pytest.raises(EngineError) as err, engine_errors("create network 'n'"):
        raise api_error(500, "pool overlaps with other one on this address space")
    assert err.value.message == (
        "create network 'n': pool overlaps with other one on this address space"
    )
    assert isinstance(err.value.__cause__, docker.errors.APIError)


def test_connection_failures_mean_no_engine() -> None:
    exc = translate(requests.exceptions.ConnectionError("refused"), "list containers")
    assert isinstance(exc, EngineUnavailableError)
    assert "make engine" in (exc.hint or "")


@pytest.mark.parametrize(
    ("explanation", "message", "hint"),
    [
        (
            "driver failed programming external connectivity on endpoint p-web-1 (abc): "
            "Bind for 0.0.0.0:8080 failed: port is already allocated",
            "service 'web': port 8080 is already in use on the host",
            "free it or change the published port",
        ),
        (
            "driver failed programming external connectivity on endpoint x: Error starting "
            "userland proxy: listen tcp4 0.0.0.0:9090: bind: address already in use",
            "service 'web': port 9090 is already in use on the host",
            "free it or change the published port",
        ),
        (
            'invalid mount config for type "bind": bind source path does not exist: /srv/x',
            "service 'web': bind mount source /srv/x does not exist",
            "create it, or allow compound to (create_host_path: true)",
        ),
        (
            'Conflict. The container name "/p-web-1" is already in use by container "abc". '
            "You have to remove (or rename) that container to be able to reuse that name.",
            "service 'web': container name 'p-web-1' is already in use",
            "remove that container (`docker rm -f p-web-1`) or run `compound down`",
        ),
    ],
)
def test_service_errors(explanation: str, message: str, hint: str) -> None:
    err = service_error("web", "start p-web-1", api_error(500, explanation))
    assert isinstance(err, ServiceError)
    assert (err.message, err.hint) == (message, hint)


def test_other_service_errors_name_the_step() -> None:
    err = service_error("web", "start p-web-1", api_error(500, "OCI runtime create failed"))
    assert err.message == "service 'web': start p-web-1: OCI runtime create failed"
    assert isinstance(service_error("web", "x", api_error(404, "No such image: a:1")), EngineError)


# --- instances ---------------------------------------------------------------------


def inspect_answer(**state: Any) -> dict[str, Any]:
    return {
        "Id": "c0ffee",
        "Name": "/p-web-2",
        "Image": "sha256:abc",
        "RestartCount": 0,
        "State": {
            "Status": "running",
            "ExitCode": 0,
            "Pid": 42,
            "StartedAt": "2024-05-01T10:00:00.123Z",
            "FinishedAt": "0001-01-01T00:00:00Z",
            **state,
        },
        "Config": {
            "Image": "img:1",
            "Tty": False,
            "StopTimeout": 5,
            "Labels": {
                "io.compound.project": "p",
                "io.compound.service": "web",
                "io.compound.number": "2",
                "io.compound.config-hash": "h",
                "io.compound.runtime": "container",
                "io.compound.oneoff": "false",
            },
        },
        "NetworkSettings": {
            "Ports": {
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": "8080"},
                    {"HostIp": "::", "HostPort": "8080"},
                ],
                "53/udp": None,
            },
            "Networks": {"p_default": {"IPAddress": "172.18.0.2"}, "p_back": {"IPAddress": ""}},
        },
    }


def test_instance_from_inspect() -> None:
    inst = instance_from_inspect(inspect_answer(Health={"Status": "healthy"}))
    assert (inst.id, inst.name, inst.project, inst.service, inst.number) == (
        "c0ffee",
        "p-web-2",
        "p",
        "web",
        2,
    )
    assert (inst.status, inst.health, inst.exit_code, inst.running) == (
        "running",
        "healthy",
        None,
        True,
    )
    assert (inst.started_at, inst.finished_at) == ("2024-05-01T10:00:00.123Z", None)
    assert [(p.target, p.protocol, p.host_ip, p.host_port) for p in inst.ports] == [
        (80, "tcp", "0.0.0.0", 8080),
        (80, "tcp", "::", 8080),
    ]
    assert inst.networks == ("p_back", "p_default")
    assert (inst.image, inst.image_id, inst.config_hash, inst.oneoff) == (
        "img:1",
        "sha256:abc",
        "h",
        False,
    )
    assert inst.details["stop_timeout"] == 5 and inst.details["tty"] is False


def test_exited_instance_has_an_exit_code() -> None:
    inst = instance_from_inspect(inspect_answer(Status="exited", ExitCode=3))
    assert (inst.exit_code, inst.running, inst.health) == (3, False, None)


# --- logs ---------------------------------------------------------------------------


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


class Trickle(io.BytesIO):
    """A response body that hands out at most 3 bytes per read."""

    def read(self, n: int | None = -1) -> bytes:
        return super().read(min(3, n) if n and n > 0 else 3)


def test_frames_and_lines_per_stream() -> None:
    body = frame(1, b"a\nb") + frame(2, b"err1\n") + frame(1, b"c\n") + frame(1, b"tail")
    read = list(frames(Trickle(body)))
    assert read[0] == ("stdout", b"a\nb")
    assert list(split_lines(iter(read))) == [
        ("stdout", "a"),
        ("stderr", "err1"),
        ("stdout", "bc"),
        ("stdout", "tail"),
    ]


def test_split_lines_strips_tty_carriage_returns() -> None:
    chunks: Iterator[tuple[str, bytes]] = iter([("stdout", b"x\r\ny\r"), ("stdout", b"\n")])
    assert list(split_lines(chunks)) == [("stdout", "x"), ("stdout", "y")]


def test_parse_since() -> None:
    now = 1_700_000_000.0
    assert parse_since("1700000000") == now
    assert parse_since("10m", now=now) == now - 600
    assert parse_since("1h30m", now=now) == now - 5400
    assert parse_since("1.5s", now=now) == now - 1.5
    assert parse_since("2023-11-14T22:13:20Z") == now
    with pytest.raises(Exception, match="neither"):
        parse_since("yesterday")


# --- secrets tar, stats --------------------------------------------------------------------


def test_files_tar() -> None:
    data = files_tar([InjectedFile("/run/secrets/a", b"xyz", 0o400, 7, 8)])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (info,) = tar.getmembers()
        assert (info.name, info.mode, info.uid, info.gid, info.size) == (
            "run/secrets/a",
            0o400,
            7,
            8,
            3,
        )
        f = tar.extractfile(info)
        assert f is not None and f.read() == b"xyz"


def test_summarize_stats_cgroup_v1() -> None:
    raw = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000, "percpu_usage": [1, 2]},
            "system_cpu_usage": 20_000,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000},
        "memory_stats": {"usage": 1000, "limit": 4000, "stats": {"total_inactive_file": 200}},
        "networks": {
            "eth0": {"rx_bytes": 10, "tx_bytes": 20},
            "eth1": {"rx_bytes": 1, "tx_bytes": 2},
        },
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"op": "Read", "value": 5},
                {"op": "Write", "value": 6},
                {"op": "Total", "value": 11},
            ]
        },
        "pids_stats": {"current": 3},
    }
    assert summarize_stats(raw) == {
        "cpu_percent": 40.0,  # 2000/10000 * 2 cpus * 100
        "memory_usage": 800,
        "memory_limit": 4000,
        "memory_percent": 20.0,
        "net_rx": 11,
        "net_tx": 22,
        "block_read": 5,
        "block_write": 6,
        "pids": 3,
    }


def test_summarize_stats_of_a_stopped_container() -> None:
    assert summarize_stats({"read": "0001-01-01T00:00:00Z"})["cpu_percent"] == 0.0


# --- networks and volumes ---------------------------------------------------------------------


def test_network_create_args() -> None:
    net = Network(
        key="back",
        name="p_back",
        driver_opts={"com.docker.network.bridge.name": "br-x"},
        internal=True,
        labels={"team": "a"},
        ipam={"driver": "default", "config": [{"subnet": "10.5.0.0/16", "gateway": "10.5.0.1"}]},
    )
    args = network_create_args("p", net)
    assert args["name"] == "p_back" and args["driver"] == "bridge" and args["internal"] is True
    assert args["labels"]["io.compound.network"] == "back" and args["labels"]["team"] == "a"
    assert args["ipam"] == {
        "Driver": "default",
        "Config": [{"Subnet": "10.5.0.0/16", "Gateway": "10.5.0.1"}],
        "Options": {},
    }
    assert ipam_config({}) == {"Driver": "default", "Config": [], "Options": {}}


def test_network_differences() -> None:
    net = Network(key="n", name="p_n")
    same = {"Driver": "bridge", "Options": {}, "Internal": False, "EnableIPv6": False}
    assert network_differences(net, same) == []
    changed = dict(same, Driver="macvlan", Internal=True)
    assert network_differences(net, changed) == [
        "driver macvlan (declared: bridge)",
        "internal True (declared: False)",
    ]


def test_volume_create_args() -> None:
    args = volume_create_args("p", Volume(key="data", name="p_data", driver_opts={"type": "tmpfs"}))
    assert args["driver"] == "local" and args["driver_opts"] == {"type": "tmpfs"}
    assert args["labels"]["io.compound.project"] == "p"
    assert args["labels"]["io.compound.volume"] == "data"


# --- prepare: which images are pulled or built --------------------------------------------------


class FakeAPI:
    api_version = "1.41"

    def __init__(self, local: set[str], pull_ok: bool = False) -> None:
        self.local, self.pull_ok = set(local), pull_ok
        self.calls: list[str] = []

    def inspect_image(self, ref: str) -> dict[str, Any]:
        if ref not in self.local:
            raise api_error(404, f"No such image: {ref}")
        return {"Id": f"id-{ref}"}

    def pull(self, repo: str, tag: str, **_: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(f"pull {repo}:{tag}")
        if not self.pull_ok:
            raise api_error(500, "dial tcp: lookup registry-1.docker.io: no such host")
        self.local.add(f"{repo}:{tag}")
        yield {"status": "Downloaded newer image"}

    def tag(self, image: str, repository: str, tag: str | None = None) -> bool:
        self.calls.append(f"tag {image} {repository}:{tag}")
        return True

    def build(self, tag: str, **_: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(f"build {tag}")
        self.local.add(tag)
        yield {"stream": "Step 1/1 : FROM scratch\n"}
        yield {"aux": {"ID": f"id-{tag}"}}


class FakeClient:
    def __init__(self, api: FakeAPI) -> None:
        self.api = api


def prepare(api: FakeAPI, service: Service) -> str:
    project = Project(name="p", working_dir="/", files=(), services={service.name: service})
    return ContainerDriver(FakeClient(api)).prepare(project, service)  # type: ignore[arg-type]


def test_present_image_is_used_without_pulling() -> None:
    api = FakeAPI({"a:1"})
    assert prepare(api, Service(name="s", image="a:1")) == "id-a:1"
    assert api.calls == []


def test_missing_image_is_pulled_and_fails_clearly() -> None:
    api = FakeAPI(set())
    start = time.monotonic()
    with pytest.raises(ImageNotFoundError) as err:
        prepare(api, Service(name="s", image="a:1"))
    assert time.monotonic() - start < 5
    assert err.value.message == (
        "image 'a:1' is not available locally and could not be pulled (registry unreachable?)"
    )
    # a hint for any user's host, not only for compound's own repository
    assert err.value.hint is not None and "make" not in err.value.hint
    assert "docker load" in err.value.hint and "build:" in err.value.hint
    assert api.calls == ["pull a:1"]
    assert prepare(FakeAPI(set(), pull_ok=True), Service(name="s", image="a:1")) == "id-a:1"


def test_pull_policy_never_and_always() -> None:
    api = FakeAPI(set())
    with pytest.raises(ImageNotFoundError, match="pull_policy: never"):
        prepare(api, Service(name="s", image="a:1", pull_policy="never"))
    assert api.calls == []
    api = FakeAPI({"a:1"})
    with pytest.raises(EngineError, match="could not pull"):
        prepare(api, Service(name="s", image="a:1", pull_policy="always"))
    assert api.calls == ["pull a:1"]


def test_time_based_pull_policies(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from compound.runtimes import pulltimes

    monkeypatch.setenv("COMPOUND_CACHE_DIR", str(tmp_path))
    daily = Service(name="s", image="a:1", pull_policy="daily")
    assert daily.pull_interval == 86400
    assert Service(name="s", pull_policy="every_1w2d").pull_interval == 9 * 86400
    # never pulled here: due; the pull is recorded
    api = FakeAPI({"a:1"}, pull_ok=True)
    assert prepare(api, daily) == "id-a:1" and api.calls == ["pull a:1"]
    assert pulltimes.last_pull("a:1") is not None
    # pulled a moment ago: the local copy, no pull
    api = FakeAPI({"a:1"}, pull_ok=True)
    prepare(api, daily)
    assert api.calls == []
    # two days ago: due again; a registry that does not answer leaves the local copy
    pulltimes.record_pull("a:1", time.time() - 2 * 86400)
    api = FakeAPI({"a:1"})
    assert prepare(api, daily) == "id-a:1" and api.calls == ["pull a:1"]
    # refresh: every time
    api = FakeAPI({"a:1"}, pull_ok=True)
    prepare(api, Service(name="s", image="a:1", pull_policy="refresh"))
    assert api.calls == ["pull a:1"]


def test_build_tags_and_what_needs_buildkit(tmp_path: Any) -> None:
    tagged = BuildSpec(context=str(tmp_path), tags=("shop/web:2", "registry.local:5000/web"))
    api = FakeAPI(set())
    prepare(api, Service(name="s", image="mine:2", build=tagged, pull_policy="build"))
    assert api.calls == [
        "build mine:2",
        "tag id-mine:2 shop/web:2",
        "tag id-mine:2 registry.local:5000/web:latest",
    ]
    secret = BuildSpec(context=str(tmp_path), buildkit_only={"secrets": ["npm"]})
    with pytest.raises(ServiceError, match=r"build\.secrets need BuildKit") as err:
        prepare(FakeAPI(set()), Service(name="s", image="m:1", build=secret))
    assert "docker buildx build" in (err.value.hint or "")
    multi = BuildSpec(context=str(tmp_path), platforms=("linux/amd64", "linux/arm64"))
    with pytest.raises(ServiceError, match="multi-platform build needs BuildKit"):
        prepare(FakeAPI(set()), Service(name="s", image="m:1", build=multi))


def test_build_when_missing_or_forced(tmp_path: Any) -> None:
    build = BuildSpec(context=str(tmp_path))
    api = FakeAPI(set())
    assert prepare(api, Service(name="s", build=build)) == "id-p-s"
    assert api.calls == ["build p-s"]
    api = FakeAPI({"mine:2"})
    assert prepare(api, Service(name="s", image="mine:2", build=build)) == "id-mine:2"
    assert api.calls == []
    prepare(api, Service(name="s", image="mine:2", build=build, pull_policy="build"))
    assert api.calls == ["build mine:2"]


# --- connect ---------------------------------------------------------------------------------


def test_connect_without_an_engine_fails_clearly(monkeypatch: Any, tmp_path: Any) -> None:
    from compound.engine import client as engine

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    engine.reset_connection()
    with pytest.raises(EngineUnavailableError) as err:
        engine.connect()
    assert f"no Docker Engine answers at unix://{tmp_path}/absent.sock" in err.value.message
    assert err.value.hint == "start it: `make engine` or `dockerd &`; is DOCKER_HOST right?"


def test_connect_to_a_silent_engine_gives_up_quickly(monkeypatch: Any, tmp_path: Any) -> None:
    import socket

    from compound.engine import client as engine

    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(5)  # accepts connections, never answers
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        monkeypatch.setattr(engine, "PING_TIMEOUT", 0.5)
        engine.reset_connection()
        start = time.monotonic()
        with pytest.raises(EngineUnavailableError):
            engine.connect()
        assert time.monotonic() - start < 5
    engine.reset_connection()
