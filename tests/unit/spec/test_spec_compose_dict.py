"""to_compose_dict: the shape of `compound config`, and that it loads back the same."""

from __future__ import annotations

from pathlib import Path

import yaml

from compound.spec import to_compose_dict
from compound.spec.model import Project

from .spec_helpers import Loader, write

FILE = """
name: shop
services:
  web:
    image: nginx
    command: 'echo "cost $$5"'
    environment: [PRICE=$$9, HOME_DIR]
    ports: ["8080:80", "9000-9001:9000-9001/udp"]
    volumes: ["./html:/html:ro", "data:/data"]
    healthcheck: {test: curl localhost, interval: 90s, timeout: 1500ms}
    stop_grace_period: 1h
    mem_limit: 1g
    depends_on: [db]
    secrets: [token]
    configs: [{source: conf, target: app.conf}]
  db:
    image: postgres
    profiles: [db]
  tool:
    image: busybox
    profiles: [tools]
volumes:
  data: {}
secrets:
  token: {environment: TOKEN}
configs:
  conf: {content: "listen $${PORT}"}
x-meta: {version: 1}
"""


def reload(load: Loader, project_dir: Path, project: Project, **kw: object) -> Project:
    write(project_dir, "resolved.yml", yaml.safe_dump(to_compose_dict(project), sort_keys=False))
    again: Project = load(files=["resolved.yml"], **kw).project
    return again


def test_shape_is_like_docker_compose_config(load: Loader) -> None:
    project = load(FILE, env={"TOKEN": "t0p-s3cret"}, profiles=["db"]).project
    out = to_compose_dict(project)
    assert list(out) == ["name", "services", "networks", "volumes", "secrets", "configs", "x-meta"]
    assert list(out["services"]) == ["db", "web"]  # sorted; disabled `tool` left out
    web = out["services"]["web"]
    assert web["command"] == ["echo", "cost $$5"]  # `$` escaped so it survives a reload
    assert web["environment"] == {"PRICE": "$$9", "HOME_DIR": None}
    assert web["ports"][0] == {
        "mode": "ingress",
        "target": 80,
        "published": "8080",
        "protocol": "tcp",
    }
    assert len(web["ports"]) == 3
    assert web["volumes"][0]["type"] == "bind" and web["volumes"][0]["read_only"] is True
    assert web["healthcheck"] == {
        "test": ["CMD-SHELL", "curl localhost"],
        "interval": "1m30s",
        "timeout": "1.5s",
    }
    assert web["stop_grace_period"] == "1h0m0s"
    assert web["mem_limit"] == "1073741824"
    assert web["networks"] == {"default": None}
    assert web["depends_on"] == {
        "db": {"condition": "service_started", "restart": False, "required": True}
    }
    assert web["configs"] == [{"source": "conf", "target": "/app.conf"}]
    assert out["networks"] == {"default": {"name": "shop_default"}}
    assert out["volumes"] == {"data": {"name": "shop_data"}}
    assert out["secrets"] == {"token": {"name": "shop_token", "environment": "TOKEN"}}
    assert out["configs"] == {"conf": {"name": "shop_conf", "content": "listen $${PORT}"}}
    assert "t0p-s3cret" not in yaml.safe_dump(out)


def test_round_trip(load: Loader, project_dir: Path) -> None:
    env = {"TOKEN": "t0p-s3cret"}
    project = load(FILE, env=env, profiles=["db"]).project
    again = reload(load, project_dir, project, env=env, profiles=["db"])
    skip = {"files", "environment", "disabled_services"}
    assert again.model_dump(exclude=skip) == project.model_dump(exclude=skip)
    assert to_compose_dict(again) == to_compose_dict(project)


def test_defaults_are_left_out(load: Loader) -> None:
    web = to_compose_dict(load("services:\n  web: {image: x}\n").project)["services"]["web"]
    assert web == {"image": "x", "networks": {"default": None}}


def test_empty_command_is_kept(load: Loader, project_dir: Path) -> None:
    project = load("services:\n  web: {image: x, entrypoint: [], command: ''}\n").project
    web = to_compose_dict(project)["services"]["web"]
    assert web["entrypoint"] == [] and web["command"] == []
    assert reload(load, project_dir, project).services["web"].entrypoint == ()


def test_lb_mode_round_trips(load: Loader, project_dir: Path) -> None:
    project = load("services:\n  web: {image: x, x-compound: {lb: {mode: tcp}}}\n").project
    assert to_compose_dict(project)["services"]["web"]["x-compound"] == {"lb": {"mode": "tcp"}}
    assert reload(load, project_dir, project).services["web"].x_compound.lb.mode == "tcp"
