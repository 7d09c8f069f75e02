"""Every bad-input message of `compound lift` (and of reading a disk to boot),
on small real disk files: qemu-img, qemu-storage-daemon, sfdisk, blkid and
mount read them as they would a real disk. Nothing is written on error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from compound.runtimes.vm.diskread import DiskError, disk_facts
from compound.runtimes.vm.lift import LiftError, lift

MiB = 1 << 20


class FakeAPI:
    def __init__(self, running: list[dict[str, Any]]) -> None:
        self.running = running
        self.queries: list[dict[str, Any]] = []

    def containers(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self.queries.append(filters)
        return self.running


class FakeClient:
    """Only the disk-in-use query; an import would fail the test."""

    def __init__(self, running: list[dict[str, Any]] | None = None) -> None:
        self.api = FakeAPI(running or [])


def _lift_error(tmp_path: Path, disk: Path, client: FakeClient | None = None) -> str:
    out = tmp_path / "out" / "erp.yaml"
    with pytest.raises((LiftError, DiskError)) as err:
        lift(client or FakeClient(), disk, "erp:lifted", out)  # type: ignore[arg-type]
    assert not out.parent.exists() or not list(out.parent.iterdir())  # nothing written
    return err.value.render()


def _mbr(path: Path, size: int, parts: list[tuple[int, int, str]]) -> None:
    """A raw disk with an MBR: (start MiB, size MiB, type) per partition."""
    with open(path, "wb") as f:
        f.truncate(size)
    table = "".join(f"start={s * 2048}, size={n * 2048}, type={t}\n" for s, n, t in parts)
    subprocess.run(["sfdisk", "-q", str(path)], input=table.encode(), check=True)


def _ext4_at(disk: Path, offset_mib: int, size_mib: int, tree: Path) -> None:
    """An ext4 filesystem made from ``tree`` at an offset inside ``disk`` (no mount)."""
    subprocess.run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-d",
            str(tree),
            "-E",
            f"offset={offset_mib * MiB}",
            str(disk),
            f"{size_mib * 1024}",
        ],
        check=True,
    )


def _os_tree(tmp_path: Path, name: str, version: str) -> Path:
    tree = tmp_path / f"tree-{name}-{version}"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text(f'NAME="{name}"\nVERSION_ID="{version}"\nID=x\n')
    (tree / "bin").mkdir()
    return tree


def test_no_such_file(tmp_path: Path) -> None:
    assert "no such file" in _lift_error(tmp_path, tmp_path / "missing.qcow2")


def test_not_a_disk(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"just some text, not a disk\n" * 40000)
    text = _lift_error(tmp_path, junk)
    assert "is not a disk: it has no partition table and no filesystem" in text


def test_a_format_qemu_img_does_not_know(tmp_path: Path) -> None:
    bad = tmp_path / "future.qcow2"
    # qcow2 magic with a version no qemu-img knows
    bad.write_bytes(b"QFI\xfb" + (99).to_bytes(4, "big") + b"\0" * 4096)
    text = _lift_error(tmp_path, bad)
    assert "in a format qemu-img does not know, or its header is damaged" in text


def test_an_encrypted_disk(tmp_path: Path) -> None:
    disk = tmp_path / "luks.raw"
    _mbr(disk, 8 * MiB, [(1, 6, "83")])
    header = b"LUKS\xba\xbe" + (1).to_bytes(2, "big") + b"aes".ljust(32, b"\0")
    header += b"xts-plain64".ljust(32, b"\0") + b"sha256".ljust(32, b"\0")
    header += (4096).to_bytes(4, "big") + (64).to_bytes(4, "big")
    header += b"\0" * (168 - len(header)) + b"0b5e1f4a-1111-4a3b-9c5d-123456789abc".ljust(40, b"\0")
    with open(disk, "r+b") as f:
        f.seek(MiB)
        f.write(header)
    text = _lift_error(tmp_path, disk)
    assert "is encrypted (LUKS or BitLocker)" in text and "run it as a VM" in text


def test_a_windows_disk(tmp_path: Path) -> None:
    disk = tmp_path / "win.raw"
    _mbr(disk, 16 * MiB, [(1, 14, "7")])
    part = tmp_path / "part.ntfs"
    with open(part, "wb") as f:
        f.truncate(14 * MiB)
    subprocess.run(["mkntfs", "-q", "-F", "-f", str(part)], check=True, capture_output=True)
    subprocess.run(
        ["dd", f"if={part}", f"of={disk}", "bs=1M", "seek=1", "conv=notrunc", "status=none"],
        check=True,
    )
    text = _lift_error(tmp_path, disk)
    assert "holds Windows (NTFS): a Linux container cannot carry it" in text
    assert "run it as a VM instead" in text


def test_several_operating_systems(tmp_path: Path) -> None:
    disk = tmp_path / "multi.raw"
    _mbr(disk, 40 * MiB, [(1, 16, "83"), (18, 16, "83")])
    _ext4_at(disk, 1, 16, _os_tree(tmp_path, "Debian GNU/Linux", "12"))
    _ext4_at(disk, 18, 16, _os_tree(tmp_path, "Ubuntu", "22.04"))
    text = _lift_error(tmp_path, disk)
    assert "holds several operating systems (Debian 12 on partition 1, Ubuntu 22.04 on" in text


def test_a_disk_in_use_by_a_running_instance(tmp_path: Path) -> None:
    disk = tmp_path / "erp.raw"
    _mbr(disk, 20 * MiB, [(1, 16, "83")])
    _ext4_at(disk, 1, 16, _os_tree(tmp_path, "Debian GNU/Linux", "12"))
    client = FakeClient([{"Names": ["/shop-erp-1"]}])
    text = _lift_error(tmp_path, disk, client)
    assert "is in use by a running instance (shop-erp-1)" in text
    assert "stop the service first" in text
    assert json.dumps(client.api.queries[0]).count(str(disk.resolve())) == 1


def test_a_readable_disk_gives_its_facts(tmp_path: Path) -> None:
    disk = tmp_path / "ok.raw"
    _mbr(disk, 20 * MiB, [(1, 16, "83")])
    _ext4_at(disk, 1, 16, _os_tree(tmp_path, "Debian GNU/Linux", "12"))
    facts = disk_facts(disk)
    assert (facts.format, facts.firmware, facts.os, facts.guest_agent) == (
        "raw",
        "bios",
        "Debian 12",
        False,
    )


def test_a_healthcheck_on_a_disk_without_the_guest_agent_is_refused_before_boot(
    tmp_path: Path,
) -> None:
    from compound.errors import NotSupportedError
    from compound.runtimes.vm.driver import VMDriver
    from compound.spec.model import Healthcheck, Project, Service, VMOptions, XCompound

    disk = tmp_path / "noagent.raw"
    _mbr(disk, 20 * MiB, [(1, 16, "83")])
    _ext4_at(disk, 1, 16, _os_tree(tmp_path, "Debian GNU/Linux", "12"))
    svc = Service(
        name="erp",
        healthcheck=Healthcheck(test=("CMD", "true")),
        x_compound=XCompound(runtime="vm", vm=VMOptions(disk=str(disk))),
    )
    project = Project(name="p", working_dir=str(tmp_path), files=(), services={"erp": svc})
    with pytest.raises(NotSupportedError) as err:
        VMDriver(client=FakeClient()).prepare(project, svc)  # type: ignore[arg-type]
    text = err.value.render()
    assert "has no qemu-guest-agent" in text and "over TCP/HTTP" in text


def _gpt(path: Path, size: int, parts: list[tuple[int, int, str]]) -> None:
    """A raw disk with a GPT: (start MiB, size MiB, type GUID) per partition."""
    with open(path, "wb") as f:
        f.truncate(size)
    table = "label: gpt\n" + "".join(
        f"start={s * 2048}, size={n * 2048}, type={t}\n" for s, n, t in parts
    )
    subprocess.run(["sfdisk", "-q", str(path)], input=table.encode(), check=True)


ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def test_a_gpt_disk_with_an_efi_system_partition_boots_with_ovmf(tmp_path: Path) -> None:
    from compound.runtimes.vm.legacy import plan, qemu_argv

    disk = tmp_path / "uefi.raw"
    _gpt(disk, 40 * MiB, [(1, 8, ESP), (10, 16, LINUX)])
    _ext4_at(disk, 10, 16, _os_tree(tmp_path, "Debian GNU/Linux", "12"))
    facts = disk_facts(disk)
    assert (facts.firmware, facts.os) == ("uefi", "Debian 12")
    argv = " ".join(qemu_argv("p-erp-1", "tcg", 512, 1, plan("p", "erp", str(disk), False, "auto")))
    assert "-machine q35" in argv
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" in argv
    # firmware: bios overrides what was detected
    forced = plan("p", "erp", str(disk), False, "bios")
    assert forced.facts.firmware == "bios" and forced.facts.os == "Debian 12"


def test_a_gpt_disk_without_an_esp_is_bios(tmp_path: Path) -> None:
    disk = tmp_path / "gpt-bios.raw"
    _gpt(disk, 24 * MiB, [(2, 16, LINUX)])
    _ext4_at(disk, 2, 16, _os_tree(tmp_path, "Debian GNU/Linux", "12"))
    assert disk_facts(disk).firmware == "bios"


def test_cloud_init_on_the_disk_is_found_unless_disabled(tmp_path: Path) -> None:
    tree = _os_tree(tmp_path, "Debian GNU/Linux", "12")
    (tree / "usr/bin").mkdir(parents=True)
    (tree / "usr/bin/cloud-init").write_text("#!/usr/bin/python3\n")
    disk = tmp_path / "ci.raw"
    _mbr(disk, 20 * MiB, [(1, 16, "83")])
    _ext4_at(disk, 1, 16, tree)
    assert disk_facts(disk).cloud_init is True
    (tree / "etc/cloud").mkdir()
    (tree / "etc/cloud/cloud-init.disabled").write_text("")
    disk2 = tmp_path / "ci-off.raw"
    _mbr(disk2, 20 * MiB, [(1, 16, "83")])
    _ext4_at(disk2, 1, 16, tree)
    assert disk_facts(disk2).cloud_init is False
