"""x-compound.vm.disk/persistent/firmware: validated with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from compound.errors import CompoundError
from compound.spec import LoadOptions, load_project
from compound.spec.compose_dict import to_compose_dict


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), project_name="d"))


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(CompoundError) as err:
        _load(tmp_path, text)
    return err.value.render()


def test_a_disk_service_needs_no_image_and_its_path_is_made_absolute(tmp_path: Path) -> None:
    (tmp_path / "erp.qcow2").write_bytes(b"x")
    res = _load(
        tmp_path,
        "services:\n  erp:\n    x-compound:\n      runtime: vm\n"
        "      vm: {disk: ./erp.qcow2, persistent: true, firmware: uefi}\n",
    )
    vm = res.project.services["erp"].x_compound.vm
    assert vm.disk == str(tmp_path / "erp.qcow2")
    assert vm.persistent is True and vm.firmware == "uefi"
    out = to_compose_dict(res.project)["services"]["erp"]["x-compound"]["vm"]
    assert out == {"disk": str(tmp_path / "erp.qcow2"), "persistent": True, "firmware": "uefi"}


def test_a_missing_disk_is_an_error_where_it_is_named(tmp_path: Path) -> None:
    text = _error(
        tmp_path,
        "services:\n  erp:\n    x-compound:\n      runtime: vm\n      vm: {disk: ./nope.qcow2}\n",
    )
    assert "compose.yaml:5" in text and "services.erp.x-compound.vm.disk" in text
    assert "does not exist" in text


def test_a_disk_boots_only_as_a_vm(tmp_path: Path) -> None:
    (tmp_path / "erp.qcow2").write_bytes(b"x")
    text = _error(tmp_path, "services:\n  erp:\n    x-compound:\n      vm: {disk: ./erp.qcow2}\n")
    assert "services.erp.x-compound.vm.disk" in text and "only as a VM" in text
    assert "runtime: vm" in text


def test_a_disk_and_an_image_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "erp.qcow2").write_bytes(b"x")
    text = _error(
        tmp_path,
        "services:\n  erp:\n    image: x\n    x-compound:\n      runtime: vm\n"
        "      vm: {disk: ./erp.qcow2}\n",
    )
    assert "both a VM disk and an image" in text


@pytest.mark.parametrize(
    ("vm", "needle"),
    [
        ("{disk: 3}", "vm.disk"),
        ("{firmware: coreboot}", "vm.firmware"),
        ("{persistent: maybe}", "vm.persistent"),
    ],
)
def test_bad_values_are_schema_errors(tmp_path: Path, vm: str, needle: str) -> None:
    text = _error(
        tmp_path,
        f"services:\n  erp:\n    image: x\n    x-compound:\n      runtime: vm\n      vm: {vm}\n",
    )
    assert needle in text and "compose.yaml:" in text
