"""A Docker SDK client for a recorded host's engine.

A remote engine is reached through the host's SSH control master, which
forwards a local unix socket to the remote /var/run/docker.sock: every API
call then costs what a local one does plus the round trip (docker-py's own
``ssh://`` transport would start an ssh process per connection, and needs
paramiko).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from compound.engine import Client, connect_to
from compound.errors import EngineUnavailableError

from . import records, ssh
from .errors import HostError
from .records import HostRecord

REMOTE_SOCKET = "/var/run/docker.sock"


def _alive(sock: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(str(sock))
        return True
    except OSError:
        return False
    finally:
        s.close()


def forwarded_socket(record: HostRecord) -> Path:
    """A local unix socket that reaches the host's engine (made on demand)."""
    sock = records.host_dir(record.name) / "docker.sock"
    if _alive(sock):
        return sock
    sock.unlink(missing_ok=True)
    ssh.run(record, "test -S " + REMOTE_SOCKET, timeout=30)  # starts the control master
    proc = subprocess.run(
        ["ssh", "-O", "forward", "-L", f"{sock}:{REMOTE_SOCKET}", records.ssh_alias(record.name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0 or not _alive(sock):
        raise HostError(
            record.name, f"cannot forward its Docker socket over SSH: {proc.stderr.strip()}"
        )
    return sock


def cli_host(record: HostRecord) -> str:
    """``docker --host`` for the host's engine: through the socket its SSH
    control master forwards (what ``--context`` would do, without starting
    an ssh and a remote ``docker system dial-stdio`` per command)."""
    if record.address is None:
        return record.docker_host
    return f"unix://{forwarded_socket(record)}"


def client(record: HostRecord, timeout: int = 120) -> Client:
    try:
        if record.address is None:
            return connect_to(record.docker_host, timeout)
        return connect_to(f"unix://{forwarded_socket(record)}", timeout)
    except EngineUnavailableError as exc:
        raise HostError(record.name, f"cannot reach its Docker Engine: {exc}") from exc
