"""A VM honours the Compose security keys inside its guest, `exec -w` stays
in the guest's root, and its launcher is the confined container CIS asks
for: checked from inside the guest and with `docker inspect` (issue 11)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from compound.runtimes.vm.launcher import QEMU_UID, run_dir_for

from .apps import App


@pytest.fixture
def hardened(app: App) -> Iterator[App]:
    app.write("""
        services:
          locked:
            image: local/busybox:latest
            command: ["sh", "-c", "while :; do sleep 1; done"]
            cap_drop: [ALL]
            cap_add: [NET_BIND_SERVICE]
            security_opt: ["no-new-privileges:true"]
            pids_limit: 40
            ulimits: {nofile: {soft: 1000, hard: 2000}}
            healthcheck:
              test: ["CMD-SHELL", "test -d /proc/1"]
              interval: 2s
              retries: 2
            x-compound: {runtime: vm}
    """)
    app.ok("up", "-d", "--wait")
    yield app
    app.run("down", "-v")
    for d in run_dir_for("x").parent.glob(f"{app.name}-*"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(300)
def test_security_keys_apply_in_the_guest_and_the_launcher_is_confined(hardened: App) -> None:
    app = hardened
    status = app.ok(
        "exec", "locked", "sh", "-c", "grep -E 'CapEff|CapBnd|NoNewPrivs' /proc/self/status"
    )
    fields = dict(line.split(":\t") for line in status.strip().splitlines())
    # NET_BIND_SERVICE (bit 10) alone, in the bounding set too: nothing to regain
    assert fields == {"CapEff": "0000000000000400", "CapBnd": "0000000000000400", "NoNewPrivs": "1"}
    assert app.ok("exec", "locked", "sh", "-c", "ulimit -n; ulimit -Hn").split() == ["1000", "2000"]
    _, out = app.run(
        "exec",
        "locked",
        "sh",
        "-c",
        "i=0; while [ $i -lt 60 ]; do (sleep 2) & i=$((i+1)); done; wait",
    )
    assert "can't fork" in out  # pids_limit: 40 for every process of the service
    # exec -w cannot leave the guest's root: `..` at its / stays there
    assert app.ok("exec", "-w", "/../../..", "locked", "pwd").strip() == "/"
    listing = app.ok("exec", "-w", "/../..", "locked", "ls", "/").split()
    assert "newroot" not in listing and "bin" in listing

    # the launcher, as Docker sees it
    (launcher,) = app.client.containers.list(filters={"label": f"io.compound.project={app.name}"})
    host = launcher.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert set(host["CapAdd"]) == {"SETUID", "SETGID", "NET_ADMIN", "NET_BIND_SERVICE"}
    assert host["ReadonlyRootfs"] is True and not host["Privileged"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["PidsLimit"] > 0 and host["Memory"] > 0 and host["NanoCpus"] > 0
    assert launcher.attrs["State"]["Health"]["Status"] == "healthy"  # the guest's check
    qemu = [
        p
        for p in launcher.top(ps_args="-o pid,uid,args")["Processes"]
        if p[2].startswith("qemu-system")
    ]
    assert qemu and qemu[0][1] == str(QEMU_UID)
    assert "-sandbox" in qemu[0][2]
    ps = json.loads(app.ok("ps", "--json"))
    assert ps[0]["health"] == "healthy"
