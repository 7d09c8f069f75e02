"""Parsing HAProxy 2.6's runtime API answers (recorded from Debian 12's
haproxy 2.6.12) and talking to a unix socket."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from compound.lb.runtime_api import (
    LoadBalancerError,
    ServerState,
    admin_state,
    command,
    expect,
    merge,
    parse_servers_state,
    parse_stat,
)

HERE = Path(__file__).parent
STATE = (HERE / "haproxy-2.6-show-servers-state.txt").read_text()
STAT = (HERE / "haproxy-2.6-show-stat.csv").read_text()


def test_recorded_answers_merge_into_one_state_per_server() -> None:
    servers = merge(parse_servers_state(STATE), parse_stat(STAT))
    assert servers == [
        ServerState("be_8000", "demo-web-1", "192.168.16.2", 8000, "ready", "up", "L4OK", 0),
        ServerState("be_8000", "demo-web-2", "192.168.16.3", 8000, "drain", "up", "L4OK", 0),
    ]
    assert all(s.healthy for s in servers)


def test_stat_skips_frontends_and_backends() -> None:
    assert set(parse_stat(STAT)) == {("be_8000", "demo-web-1"), ("be_8000", "demo-web-2")}
    assert parse_stat(STAT)[("be_8000", "demo-web-1")]["addr"] == "192.168.16.2:8000"


def test_up_before_the_first_check_is_not_healthy() -> None:
    # HAProxy assumes a server is up until a check says otherwise
    state = {("b", "s"): {"srv_addr": "10.0.0.1", "srv_port": "80", "srv_op_state": "2"}}
    stat = {("b", "s"): {"check_status": "INI", "scur": "3"}}
    (s,) = merge(state, stat)
    assert (s.operational, s.check, s.sessions, s.healthy) == ("up", "INI", 3, False)
    (running,) = merge(state, {("b", "s"): {"check_status": "* L4OK"}})  # check in progress
    assert running.check == "L4OK" and running.healthy
    (missing,) = merge(state, {})  # added between the two reads
    assert missing.check == "INI" and missing.sessions == 0


@pytest.mark.parametrize(
    ("bits", "admin"),
    [
        (0, "ready"),
        (0x08, "drain"),
        (0x10, "drain"),
        (0x01, "maint"),
        (0x09, "maint"),
        (0x20, "maint"),
    ],
)
def test_admin_state_bits(bits: int, admin: str) -> None:
    assert admin_state(bits) == admin


def test_garbage_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(LoadBalancerError):
        parse_stat("Unknown command\n")
    with pytest.raises(LoadBalancerError):
        parse_servers_state("1\nno header here\n")


@contextlib.contextmanager
def serve(path: Path, answers: dict[str, str]) -> Iterator[list[str]]:
    """A one-connection-per-command server like HAProxy's non-interactive
    mode; what it received. A path too long to bind is bound through a
    short symlink to its directory (the client still uses the long path)."""
    received: list[str] = []
    link = Path(f"/tmp/lbt-{os.getpid()}-{threading.get_ident()}")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if len(str(path)) < 100:
        srv.bind(str(path))
    else:
        link.symlink_to(path.parent)
        srv.bind(str(link / path.name))
    srv.listen()

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                line = conn.makefile().readline().strip()
                received.append(line)
                conn.sendall(answers.get(line, "Unknown command.\n").encode())

    threading.Thread(target=loop, daemon=True).start()
    try:
        yield received
    finally:
        srv.close()
        link.unlink(missing_ok=True)


@pytest.fixture
def long_dir(tmp_path: Path) -> Path:
    d = tmp_path / ("x" * 60) / ("y" * 60)
    d.mkdir(parents=True)
    return d


def test_command_and_expect(tmp_path: Path) -> None:
    sock = tmp_path / "admin.sock"
    with serve(sock, {"show version": "2.6.12\n", "set server b/s state drain": "\n"}) as received:
        assert command(sock, "show version") == "2.6.12\n"
        expect(sock, "set server b/s state drain", "")
        with pytest.raises(LoadBalancerError, match=r"refused `del server b/s`: Unknown command\."):
            expect(sock, "del server b/s", "Server deleted.")
    assert received == ["show version", "set server b/s state drain", "del server b/s"]


def test_a_socket_path_longer_than_sun_path_still_works(long_dir: Path) -> None:
    sock = long_dir / "admin.sock"
    assert len(str(sock)) > 108
    with serve(sock, {"show info": "Name: HAProxy\n"}):
        assert command(sock, "show info") == "Name: HAProxy\n"


def test_no_socket_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(LoadBalancerError) as err:
        command(tmp_path / "admin.sock", "show stat", timeout=1)
    assert str(tmp_path / "admin.sock") in err.value.message
    assert "`show stat`" in err.value.message
