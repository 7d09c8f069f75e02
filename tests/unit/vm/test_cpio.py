"""The newc writer, checked by reading archives back with an independent
parser (the format as the kernel's init/initramfs.c reads it)."""

from __future__ import annotations

import gzip
import io
import stat

from compound.runtimes.vm.cpio import CpioWriter, build_image


def parse(data: bytes) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701", f"bad magic at {pos}"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name_start = pos + 110
        name = data[name_start : name_start + namesize - 1].decode()
        assert data[name_start + namesize - 1] == 0
        body = name_start + namesize + (-(110 + namesize) % 4)
        assert body % 4 == 0
        content = data[body : body + filesize]
        pos = body + filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            assert len(data) % 512 == 0
            return out
        out.append(
            {
                "name": name,
                "mode": fields[1],
                "data": content,
                "rdev": (fields[9], fields[10]),
                "mtime": fields[5],
            }
        )


def test_round_trip_of_every_entry_kind() -> None:
    buf = io.BytesIO()
    w = CpioWriter(buf)
    w.file("bin/busybox", b"\x7fELF" + b"x" * 1001, 0o755)
    w.symlink("bin/sh", "busybox")
    w.chardev("dev/console", 5, 1)
    w.dir("newroot", 0o700)
    w.close()
    entries = {e["name"]: e for e in parse(buf.getvalue())}
    # parents are created before their children
    assert list(entries)[:2] == ["bin", "bin/busybox"]
    assert entries["bin/busybox"]["data"] == b"\x7fELF" + b"x" * 1001
    assert entries["bin/busybox"]["mode"] == stat.S_IFREG | 0o755
    assert entries["bin/sh"]["mode"] == stat.S_IFLNK | 0o777
    assert entries["bin/sh"]["data"] == b"busybox"
    assert entries["dev/console"]["mode"] == stat.S_IFCHR | 0o600
    assert entries["dev/console"]["rdev"] == (5, 1)
    assert entries["newroot"]["mode"] == stat.S_IFDIR | 0o700


def test_alignment_for_every_name_length() -> None:
    buf = io.BytesIO()
    w = CpioWriter(buf)
    for n in range(1, 12):
        w.file("f" * n, b"y" * n)
    w.close()
    names = [e["name"] for e in parse(buf.getvalue())]
    assert names == ["f" * n for n in range(1, 12)]


def test_same_input_same_bytes_and_gzip_is_reproducible() -> None:
    entries: list[tuple[str, str, bytes | str, int]] = [
        ("dir", "a", b"", 0o755),
        ("file", "a/b", b"data", 0o644),
        ("symlink", "c", "a/b", 0),
    ]
    one = build_image(entries, compress=True)
    two = build_image(entries, compress=True)
    assert one == two
    assert parse(gzip.decompress(one))[1]["data"] == b"data"


def test_directories_are_written_once() -> None:
    buf = io.BytesIO()
    w = CpioWriter(buf)
    w.file("x/y/z", b"1")
    w.file("x/y/w", b"2")
    w.dir("x")
    w.close()
    names = [e["name"] for e in parse(buf.getvalue())]
    assert names == ["x", "x/y", "x/y/z", "x/y/w"]
