"""swarm exec's relay into a VM task: the shell line run in the launcher
(a stand-in socat records who runs it and how), and the command around it."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from compound.hosts.vm_exec import RELAY, relay_argv
from compound.runtimes.vm.launcher import QEMU_UID


def test_the_relay_connects_as_the_sockets_owner_holding_the_agents_lock() -> None:
    # not pytest's tmp_path: its parents are root's alone, and socat runs as QEMU's uid
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        _relay_in(Path(tmp))


def _relay_in(tmp_path: Path) -> None:
    sock = tmp_path / "qga.sock"
    sock.write_text("")
    os.chown(sock, QEMU_UID, QEMU_UID)  # QEMU's, as in the launcher
    tools = tmp_path / "bin"
    tools.mkdir()
    socat = tools / "socat"
    # records its uid/gid and argv, and whether the lock is held meanwhile
    socat.write_text(
        "#!/bin/sh\n"
        'echo "$(id -u):$(id -g) $*"\n'
        'flock -n "${2#UNIX-CONNECT:}.lock" true && echo unlocked || echo locked\n'
    )
    socat.chmod(0o755)
    proc = subprocess.run(
        ["sh", "-c", RELAY, "sh", str(sock)],
        capture_output=True,
        text=True,
        env={"PATH": f"{tools}:/usr/bin:/bin:/usr/sbin:/sbin"},
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{QEMU_UID}:{QEMU_UID} - UNIX-CONNECT:{sock}",
        "locked",
    ]


def test_the_relay_runs_through_the_nodes_engine_with_stdin_open() -> None:
    engine = "unix:///hosts/n2/docker.sock"
    argv = relay_argv(engine, "0123abcd")
    assert argv[:6] == ["docker", "--host", engine, "exec", "-i", "0123abcd"]
    assert argv[6:] == ["sh", "-c", RELAY, "sh", "/compound/run/qga.sock"]
