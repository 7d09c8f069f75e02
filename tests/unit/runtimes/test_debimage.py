"""The Debian image builder's pure parts: recipe keys and the minimal tar."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from compound.errors import EngineError
from compound.runtimes.debimage import DebImage, ImageFile, write_minimal_tar
from compound.runtimes.hostops import digest

IMAGE = DebImage(repository="local/x", packages=("haproxy",), what="x image", error=EngineError)


def test_recipe_covers_everything_that_shapes_the_image() -> None:
    key = digest(IMAGE.recipe())
    assert key == digest(DebImage("local/x", ("haproxy",), "x image").recipe())
    variants = [
        DebImage("local/x", ("haproxy", "curl"), "x image"),
        DebImage("local/x", ("haproxy",), "x image", variant="essential"),
        DebImage("local/x", ("haproxy",), "x image", options=("--hook-dir=/h",)),
        DebImage("local/x", ("haproxy",), "x image", files=(ImageFile("/a", "1"),)),
        DebImage("local/x", ("haproxy",), "x image", files=(ImageFile("/a", "1", 0o755),)),
        DebImage("local/x", ("haproxy",), "x image", changes=('ENTRYPOINT ["/a"]',)),
        DebImage("local/x", ("haproxy",), "x image", only=("/usr/sbin/haproxy",)),
    ]
    keys = {digest(v.recipe()) for v in variants}
    assert key not in keys and len(keys) == len(variants)


def tree(root: Path) -> None:
    """A merged-/usr tree: /lib -> usr/lib, a versioned library and its soname link."""
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/share/doc").mkdir(parents=True)
    (root / "usr/share/doc/big").write_text("not wanted")
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/x86_64-linux-gnu/libz.so.1.2").write_text("lib")
    (root / "usr/lib/x86_64-linux-gnu/libz.so.1").symlink_to("libz.so.1.2")
    (root / "usr/sbin/tool.conf").write_text("conf")  # not executable: no ldd


def test_minimal_tar_keeps_the_paths_and_the_symlinks_on_the_way(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tree(root)
    out = tmp_path / "min.tar"
    write_minimal_tar(root, ["/lib/x86_64-linux-gnu/libz.so.1", "/usr/sbin/tool.conf"], out, IMAGE)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["./lib"].issym() and members["./lib"].linkname == "usr/lib"
    soname = members["./usr/lib/x86_64-linux-gnu/libz.so.1"]
    assert soname.issym() and soname.linkname == "libz.so.1.2"
    assert members["./usr/lib/x86_64-linux-gnu/libz.so.1.2"].isfile()
    assert members["./usr/sbin/tool.conf"].isfile()
    assert not any("share" in name for name in members)


def test_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    tree(root)
    with pytest.raises(EngineError, match="/usr/sbin/haproxy is not in the built tree"):
        write_minimal_tar(root, ["/usr/sbin/haproxy"], tmp_path / "t.tar", IMAGE)


def test_a_symlink_loop_ends(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with pytest.raises(EngineError, match="too many symlinks"):
        write_minimal_tar(root, ["/a"], tmp_path / "t.tar", IMAGE)
