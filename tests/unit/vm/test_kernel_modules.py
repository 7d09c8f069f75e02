"""Module dependency order, signature stripping, modules.dep, ELF reading."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from compound.errors import VMError
from compound.runtimes.vm.elf import read_deps
from compound.runtimes.vm.kernel import module_load_order, strip_module_signature

_MAGIC = b"~Module signature appended~\n"


def test_load_order_puts_dependencies_first() -> None:
    available = {
        n: Path(f"/{n}.ko")
        for n in ("ext4", "jbd2", "mbcache", "crc16", "virtio", "virtio_ring", "virtio_blk")
    }
    info = {
        "ext4": ["jbd2", "mbcache", "crc16"],
        "jbd2": [],
        "mbcache": [],
        "crc16": [],
        "virtio_blk": ["virtio", "virtio_ring"],
        "virtio": ["virtio_ring"],
        "virtio_ring": [],
    }
    order = module_load_order(available, ("virtio-blk", "ext4"), info)
    assert order == ["virtio_ring", "virtio", "virtio_blk", "jbd2", "mbcache", "crc16", "ext4"]


def test_load_order_reports_missing_and_cycles() -> None:
    with pytest.raises(VMError, match="not in the kernel package"):
        module_load_order({}, ("9p",), {})
    with pytest.raises(VMError, match="cycle"):
        module_load_order({"a": Path("a"), "b": Path("b")}, ("a",), {"a": ["b"], "b": ["a"]})


def test_strip_module_signature() -> None:
    body = b"\x7fELF" + b"m" * 100
    sig = b"S" * 37
    info = b"\0" * 8 + struct.pack(">I", len(sig))
    assert strip_module_signature(body + sig + info + _MAGIC) == body
    assert strip_module_signature(body) == body


def test_read_deps_of_a_host_binary() -> None:
    ls = Path(shutil.which("ls") or "/bin/ls").resolve()
    deps = read_deps(ls)
    assert deps.interpreter and deps.interpreter.startswith("/lib")
    assert "libc.so.6" in deps.needed


def test_read_deps_refuses_non_elf(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"#!/bin/sh\n")
    with pytest.raises(VMError, match="not a 64-bit"):
        read_deps(f)
