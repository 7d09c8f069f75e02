"""The pieces of ``--driver qemu`` and of the remote KVM probe that need no VM:
the QEMU command line, addresses, the boot wait's errors, stop's grace and
kill (against a real stand-in process), and the probe's answers."""

from __future__ import annotations

import base64
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compound.hosts import kvmprobe, qemu_host, records, ssh
from compound.hosts.errors import HostError
from compound.hosts.records import HostRecord


@pytest.fixture(autouse=True)
def hosts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPOUND_HOSTS_DIR", str(tmp_path / "hosts"))
    monkeypatch.delenv("COMPOUND_QEMU_HOST_SUBNET", raising=False)
    return tmp_path / "hosts"


def _record(name: str = "vm1", address: str = "10.213.0.2") -> HostRecord:
    r = HostRecord(name=name, driver="qemu", address=address)
    r.machine = {
        "base": "/cache/qemu-host/debian12-abc",
        "disk": f"/hosts/{name}/disk.qcow2",
        "tap": qemu_host.tap_name(name),
        "mac": qemu_host.mac_address(name),
        "memory_mib": 1536,
        "cpus": 2,
        "accel": "tcg",
    }
    return r


def test_the_kernel_command_line_carries_name_address_and_key() -> None:
    r = _record()
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO compound@vm1"
    line = qemu_host.kernel_command_line(r, key, "tcg")
    args = dict(a.split("=", 1) for a in line.split() if a.startswith("compound."))
    assert args["compound.name"] == "vm1"
    assert args["compound.ip"] == "10.213.0.2/24"
    assert args["compound.gw"] == "10.213.0.1"
    assert base64.b64decode(args["compound.ssh"]).decode() == key
    assert "root=/dev/vda" in line.split() and "tsc=reliable" in line.split()
    assert "tsc=reliable" not in qemu_host.kernel_command_line(r, key, "kvm").split()


def test_qemu_runs_daemonized_with_its_state_in_the_record_dir(hosts_dir: Path) -> None:
    r = _record()
    argv = qemu_host.qemu_argv(r, "ssh-ed25519 AAAA x")
    joined = " ".join(argv)
    d = hosts_dir / "vm1"
    assert "-daemonize" in argv
    assert argv[argv.index("-pidfile") + 1] == str(d / "qemu.pid")
    assert argv[argv.index("-qmp") + 1].startswith(f"unix:{d / 'qmp.sock'},server=on")
    assert argv[argv.index("-serial") + 1] == f"file:{d / 'console.log'}"
    assert argv[argv.index("-m") + 1] == "1536M" and argv[argv.index("-smp") + 1] == "2"
    assert argv[argv.index("-accel") + 1] == "tcg" and argv[argv.index("-cpu") + 1] == "max"
    assert f"ifname={qemu_host.tap_name('vm1')}" in joined
    assert "/cache/qemu-host/debian12-abc/vmlinuz" in argv
    assert "-sandbox" in argv


def test_tap_names_fit_the_kernel_limit_and_macs_are_local() -> None:
    long = "h" * 63
    assert len(qemu_host.tap_name(long)) <= 15
    assert qemu_host.tap_name("a") != qemu_host.tap_name("b")
    assert qemu_host.tap_name("a") == qemu_host.tap_name("a")
    mac = qemu_host.mac_address("a")
    assert mac.startswith("52:54:00:") and len(mac.split(":")) == 6


def test_addresses_skip_the_gateway_and_taken_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    assert qemu_host.allocate_address("x", set()) == "10.213.0.2"
    assert qemu_host.allocate_address("x", {"10.213.0.2", "10.213.0.3"}) == "10.213.0.4"
    monkeypatch.setenv("COMPOUND_QEMU_HOST_SUBNET", "10.9.9.0/30")
    net = ipaddress.IPv4Network("10.9.9.0/30")
    assert qemu_host.gateway() == "10.9.9.1"
    last = str(list(net.hosts())[-1])
    assert qemu_host.allocate_address("x", set()) == last
    with pytest.raises(HostError, match=r"no free address left in 10\.9\.9\.0/30") as err:
        qemu_host.allocate_address("x", {last})
    assert "host 'x'" in str(err.value)


def test_concurrent_creates_reserve_different_addresses() -> None:
    a, b = _record("a", address=""), _record("b", address="")
    a.address = b.address = None
    qemu_host._reserve_address(a)
    qemu_host._reserve_address(b)
    assert a.address == "10.213.0.2" and b.address == "10.213.0.3"
    assert records.load("a").address == "10.213.0.2"


def _console(r: HostRecord, text: str) -> None:
    records.host_dir(r.name).mkdir(parents=True, exist_ok=True)
    qemu_host.console_log(r).write_text(text)


def test_boot_timeout_says_what_did_not_answer_with_the_console_tail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = _record()
    _console(r, "[  1.0] Linux version 6.1\r\n[ 90.0] systemd[1]: Starting ssh.service\n")
    monkeypatch.setattr(qemu_host, "running", lambda rec: True)

    def unreachable(rec: HostRecord, script: str, **kw: object) -> str:
        raise HostError(rec.name, "cannot reach root@10.213.0.2:22: Connection refused")

    monkeypatch.setattr(ssh, "run", unreachable)
    with pytest.raises(HostError) as err:
        qemu_host.wait_booted(r, lambda m: None, timeout=0)
    msg = str(err.value)
    assert "host 'vm1': sshd did not answer within 0s" in msg
    assert "Starting ssh.service" in msg
    assert "COMPOUND_QEMU_HOST_BOOT_TIMEOUT" in (err.value.hint or "")


def test_a_qemu_that_dies_while_booting_is_reported_with_the_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = _record()
    _console(r, "Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    monkeypatch.setattr(qemu_host, "running", lambda rec: False)
    with pytest.raises(HostError, match="QEMU exited while booting") as err:
        qemu_host.wait_booted(r, lambda m: None, timeout=60)
    assert "Unable to mount root fs" in str(err.value)


def test_wrong_credentials_end_the_boot_wait_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _record()
    monkeypatch.setattr(qemu_host, "running", lambda rec: True)

    def refused(rec: HostRecord, script: str, **kw: object) -> str:
        raise ssh.classify_ssh_failure(rec, "root@10.213.0.2: Permission denied (publickey).")

    monkeypatch.setattr(ssh, "run", refused)
    t0 = time.monotonic()
    with pytest.raises(HostError, match="wrong credentials"):
        qemu_host.wait_booted(r, lambda m: None, timeout=60)
    assert time.monotonic() - t0 < 5


def test_the_boot_wait_reports_sshd_then_dockerd(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _record()
    monkeypatch.setattr(qemu_host, "running", lambda rec: True)
    calls: list[str] = []

    def fine(rec: HostRecord, script: str, **kw: object) -> str:
        calls.append(script)
        return "20.10.24\n"

    monkeypatch.setattr(ssh, "run", fine)
    said: list[str] = []
    qemu_host.wait_booted(r, said.append, timeout=60)
    assert calls[0] == "true" and "docker version" in calls[1]
    assert said[0].startswith("sshd answers") and said[1].startswith("dockerd answers")


def _stand_in(r: HostRecord) -> subprocess.Popen[bytes]:
    """A process that looks like the host's QEMU to ``pid()`` (its command
    line names the host) and ignores the power button (no QMP socket)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", f"compound-host-{r.name},x"]
    )
    records.host_dir(r.name).mkdir(parents=True, exist_ok=True)
    (records.host_dir(r.name) / "qemu.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while not qemu_host.running(r) and time.monotonic() < deadline:
        time.sleep(0.02)  # until the child has exec'd: its cmdline is ours before
    return proc


def test_stop_kills_a_guest_that_ignores_the_power_button_after_the_grace() -> None:
    r = _record()
    proc = _stand_in(r)
    try:
        assert qemu_host.running(r)
        t0 = time.monotonic()
        qemu_host.stop(r, grace=1.0)
        took = time.monotonic() - t0
        assert proc.wait(5) == -9
        assert 1.0 <= took < 10
        assert not qemu_host.running(r)
    finally:
        proc.kill()
        proc.wait()


def test_a_reused_pid_is_not_the_host_running() -> None:
    r = _record()
    records.host_dir(r.name).mkdir(parents=True, exist_ok=True)
    (records.host_dir(r.name) / "qemu.pid").write_text("1\n")  # init, not QEMU
    assert qemu_host.pid(r) is None and not qemu_host.running(r)
    qemu_host.stop(r, grace=0)  # nothing to stop: no error, init untouched


def test_create_refuses_too_little_memory() -> None:
    with pytest.raises(HostError, match="--memory 128M is too small"):
        qemu_host.create(_record(), lambda m: None, memory_mib=128)


# --- the remote KVM probe ------------------------------------------------------


def test_probe_lines_are_parsed() -> None:
    ok, why = kvmprobe.parse("kvm=1 2382\n")
    assert ok is True and "2.4 ms" in why
    ok, why = kvmprobe.parse("kvm=0 the vCPU refuses feature MSR 0x10a = 0x69")
    assert ok is False and "MSR 0x10a" in why
    ok, why = kvmprobe.parse("")
    assert ok is False and "nothing usable" in why


def test_no_dev_kvm_needs_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ssh(*a: object, **k: object) -> str:
        raise AssertionError("no probe should run")

    monkeypatch.setattr(ssh, "run", no_ssh)
    assert kvmprobe.probe(_record(), {"kvm_dev": "0"}) == (False, "no /dev/kvm")


def test_a_probe_that_cannot_run_leaves_kvm_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(rec: HostRecord, script: str, **kw: object) -> str:
        raise HostError(rec.name, "no answer within 35s")

    monkeypatch.setattr(ssh, "run", unreachable)
    monkeypatch.setattr(kvmprobe, "binary", lambda: Path(sys.executable))
    kvm, why = kvmprobe.probe(_record(), {"kvm_dev": "1", "boot_id": "other"})
    assert kvm is None and "probe not run" in why


def test_the_answer_is_kept_until_the_host_reboots() -> None:
    facts = {"kvm": False, "kvm_reason": "refused", "kvm_boot_id": "b1"}
    assert kvmprobe.cached(facts, {"boot_id": "b1"}) == (False, "refused")
    assert kvmprobe.cached(facts, {"boot_id": "b2"}) is None
    assert kvmprobe.cached({**facts, "kvm": None}, {"boot_id": "b1"}) is None


def test_the_probe_compiles_and_answers_on_this_machine() -> None:
    """The real binary, here: on a machine without a usable /dev/kvm it says
    why; with one, it ran guest code. Either way one well-formed line."""
    out = subprocess.run(
        [str(kvmprobe.binary()), "2"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    ok, why = kvmprobe.parse(out)
    assert out.startswith(("kvm=1 ", "kvm=0 ")) and why
    if not Path("/dev/kvm").exists():
        assert ok is False and "/dev/kvm" in why


def test_facts_probe_kvm_once_per_host_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    from compound.hosts import facts

    boot = {"id": "b1"}
    probes: list[str] = []

    def fake_run(rec: HostRecord, script: str, **kw: object) -> str:
        assert script == facts.FACTS_SCRIPT
        return f"cpus=4\nmem_kib=1024\nvirt=none\nkvm_dev=1\nboot_id={boot['id']}\n"

    def fake_probe(rec: HostRecord, raw: dict[str, str]) -> tuple[bool | None, str]:
        probes.append(raw["boot_id"])
        return True, "a vCPU set up as -cpu host ran guest code in 2.4 ms"

    monkeypatch.setattr(ssh, "run", fake_run)
    monkeypatch.setattr(kvmprobe, "probe", fake_probe)
    r = HostRecord(name="bm", driver="ssh", address="192.0.2.10")
    r.facts = facts.measure(r)
    assert r.facts["kvm"] is True and r.facts["class"] == "bare-metal"
    r.facts = facts.measure(r)
    assert probes == ["b1"]  # kept: same boot
    boot["id"] = "b2"
    r.facts = facts.measure(r)
    assert probes == ["b1", "b2"] and r.facts["kvm_boot_id"] == "b2"


def test_a_tcg_qemu_host_has_no_kvm_whatever_its_guest_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compound.hosts import facts

    monkeypatch.setattr(ssh, "run", lambda rec, script, **kw: "virt=qemu\nkvm_dev=1\nboot_id=x\n")
    r = _record()
    f = facts.measure(r)
    assert f["kvm"] is False and "TCG guest" in f["kvm_reason"] and f["virt"] == "qemu"
