"""VMDriver.start returns once the guest's entrypoint runs, or fails with the
console tail: the launcher container running is not yet the service running."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from compound.errors import ServiceError
from compound.runtimes.base import Instance, LogLine
from compound.runtimes.vm import driver as vmdriver
from compound.runtimes.vm.driver import LABEL_VM_RUN_DIR, VMDriver
from tests.unit.fakes import instance


class FakeLauncher:
    """The container driver as far as start() uses it: start writes the
    console the way a booting guest would, after ``delay`` seconds."""

    def __init__(self, console: Path, lines: list[str], delay: float, exit_code: int | None):
        self.console, self.lines, self.delay, self.exit_code = console, lines, delay, exit_code
        self.status = "created"

    def start(self, inst: Instance) -> None:
        self.status = "running"

        def boot() -> None:
            time.sleep(self.delay)
            self.console.write_text("".join(f"{x}\r\n" for x in self.lines))
            if self.exit_code is not None:
                self.status = "exited"

        threading.Thread(target=boot, daemon=True).start()

    def inspect(self, instance_id: str) -> Instance:
        code = self.exit_code if self.status == "exited" else None
        return instance("db", status=self.status, exit_code=code, runtime="vm")

    def logs(self, inst: Instance, **kw: Any) -> list[LogLine]:
        return [LogLine("db", inst.name, "qemu: cannot set up guest memory 'ram0'\n", "stderr")]


def _driver(tmp_path: Path, lines: list[str], delay: float = 0.1, exit_code: int | None = None):
    fake = FakeLauncher(tmp_path / "console.log", lines, delay, exit_code)
    drv = VMDriver(client=object(), containers=fake, cache_dir=tmp_path)  # type: ignore[arg-type]
    inst = dataclasses.replace(
        instance("db", runtime="vm", status="created"), labels={LABEL_VM_RUN_DIR: str(tmp_path)}
    )
    return drv, inst


def test_start_returns_once_the_entrypoint_started(tmp_path: Path) -> None:
    (tmp_path / "console.log").write_text("COMPOUND-START 0.5\n")  # a stale run: ignored
    drv, inst = _driver(tmp_path, ["Linux version 6.1", "COMPOUND-START 0.81"], delay=0.3)
    t0 = time.monotonic()
    drv.start(inst)
    assert time.monotonic() - t0 >= 0.3


def test_a_guest_error_is_a_service_error_with_the_console_tail(tmp_path: Path) -> None:
    drv, inst = _driver(tmp_path, ["booting", "COMPOUND-ERROR cannot mount the root disk"])
    with pytest.raises(ServiceError) as err:
        drv.start(inst)
    text = err.value.render()
    assert "cannot mount the root disk" in text
    assert "console: booting" in text
    assert "compound logs --console db" in text


def test_a_launcher_that_exits_before_the_entrypoint_is_an_error(tmp_path: Path) -> None:
    drv, inst = _driver(tmp_path, ["Kernel panic - not syncing"], exit_code=255)
    with pytest.raises(ServiceError) as err:
        drv.start(inst)
    text = err.value.render()
    assert "exited (exit 255) before the guest started its entrypoint" in text
    assert "Kernel panic" in text
    assert "launcher: qemu: cannot set up guest memory" in text


def test_a_boot_that_never_ends_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vmdriver, "BOOT_TIMEOUT", 0.3)
    drv, inst = _driver(tmp_path, ["still booting"])
    with pytest.raises(ServiceError, match="did not start its entrypoint in 0s"):
        drv.start(inst)
