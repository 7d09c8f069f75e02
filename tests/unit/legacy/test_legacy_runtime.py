"""The legacy-disk pieces of the VM runtime that need no guest."""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath

import pytest

from compound.errors import NotSupportedError, ServiceError
from compound.runtimes.vm.diskread import DiskFacts
from compound.runtimes.vm.guestexec import LABEL_VM_AGENT, LABEL_VM_DISK, run_in_guest
from compound.runtimes.vm.legacy import (
    LegacyPlan,
    launcher_conf_extra,
    qemu_argv,
    wait_ready,
)
from compound.runtimes.vm.qemu import GuestAgent


def _plan(firmware: str = "bios", agent: bool = True) -> LegacyPlan:
    return LegacyPlan(
        Path("/srv/erp.qcow2"),
        DiskFacts("qcow2", firmware, "Debian 12", agent),
        PurePosixPath("/var/lib/compound/root.qcow2"),
        None,
    )


def test_bios_disk_boots_a_pc_from_its_overlay_with_console_qmp_and_agent() -> None:
    argv = qemu_argv("p-erp-1", "tcg", 1024, 2, _plan())
    joined = " ".join(argv)
    assert argv[argv.index("-machine") + 1] == "pc"
    assert "file=/var/lib/compound/root.qcow2,format=qcow2" in joined
    assert "path=/dev/stdout,logfile=/compound/run/console.log" in joined
    assert "qmp.sock" in joined and "name=org.qemu.guest_agent.0" in joined
    assert "pflash" not in joined and "-kernel" not in argv


def test_uefi_disk_gets_ovmf() -> None:
    joined = " ".join(qemu_argv("p-erp-1", "tcg", 1024, 1, _plan("uefi")))
    assert "-machine q35" in joined
    assert "OVMF_CODE_4M.fd" in joined and "OVMF_VARS.fd" in joined


def test_launcher_conf_names_the_format_overlay_and_firmware() -> None:
    assert launcher_conf_extra(_plan()) == {
        "COMPOUND_LEGACY": "qcow2",
        "COMPOUND_OVERLAY": "/var/lib/compound/root.qcow2",
        "COMPOUND_FIRMWARE": "bios",
        "COMPOUND_DEVICE_SUFFIX": "pci",
    }


def test_a_guest_that_never_answers_is_an_error_not_a_hang(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as err:
        wait_ready(
            tmp_path,
            True,
            lambda: True,
            lambda what: ServiceError("erp", what + "\n  console: SYSLINUX 6.04"),
            timeout=1.5,
        )
    assert time.monotonic() - t0 < 10
    assert "did not boot in 2s (QEMU did not start)" in err.value.render()
    assert "SYSLINUX" in err.value.render()


def test_a_launcher_that_exits_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as err:
        wait_ready(tmp_path, False, lambda: False, lambda what: ServiceError("erp", what))
    assert "exited before the guest booted" in err.value.render()


def test_exec_without_the_guest_agent_says_why(tmp_path: Path) -> None:
    with pytest.raises(NotSupportedError) as err:
        run_in_guest(
            GuestAgent(tmp_path / "qga.sock"),
            {LABEL_VM_DISK: "/srv/erp.qcow2", LABEL_VM_AGENT: "no"},
            "erp",
            ["true"],
        )
    text = err.value.render()
    assert "without qemu-guest-agent" in text and "TCP/HTTP check" in text


def test_a_persistent_disk_service_is_updated_stop_first() -> None:
    from compound.planner.update import update_policy
    from compound.spec.model import Service, UpdateConfig, VMOptions, XCompound

    def svc(persistent: bool, **kw: object) -> Service:
        vm = VMOptions(disk="/srv/erp.qcow2", persistent=persistent)
        return Service(name="erp", x_compound=XCompound(runtime="vm", vm=vm), **kw)  # type: ignore[arg-type]

    assert update_policy(svc(False), 1).start_first  # an overlay per instance
    assert not update_policy(svc(True), 1).start_first
    declared = svc(True).model_copy(
        update={
            "deploy": svc(True).deploy.model_copy(
                update={"update_config": UpdateConfig(order="start-first")}
            )
        }
    )
    policy = update_policy(declared, 1)
    assert not policy.start_first and "one VM at a time" in (policy.note or "")


def test_a_disk_that_never_answers_fails_start_with_its_console_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through VMDriver.start, as `up` calls it: the launcher runs, QEMU's
    QMP never answers (here: no QEMU at all), and the error carries what the
    guest wrote on its serial console instead of hanging."""
    import dataclasses

    from compound.runtimes.vm import legacy
    from compound.runtimes.vm.driver import LABEL_VM_RUN_DIR, VMDriver
    from tests.unit.fakes import instance
    from tests.unit.vm.test_vm_start import FakeLauncher

    monkeypatch.setattr(legacy, "LEGACY_BOOT_TIMEOUT", 1.5)
    lines = [
        "SeaBIOS (version 1.16.2)",
        "Booting from Hard Disk...",
        "Boot failed: not a bootable disk",
    ]
    fake = FakeLauncher(tmp_path / "console.log", lines, 0.1, None)
    drv = VMDriver(client=object(), containers=fake, cache_dir=tmp_path)  # type: ignore[arg-type]
    inst = dataclasses.replace(
        instance("erp", runtime="vm", status="created"),
        labels={
            LABEL_VM_RUN_DIR: str(tmp_path),
            legacy.LABEL_VM_DISK: "/srv/erp.qcow2",
            legacy.LABEL_VM_AGENT: "yes",
        },
    )
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as err:
        drv.start(inst)
    assert time.monotonic() - t0 < 15
    text = err.value.render()
    assert "the legacy guest did not boot in 2s (QEMU did not start)" in text
    assert "console: Boot failed: not a bootable disk" in text
    assert "compound logs --console erp" in text
