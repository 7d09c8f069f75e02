"""The one create path (engine/containers.py): what it sends the engine, in
which order, and that a failure leaves nothing behind; and that the VM
driver's launcher goes through it as the container driver's request,
rewritten. The engine is a recording fake here; the conformance suite and
the integration tests run the same path against the real one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from compound.engine import containers
from compound.engine.request import ContainerRequest, NetworkAttachment
from compound.errors import EngineError, ServiceError
from compound.runtimes.container import ContainerDriver
from compound.runtimes.vm.driver import VMDriver
from compound.spec.model import Network, Project, Service, ServiceNetwork


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return cls("boom", response=response, explanation=explanation)


class FakeAPI:
    """The calls of docker-py's APIClient that the create path makes."""

    api_version = "1.43"

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail or {}

    def _call(self, name: str, detail: Any) -> None:
        self.calls.append((name, detail))
        if name in self.fail:
            raise self.fail[name]

    def create_container_from_config(
        self, config: dict[str, Any], name: str | None = None, platform: str | None = None
    ) -> dict[str, str]:
        self._call("create", (config, name, platform))
        return {"Id": "c0ffee"}

    def connect_container_to_network(self, cid: str, net: str, **kw: Any) -> None:
        self._call("connect", (net, kw["aliases"], kw["ipv4_address"]))

    def put_archive(self, cid: str, path: str, data: bytes) -> bool:
        self._call("put_archive", (path, data))
        return True

    def start(self, cid: str) -> None:
        self._call("start", cid)

    def remove_container(self, cid: str, v: bool = False, force: bool = False) -> None:
        self._call("remove", (cid, v, force))


class FakeClient:
    def __init__(self, api: FakeAPI) -> None:
        self.api = api


def names(api: FakeAPI) -> list[str]:
    return [name for name, _ in api.calls]


REQUEST = ContainerRequest(
    config={"Image": "img"},
    name="p-web-1",
    platform="linux/amd64",
    networks=(NetworkAttachment("p_back", ("web",), ipv4_address="10.0.0.5"),),
    archive=b"tar",
)


def test_create_connects_writes_files_and_starts_in_order() -> None:
    api = FakeAPI()
    cid = containers.create(FakeClient(api), REQUEST, start=True)  # type: ignore[arg-type]
    assert cid == "c0ffee"
    assert api.calls == [
        ("create", ({"Image": "img"}, "p-web-1", "linux/amd64")),
        ("connect", ("p_back", ["web"], "10.0.0.5")),
        ("put_archive", ("/", b"tar")),
        ("start", "c0ffee"),
    ]


def test_a_failed_connect_removes_the_container_and_names_the_service() -> None:
    api = FakeAPI(fail={"connect": api_error(500, "network p_back not found")})
    with pytest.raises(ServiceError) as err:
        containers.create(FakeClient(api), REQUEST, service="web")  # type: ignore[arg-type]
    assert "network p_back does not exist" in err.value.render()
    assert names(api) == ["create", "connect", "remove"]
    assert api.calls[-1] == ("remove", ("c0ffee", True, True))


def test_a_refused_create_says_why_and_leaves_nothing_to_remove() -> None:
    api = FakeAPI(
        fail={"create": api_error(500, "Bind for 0.0.0.0:8080 failed: port is already allocated")}
    )
    with pytest.raises(ServiceError, match="port 8080 is already in use"):
        containers.create(FakeClient(api), REQUEST, service="web")  # type: ignore[arg-type]
    assert names(api) == ["create"]


def test_without_a_service_a_failure_is_an_engine_error_naming_the_kind() -> None:
    api = FakeAPI(fail={"start": api_error(500, "no such file")})
    with pytest.raises(EngineError, match="start load balancer p-web-1: no such file"):
        containers.create(
            FakeClient(api),  # type: ignore[arg-type]
            replace(REQUEST, archive=None),
            kind="load balancer",
            start=True,
        )
    assert names(api) == ["create", "connect", "start", "remove"]


def _project() -> tuple[Project, Service]:
    service = Service(
        name="web",
        image="img:1",
        networks={"front": ServiceNetwork(), "back": ServiceNetwork(aliases=("api",))},
        platform="linux/arm64",
    )
    project = Project(
        name="p",
        working_dir="/w",
        files=("/w/compose.yaml",),
        services={"web": service},
        networks={
            "front": Network(key="front", name="p_front"),
            "back": Network(key="back", name="p_back"),
        },
    )
    return project, service


def test_the_vm_launcher_is_the_container_request_rewritten(tmp_path: Path) -> None:
    api = FakeAPI()
    client: Any = FakeClient(api)
    project, service = _project()
    args = ContainerDriver(client).request(project, service, 1, "hash", "sha256:img")
    vm = VMDriver(client, cache_dir=tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    launcher_config = {"Image": "local/compound-launcher:x", "Labels": {"l": "v"}}
    inst = vm._create_launcher(
        project,
        service,
        1,
        "hash",
        args,
        launcher_config,
        run_dir,
        image_id="sha256:img",
        oneoff=False,
        details={},
    )
    # the launcher's own body, the host's platform, the container's name and
    # extra networks with the same aliases
    assert args.platform == "linux/arm64"
    assert api.calls == [
        ("create", (launcher_config, args.name, None)),
        ("connect", ("p_front", ["web"], None)),
    ]
    assert (inst.id, inst.runtime, inst.name) == ("c0ffee", "vm", args.name)


def test_a_failed_launcher_create_leaves_no_container_and_no_run_dir(tmp_path: Path) -> None:
    api = FakeAPI(fail={"connect": api_error(500, "network p_back not found")})
    client: Any = FakeClient(api)
    project, service = _project()
    args = ContainerDriver(client).request(project, service, 1, "hash", "sha256:img")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(ServiceError, match="network p_back does not exist"):
        VMDriver(client, cache_dir=tmp_path)._create_launcher(
            project,
            service,
            1,
            "hash",
            args,
            {"Image": "launcher", "Labels": {}},
            run_dir,
            image_id="sha256:img",
            oneoff=False,
            details={},
        )
    assert names(api) == ["create", "connect", "remove"]
    assert not run_dir.exists()
