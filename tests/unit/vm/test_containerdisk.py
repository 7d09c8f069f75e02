"""A disk service's containerDisk payload: the disk as qcow2 at
/compound/disk, the run dir's files with the driver's owners and modes."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from compound.runtimes.vm.containerdisk import ENTRY_SCRIPT, _tar, disk_payload
from compound.runtimes.vm.launcher import QEMU_UID


def test_a_disk_travels_as_qcow2_with_its_run_dir_and_seed(tmp_path: Path) -> None:
    raw = tmp_path / "erp.raw"
    raw.write_bytes(b"\0" * (1 << 20))
    files = {"config.base": "# a legacy disk\n", "seed/meta-data": "instance-id: i\n"}
    payload = disk_payload(raw, "raw", "disk:0123abcd", files, tmp_path / "cache")
    ((path, qcow2),) = payload.files
    assert str(path) == "/compound/disk"
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(qcow2)], capture_output=True, text=True
    )
    assert '"format": "qcow2"' in info.stdout and '"backing-filename"' not in info.stdout
    # cached: the same disk id is not converted again
    mtime = qcow2.stat().st_mtime_ns
    again = disk_payload(raw, "raw", "disk:0123abcd", files, tmp_path / "cache")
    assert again.files[0][1].stat().st_mtime_ns == mtime
    buf = io.BytesIO()
    _tar(payload, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
        run = members["compound/run"]
        assert run.isdir() and run.mode == 0o2770 and run.gid == QEMU_UID
        assert members["compound/run/seed"].mode == 0o700
        assert members["compound/run/seed/meta-data"].mode == 0o600
        assert members["compound/disk"].mode == 0o444 and members["compound/disk"].uid == 0
        entry = tar.extractfile("usr/local/bin/compound-swarm-entry")
        assert entry is not None and entry.read().decode() == ENTRY_SCRIPT
    # the image VM's overlay step does not run for a disk (no base.qcow2)
    assert "[ -f /compound/base.qcow2 ]" in ENTRY_SCRIPT
