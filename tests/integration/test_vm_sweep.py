"""`down` sweeps the run dirs (guest config, overlay: the environment is in
there) that launchers removed behind compound's back left, and only those:
a dir some launcher still names stays, whatever project it belongs to."""

from __future__ import annotations

import os
import uuid

import docker

from compound.runtimes.vm.driver import LABEL_VM_RUN_DIR, VMDriver
from compound.runtimes.vm.launcher import run_dir_for


def test_sweep_removes_abandoned_run_dirs_only(
    engine: docker.DockerClient, busybox_image: str
) -> None:
    project = f"sweep-{uuid.uuid4().hex[:8]}"
    abandoned = run_dir_for(f"{project}-db-1.{uuid.uuid4().hex[:8]}")
    # "<project>-dev" is another project whose dirs match "<project>-*"
    in_use = run_dir_for(f"{project}-dev-web-1.{uuid.uuid4().hex[:8]}")
    for d in (abandoned, in_use):
        (d / "state").mkdir(parents=True)
        (d / "config.base").write_text("COMPOUND_ENV='DB_PASSWORD=x'\n")
        os.utime(d, (0, 0))  # old: past any grace
    holder = engine.containers.create(
        busybox_image, ["true"], labels={LABEL_VM_RUN_DIR: str(in_use)}
    )
    try:
        removed = VMDriver(client=engine).sweep(project)
        assert removed == [str(abandoned)]
        assert not abandoned.exists() and (in_use / "config.base").exists()
    finally:
        holder.remove(force=True)
        VMDriver(client=engine).sweep(f"{project}-dev")
    assert not in_use.exists()
