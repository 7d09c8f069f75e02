"""compound's guest kernel build: the fragment and its verification, the
cache key, progress, the PVH check, and that a failed or interrupted build
publishes nothing and the next run resumes (a fake ``make`` on PATH)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from compound.errors import VMError
from compound.runtimes.vm import debs, guestkernel, initramfs, kernel
from compound.runtimes.vm.guestkernel import (
    cache_key,
    follow_build,
    has_pvh_note,
    is_object_line,
    parse_config,
    percent,
    unmet_options,
)

VERSION = guestkernel.PINNED_VERSION


# -- the fragment ---------------------------------------------------------------------


def test_parse_config_reads_values_and_not_set_lines() -> None:
    text = (
        "# a comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=14\n"
        'CONFIG_D="-compound"\n  # indented comment\n'
    )
    assert parse_config(text) == {
        "CONFIG_A": "y",
        "CONFIG_B": "n",
        "CONFIG_C": "14",
        "CONFIG_D": '"-compound"',
    }


def test_parse_config_names_a_bad_line() -> None:
    with pytest.raises(VMError, match=r"frag:2: not a kernel config line: 'MODULES=n'"):
        parse_config("CONFIG_A=y\nMODULES=n\n", source="frag")


def test_unmet_options_treats_absent_as_n() -> None:
    wanted = {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "14", "CONFIG_D": "y"}
    got = {"CONFIG_A": "y", "CONFIG_C": "17"}
    assert unmet_options(wanted, got) == ["CONFIG_C=14 (got: 17)", "CONFIG_D=y (got: n)"]


def test_the_fragment_asks_for_what_the_guest_needs() -> None:
    frag = parse_config(guestkernel.fragment_text(), source=guestkernel.FRAGMENT_NAME)
    for name in (
        "PVH", "KVM_GUEST", "PARAVIRT", "SYSVIPC", "POSIX_MQUEUE", "EPOLL", "EVENTFD",
        "SIGNALFD", "TIMERFD", "INOTIFY_USER", "FUTEX", "AIO", "MEMFD_CREATE", "UNIX",
        "INET", "IPV6", "NAMESPACES", "CGROUPS", "SECCOMP", "TMPFS", "DEVTMPFS",
        "BINFMT_ELF", "BINFMT_SCRIPT", "MULTIUSER", "SERIAL_8250_CONSOLE", "VIRTIO_MMIO",
        "VIRTIO_PCI", "VIRTIO_BLK", "VIRTIO_NET", "VIRTIO_CONSOLE", "EXT4_FS",
        "EXT4_FS_POSIX_ACL", "FUSE_FS", "VIRTIO_FS", "9P_FS", "9P_FS_POSIX_ACL",
        "NET_9P_VIRTIO", "FW_CFG_SYSFS", "ACPI", "UNIX98_PTYS",
    ):  # fmt: skip
        assert frag.get(f"CONFIG_{name}") == "y", name
    assert frag["CONFIG_MODULES"] == "n"


def test_every_fragment_option_is_in_a_block_that_starts_with_why() -> None:
    explained = False
    for line in guestkernel.fragment_text().splitlines():
        if not line.strip():
            explained = False  # a blank line ends a block
        elif line.startswith("CONFIG_") or line.endswith("is not set"):
            assert explained, f"{line}: no comment above it says why"
        elif line.startswith("#"):
            explained = True


# -- the cache key and progress ------------------------------------------------------------


def test_cache_key_changes_with_every_input() -> None:
    base = cache_key("linux-source-6.1", "6.1.176-1", "CONFIG_A=y\n", "gcc 12.2.0")
    assert base == cache_key("linux-source-6.1", "6.1.176-1", "CONFIG_A=y\n", "gcc 12.2.0")
    others = {
        cache_key("linux-source-6.2", "6.1.176-1", "CONFIG_A=y\n", "gcc 12.2.0"),
        cache_key("linux-source-6.1", "6.1.177-1", "CONFIG_A=y\n", "gcc 12.2.0"),
        cache_key("linux-source-6.1", "6.1.176-1", "CONFIG_A=n\n", "gcc 12.2.0"),
        cache_key("linux-source-6.1", "6.1.176-1", "CONFIG_A=y\n", "gcc 13.1.0"),
    }
    assert base not in others and len(others) == 4


def test_label_and_entry_name() -> None:
    key = "0123456789abcdef" * 4
    assert guestkernel.kernel_label("6.1.176-1", key) == "6.1.176 compound-01234567"
    assert guestkernel.entry_name("6.1.176-1", key) == "compound-6.1.176-0123456789abcdef"


def test_object_lines_and_percent() -> None:
    assert is_object_line("  CC      kernel/fork.o")
    assert is_object_line("  AS      arch/x86/entry/entry_64.o")
    assert not is_object_line("  LD      vmlinux.o")  # linking is not an object
    assert not is_object_line("  CC      scripts/mod/empty.s")
    assert not is_object_line("kernel/fork.c:12: warning: CC x.o")
    assert percent(0, 100) == 0 and percent(50, 100) == 50
    assert percent(150, 100) == 99  # never 100 before make has finished
    assert percent(5, 0) == 0


def test_follow_build_copies_output_and_reports_counts_at_most_every_2s(tmp_path: Path) -> None:
    lines = [b"  CC      a.o\n", b"  LD      x\n", b"  CC      b.o\n", b"  AS      c.o\n"]
    clock = iter([0.0, 1.0, 2.5])
    seen: list[str] = []
    with (tmp_path / "log").open("wb") as log:
        done = follow_build(
            iter(lines), log, seen.append, 10, tmp_path / "log", clock=lambda: next(clock)
        )
    assert done == 13
    assert (tmp_path / "log").read_bytes() == b"".join(lines)
    n = guestkernel.EXPECTED_OBJECTS
    log = tmp_path / "log"
    assert seen == [
        f"compiling the guest kernel: 11/~{n} objects ({percent(11, n)}%), log: {log}",
        f"compiling the guest kernel: 13/~{n} objects ({percent(13, n)}%), log: {log}",
    ]


# -- the PVH note ---------------------------------------------------------------------------


def elf_with_notes(path: Path, notes: list[tuple[bytes, int, bytes]]) -> Path:
    """A minimal ELF64 with one PT_NOTE segment holding ``notes``."""
    blob = b""
    for name, ntype, desc in notes:
        n = name + b"\0"
        blob += struct.pack("<III", len(n), len(desc), ntype)
        blob += n + b"\0" * (-len(n) % 4) + desc + b"\0" * (-len(desc) % 4)
    phoff, phentsize = 64, 56
    note_off = phoff + phentsize
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, phoff, 0, 0, 64, phentsize, 1, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(blob), len(blob), 4)
    path.write_bytes(header + ph + blob)
    return path


def test_pvh_note_is_found_only_when_present(tmp_path: Path) -> None:
    pvh = elf_with_notes(tmp_path / "a", [(b"GNU", 3, b"x" * 20), (b"Xen", 18, b"\0" * 8)])
    assert has_pvh_note(pvh)
    other = elf_with_notes(tmp_path / "b", [(b"Xen", 17, b"\0" * 8), (b"Linux", 18, b"\0" * 4)])
    assert not has_pvh_note(other)
    (tmp_path / "c").write_bytes(b"not an elf file at all" * 4)
    assert not has_pvh_note(tmp_path / "c")


# -- the build, with a fake make ---------------------------------------------------------------

FAKE_MAKE = r"""#!/usr/bin/env python3
import os, sys, time
args = sys.argv[1:]
out = next(a[2:] for a in args if a.startswith("O="))
mode = os.environ["FAKE_MAKE_MODE"]
if "allnoconfig" in args:
    frag = next(a.split("=", 1)[1] for a in args if a.startswith("KCONFIG_ALLCONFIG="))
    text = open(frag).read()
    if mode == "drop":
        text = text.replace("CONFIG_PVH=y", "# CONFIG_PVH is not set")
    open(os.path.join(out, ".config"), "w").write(text)
    sys.exit(0)
if "olddefconfig" in args:
    sys.exit(0)
for i in range(3):
    open(os.path.join(out, f"obj{i}.o"), "w").write("")
    print(f"  CC      obj{i}.o", flush=True)
if mode == "fail":
    print("drivers/x.c:1: error: no space left on device", flush=True)
    sys.exit(2)
if mode == "hang":
    time.sleep(60)
os.makedirs(os.path.join(out, "include/config"), exist_ok=True)
open(os.path.join(out, "include/config/kernel.release"), "w").write("6.1.176-compound\n")
open(os.path.join(out, "vmlinux"), "wb").write(open(os.environ["FAKE_VMLINUX"], "rb").read())
open(os.path.join(out, "System.map"), "w").write("ffffffff81000000 T _text\n")
"""


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache dir whose source is already unpacked and remembered, a fake
    make and gcc on PATH, and no apt at all."""
    cache = tmp_path / "cache"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "make").write_text(FAKE_MAKE)
    (bindir / "make").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv(
        "FAKE_VMLINUX", str(elf_with_notes(tmp_path / "vmlinux", [(b"Xen", 18, b"\0" * 8)]))
    )
    monkeypatch.setattr(guestkernel, "compiler_version", lambda: "gcc (fake) 12")
    monkeypatch.setattr(debs, "has_version", lambda pkg, v: pytest.fail("apt asked"))
    monkeypatch.setattr(debs, "candidate_version", lambda pkg: pytest.fail("apt asked"))
    cache.mkdir()
    (cache / debs.RESOLVED_FILE).write_text(
        json.dumps({f"version:{guestkernel.SOURCE_PACKAGE}": VERSION})
    )
    p = _paths(cache)
    (p.work / "src").mkdir(parents=True)
    (p.work / "src" / ".compound-unpacked").write_text(f"linux-source-6.1 {VERSION}\n")
    return cache


def _paths(cache: Path) -> guestkernel.Paths:
    key = cache_key(
        guestkernel.SOURCE_PACKAGE, VERSION, guestkernel.fragment_text(), "gcc (fake) 12"
    )
    return guestkernel.paths_for(cache, VERSION, key)


def _published(cache: Path) -> list[str]:
    return sorted(
        p.name
        for p in (cache / "kernel").iterdir()
        if not p.name.startswith(".") or p.name.startswith(".compound-")
    )


def test_a_failed_build_publishes_nothing_names_its_log_and_the_next_run_resumes(
    fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debs, "has_version", lambda pkg, v: True)  # the refresh on a miss
    p = _paths(fake_build)
    monkeypatch.setenv("FAKE_MAKE_MODE", "fail")
    with pytest.raises(VMError) as err:
        guestkernel.ensure_guest_kernel(fake_build, jobs=1)
    assert "make vmlinux exited with 2" in err.value.message
    assert "no space left on device" in err.value.message
    assert str(p.log) in err.value.message
    assert not p.entry.exists()
    assert not [
        d for d in (fake_build / "kernel").iterdir() if d.name.startswith(f".{p.entry.name}")
    ]
    assert (p.work / "out" / "obj0.o").exists()  # kept for the next run

    monkeypatch.setenv("FAKE_MAKE_MODE", "ok")
    seen: list[str] = []
    k = guestkernel.ensure_guest_kernel(fake_build, seen.append, jobs=1)
    assert k.vmlinux == p.entry / "vmlinux" and k.modules == () and k.flavour == "compound"
    assert k.version == guestkernel.kernel_label(VERSION, p.entry.name.rsplit("-", 1)[1])
    # the three objects of the failed run were counted as done
    assert any("compiling the guest kernel: 4/" in m for m in seen), seen
    assert not p.work.exists()  # the work dir goes once the entry is published
    meta = json.loads((p.entry / "manifest.json").read_text())
    assert meta["version"] == VERSION and meta["release"] == "6.1.176-compound"
    assert "CONFIG_PVH=y" in (p.entry / "config").read_text()


def test_a_dropped_option_is_an_error_naming_it(
    fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debs, "has_version", lambda pkg, v: True)
    monkeypatch.setenv("FAKE_MAKE_MODE", "drop")
    with pytest.raises(VMError, match=r"CONFIG_PVH=y \(got: n\)"):
        guestkernel.ensure_guest_kernel(fake_build, jobs=1)
    assert not _paths(fake_build).entry.exists()


def test_an_interrupted_build_stops_make_and_publishes_nothing(
    fake_build: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debs, "has_version", lambda pkg, v: True)
    monkeypatch.setenv("FAKE_MAKE_MODE", "hang")

    def interrupt(msg: str) -> None:
        if msg.startswith("compiling"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        guestkernel.ensure_guest_kernel(fake_build, interrupt, jobs=1)
    p = _paths(fake_build)
    assert not p.entry.exists() and p.work.exists()
    out = subprocess.run(
        ["pgrep", "-f", "FAKE_MAKE_MODE|bin/make -C"], capture_output=True, text=True
    )
    assert str(p.work) not in out.stdout


def test_a_missing_source_package_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debs, "has_version", lambda pkg, v: False)
    monkeypatch.setattr(debs, "candidate_version", lambda pkg: None)
    with pytest.raises(VMError, match=r"linux-source-6\.1 is not known to apt"):
        guestkernel.resolve_source(tmp_path)


def test_a_moved_mirror_falls_back_to_the_candidate_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debs, "has_version", lambda pkg, v: False)
    monkeypatch.setattr(debs, "candidate_version", lambda pkg: "6.1.180-1")
    src = guestkernel.resolve_source(tmp_path)
    assert src.version == "6.1.180-1" and "no longer offered" in src.note


# -- no apt on a warm `up` path -------------------------------------------------------------------


def test_a_warm_path_asks_apt_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernel (ours and Debian's) and initramfs all cached: no apt command runs."""
    calls: list[list[str]] = []
    real_run = subprocess.run

    def spy(argv: Any, *a: Any, **kw: Any) -> Any:
        calls.append(list(argv))
        if str(argv[0]).startswith("apt"):
            pytest.fail(f"apt called on the warm path: {argv}")
        return real_run(argv, *a, **kw)

    cache = tmp_path
    # What an earlier run resolved and built.
    (cache / debs.RESOLVED_FILE).write_text(
        json.dumps(
            {
                f"version:{guestkernel.SOURCE_PACKAGE}": VERSION,
                "debian-kernel-package": "linux-image-x",
                "candidate:linux-image-x": "1.0",
                f"candidate:{initramfs.BUSYBOX_PACKAGE}": "1:1.35.0-4+b3",
                f"candidate:{initramfs.AGENT_PACKAGE}": "1:7.2+dfsg-7",
            }
        )
    )
    monkeypatch.setattr(guestkernel, "compiler_version", lambda: "gcc (fake) 12")
    p = _paths(cache)
    p.entry.mkdir(parents=True)
    (p.entry / "manifest.json").write_text("{}")
    deb_entry = cache / "kernel" / f"linux-image-x_1.0.v{kernel.LAYOUT}"
    deb_entry.mkdir()
    (deb_entry / "manifest.json").write_text(
        json.dumps({"package": "linux-image-x", "version": "1.0", "release": "x", "modules": []})
    )
    monkeypatch.setattr(subprocess, "run", spy)
    ours = guestkernel.ensure_guest_kernel(cache)
    theirs = kernel.ensure_kernel(cache)
    for k in (ours, theirs):
        # the archive as an earlier run built it
        key = initramfs.archive_key(k, "1:1.35.0-4+b3", "1:7.2+dfsg-7", compress=False)
        arch = initramfs.archive_path(cache / "initramfs", key, compress=False)
        arch.parent.mkdir(parents=True, exist_ok=True)
        arch.write_bytes(b"cpio")
        assert initramfs.ensure_initramfs(k, cache).path == arch
    assert ours.flavour == "compound" and theirs.flavour == "debian"
    assert all(not c[0].startswith("apt") for c in calls)


def test_compound_kernel_initramfs_loads_no_modules(tmp_path: Path) -> None:
    ours = guestkernel.artifacts(tmp_path, VERSION, "ab" * 32)
    env = initramfs.modules_env(ours)
    assert env == (
        "MODULES_CONFIG=''\nMODULES_BASE=''\nMODULES_9P=''\nMODULES_VIRTIOFS=''\nMODULES_PCI=''\n"
    )
    assert "virtio_mmio" in initramfs.modules_env()
