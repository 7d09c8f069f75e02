"""--consistent with a VM writing to a named volume (one real guest, TCG).

The backup syncs the guest through its agent and stops its vCPUs over QMP
while the volume is read, then continues it: observed on the QMP monitor and
on the volume (the log stops growing) from inside the pause, and afterwards
the guest still runs and answers `compound exec`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from compound.runtimes.base import LABEL_PROJECT, Instance
from compound.runtimes.vm.launcher import run_dir_for
from compound.runtimes.vm.qemu import qmp
from compound.volumes import ops
from compound.volumes.archive import read_archive
from tests.integration.apps import App
from tests.integration.test_volumes import WRITER, _mountpoint, _session, _status, _until

pytestmark = pytest.mark.integration

BUSYBOX = "local/busybox:latest"


@pytest.mark.timeout(300)
def test_consistent_backup_syncs_and_stops_a_vm_then_continues_it(app: App, tmp_path: Path) -> None:
    app.write(f"""
        services:
          vmw:
            image: {BUSYBOX}
            command: ["sh", "-c", "{WRITER}"]
            volumes: ["ledger:/data"]
            x-compound: {{runtime: vm}}
        volumes:
          ledger: {{}}
        """)
    try:
        app.ok("up", "-d")
        log = _mountpoint(app) / "log"
        _until("the VM writes to the volume", lambda: log.exists() and log.stat().st_size > 0, 120)
        (launcher,) = app.client.containers.list(
            filters={"label": [f"{LABEL_PROJECT}={app.name}", "io.compound.runtime=vm"]}
        )
        monitor = Path(launcher.labels["io.compound.vm.run-dir"]) / "qmp.sock"
        seen: dict[str, object] = {}

        def look(paused: list[Instance]) -> None:
            seen["paused"] = [i.name for i in paused]
            seen["qmp"] = qmp(monitor, "query-status")["status"]
            seen["launcher"] = _status(app.client, launcher.name)
            size = log.stat().st_size
            time.sleep(0.5)  # a stopped guest does not write
            seen["grew"] = log.stat().st_size != size

        archive = tmp_path / "ledger.tar.zst"
        result = ops.backup(_session(app), "ledger", archive, consistent=True, on_paused=look)
        assert seen == {
            "paused": [launcher.name],
            "qmp": "paused",
            "launcher": "running",
            "grew": False,
        }
        assert qmp(monitor, "query-status")["status"] == "running"
        entries = {e.path: e for e in read_archive(archive).entries}
        assert entries["log"].size > 0 and result.files == 1

        # the guest runs on: it answers exec and keeps writing
        code, out = app.run("exec", "-T", "vmw", "echo", "still-alive")
        assert code == 0 and "still-alive" in out, out
        size = log.stat().st_size
        _until("the VM writes again", lambda: log.stat().st_size > size, 30)
    finally:
        app.run("down", "-v")
        for d in run_dir_for("x").parent.glob(f"{app.name}-*"):
            shutil.rmtree(d, ignore_errors=True)
