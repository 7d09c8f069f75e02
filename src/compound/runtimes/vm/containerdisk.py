"""A VM's containerDisk: one OCI image that any node can pull and run as
the VM's launcher, as KubeVirt's containerDisk carries a VM's disk.

It is the launcher image plus, for one service, what the single-host driver
bind-mounts from this machine: the guest kernel, the initramfs, the base
disk, and the run dir's ``config.base`` and ``launcher.conf``. The base
disk travels as qcow2 (only the clusters the image's files use: 3 MB
for busybox where the raw ext4 is 600 MB apparent), and the instance's
overlay is made over it at start. The tag is the hash of all of it, so an
unchanged service finds its image with one inspect.

The guest configuration holds the service's environment: the image is
meant for the Swarm's own registry (hosts/registry.py), not a public one.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
import docker.errors

from compound.errors import VMError
from compound.runtimes.hostops import digest, locked

from .launcher import IN_INITRAMFS, IN_KERNEL, IN_RUN, QEMU_UID, LauncherSpec, launcher_conf
from .launcher_image import SCRIPT_PATH

REPOSITORY = "local/compound-vmdisk"
LABEL_RECIPE = "io.compound.recipe"
IN_BASE_QCOW2 = PurePosixPath("/compound/base.qcow2")
ENTRY_PATH = "/usr/local/bin/compound-swarm-entry"
# Before launcher.sh: what the single-host driver does from outside.
#  - /dev/net/tun: a Swarm service cannot ask for devices (Docker 20.10), but
#    Docker's default device cgroup allows c 10:200 in every container, so
#    with CAP_MKNOD the launcher makes the node itself; without it the
#    launcher falls back to QEMU's user networking and says so.
#  - the overlay over the qcow2 base (launcher.sh makes one over a raw disk).
ENTRY_SCRIPT = f"""#!/bin/sh
set -u
if [ ! -c /dev/net/tun ]; then
    mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200 \\
        || echo "compound-swarm-entry: cannot make /dev/net/tun" >&2
fi
mkdir -p {IN_RUN}/state
if [ ! -f {IN_RUN}/state/root.qcow2 ]; then
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
    """The raw base disk as qcow2 (cached by the disk's name,
    which is its image's id; written aside and renamed into place)."""
    out = cache_dir / "containerdisk" / f"{raw.stem}.qcow2"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with locked(out.parent / f".{out.name}.lock"):
        if out.exists():
            return out
        tmp = out.with_suffix(".tmp")
        proc = subprocess.run(
            ["qemu-img", "convert", "-O", "qcow2", str(raw), str(tmp)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise VMError(f"cannot convert the base disk {raw.name} to qcow2: {proc.stderr}")
        os.replace(tmp, out)
    return out


def _payload(spec: LauncherSpec, base: Path) -> bytes:
    """The files the launcher reads, with the owners and modes the driver
    gives them on a host: the run dir root's, setgid to QEMU's group."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add_dir(path: PurePosixPath, mode: int, gid: int = 0) -> None:
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.type, info.mode, info.gid = tarfile.DIRTYPE, mode, gid
            tar.addfile(info)

        def add_bytes(path: PurePosixPath, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        def add_file(path: PurePosixPath, src: Path) -> None:
            info = tar.gettarinfo(str(src), str(path).lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o444
            with open(src, "rb") as f:
                tar.addfile(info, f)

        add_dir(PurePosixPath("/compound"), 0o755)
        add_dir(IN_KERNEL, 0o755)
        add_file(IN_KERNEL / spec.kernel.vmlinux.name, spec.kernel.vmlinux)
        add_file(IN_INITRAMFS, spec.initramfs.path)
        add_file(IN_BASE_QCOW2, base)
        add_dir(IN_RUN, 0o2770, QEMU_UID)
        add_bytes(IN_RUN / "config.base", spec.guest.render().encode(), 0o600)
        add_bytes(IN_RUN / "launcher.conf", launcher_conf(spec).encode(), 0o600)
        add_bytes(PurePosixPath(ENTRY_PATH), ENTRY_SCRIPT.encode(), 0o755)
    return buf.getvalue()


def recipe(spec: LauncherSpec) -> dict[str, object]:
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
    """The containerDisk image of ``spec``, built now if missing: a
    container of the launcher image gets the files, and is committed."""
    key = digest(recipe(spec))
    tag = f"{REPOSITORY}:{key[:12]}"
    try:
        img = client.images.get(tag)
        if (img.labels or {}).get(LABEL_RECIPE) == key:
            return ContainerDisk(tag, str(img.id))
    except docker.errors.ImageNotFound:
        pass
    base = base_qcow2(spec.base.path, cache_dir)
    try:
        box = client.containers.create(spec.image, entrypoint=[ENTRY_PATH])
    except docker.errors.DockerException as exc:
        raise VMError(f"cannot start building the containerDisk {tag}: {exc}") from exc
    try:
        box.put_archive("/", _payload(spec, base))
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
