"""Just enough ELF64 (little-endian) reading for building an initramfs:
the DT_NEEDED libraries and PT_INTERP of an executable, and the
``.modinfo`` strings of a kernel module (its ``depends=``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from compound.errors import VMError

_PT_INTERP = 3
_PT_DYNAMIC = 2
_PT_LOAD = 1
_DT_NEEDED = 1
_DT_STRTAB = 5


@dataclass(frozen=True)
class ElfDeps:
    interpreter: str | None
    needed: tuple[str, ...]


def _header(data: bytes, path: Path) -> tuple[int, int, int, int, int, int]:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise VMError(f"{path}: not a 64-bit little-endian ELF file")
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 0x20)
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", data, 0x36)
    del e_shentsize
    return e_phoff, e_phentsize, e_phnum, e_shoff, e_shnum, struct.unpack_from("<H", data, 0x3E)[0]


def read_deps(path: Path) -> ElfDeps:
    """PT_INTERP and DT_NEEDED of an executable or shared library."""
    data = path.read_bytes()
    e_phoff, e_phentsize, e_phnum, *_ = _header(data, path)
    interp: str | None = None
    dyn: tuple[int, int] | None = None
    loads: list[tuple[int, int, int]] = []  # vaddr, offset, filesz
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, off
        )
        if p_type == _PT_INTERP:
            interp = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
        elif p_type == _PT_DYNAMIC:
            dyn = (p_offset, p_filesz)
        elif p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
    if dyn is None:
        return ElfDeps(interp, ())
    needed_offsets: list[int] = []
    strtab_vaddr = 0
    for j in range(dyn[1] // 16):
        tag, val = struct.unpack_from("<qQ", data, dyn[0] + j * 16)
        if tag == 0:
            break
        if tag == _DT_NEEDED:
            needed_offsets.append(val)
        elif tag == _DT_STRTAB:
            strtab_vaddr = val
    strtab = next(
        (off + strtab_vaddr - va for va, off, sz in loads if va <= strtab_vaddr < va + sz), None
    )
    if strtab is None:
        raise VMError(f"{path}: DT_STRTAB outside every PT_LOAD segment")
    names = []
    for o in needed_offsets:
        start = strtab + o
        names.append(data[start : data.index(b"\0", start)].decode())
    return ElfDeps(interp, tuple(names))


def modinfo(path: Path) -> dict[str, list[str]]:
    """The ``.modinfo`` section of a kernel module as key -> values."""
    data = path.read_bytes()
    _phoff, _phentsize, _phnum, e_shoff, e_shnum, e_shstrndx = _header(data, path)

    def section(i: int) -> tuple[int, int, int]:
        base = e_shoff + i * 64
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, base)
        return name, offset, size

    _n, stroff, _s = section(e_shstrndx)
    for i in range(e_shnum):
        name, offset, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name : end] == b".modinfo":
            info: dict[str, list[str]] = {}
            for item in data[offset : offset + size].split(b"\0"):
                if b"=" in item:
                    k, _, v = item.decode(errors="replace").partition("=")
                    info.setdefault(k, []).append(v)
            return info
    return {}
