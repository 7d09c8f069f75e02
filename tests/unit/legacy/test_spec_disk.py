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


def test_security_keys_on_a_disk_service_are_refused_where_they_are_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "erp.qcow2").write_bytes(b"x")
    text = _error(
        tmp_path,
        "services:\n  erp:\n    x-compound:\n      runtime: vm\n      vm: {disk: ./erp.qcow2}\n"
        "    cap_drop: [ALL]\n    privileged: true\n    security_opt: [no-new-privileges]\n"
        "    user: app\n",
    )
    for line, key in ((6, "cap_drop"), (7, "privileged"), (8, "security_opt"), (9, "user")):
        assert f"compose.yaml:{line}" in text and f"services.erp.{key}" in text
        assert f"cannot apply {key!r} inside the guest" in text
    assert "a VM disk service (x-compound.vm.disk) boots its own OS and init" in text
    assert "configure it inside the guest" in text  # what applies instead


def test_process_keys_on_a_disk_service_are_ignored_with_a_located_warning(
    tmp_path: Path,
) -> None:
    (tmp_path / "erp.qcow2").write_bytes(b"x")
    res = _load(
        tmp_path,
        "services:\n  erp:\n    x-compound:\n      runtime: vm\n      vm: {disk: ./erp.qcow2}\n"
        "    command: [serve]\n    environment: {A: b}\n    stop_signal: SIGINT\n",
    )
    warnings = "\n".join(res.warnings)
    assert "compose.yaml:6" in warnings and "services.erp.command" in warnings
    assert "compose.yaml:7" in warnings and "set it in the guest's units" in warnings
    assert "compose.yaml:8" in warnings and "ACPI power-down" in warnings
    assert warnings.count("has no process of its own to apply it to") == 3


def test_the_same_keys_on_an_image_vm_are_not_refused(tmp_path: Path) -> None:
    res = _load(
        tmp_path,
        "services:\n  app:\n    image: x\n    x-compound: {runtime: vm}\n"
        "    cap_drop: [ALL]\n    user: app\n    command: [serve]\n",
    )
    assert not [w for w in res.warnings if "VM disk" in w]
