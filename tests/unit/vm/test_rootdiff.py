"""A VM's root filesystem against its image: the image's listing from an
export tar, the guest's listing, and the comparison (no guest needed)."""

import io
import tarfile

from compound.reconcile.drift import classify
from compound.runtimes.base import Change
from compound.runtimes.vm.rootdiff import (
    BOOT_MANAGED,
    Entry,
    compare,
    manifest_from_tar,
    parse_listing,
)


def _tar(*members: tuple[str, bytes | str | None, dict]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, kw in members:
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            if isinstance(data, bytes):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r|")


def test_manifest_from_an_export():
    tar = _tar(
        (".dockerenv", b"", {"mode": 0o755}),
        ("bin/", None, {"type": tarfile.DIRTYPE, "mode": 0o755, "mtime": 5}),
        ("bin/busybox", b"x" * 10, {"mode": 0o4755, "mtime": 7, "uid": 1, "gid": 2}),
        ("bin/sh", None, {"type": tarfile.SYMTYPE, "linkname": "busybox", "mtime": 3}),
        ("bin/ls", None, {"type": tarfile.LNKTYPE, "linkname": "bin/busybox"}),
    )
    m = manifest_from_tar(tar)
    assert "/.dockerenv" not in m  # the base disk drops it too
    assert m["/bin"] == Entry("d", 0o755, 0, 0, 0, 5)
    assert m["/bin/busybox"] == Entry("f", 0o4755, 1, 2, 10, 7)
    assert m["/bin/sh"] == Entry("l", 0o644, 0, 0, len("busybox"), 3)
    assert m["/bin/ls"] == m["/bin/busybox"]  # a hard link is the same inode


GUEST = """\
41ed 0 0 4096 99 .
41ed 0 0 4096 99 ./bin
89ed 1 2 10 7 ./bin/busybox
a1a4 0 0 7 3 ./bin/sh
81a4 0 0 4 50 ./new file with spaces
41ed 0 0 4096 99 ./data
not a stat line
#mounts
/dev/vda /newroot ext4 rw,noatime 0 0
proc /newroot/proc proc rw 0 0
vol0 /newroot/data 9p rw 0 0
vol1 /newroot/my\\040dir 9p rw 0 0
proc /proc proc rw 0 0
"""


def test_parse_the_guest_listing_and_its_mount_points():
    entries, mounts = parse_listing(GUEST)
    assert entries["/bin/busybox"] == Entry("f", 0o4755, 1, 2, 10, 7)
    assert entries["/bin/sh"].kind == "l"
    assert entries["/new file with spaces"] == Entry("f", 0o644, 0, 0, 4, 50)
    assert "/" in entries and len(entries) == 6
    assert mounts == ("/proc", "/data", "/my dir")


def _base() -> dict[str, Entry]:
    return {
        "/bin": Entry("d", 0o755, 0, 0, 0, 5),
        "/bin/busybox": Entry("f", 0o4755, 1, 2, 10, 7),
        "/bin/sh": Entry("l", 0o644, 0, 0, 7, 3),
        "/etc": Entry("d", 0o755, 0, 0, 0, 5),
        "/etc/passwd": Entry("f", 0o644, 0, 0, 82, 1),
        "/etc/hosts": Entry("f", 0o644, 0, 0, 0, 1),
        "/dev": Entry("d", 0o755, 0, 0, 0, 1),
        "/dev/console": Entry("f", 0o755, 0, 0, 0, 1),
    }


def test_compare_finds_added_changed_and_deleted_and_ignores_directory_mtimes():
    base = _base()
    now = dict(base)
    now["/bin"] = Entry("d", 0o755, 0, 0, 4096, 1000)  # an entry changed inside it
    now["/etc/passwd"] = Entry("f", 0o644, 0, 0, 90, 1000)  # appended
    now["/bin/busybox"] = Entry("f", 0o755, 1, 2, 10, 7)  # setuid bit removed
    del now["/bin/sh"]
    now["/opt"] = Entry("d", 0o755, 0, 0, 4096, 1000)
    root = compare(base, now)
    assert root.changes == (
        Change("C", "/bin/busybox"),
        Change("D", "/bin/sh"),
        Change("C", "/etc/passwd"),
        Change("A", "/opt"),
    )


def test_same_size_rewrite_is_seen_by_mtime_and_a_symlink_by_its_target_length():
    base = _base()
    now = dict(base)
    now["/etc/passwd"] = Entry("f", 0o644, 0, 0, 82, 2)
    now["/bin/sh"] = Entry("l", 0o644, 0, 0, 12, 3)
    assert [c.path for c in compare(base, now).changes] == ["/bin/sh", "/etc/passwd"]


def test_fresh_guest_is_clean_after_classification():
    # what a fresh boot looks like: /dev is a mount (its files are shadowed,
    # not deleted), /etc/hosts rewritten by /init, /run created by /init
    base = _base()
    now = {k: v for k, v in base.items() if k != "/dev/console"}
    now["/etc/hosts"] = Entry("f", 0o644, 0, 0, 120, 999)
    now["/run"] = Entry("d", 0o755, 0, 0, 4096, 999)
    now["/data"] = Entry("d", 0o755, 0, 0, 4096, 999)  # mount point of a volume
    root = compare(base, now, mounts=("/dev", "/data"))
    assert {c.path for c in root.changes} == {"/dev/console", "/etc/hosts", "/run", "/data"}
    assert set(BOOT_MANAGED) <= set(root.managed)
    assert classify(root) == ()
