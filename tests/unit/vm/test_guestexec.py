"""exec in a guest: the argument building shared by both runtimes' exec, and
the agent reached through a command's stdin/stdout (a fake agent process
stands in for `docker exec -i LAUNCHER socat - UNIX-CONNECT:qga.sock`)."""

from __future__ import annotations

import json
import sys
import time

import pytest

from compound.errors import NotSupportedError, VMError
from compound.runtimes.vm.agentlink import CommandLink
from compound.runtimes.vm.guestexec import (
    LABEL_VM_AGENT,
    LABEL_VM_DISK,
    compound_exec_args,
    legacy_argv,
    run_in_guest,
)
from compound.runtimes.vm.qemu import GuestAgent

# A qemu-guest-agent on stdin/stdout, as socat relays the real one: JSON
# commands back to back, 0xFF before a sync, one reply per line. guest-exec
# "runs" by echoing its path and args on stdout, "err" on stderr, exit 3.
FAKE_AGENT = r"""
import base64, json, os, sys
dec, buf = json.JSONDecoder(), ""
execs = {}
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    buf += chunk.replace(b"\xff", b"").decode()
    while buf.strip():
        try:
            msg, end = dec.raw_decode(buf.lstrip())
        except ValueError:
            break
        buf = buf.lstrip()[end:]
        cmd, args = msg["execute"], msg.get("arguments", {})
        if cmd == "guest-sync-delimited":
            out = b"\xff" + json.dumps({"return": args["id"]}).encode()
        elif cmd == "guest-exec":
            execs[7] = json.dumps([args["path"], *args["arg"]]).encode()
            out = json.dumps({"return": {"pid": 7}}).encode()
        else:
            out = json.dumps({"return": {
                "exited": True, "exitcode": 3,
                "out-data": base64.b64encode(execs[args["pid"]]).decode(),
                "err-data": base64.b64encode(b"err").decode(),
            }}).encode()
        os.write(1, out + b"\n")
"""


def _agent() -> GuestAgent:
    return GuestAgent(
        link=CommandLink([sys.executable, "-c", FAKE_AGENT], "node-1:vmweb.1"), timeout=10
    )


def test_an_image_vm_runs_commands_through_compound_exec_with_user_workdir_env() -> None:
    assert compound_exec_args(["id", "-u"]) == ["", "", "--", "id", "-u"]
    assert compound_exec_args(["sh"], "nobody", "/tmp", {"A": "1 2"}) == [
        "nobody",
        "/tmp",
        "A=1 2",
        "--",
        "sh",
    ]


def test_a_legacy_guest_gets_user_workdir_env_through_its_shell() -> None:
    assert legacy_argv(["cat", "/etc/hostname"]) == ["cat", "/etc/hostname"]
    assert legacy_argv(["echo", "a b"], "app", "/srv", {"X": "it's"}) == [
        "/bin/su",
        "-s",
        "/bin/sh",
        "app",
        "-c",
        "cd /srv && X='it'\"'\"'s' echo 'a b'",
    ]
    assert legacy_argv(["pwd"], workdir="/srv") == ["/bin/sh", "-c", "cd /srv && pwd"]


def test_exec_through_a_command_link_keeps_code_stdout_and_stderr_apart() -> None:
    code, out, err = run_in_guest(
        _agent(), {}, "vmweb", ["cat", "/www"], user="nobody", env={"A": "1"}
    )
    assert code == 3 and err == b"err"
    assert json.loads(out) == ["/sbin/compound-exec", "nobody", "", "A=1", "--", "cat", "/www"]
    labels = {LABEL_VM_DISK: "/srv/erp.qcow2", LABEL_VM_AGENT: "yes"}
    code, out, _ = run_in_guest(_agent(), labels, "erp", ["hostname"])
    assert code == 3 and json.loads(out) == ["hostname"]


def test_a_disk_without_an_agent_is_refused_before_anything_runs() -> None:
    link = CommandLink(["false"], "node-1:erp.1")
    with pytest.raises(NotSupportedError, match="without qemu-guest-agent"):
        run_in_guest(GuestAgent(link=link), {LABEL_VM_DISK: "/d", LABEL_VM_AGENT: "no"}, "erp", [])


def test_a_command_that_fails_is_reported_at_once_with_its_error() -> None:
    link = CommandLink(
        ["sh", "-c", "echo 'Error response from daemon: No such container: 0123' >&2; exit 1"],
        "node-1:vmweb.1",
    )
    t0 = time.monotonic()
    with pytest.raises(VMError, match=r"node-1:vmweb.1: sh exited 1: .*No such container"):
        GuestAgent(link=link, timeout=10).connect()
    assert time.monotonic() - t0 < 5  # not retried until the deadline


def test_a_busy_agent_on_the_node_says_so() -> None:
    link = CommandLink(["sh", "-c", "exit 75"], "node-1:vmweb.1", busy_exit=75)
    with pytest.raises(VMError) as err:
        GuestAgent(link=link, timeout=10).connect()
    assert "busy with another command" in err.value.render()
    assert "try again" in err.value.render()


def test_a_relay_that_cannot_start_is_reported_at_once() -> None:
    link = CommandLink(["/nonexistent/docker", "exec"], "node-1:vmweb.1")
    t0 = time.monotonic()
    with pytest.raises(VMError, match=r"cannot run /nonexistent/docker"):
        GuestAgent(link=link, timeout=10).connect()
    assert time.monotonic() - t0 < 2
