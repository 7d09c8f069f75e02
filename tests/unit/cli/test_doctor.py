"""``compound doctor``: report shape, exit codes, JSON, and per-check failure
isolation, with fake checks; plus one real run with --quick."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from compound.advisor import HostFacts
from compound.cli import doctor, doctor_cmd
from compound.cli.doctor import CheckDef, DoctorEnv, Verdict
from compound.errors import EngineUnavailableError, UsageError, VMError
from compound.runtimes.vm import fingerprint as vm_checks

FACTS = HostFacts(
    kvm_usable=None, host_is_vm=True, os="linux", arch="x86_64", cpus=2.0, memory=4 << 30
)


def _app(with_globals: bool = False) -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    if with_globals:
        from compound.cli import main as cli_main

        app.callback()(cli_main._global)
    else:

        @app.callback()
        def _cb() -> None:
            pass

    doctor_cmd.register(app)
    return app


def _invoke(*args: str, with_globals: bool = False) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(_app(with_globals), list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _const(v: Verdict) -> Any:
    return lambda env: v


@pytest.fixture
def fake_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "host_facts", lambda: FACTS)
    monkeypatch.setattr(vm_checks, "host_is_vm", lambda: FACTS.host_is_vm)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch, fake_facts: None) -> list[CheckDef]:
    defs = [
        CheckDef("alpha", _const(doctor.ok("all good"))),
        CheckDef("beta", _const(doctor.warn("so-so", "do this"))),
        CheckDef("gamma", _const(doctor.skip("not probed (--quick)"))),
    ]
    monkeypatch.setattr(doctor, "CHECKS", tuple(defs))
    return defs


def test_table_lists_every_check_with_status_and_hints(checks: list[CheckDef]) -> None:
    code, out, _ = _invoke("doctor")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["CHECK", "STATUS", "DETAIL"]
    assert any(line.split()[:3] == ["alpha", "ok", "all"] for line in lines)
    assert any(line.split()[:3] == ["beta", "warn", "so-so"] for line in lines)
    assert "→ do this" in out
    assert "1 warn, 1 skip" in out
    assert "Traceback" not in out


def test_a_failed_check_makes_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, checks: list[CheckDef]
) -> None:
    monkeypatch.setattr(
        doctor,
        "CHECKS",
        (*checks, CheckDef("delta", _const(doctor.fail("broken", "fix it")))),
    )
    code, out, _ = _invoke("doctor")
    assert code == 1
    assert "delta" in out and "broken" in out and "→ fix it" in out
    assert "1 fail, 1 warn, 1 skip" in out


def test_json_shape(monkeypatch: pytest.MonkeyPatch, checks: list[CheckDef]) -> None:
    code, out, _ = _invoke("doctor", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"checks", "host_facts"}
    assert data["checks"] == [
        {"name": "alpha", "status": "ok", "detail": "all good", "hint": None},
        {"name": "beta", "status": "warn", "detail": "so-so", "hint": "do this"},
        {"name": "gamma", "status": "skip", "detail": "not probed (--quick)", "hint": None},
    ]
    assert data["host_facts"] == FACTS.to_json()


def test_json_exit_code_1_on_failure(
    monkeypatch: pytest.MonkeyPatch, checks: list[CheckDef]
) -> None:
    monkeypatch.setattr(doctor, "CHECKS", (CheckDef("x", _const(doctor.fail("no"))),))
    code, out, _ = _invoke("doctor", "--json")
    assert code == 1
    assert json.loads(out)["checks"][0]["status"] == "fail"


def _raises(exc: BaseException) -> Any:
    def run(env: DoctorEnv) -> Verdict:
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "detail", "hint"),
    [
        (
            EngineUnavailableError("no Docker Engine answers at unix:///x", hint="start it"),
            "no Docker Engine answers at unix:///x",
            "start it",
        ),
        (VMError("kernel package is not known to apt", hint="apt-get update"), "apt", "apt-get"),
        (FileNotFoundError(2, "No such file", "qemu"), "FileNotFoundError", None),
        (subprocess.TimeoutExpired(["qemu-system-x86_64", "--version"], 10), "within 10s", None),
        (subprocess.CalledProcessError(3, ["x"]), "CalledProcessError", None),
        (KeyError("boom"), "unexpected KeyError", "bug"),
    ],
)
def test_an_exception_is_that_checks_failure_only(
    monkeypatch: pytest.MonkeyPatch,
    fake_facts: None,
    exc: BaseException,
    detail: str,
    hint: str | None,
) -> None:
    monkeypatch.setattr(
        doctor,
        "CHECKS",
        (
            CheckDef("first", _raises(exc)),
            CheckDef("second", _const(doctor.ok("still ran"))),
        ),
    )
    code, out, _ = _invoke("doctor", "--json")
    assert code == 1
    first, second = json.loads(out)["checks"]
    assert first["status"] == "fail" and detail in first["detail"]
    if hint is None:
        assert first["hint"] is None
    else:
        assert hint in first["hint"]
    assert second == {"name": "second", "status": "ok", "detail": "still ran", "hint": None}


def test_quick_and_prepare_do_not_combine(checks: list[CheckDef]) -> None:
    from rich.console import Console

    c = Console(file=None)
    with pytest.raises(UsageError):
        doctor.doctor(quick=True, prepare=True, json_out=False, out=c, err=c)


# -- individual checks, with the host faked ---------------------------------------------


def test_qemu_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    v = vm_checks.check_qemu(DoctorEnv())
    assert v.status == "fail" and v.hint == "apt-get install qemu-system-x86"
    v = vm_checks.check_qemu_img(DoctorEnv())
    assert v.status == "warn" and "qemu-utils" in (v.hint or "")


def test_mkfs_version_parsing() -> None:
    assert vm_checks._mkfs_version("mke2fs 1.47.0 (5-Feb-2023)") == (1, 47, 0)
    assert vm_checks._mkfs_version("mke2fs 1.42.9 (28-Dec-2013)") == (1, 42, 9)
    assert vm_checks._mkfs_version("mke2fs 1.46 (1-Jan-2021)") == (1, 46)
    assert vm_checks._mkfs_version("garbage") is None


def test_old_mkfs_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/sbin/mkfs.ext4")
    monkeypatch.setattr(vm_checks, "tool", lambda argv: "mke2fs 1.42.9 (28-Dec-2013)")
    v = vm_checks.check_mkfs(DoctorEnv())
    assert v.status == "fail" and "1.42.9" in v.detail and "-d" in v.detail


def test_quick_kernel_and_initramfs_report_the_cache(tmp_path: Path) -> None:
    env = DoctorEnv(quick=True, cache_dir=tmp_path)
    assert vm_checks.check_kernel(env) == Verdict(
        "skip", "not probed (--quick); in the cache: none"
    )
    debian = tmp_path / "kernel" / "linux-image-x_1.v4"
    debian.mkdir(parents=True)
    (debian / "manifest.json").write_text('{"release": "6.1.0-9-amd64", "version": "6.1.9-1"}')
    (debian / "vmlinux").write_bytes(b"x" * 4096)
    ours = tmp_path / "kernel" / "compound-6.1.176-0123456789abcdef"
    ours.mkdir()
    (ours / "manifest.json").write_text('{"version": "6.1.176-1", "key": "0123456789abcdef"}')
    (ours / "vmlinux").write_bytes(b"x" * 8192)
    (tmp_path / "kernel" / ".build-fedcba9876543210").mkdir()
    (tmp_path / "initramfs").mkdir()
    (tmp_path / "initramfs" / "initramfs-abc.cpio").write_bytes(b"x" * 2048)
    detail = vm_checks.check_kernel(env).detail
    assert "compound 6.1.176 compound-01234567 (8 KiB)" in detail
    assert "debian 6.1.0-9-amd64 (6.1.9-1, 4 KiB)" in detail
    assert "compound build unfinished" in detail and ".build-fedcba9876543210" in detail
    v = vm_checks.check_initramfs(env)
    assert v.status == "skip" and "initramfs-abc.cpio (2 KiB)" in v.detail


def test_kvm_probe_result_and_host_facts(
    monkeypatch: pytest.MonkeyPatch, fake_facts: None, tmp_path: Path
) -> None:
    from compound.runtimes.vm.accel import AccelProbe

    calls: list[object] = []

    def probe(kernel: object, initramfs: object, cache: object) -> AccelProbe:
        calls.append(cache)
        return AccelProbe("kvm", "a KVM guest booted in 0.40s", 0.4)

    monkeypatch.setattr(vm_checks, "probe_accel", probe)
    env = DoctorEnv(cache_dir=tmp_path)
    env.kernel, env.initramfs = object(), object()  # type: ignore[assignment]
    v = vm_checks.check_kvm(env)
    if Path("/dev/kvm").exists():
        assert v.status == "ok" and "kvm" in v.detail
    assert calls == [tmp_path]
    assert doctor.facts_json(env)["kvm_usable"] is True
    # --quick: no probe, the last cached answer is shown
    (tmp_path / "accel.json").write_text(
        json.dumps({"k": {"accel": "tcg", "reason": "no boot", "kvm_boot_seconds": None}})
    )
    v = vm_checks.check_kvm(DoctorEnv(quick=True, cache_dir=tmp_path))
    assert "not probed (--quick)" in v.detail and "tcg: no boot" in v.detail
    assert len(calls) == 1


def test_launcher_not_built_is_a_warning_with_the_prepare_hint() -> None:
    import docker.errors

    class Images:
        def get(self, tag: str) -> object:
            raise docker.errors.ImageNotFound(tag)

        def list(self, name: str) -> list[object]:
            return []

    class Client:
        images = Images()

    v = vm_checks.check_launcher(DoctorEnv(client=Client()))  # type: ignore[arg-type]
    assert v.status == "warn" and "not built" in v.detail
    assert "--prepare" in (v.hint or "")
    v = vm_checks.check_launcher(DoctorEnv())
    assert v.status == "skip"


def test_caches_sizes_and_counts(tmp_path: Path) -> None:
    root = tmp_path / "vm"
    (root / "disks").mkdir(parents=True)
    with (root / "disks" / "a.ext4").open("wb") as f:
        f.truncate(64 << 20)  # sparse
    (root / "disks" / ".a.ext4.lock").touch()
    (root / "run" / "p-web-1").mkdir(parents=True)
    v = vm_checks.check_caches(DoctorEnv(cache_dir=root))
    assert v.status in ("ok", "warn")
    assert "disks/" in v.detail and "1 entry" in v.detail and "64.0 MiB sparse" in v.detail
    assert "run/ " in v.detail and "1 instance" in v.detail
    empty = vm_checks.check_caches(DoctorEnv(cache_dir=tmp_path / "none" / "vm"))
    assert empty.status == "ok" and "empty" in empty.detail


# -- for real -------------------------------------------------------------------------


def test_quick_for_real_against_the_engine() -> None:
    """Every check runs on this host; --quick keeps it within seconds and boots nothing."""
    code, out, _ = _invoke("--progress", "plain", "doctor", "--quick", "--json", with_globals=True)
    data = json.loads(out)
    by_name = {c["name"]: c for c in data["checks"]}
    assert list(by_name) == [c.name for c in doctor.CHECKS]
    assert by_name["docker engine"]["status"] == "ok", by_name["docker engine"]
    assert "API" in by_name["docker engine"]["detail"]
    for name in ("guest kernel", "initramfs"):
        assert by_name[name]["status"] == "skip" and "not probed" in by_name[name]["detail"]
    assert "not probed" in by_name["kvm"]["detail"]
    assert code == (1 if any(c["status"] == "fail" for c in data["checks"]) else 0)
    assert set(data["host_facts"]) >= {"host_is_vm", "cpus", "memory"}
    # and as a table
    code2, table, _ = _invoke("doctor", "--quick", with_globals=True)
    assert code2 == code and "docker engine" in table and "Traceback" not in table


def test_doctor_runs_every_drivers_fingerprint_checks_in_runtime_order() -> None:
    from compound.runtimes.container import ContainerDriver
    from compound.runtimes.vm.driver import VMDriver

    names = [c.name for c in doctor.CHECKS]
    drivers = [c.name for c in (*ContainerDriver.host_checks(), *VMDriver.host_checks())]
    assert names[: len(drivers)] == drivers
    assert names[0] == "docker engine" and "kvm" in drivers and "launcher image" in drivers


def test_a_fingerprint_runs_the_drivers_checks_quickly_and_says_whether_it_is_usable() -> None:
    from compound.runtimes.vm.driver import VMDriver

    fp = VMDriver().fingerprint(quick=True)
    assert fp.runtime == "vm"
    assert [c.name for c in fp.checks] == [c.name for c in VMDriver.host_checks()]
    by_name = {c.name: c for c in fp.checks}
    assert by_name["guest kernel"].status == "skip"  # --quick boots and downloads nothing
    assert fp.usable == all(c.status != "fail" for c in fp.checks)
    assert "kvm_usable" not in fp.facts  # not probed
