"""An OCI image's filesystem as a read-only ext4 disk, made once per image
id and shared by every VM of that image (each writes to its own qcow2
overlay). The image is exported through the Docker Engine (a created,
never-started container's ``export()``), unpacked with GNU tar (keeps
owners, modes, device nodes, hard links, xattrs) and written with
``mkfs.ext4 -d`` — no loop mounts. e2fsprogs 1.47.0 takes only a directory
for ``-d`` (tarball input arrived in 1.47.1)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from compound.errors import ImageNotFoundError, VMError

from ._util import default_cache_dir, locked, run
from .imageconfig import ImageConfig

MiB = 1 << 20
EXPORT_TIMEOUT = 600.0
DOCKERENV = ".dockerenv"  # in every export; removed from the disk


@dataclass(frozen=True)
class BaseDisk:
    image_id: str  # sha256:...
    path: Path  # <cache>/disks/<hex>.ext4, mode 0444
    size: int  # bytes (apparent; the file is sparse)
    config: ImageConfig


def disk_size(content_bytes: int, inodes: int) -> int:
    """Filesystem size: content + metadata slack + free space for the
    instance's writes (the file is sparse, so free space costs nothing until
    written, and writes land in the instance overlay anyway)."""
    slack = content_bytes // 4 + inodes * 512 + 64 * MiB
    free = max(512 * MiB, content_bytes // 2)
    size = content_bytes + slack + free
    return (size + MiB - 1) // MiB * MiB


def _tree_usage(root: Path) -> tuple[int, int]:
    total, count = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames + dirnames:
            count += 1
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, n))
                total += (st.st_size + 4095) // 4096 * 4096
        del dirpath
    return total, count


@contextlib.contextmanager
def exported_image(client: docker.DockerClient, image_id: str) -> Iterator[Iterator[bytes]]:
    """The image's filesystem as a tar stream: the export of a created,
    never-started container (removed afterwards)."""
    try:
        container = client.containers.create(
            image_id,
            command=["/"],
            entrypoint=[""],
            network_disabled=True,
            labels={"io.compound.purpose": "vm-export"},
        )
    except docker.errors.APIError as exc:
        raise VMError(f"cannot create a container to export {image_id}: {exc}") from exc
    try:
        # types-docker says str; the engine streams bytes.
        stream: Iterator[Any] = iter(container.export(chunk_size=1 << 20))
        yield stream
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


def _export_to_dir(client: docker.DockerClient, image_id: str, dest: Path) -> None:
    with exported_image(client, image_id) as stream:
        deadline = time.monotonic() + EXPORT_TIMEOUT
        tar = subprocess.Popen(
            [
                "tar",
                "-x",
                "--numeric-owner",
                "--same-permissions",
                "--xattrs",
                "--xattrs-include=*",
                "-C",
                str(dest),
                "-f",
                "-",
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,  # tar says little; no deadlock
        )
        assert tar.stdin is not None
        try:
            for chunk in stream:
                tar.stdin.write(chunk)
                if time.monotonic() > deadline:
                    raise VMError(f"exporting {image_id} took more than {EXPORT_TIMEOUT:.0f}s")
            tar.stdin.close()
            tar.wait(timeout=max(1.0, deadline - time.monotonic()))
            err = tar.stderr.read() if tar.stderr else b""
        except BaseException:
            tar.kill()
            tar.wait(10)
            raise
        if tar.returncode != 0:
            raise VMError(f"unpacking {image_id} failed: {err.decode(errors='replace')[-500:]}")
    # Docker's init layer adds these; a VM is not a Docker container.
    with contextlib.suppress(FileNotFoundError):
        (dest / DOCKERENV).unlink()


def ensure_base_disk(
    client: docker.DockerClient, image: str, cache_dir: Path | None = None
) -> BaseDisk:
    """The read-only ext4 disk of ``image`` (a name or id present locally)."""
    try:
        img = client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFoundError(
            f"image {image!r} is not present locally", hint="pull or build it first"
        ) from exc
    except docker.errors.APIError as exc:
        raise VMError(f"cannot inspect image {image!r}: {exc}") from exc
    attrs: dict[str, Any] = img.attrs
    image_id: str = attrs["Id"]
    config = ImageConfig.from_inspect(attrs)
    if attrs.get("Architecture") not in (None, "", "amd64"):
        raise VMError(f"image {image!r} is {attrs.get('Architecture')}; VMs run amd64 guests")
    disks = (cache_dir or default_cache_dir()) / "disks"
    path = disks / f"{image_id.removeprefix('sha256:')}.ext4"
    with locked(disks / f".{path.name}.lock"):
        if not path.exists():
            build_disk(client, image_id, path)
    return BaseDisk(image_id=image_id, path=path, size=path.stat().st_size, config=config)


def build_disk(client: docker.DockerClient, image_id: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        _export_to_dir(client, image_id, root)
        content, inodes = _tree_usage(root)
        size = disk_size(content, inodes)
        part = Path(tmp) / "disk.ext4"
        with part.open("wb") as f:
            f.truncate(size)
        run(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-d",
                str(root),
                "-L",
                "compound-root",
                "-U",
                "clear",  # no random UUID: same image, same bytes where mkfs allows
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0",
                "-N",
                str(max(inodes * 2, 16384)),
                str(part),
                f"{size // 1024}k",
            ],
            timeout=600,
            what="mkfs.ext4",
        )
        os.chmod(part, 0o444)  # shared by every instance: never written
        os.replace(part, path)
