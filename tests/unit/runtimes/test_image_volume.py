"""Image volumes: names keyed by image id and subpath; a subpath's archive rebased."""

from __future__ import annotations

import io
import tarfile

from compound.engine.imagevolume import _strip_first, volume_name


def test_the_name_changes_with_the_image_id_and_the_subpath() -> None:
    a = volume_name("shop", "sha256:" + "a" * 64, None)
    assert a == "shop_image-aaaaaaaaaaaa"
    assert volume_name("shop", "sha256:" + "b" * 64, None) != a
    etc = volume_name("shop", "sha256:" + "a" * 64, "etc")
    assert etc.startswith(a + "-") and etc != volume_name("shop", "sha256:" + "a" * 64, "usr")


def test_a_subpath_archive_is_rebased_to_the_volume_root() -> None:
    src = io.BytesIO()
    with tarfile.open(fileobj=src, mode="w") as tar:
        for name, kind in (("etc", tarfile.DIRTYPE), ("etc/ssl", tarfile.DIRTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
        data = b"root:x:0:0\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc/ssl/passwd-again")
        link.type, link.linkname = tarfile.LNKTYPE, "etc/passwd"
        tar.addfile(link)
    src.seek(0)
    dst = io.BytesIO()
    _strip_first(src, dst)
    dst.seek(0)
    with tarfile.open(fileobj=dst) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["passwd", "ssl", "ssl/passwd-again"]
        assert members["ssl/passwd-again"].linkname == "passwd"
        reader = tar.extractfile("passwd")
        assert reader is not None and reader.read() == b"root:x:0:0\n"
