"""One Docker context per host, written with Docker's own CLI so the result
is exactly what ``docker context create`` makes (``docker --context NAME``)."""

from __future__ import annotations

import subprocess

from .errors import HostError
from .records import HostRecord


def _docker(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["docker", *args], capture_output=True, text=True, check=False, timeout=30
        )
    except FileNotFoundError:
        raise HostError(
            "-", "the docker CLI is not installed", hint="apt-get install docker.io"
        ) from None


def create(record: HostRecord) -> None:
    remove(record.name)
    proc = _docker(
        [
            "context",
            "create",
            record.context,
            "--description",
            f"compound host ({record.driver})",
            "--docker",
            f"host={record.docker_host}",
        ]
    )
    if proc.returncode != 0:
        raise HostError(record.name, f"docker context create failed: {proc.stderr.strip()}")


def remove(name: str) -> None:
    _docker(["context", "rm", "--force", name])
