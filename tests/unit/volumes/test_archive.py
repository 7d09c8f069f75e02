"""The backup format without an engine: manifest seal, round trip of a
directory, and every kind of damage refused before the target is touched."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from compound.volumes.archive import (
    HEADER,
    ArchiveWriter,
    read_archive,
)
from compound.volumes.localdir import DirExtractor, backup_dir, restore_dir
from compound.volumes.manifest import ArchiveError, Entry, Manifest, check_tree
from tests.unit.volumes.helpers import (
    craft_archive,
    snapshot,
    tar_dir,
    tar_file,
    tar_link,
    write_archive,
)

pytestmark = pytest.mark.timeout(60)

Member = tuple[tarfile.TarInfo, bytes | None]


def _tree(root: Path) -> None:
    """Files of every kind, odd owners and modes, an empty and a read-only dir."""
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("hello\n")
    (root / "sub" / "big.bin").write_bytes(os.urandom(300_000) + b"x" * 300_000)
    os.chown(root / "sub" / "big.bin", 1234, 5678)
    os.chmod(root / "sub" / "big.bin", 0o640)
    os.symlink("../a.txt", root / "sub" / "link")
    os.symlink("/nowhere/at/all", root / "dangling")
    os.link(root / "a.txt", root / "hard.txt")
    os.mkfifo(root / "fifo")
    os.chmod(root / "sub" / "deep", 0o555)
    os.chmod(root, 0o750)
    os.chown(root, 999, 999)


def _backup(src: Path, dest: Path) -> Manifest:
    with ArchiveWriter(dest, {"project": "p", "volume": {"name": "v"}}) as writer:
        backup_dir(src, writer, _Meter())
        return writer.close()


class _Meter:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.done = 0

    def total(self, nbytes: int | None) -> None:
        self.totals.append(nbytes)

    def advance(self, nbytes: int) -> None:
        self.done += nbytes


def _members(archive: Path) -> list[Member]:
    raw = subprocess.run(["zstd", "-dc", str(archive)], capture_output=True, check=True).stdout
    out: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar:
            f = tar.extractfile(info) if info.isreg() else None
            out.append((info, f.read() if f else None))
    return out


def _tamper(archive: Path, change: Callable[[list[Member]], list[Member]]) -> Path:
    bad = archive.with_name("bad.tar.zst")
    write_archive(bad, change(_members(archive)))
    return bad


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """A stand-in for /var/lib/docker/volumes/NAME/_data."""
    data = tmp_path / "volumes" / "v" / "_data"
    data.mkdir(parents=True)
    _tree(data)
    return data


@pytest.fixture
def archive(tmp_path: Path, volume: Path) -> Path:
    path = tmp_path / "v.tar.zst"
    _backup(volume, path)
    return path


# --- manifest --------------------------------------------------------------------------


def test_manifest_records_every_entry_with_checksums_and_totals(
    volume: Path, tmp_path: Path
) -> None:
    manifest = _backup(volume, tmp_path / "m.tar.zst")
    by_path = {e.path: e for e in manifest.entries}
    assert set(by_path) == {
        ".",
        "a.txt",
        "dangling",
        "empty",
        "fifo",
        "hard.txt",
        "sub",
        "sub/big.bin",
        "sub/deep",
        "sub/link",
    }
    big = by_path["sub/big.bin"]
    content = (volume / "sub" / "big.bin").read_bytes()
    assert (big.type, big.size, big.uid, big.gid, big.mode) == (
        "file",
        600_000,
        1234,
        5678,
        0o640,
    )
    assert big.sha256 == hashlib.sha256(content).hexdigest()
    assert by_path["hard.txt"].type == "hardlink" and by_path["hard.txt"].link == "a.txt"
    assert by_path["sub/link"].link == "../a.txt"
    assert (by_path["."].mode, by_path["."].uid) == (0o750, 999)
    assert manifest.total_size == 600_000 + 6
    assert manifest.file_count == 2
    again = Manifest.from_bytes(manifest.to_bytes(), "x")
    assert again.entries == manifest.entries and again.meta == manifest.meta


def test_manifest_seal_detects_any_edit() -> None:
    entry = Entry(".", "dir", 0o755, 0, 0, 1.0)
    doc = json.loads(Manifest(meta={"project": "p"}, entries=(entry,)).to_bytes())
    doc["project"] = "q"
    with pytest.raises(ArchiveError, match="does not match its own digest"):
        Manifest.from_bytes(json.dumps(doc).encode(), "x")
    with pytest.raises(ArchiveError, match="not readable JSON"):
        Manifest.from_bytes(b"{not json", "x")


def test_meter_sees_the_total_first_and_every_byte(volume: Path, tmp_path: Path) -> None:
    meter = _Meter()
    with ArchiveWriter(tmp_path / "m.tar.zst", {}, meter) as writer:
        backup_dir(volume, writer, meter)
        writer.close()
    assert meter.totals == [600_006] and meter.done == 600_006


# --- round trip ------------------------------------------------------------------------


def test_restore_reproduces_contents_owners_modes_links_and_empty_dirs(
    volume: Path, archive: Path, tmp_path: Path
) -> None:
    before = snapshot(volume)
    target = tmp_path / "volumes" / "w" / "_data"
    target.mkdir(parents=True)
    (target / "stale").write_text("must go")
    manifest = restore_dir(archive, target, _Meter())
    assert manifest.file_count == 2
    assert snapshot(target) == before
    assert os.listdir(target.parent) == ["_data"], "staging or old files left beside the volume"


# --- damage: every case refused, target untouched ---------------------------------------


def _data_member(members: list[Member], name: str) -> int:
    return next(i for i, (info, _) in enumerate(members) if info.name == f"data/{name}")


def _flip(members: list[Member]) -> list[Member]:
    i = _data_member(members, "sub/big.bin")
    info, data = members[i]
    assert data is not None
    members[i] = (info, data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    return members


def _truncate(members: list[Member]) -> list[Member]:
    i = _data_member(members, "a.txt")
    members[i] = (members[i][0], b"hel")
    return members


def _drop(members: list[Member]) -> list[Member]:
    del members[_data_member(members, "empty")]
    return members


def _extra(members: list[Member]) -> list[Member]:
    members.insert(-1, (tar_file("data/intruder"), b"surprise"))
    return members


def _after_manifest(members: list[Member]) -> list[Member]:
    return [*members, (tar_file("data/late"), b"late")]


def _no_manifest(members: list[Member]) -> list[Member]:
    return members[:-1]


def _edit_manifest(members: list[Member]) -> list[Member]:
    info, data = members[-1]
    assert data is not None
    doc = json.loads(data)
    doc["entries"][1]["mode"] = 0o777
    return [*members[:-1], (info, json.dumps(doc).encode())]


def _no_header(members: list[Member]) -> list[Member]:
    return members[1:]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_flip, "sub/big.bin: content \\(sha256\\) differs"),
        (_truncate, "a.txt: content \\(sha256\\) differs"),
        (_drop, "missing empty"),
        (_extra, "not in the manifest: intruder"),
        (_after_manifest, "follows the manifest"),
        (_no_manifest, "ends before its manifest"),
        (_edit_manifest, "does not match its own digest"),
        (_no_header, "not a compound volume backup"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] or None,
)
def test_damaged_archive_is_refused_and_volume_untouched(
    change: Callable[[list[Member]], list[Member]],
    message: str,
    volume: Path,
    archive: Path,
) -> None:
    bad = _tamper(archive, change)
    (volume / "a.txt").write_text("current data\n")
    before = snapshot(volume)
    with pytest.raises(ArchiveError, match=message):
        restore_dir(bad, volume, _Meter())
    assert snapshot(volume) == before
    assert os.listdir(volume.parent) == ["_data"]


@pytest.mark.parametrize("how", ["cut", "flip"])
def test_damaged_compressed_stream_is_refused(how: str, volume: Path, archive: Path) -> None:
    data = archive.read_bytes()
    if how == "cut":
        data = data[: len(data) // 2]
    else:
        data = data[:200] + bytes([data[200] ^ 0x10]) + data[201:]
    bad = archive.with_name("bad.tar.zst")
    bad.write_bytes(data)
    before = snapshot(volume)
    with pytest.raises(ArchiveError, match=r"damaged|truncated|differs"):
        restore_dir(bad, volume, _Meter())
    assert snapshot(volume) == before


def test_foreign_files_are_not_backups(tmp_path: Path, volume: Path) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(volume / "a.txt", arcname="a.txt")
    with pytest.raises(ArchiveError, match="not zstd-compressed"):
        read_archive(plain)
    zipped = tmp_path / "foreign.tar.zst"
    zipped.write_bytes(subprocess.run(["zstd", "-qc", str(plain)], capture_output=True).stdout)
    with pytest.raises(ArchiveError, match="not a compound volume backup"):
        read_archive(zipped)


# --- hostile paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "members",
    [
        [(tar_dir("data"), None), (tar_file("data/../escaped"), b"x")],
        [(tar_dir("data"), None), (tar_file("/abs/escaped"), b"x")],
        [(tar_dir("data"), None), (tar_file("data/a/../../escaped"), b"x")],
        [(tar_dir("data"), None), (tar_link("data/h", "/etc/passwd", tarfile.LNKTYPE), None)],
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "hardlink-outside"],
)
def test_path_traversal_is_refused(members: list[Member], tmp_path: Path) -> None:
    crafted = tmp_path / "evil.tar.zst"
    buf = [(tar_file(HEADER), b'{"format": "compound-volume-backup", "format_version": 1}')]
    write_archive(crafted, [*buf, *members])
    target = tmp_path / "volumes" / "v" / "_data"
    target.mkdir(parents=True)
    with pytest.raises(ArchiveError, match=r"unsafe path|outside the backup"):
        restore_dir(crafted, target, _Meter())
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "volumes" / "v" / "escaped").exists()
    assert os.listdir(target) == [] and os.listdir(target.parent) == ["_data"]


def test_writing_through_an_archived_symlink_is_refused(tmp_path: Path) -> None:
    """A symlink pointing outside, then a file "under" it: a consistent
    manifest does not help; the extractor never follows archive symlinks."""
    outside = tmp_path / "outside"
    outside.mkdir()
    crafted = tmp_path / "evil.tar.zst"
    craft_archive(
        crafted,
        [
            (tar_dir("data"), None),
            (tar_link("data/s", str(outside)), None),
            (tar_file("data/s/x"), b"x"),
        ],
    )
    target = tmp_path / "volumes" / "v" / "_data"
    target.mkdir(parents=True)
    with pytest.raises(ArchiveError, match="parent is not a directory of the archive"):
        restore_dir(crafted, target, _Meter())
    assert os.listdir(outside) == []
    assert os.listdir(target) == []


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    crafted = tmp_path / "dup.tar.zst"
    craft_archive(
        crafted, [(tar_dir("data"), None), (tar_file("data/f"), b"1"), (tar_file("data/f"), b"1")]
    )
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(ArchiveError, match="appears twice"):
        read_archive(crafted, DirExtractor(target, "dup"))


def _e(path: str, type_: str = "file", link: str | None = None) -> Entry:
    return Entry(path=path, type=type_, mode=0o644, uid=0, gid=0, mtime=0.0, link=link)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([_e(".", "dir"), _e("s", "symlink", "/etc"), _e("s/passwd")], "parent is not a directory"),
        ([_e(".", "dir"), _e("a/b")], "parent is not a directory"),
        ([_e(".", "dir"), _e("f"), _e("f")], "appears twice"),
        ([_e(".", "dir"), _e("h", "hardlink", "f"), _e("f")], "not an extracted file"),
    ],
    ids=["through-symlink", "no-parent", "twice", "hardlink-first"],
)
def test_check_tree_refuses_what_cannot_be_extracted_safely(
    entries: list[Entry], problem: str
) -> None:
    with pytest.raises(ArchiveError, match=problem):
        check_tree(entries, "x.tar.zst")


def test_check_tree_accepts_a_real_backup(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    check_tree(_backup(src, tmp_path / "b.tar.zst").entries, "b.tar.zst")
