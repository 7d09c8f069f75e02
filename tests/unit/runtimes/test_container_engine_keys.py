"""Compose keys the engine applies as written: corpus file → model → create request."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from compound.errors import NotSupportedError
from compound.runtimes.container_config import build_create_args
from compound.spec import LoadOptions, load_project, to_compose_dict
from compound.spec.model import EngineOptions, Project, Service

CORPUS = Path(__file__).parent.parent / "corpus" / "valid"
IMAGE_ID = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def engine_project() -> Project:
    opts = LoadOptions(
        files=["engine_keys.yaml"],
        cwd=str(CORPUS),
        project_name="engine_keys",
        environ=dict(os.environ),
    )
    return load_project(opts).project


def test_config_shows_every_key_resolved(engine_project: Project) -> None:
    web = to_compose_dict(engine_project)["services"]["web"]
    assert web["cpu_period"] == 100_000  # 100ms, in microseconds
    assert web["cpu_rt_runtime"] == 950_000
    assert web["blkio_config"]["device_read_bps"] == [{"path": "/dev/sda", "rate": 1 << 20}]
    assert web["gpus"] == [{"count": -1, "capabilities": ["gpu"]}]
    assert web["labels"] == {"team": "payments", "tier": "frontend"}  # `labels` wins
    assert web["links"] == ["db:database"]
    assert web["volumes_from"] == ["db:ro", "container:legacy-data"]
    for key in (
        "annotations",
        "cgroup",
        "cgroup_parent",
        "cpu_count",
        "cpu_percent",
        "device_cgroup_rules",
        "external_links",
        "isolation",
        "mem_swappiness",
        "oom_kill_disable",
        "storage_opt",
        "uts",
        "runtime",
        "mac_address",
    ):
        assert key in web, key


def _create(project: Project, api_version: str) -> dict[str, Any]:
    web = project.services["web"]
    return build_create_args(
        project,
        web,
        1,
        "h",
        IMAGE_ID,
        lambda name: f"{name}0123456789abcdef",
        api_version=api_version,
        environ={},
    ).config


def test_the_engine_gets_them(engine_project: Project) -> None:
    config = _create(engine_project, "1.43")
    host = config["HostConfig"]
    assert host["CpuPeriod"] == 100_000 and host["CpuQuota"] == 50_000
    assert host["CpuRealtimeRuntime"] == 950_000 and host["CpuRealtimePeriod"] == 1_000_000
    assert host["BlkioWeight"] == 300
    assert host["BlkioWeightDevice"] == [{"Path": "/dev/sda", "Weight": 400}]
    assert host["BlkioDeviceWriteIOps"] == [{"Path": "/dev/sda", "Rate": 120}]
    assert host["CgroupnsMode"] == "private" and host["CgroupParent"] == "compound.slice"
    assert host["DeviceCgroupRules"] == ["c 1:3 mr", "a 7:* rmw"]
    assert host["DeviceRequests"] == [{"Count": -1, "Capabilities": [["gpu"]]}]
    assert host["MemorySwappiness"] == 10 and host["OomKillDisable"] is True
    assert host["StorageOpt"] == {"size": "20G"} and host["UTSMode"] == "host"
    assert host["Runtime"] == "runc" and host["Isolation"] == "default"
    assert host["Annotations"] == {"org.example.owner": "payments"}
    # a service's first instance, by short ID (the engine's DNS resolves no full ID)
    assert host["VolumesFrom"] == ["db0123456789abcdef:ro", "legacy-data"]
    endpoint = config["NetworkingConfig"]["EndpointsConfig"]["engine_keys_default"]
    assert endpoint["Links"] == ["db0123456789:database", "legacy-cache:cache"]
    assert config["MacAddress"] == "02:42:ac:11:00:99"  # API < 1.44: in Config
    assert config["Labels"]["team"] == "payments"
    assert "/var/run/docker.sock:/var/run/docker.sock" in host["Binds"]  # use_api_socket


def test_annotations_name_the_engine_they_need(engine_project: Project) -> None:
    with pytest.raises(NotSupportedError, match=r"API 1\.43 \(Docker Engine 24\.0\).*1\.41"):
        _create(engine_project, "1.41")


def test_services_without_these_keys_keep_their_hash() -> None:
    # upgrading compound must not recreate every running service: this is the hash
    # compound gave this service before EngineOptions existed
    plain = Service(name="web", image="x")
    assert plain.config_hash() == (
        "df25182e6413b8a25db34a4c1cd5781bd9ed5a255b85a11bd0362c0ff56150ef"
    )
    with_key = Service(name="web", image="x", engine=EngineOptions(runtime="crun"))
    assert plain.config_hash() != with_key.config_hash()
    # attach is about what `up` shows, not what runs: never a reason to recreate
    assert Service(name="web", image="x", attach=False).config_hash() == plain.config_hash()


def test_attach_false_is_kept(engine_project: Project) -> None:
    assert engine_project.services["db"].attach is False
    assert to_compose_dict(engine_project)["services"]["db"]["attach"] is False
    assert engine_project.services["web"].attach is True
