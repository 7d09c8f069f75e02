"""Endpoint options, extra hosts with several addresses and bind.recursive:
corpus file → create request, and the engine versions they need."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compound.errors import NotSupportedError
from compound.runtimes.container_config import build_create_args
from compound.spec import LoadOptions, LoadResult, load_project, to_compose_dict
from compound.spec.model import ServiceNetwork

CORPUS = Path(__file__).parent.parent / "corpus" / "valid"
IMAGE_ID = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def loaded() -> LoadResult:
    opts = LoadOptions(
        files=["endpoint_and_mount_keys.yaml"],
        cwd=str(CORPUS),
        project_name="ep",
        environ=dict(os.environ),
    )
    return load_project(opts)


def test_config_shows_them(loaded: LoadResult) -> None:
    web = to_compose_dict(loaded.project)["services"]["web"]
    assert web["extra_hosts"]["db.internal"] == ["10.0.0.5", "10.0.0.6"]
    assert web["networks"]["front"]["link_local_ips"] == ["169.254.10.10"]
    assert web["volumes"][0]["bind"]["recursive"] == "disabled"
    # labels on a secret: Swarm's, said so with the location
    assert any("secrets.token.labels" in w and "Swarm" in w for w in loaded.warnings)


def test_the_engine_gets_them(loaded: LoadResult) -> None:
    project = loaded.project
    config = build_create_args(
        project, project.services["web"], 1, "h", IMAGE_ID, lambda n: n, api_version="1.41"
    ).config
    host = config["HostConfig"]
    assert host["ExtraHosts"] == ["db.internal:10.0.0.5", "db.internal:10.0.0.6", "cache:10.0.0.7"]
    endpoint = config["NetworkingConfig"]["EndpointsConfig"]["ep_front"]
    assert endpoint["IPAMConfig"]["LinkLocalIPs"] == ["169.254.10.10"]
    assert "com.docker.network.endpoint.sysctls" in endpoint["DriverOpts"]
    (mount,) = [m for m in host["Mounts"] if m["Target"] == "/srv"]
    assert mount["BindOptions"] == {"NonRecursive": True}


def test_newer_keys_name_the_engine_they_need(loaded: LoadResult) -> None:
    project = loaded.project
    web = project.services["web"]
    named = web.model_copy(
        update={"networks": {"front": ServiceNetwork(interface_name="eth-front")}}
    )
    with pytest.raises(NotSupportedError, match=r"interface_name needs .*API 1\.48"):
        build_create_args(project, named, 1, "h", IMAGE_ID, lambda n: n, api_version="1.41")
    config = build_create_args(
        project, named, 1, "h", IMAGE_ID, lambda n: n, api_version="1.48"
    ).config
    endpoint = config["NetworkingConfig"]["EndpointsConfig"]["ep_front"]
    assert endpoint["DriverOpts"] == {"com.docker.network.endpoint.ifname": "eth-front"}
