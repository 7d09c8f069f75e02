"""A VM's containerDisk: one OCI image that any node can pull and run as
the VM's launcher, as KubeVirt's containerDisk carries a VM's disk.

It is the launcher image plus, for one service, what the single-host driver
bind-mounts from this machine, and the files its run dir starts with:

- an image VM: the guest kernel, the initramfs, the base disk, and the run
  dir's ``config.base`` and ``launcher.conf``. The base disk travels as
  qcow2 (only the clusters the image's files use: 3 MB for busybox where
  the raw ext4 is 600 MB apparent), and the instance's overlay is made over
  it at start.
- a disk service (legacy.py): the disk itself, as qcow2 (a raw or vmdk
  disk converted once; a qcow2 one flattened, its backing chain included),
  at /compound/disk, and the run dir's ``config.base``, ``launcher.conf``
  and the cloud-init seed. launcher.sh makes the overlay over it as on a
  single host: in the task's run dir, or on the service's overlay volume
  when it is persistent.

The tag is the hash of all of it, so an unchanged service finds its image
with one inspect. The guest configuration holds the service's environment:
the image is meant for the Swarm's own registry (hosts/registry.py), not a
public one.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import docker
import docker.errors

from compound.errors import VMError
from compound.runtimes.hostops import digest, locked

from .launcher import IN_INITRAMFS, IN_KERNEL, IN_RUN, QEMU_UID, LauncherSpec, launcher_conf
from .launcher_image import SCRIPT_PATH
from .legacy import IN_DISK

REPOSITORY = "local/compound-vmdisk"
LABEL_RECIPE = "io.compound.recipe"
IN_BASE_QCOW2 = PurePosixPath("/compound/base.qcow2")
ENTRY_PATH = "/usr/local/bin/compound-swarm-entry"
# Before launcher.sh: what the single-host driver does from outside.
#  - /dev/net/tun: a Swarm service cannot ask for devices (Docker 20.10), but
#    Docker's default device cgroup allows c 10:200 in every container, so
#    with CAP_MKNOD the launcher makes the node itself; without it the
#    launcher falls back to QEMU's user networking and says so.
#  - an image VM's overlay over the qcow2 base (launcher.sh makes one over a
#    raw disk; a disk service's, over /compound/disk, it makes itself).
ENTRY_SCRIPT = f"""#!/bin/sh
set -u
if [ ! -c /dev/net/tun ]; then
    mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200 \\
        || echo "compound-swarm-entry: cannot make /dev/net/tun" >&2
fi
mkdir -p {IN_RUN}/state
if [ -f {IN_BASE_QCOW2} ] && [ ! -f {IN_RUN}/state/root.qcow2 ]; then
    qemu-img create -q -f qcow2 -b {IN_BASE_QCOW2} -F qcow2 {IN_RUN}/state/root.qcow2.tmp \\
        && mv {IN_RUN}/state/root.qcow2.tmp {IN_RUN}/state/root.qcow2 || exit 125
fi
exec {SCRIPT_PATH} "$@"
"""


@dataclass(frozen=True)
class ContainerDisk:
    tag: str
    id: str


def base_qcow2(raw: Path, cache_dir: Path) -> Path:
    """The raw base disk as qcow2 (cached by the disk's name, which is its
    image's id)."""
    return as_qcow2(raw, raw.stem, cache_dir, "raw")


def as_qcow2(src: Path, key: str, cache_dir: Path, fmt: str | None = None) -> Path:
    """``src`` converted to a standalone qcow2, cached as ``<key>.qcow2``
    (written aside and renamed into place)."""
    out = cache_dir / "containerdisk" / f"{key}.qcow2"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out.parent / f".{out.name}.lock"):
        if out.exists():
            return out
        tmp = out.with_suffix(".tmp")
        source = [*(["-f", fmt] if fmt else []), str(src)]
        proc = subprocess.run(
            ["qemu-img", "convert", *source, "-O", "qcow2", str(tmp)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise VMError(f"cannot convert the disk {src.name} to qcow2: {proc.stderr}")
        os.replace(tmp, out)
    return out


@dataclass(frozen=True)
class Payload:
    """What a containerDisk adds to the launcher image."""

    files: tuple[tuple[PurePosixPath, Path], ...]  # read-only, from this machine
    run_files: tuple[tuple[str, str], ...]  # the run dir's first content (relative path, text)


def image_payload(spec: LauncherSpec, cache_dir: Path) -> Payload:
    """An image VM's: kernel, initramfs, base disk (qcow2), guest config."""
    return Payload(
        files=(
            (IN_KERNEL / spec.kernel.vmlinux.name, spec.kernel.vmlinux),
            (IN_INITRAMFS, spec.initramfs.path),
            (IN_BASE_QCOW2, base_qcow2(spec.base.path, cache_dir)),
        ),
        run_files=(("config.base", spec.guest.render()), ("launcher.conf", launcher_conf(spec))),
    )


def disk_payload(
    disk: Path, fmt: str, disk_id: str, run_files: Mapping[str, str], cache_dir: Path
) -> Payload:
    """A disk service's: the disk as qcow2 at /compound/disk (launcher.conf
    must say qcow2), the run dir's files. ``disk_id`` names the disk's
    content (legacy.disk_id)."""
    key = disk_id.replace(":", "-")
    return Payload(
        files=((IN_DISK, as_qcow2(disk, key, cache_dir, fmt)),),
        run_files=tuple(sorted(run_files.items())),
    )


def _tar(payload: Payload, out: IO[bytes]) -> None:
    """The payload's files as a tar written to ``out``, with the owners and
    modes the driver gives them on a host: the run dir root's, setgid to
    QEMU's group, its files root's alone (the guest config holds the
    environment). A file, not memory: a disk may be gigabytes."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        made: set[PurePosixPath] = set()

        def add_dir(path: PurePosixPath, mode: int, gid: int = 0) -> None:
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.type, info.mode, info.gid = tarfile.DIRTYPE, mode, gid
            tar.addfile(info)
            made.add(path)

        def add_bytes(path: PurePosixPath, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        def add_file(path: PurePosixPath, src: Path) -> None:
            if path.parent not in made and path.parent != PurePosixPath("/"):
                add_dir(path.parent, 0o755)
            info = tar.gettarinfo(str(src), str(path).lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o444
            with open(src, "rb") as f:
                tar.addfile(info, f)

        add_dir(PurePosixPath("/compound"), 0o755)
        for path, src in payload.files:
            add_file(path, src)
        add_dir(IN_RUN, 0o2770, QEMU_UID)
        for rel, text in payload.run_files:
            path = IN_RUN / rel
            if path.parent not in made:
                add_dir(path.parent, 0o700)
            add_bytes(path, text.encode(), 0o600)
        add_bytes(PurePosixPath(ENTRY_PATH), ENTRY_SCRIPT.encode(), 0o755)


def recipe(spec: LauncherSpec) -> dict[str, object]:
    """An image VM's containerDisk recipe (without building anything)."""
    return {
        "launcher": spec.image,
        "kernel": str(spec.kernel.vmlinux),
        "initramfs": str(spec.initramfs.path),
        "base": spec.base.image_id,
        "config": spec.guest.render(),
        "conf": launcher_conf(spec),
        "entry": ENTRY_SCRIPT,
    }


def ensure_container_disk(
    client: docker.DockerClient, spec: LauncherSpec, cache_dir: Path
) -> ContainerDisk:
    """An image VM's containerDisk (see :func:`build`)."""
    return build(client, spec.image, lambda: image_payload(spec, cache_dir), recipe(spec))


def ensure_disk_container_disk(
    client: docker.DockerClient,
    launcher_image: str,
    disk: Path,
    fmt: str,
    disk_id: str,
    run_files: Mapping[str, str],
    cache_dir: Path,
) -> ContainerDisk:
    """A disk service's containerDisk (see :func:`build`)."""
    key: dict[str, object] = {
        "launcher": launcher_image,
        "disk": disk_id,
        "run": dict(sorted(run_files.items())),
        "entry": ENTRY_SCRIPT,
    }
    return build(
        client,
        launcher_image,
        lambda: disk_payload(disk, fmt, disk_id, run_files, cache_dir),
        key,
    )


def build(
    client: docker.DockerClient,
    launcher_image: str,
    payload: Callable[[], Payload],
    key_recipe: dict[str, object],
) -> ContainerDisk:
    """The containerDisk whose recipe is ``key_recipe``, built now if missing
    (``payload`` is only made then): a container of the launcher image gets
    the files, and is committed."""
    key = digest(key_recipe)
    tag = f"{REPOSITORY}:{key[:12]}"
    try:
        img = client.images.get(tag)
        if (img.labels or {}).get(LABEL_RECIPE) == key:
            return ContainerDisk(tag, str(img.id))
    except docker.errors.ImageNotFound:
        pass
    made = payload()
    try:
        box = client.containers.create(launcher_image, entrypoint=[ENTRY_PATH])
    except docker.errors.DockerException as exc:
        raise VMError(f"cannot start building the containerDisk {tag}: {exc}") from exc
    try:
        with tempfile.TemporaryFile() as data:
            _tar(made, data)
            data.seek(0)
            box.put_archive("/", data)
        repo, _, version = tag.partition(":")
        box.commit(
            repository=repo,
            tag=version,
            changes=[f'ENTRYPOINT ["{ENTRY_PATH}"]', f"LABEL {LABEL_RECIPE}={key}"],
        )
    except docker.errors.DockerException as exc:
        raise VMError(f"cannot build the containerDisk {tag}: {exc}") from exc
    finally:
        box.remove(force=True)
    return ContainerDisk(tag, str(client.images.get(tag).id))
