"""Fixtures that give each test its own project on the real engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from compound.engine import connect
from compound.runtimes.base import LABEL_PROJECT
from tests.integration.apps import App


def _purge(client: docker.DockerClient, name: str) -> None:
    flt = {"label": f"{LABEL_PROJECT}={name}"}
    for c in client.containers.list(all=True, filters=flt):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters=flt):
        n.remove()
    for v in client.volumes.list(filters=flt):
        v.remove(force=True)


def _make_app(tmp_path: Path, tag: str) -> Iterator[App]:
    client = connect()
    name = f"t{tag}{uuid.uuid4().hex[:8]}"
    app = App(name, tmp_path / name, client)
    try:
        yield app
    finally:
        _purge(client, name)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    yield from _make_app(tmp_path, "a")


@pytest.fixture
def other_app(tmp_path: Path) -> Iterator[App]:
    yield from _make_app(tmp_path, "b")
