"""The QEMU command line builder (no QEMU is run here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compound.runtimes.vm.qemu import (
    PortForward,
    QemuSpec,
    Share,
    build_command,
    host_tsc_khz,
    kernel_cmdline,
)


def spec(**kw: object) -> QemuSpec:
    base: dict[str, object] = dict(
        kernel=Path("/k/vmlinux"),
        initrd=Path("/k/initramfs"),
        root_disk=Path("/r/root.qcow2"),
        config=Path("/r/config"),
        runtime_dir=Path("/r"),
    )
    base.update(kw)
    return QemuSpec(**base)  # type: ignore[arg-type]


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_microvm_tcg_defaults() -> None:
    argv = build_command(spec(tsc_khz=2_300_000))
    assert argv[0] == "qemu-system-x86_64"
    assert {"-nodefaults", "-no-user-config", "-no-reboot", "-nographic"} <= set(argv)
    assert opt(argv, "-machine")[0].startswith("microvm,")
    assert opt(argv, "-accel") == ["tcg,tb-size=32"]
    assert opt(argv, "-cpu") == ["max"]
    assert opt(argv, "-kernel") == ["/k/vmlinux"]
    assert opt(argv, "-fw_cfg") == ["name=opt/compound/config,file=/r/config"]
    devices = opt(argv, "-device")
    assert "virtio-blk-device,drive=root" in devices
    assert all("-pci" not in d for d in devices)
    assert any(d.endswith("name=org.qemu.guest_agent.0") for d in devices)
    qmp = next(c for c in opt(argv, "-chardev") if c.startswith("socket,id=qmp"))
    assert "server=on,wait=off" in qmp
    append = opt(argv, "-append")[0]
    assert "tsc_early_khz=2300000" in append and "console=ttyS0" in append
    drive = opt(argv, "-drive")[0]
    assert "format=qcow2" in drive and "file=/r/root.qcow2" in drive


def test_kvm_uses_host_cpu_and_no_tsc_hints() -> None:
    argv = build_command(spec(accel="kvm", tsc_khz=2_300_000))
    assert opt(argv, "-accel") == ["kvm"]
    assert opt(argv, "-cpu") == ["host"]
    assert "tsc_early_khz" not in opt(argv, "-append")[0]


def test_q35_uses_pci_devices_and_tells_init() -> None:
    argv = build_command(spec(machine="q35"))
    assert opt(argv, "-machine") == ["q35,memory-backend=ram0"]
    assert "virtio-blk-pci,drive=root" in opt(argv, "-device")
    assert "compound.pci=1" in kernel_cmdline(spec(machine="q35"))


def test_forwards_shares_and_comma_escaping() -> None:
    argv = build_command(
        spec(
            runtime_dir=Path("/r,un"),
            forwards=(PortForward(8080, 80), PortForward(53, 53, "udp", "0.0.0.0")),
            shares=(Share("vol0", Path("/data,1")), Share("vol1", Path("/ro"), read_only=True)),
        )
    )
    netdev = opt(argv, "-netdev")[0]
    assert netdev.startswith("user,id=net0,")
    assert "hostfwd=tcp::8080-:80" in netdev and "hostfwd=udp:0.0.0.0:53-:53" in netdev
    fsdevs = opt(argv, "-fsdev")
    assert fsdevs[0] == "local,id=fs0,path=/data,,1,security_model=passthrough"
    assert fsdevs[1].endswith(",readonly=on")
    assert "virtio-9p-device,fsdev=fs1,mount_tag=vol1" in opt(argv, "-device")
    assert any("path=/r,,un/qmp.sock" in c for c in opt(argv, "-chardev"))


def test_no_network() -> None:
    assert "-netdev" not in build_command(spec(network="none"))


def test_host_tsc_khz_parsing() -> None:
    nominal = "model name\t: Intel(R) Xeon(R) CPU @ 2.30GHz\ncpu MHz\t: 1200.0\n"
    assert host_tsc_khz(nominal) == 2_300_000
    plain = "model name\t: Intel(R) Xeon(R) Processor\ncpu MHz\t\t: 2300.000\n"
    assert host_tsc_khz(plain) == 2_300_000
    assert host_tsc_khz("nothing here") is None


def test_guest_ram_is_a_private_memfd() -> None:
    argv = build_command(spec())
    assert any(
        o.startswith("memory-backend-memfd,id=ram0,") and o.endswith(",share=off")
        for o in opt(argv, "-object")
    )
    assert opt(argv, "-machine")[0].endswith(",memory-backend=ram0")


def test_one_guest_agent_client_at_a_time_across_callers(tmp_path: Path) -> None:
    import time as _time

    from compound.errors import VMError
    from compound.runtimes.vm.qemu import GuestAgent

    sock = tmp_path / "qga.sock"
    first = GuestAgent(sock)
    first._lock_agent(_time.monotonic() + 1)
    second = GuestAgent(sock)
    with pytest.raises(VMError, match="busy with another command"):
        second._lock_agent(_time.monotonic() + 0.2)
    first.close()
    second._lock_agent(_time.monotonic() + 1)  # free once the first is done
    second.close()


def test_a_guest_agent_that_does_not_answer_in_time_is_a_vm_error(tmp_path: Path) -> None:
    import socket as _socket
    import time as _time

    from compound.errors import VMError
    from compound.runtimes.vm.qemu import GuestAgent

    ours, theirs = _socket.socketpair()
    agent = GuestAgent(tmp_path / "qga.sock")
    agent._sock = ours
    with pytest.raises(VMError, match="no reply"):
        agent._read(_time.monotonic() + 0.2)
    theirs.sendall(b"{not json\n")
    with pytest.raises(VMError, match="unreadable reply"):
        agent._read(_time.monotonic() + 1)
    agent.close()
    theirs.close()
