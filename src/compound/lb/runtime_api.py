"""HAProxy's runtime API over its unix socket, and its answers parsed.

One command per connection (non-interactive mode: send a line, read to
EOF). Two views are merged into one ``ServerState`` per backend and server:
``show servers state`` (admin and operational state, address, port) and
``show stat`` (current sessions, last check result).
"""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from compound.errors import LoadBalancerError

# sun_path holds 108 bytes; longer paths are reached through /proc/self/fd.
_SUN_PATH_MAX = 100

# SRV_ADMF_* bits of srv_admin_state (HAProxy include/haproxy/server-t.h)
_ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40  # forced, inherited, config, resolution, hostname
_ADMIN_DRAIN = 0x08 | 0x10  # forced, inherited
# srv_op_state (SRV_ST_*)
_OP_STATES = {0: "down", 1: "starting", 2: "up", 3: "stopping"}
# last check results that mean "the server answered" (layer 4, 6 or 7)
_CHECK_OK = ("L4OK", "L6OK", "L7OK", "L7OKC")

Admin = Literal["ready", "drain", "maint"]


@dataclass(frozen=True)
class ServerState:
    backend: str  # HAProxy backend (one per published port)
    name: str
    address: str
    port: int
    admin: Admin  # what we asked for
    operational: str  # up | down | starting | stopping: what the checks say
    check: str  # last health check result: INI (none yet), L4OK, L4CON, ...
    sessions: int  # current sessions on this server

    @property
    def healthy(self) -> bool:
        """UP by a real check, not by HAProxy's assumption before the first one."""
        return self.operational == "up" and self.check in _CHECK_OK


def command(path: Path, line: str, timeout: float = 5.0) -> str:
    """Send one command, return the whole answer."""
    deadline = time.monotonic() + timeout
    try:
        with _connect(path, timeout) as sock:
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:  # refused, missing socket, timeout
        raise LoadBalancerError(
            f"the load balancer's admin socket {path} did not answer `{line}`: {exc}"
        ) from exc
    return b"".join(chunks).decode(errors="replace")


@contextlib.contextmanager
def _connect(path: Path, timeout: float) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    dir_fd: int | None = None
    try:
        target = str(path)
        if len(os.fsencode(target)) > _SUN_PATH_MAX:
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            target = f"/proc/self/fd/{dir_fd}/{path.name}"
        sock.connect(target)
        yield sock
    finally:
        sock.close()
        if dir_fd is not None:
            os.close(dir_fd)


def expect(path: Path, line: str, *ok: str, timeout: float = 5.0) -> None:
    """Run a command whose success is one of the answers ``ok`` ("" for
    commands that say nothing when they work)."""
    answer = command(path, line, timeout).strip()
    if answer not in ok:
        raise LoadBalancerError(f"HAProxy refused `{line}`: {answer or 'no answer'}")


def parse_servers_state(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``show servers state`` (format 1): (backend, server) -> column -> value."""
    header: list[str] = []
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == "1":
            continue
        if line.startswith("#"):
            header = line.lstrip("#").split()
            continue
        if not header:
            raise LoadBalancerError(f"unexpected `show servers state` answer: {line!r}")
        row = dict(zip(header, line.split(), strict=False))
        rows[(row["be_name"], row["srv_name"])] = row
    return rows


def parse_stat(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``show stat`` CSV, servers only: (backend, server) -> column -> value."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("# "):
        raise LoadBalancerError(f"unexpected `show stat` answer: {text[:80]!r}")
    reader = csv.DictReader([lines[0][2:], *lines[1:]])
    return {
        (row["pxname"], row["svname"]): row
        for row in reader
        if row.get("svname") not in ("FRONTEND", "BACKEND")
    }


def admin_state(bits: int) -> Admin:
    if bits & _ADMIN_MAINT:
        return "maint"
    if bits & _ADMIN_DRAIN:
        return "drain"
    return "ready"


def merge(
    state: dict[tuple[str, str], dict[str, str]], stat: dict[tuple[str, str], dict[str, str]]
) -> list[ServerState]:
    """One ServerState per server of ``show servers state``; counters from
    ``show stat`` (a server added between the two reads counts as idle)."""
    out = []
    for key, row in sorted(state.items()):
        st = stat.get(key, {})
        check = (st.get("check_status") or "").removeprefix("* ").strip() or "INI"
        out.append(
            ServerState(
                backend=key[0],
                name=key[1],
                address=row.get("srv_addr", ""),
                port=int(row.get("srv_port") or 0),
                admin=admin_state(int(row.get("srv_admin_state") or 0)),
                operational=_OP_STATES.get(int(row.get("srv_op_state") or 0), "down"),
                check=check,
                sessions=int(st.get("scur") or 0),
            )
        )
    return out


def servers(path: Path, timeout: float = 5.0) -> list[ServerState]:
    return merge(
        parse_servers_state(command(path, "show servers state", timeout)),
        parse_stat(command(path, "show stat", timeout)),
    )
