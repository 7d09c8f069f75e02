"""One busybox project served by one `compound serve` for the API tests."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.integration.conftest import remove_project
from tests.integration.serve.server import ServeProcess

COMPOSE = """
name: {name}
services:
  web:
    image: local/busybox:latest
    command: ["sh", "-c", "echo web-ready-$$HOSTNAME; exec httpd -f -p 8000"]
    deploy:
      replicas: 2
      update_config: {{parallelism: 1, order: start-first, monitor: 1s}}
    volumes: [data:/data]
    stop_grace_period: 1s   # httpd as PID 1 ignores SIGTERM
  slow:
    image: local/busybox:latest
    command: ["sleep", "100000"]   # PID 1 ignores SIGTERM: a stop takes its grace period
    stop_grace_period: 2s
volumes:
  data: {{}}
"""


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient, busybox_image: str
) -> Iterator[ServeProcess]:
    name = f"serve-api-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("serve")
    compose = root / "compose.yaml"
    compose.write_text(textwrap.dedent(COMPOSE.format(name=name)))
    server = ServeProcess(compose, root / "state").start()
    server.project = name
    try:
        server.act(f"/api/v1/projects/{name}/up", {"wait": True})
        yield server
    finally:
        server.stop()
        remove_project(engine, name)
