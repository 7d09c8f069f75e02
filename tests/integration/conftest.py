"""Fixtures for tests against the real Docker Engine.

Nothing here skips: without an engine every test using these fixtures fails
with the EngineUnavailableError message, so a CI run cannot pass vacuously.

    engine          the session's docker.DockerClient (compound.engine.connect)
    busybox_image   "local/busybox:latest", imported from /bin/busybox if missing
    project_name    a unique project name; everything labelled with it is
                    removed afterwards (containers, networks, volumes)
    make_project    build a Project model for project_name from Service models
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from compound.engine import connect
from compound.errors import EngineUnavailableError
from compound.runtimes.base import LABEL_PROJECT
from compound.spec.model import FileObject, Network, Project, Service, Volume

BUSYBOX = "local/busybox:latest"


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    try:
        return connect()
    except EngineUnavailableError as exc:
        pytest.fail(exc.render(), pytrace=False)


@pytest.fixture(scope="session")
def busybox_image(engine: docker.DockerClient) -> str:
    """local/busybox:latest, as images/build.sh makes it; imported here from the
    host's busybox-static when nobody has built it yet."""
    try:
        engine.api.inspect_image(BUSYBOX)  # type: ignore[no-untyped-call]
    except docker.errors.ImageNotFound:
        _import_busybox(engine, BUSYBOX)
    return BUSYBOX


def _import_busybox(engine: docker.DockerClient, ref: str) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.fail(
            f"{ref} does not exist and there is no busybox to build it from: "
            "run `make images` (or apt-get install busybox-static)",
            pytrace=False,
        )
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    repo, tag = ref.split(":")
    engine.api.import_image_from_data(  # type: ignore[no-untyped-call]
        buf.getvalue(), repository=repo, tag=tag, changes=['CMD ["sh"]']
    )


def remove_project(engine: docker.DockerClient, name: str) -> None:
    """Remove every container, network and volume labelled with project ``name``."""
    flt = {"label": [f"{LABEL_PROJECT}={name}"]}
    for c in engine.api.containers(all=True, filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_container(c["Id"], v=True, force=True)
    for n in engine.api.networks(filters=flt):
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_network(n["Id"])
    for v in engine.api.volumes(filters=flt).get("Volumes") or []:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_volume(v["Name"], force=True)


@pytest.fixture
def project_name(engine: docker.DockerClient) -> Iterator[str]:
    name = f"ctest-{uuid.uuid4().hex[:10]}"
    yield name
    remove_project(engine, name)


MakeProject = Callable[..., Project]


@pytest.fixture
def make_project(project_name: str, tmp_path: Path) -> MakeProject:
    """make_project(*services, networks=("default",), volumes=(), secrets={}, configs={})

    Networks and volumes are keys (engine name ``{project}_{key}``) or models;
    a project always has a ``default`` network unless ``networks=()``.
    """

    def make(
        *services: Service,
        networks: tuple[str | Network, ...] = ("default",),
        volumes: tuple[str | Volume, ...] = (),
        secrets: dict[str, FileObject] | None = None,
        configs: dict[str, FileObject] | None = None,
        **extra: Any,
    ) -> Project:
        nets = [
            n if isinstance(n, Network) else Network(key=n, name=f"{project_name}_{n}")
            for n in networks
        ]
        vols = [
            v if isinstance(v, Volume) else Volume(key=v, name=f"{project_name}_{v}")
            for v in volumes
        ]
        return Project(
            name=project_name,
            working_dir=str(tmp_path),
            files=(str(tmp_path / "compose.yaml"),),
            services={s.name: s for s in services},
            networks={n.key: n for n in nets},
            volumes={v.key: v for v in vols},
            secrets=secrets or {},
            configs=configs or {},
            **extra,
        )

    return make
