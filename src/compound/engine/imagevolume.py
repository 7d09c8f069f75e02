"""`volumes[].type: image` on an engine without image mounts (before Docker 28).

The image's filesystem (or ``image.subpath`` of it) is copied once into a
named volume, ``<project>_image-<id12>[-<subpath hash>]``, labelled as the
project's, which instances then mount read-only. The name holds the image
*id*, so a rebuilt or re-pulled image gets a fresh copy at its next
create; `down -v` removes these volumes with the project's others.

Why per project rather than shared by image id: its lifetime is then the
project's (``down -v``), and no project can remove a copy another still
mounts; the cost is one copy per project and image, made in seconds.

The copy goes through the engine alone (so it also works for a remote
engine): a reader container of the image (never started) is exported, or
its subpath read, with the archive API; a filler container mounts the new
volume and receives the archive. The filler is created first, and its
creation creates the labelled volume, so a volume without a filler is
complete: a copy interrupted at any point leaves a filler behind, and the
next `up` discards that volume and copies again.
"""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import tempfile
import uuid
from collections.abc import Callable
from typing import IO, Any, cast

import docker
import docker.errors

from compound import __version__
from compound.errors import ImageNotFoundError

from .client import engine_errors
from .labels import LABEL_PREFIX, LABEL_PROJECT, LABEL_VERSION

LABEL_IMAGE_VOLUME = f"{LABEL_PREFIX}.image-volume"  # on the volume: the image id it holds
LABEL_FILLING = f"{LABEL_PREFIX}.image-volume.filling"  # on the filler: the volume it fills
FILL_AT = "/compound-image-volume"


def volume_name(project: str, image_id: str, subpath: str | None) -> str:
    digest = image_id.removeprefix("sha256:")[:12]
    name = f"{project}_image-{digest}"
    if subpath:
        name += "-" + hashlib.sha256(subpath.encode()).hexdigest()[:8]
    return name


def ensure_image_volume(
    client: docker.DockerClient,
    project: str,
    image: str,
    subpath: str | None,
    say: Callable[[str], None] = lambda _m: None,
) -> str:
    """The engine name of the volume holding ``image``'s files (copied now
    unless a complete copy exists)."""
    image_id = _image_id(client, image)
    name = volume_name(project, image_id, subpath)
    with engine_errors(f"inspect volume {name!r}"):
        try:
            client.api.inspect_volume(name)
            exists = True
        except docker.errors.NotFound:
            exists = False
    stale = _fillers(client, name)
    if exists and not stale:
        return name
    for filler in stale:  # an interrupted copy: start over
        _remove_container(client, filler)
    if exists:
        with engine_errors(f"remove the incomplete volume {name!r}"):
            client.api.remove_volume(name, force=True)
    say(f"copying {image}{':/' + subpath if subpath else ''} into volume {name}")
    _fill(client, project, image, image_id, subpath, name)
    return name


def _image_id(client: docker.DockerClient, image: str) -> str:
    with engine_errors(f"inspect image {image!r}"):
        try:
            return str(cast(Any, client.api).inspect_image(image)["Id"])
        except docker.errors.ImageNotFound:
            raise ImageNotFoundError(
                f"image {image!r} (an image volume's source) is not on this engine",
                hint=f"pull or load it first (`docker pull {image}`, or `docker load`)",
            ) from None


def _fillers(client: docker.DockerClient, volume: str) -> list[str]:
    with engine_errors("list image-volume fillers"):
        found = client.api.containers(all=True, filters={"label": f"{LABEL_FILLING}={volume}"})
    return [str(c["Id"]) for c in found]


def _remove_container(client: docker.DockerClient, cid: str) -> None:
    with contextlib.suppress(docker.errors.NotFound), engine_errors("remove a helper container"):
        client.api.remove_container(cid, force=True)


def _fill(
    client: docker.DockerClient,
    project: str,
    image: str,
    image_id: str,
    subpath: str | None,
    name: str,
) -> None:
    tag = uuid.uuid4().hex[:8]
    labels = {LABEL_PROJECT: project, LABEL_IMAGE_VOLUME: image_id, LABEL_VERSION: __version__}
    filler = reader = None
    try:
        with engine_errors(f"create the volume {name!r}"):
            api = cast(Any, client.api)  # docker's stubs type mounts as Mount objects only
            filler = api.create_container(
                image_id,
                command=["true"],
                name=f"{name}-fill-{tag}",
                labels={LABEL_FILLING: name, LABEL_PROJECT: project},
                host_config=api.create_host_config(
                    mounts=[
                        {
                            "Type": "volume",
                            "Source": name,
                            "Target": FILL_AT,
                            "VolumeOptions": {"NoCopy": True, "Labels": labels},
                        }
                    ]
                ),
            )["Id"]
            reader = client.api.create_container(
                image_id, command=["true"], name=f"{name}-read-{tag}"
            )["Id"]
        with tempfile.TemporaryFile() as raw, tempfile.TemporaryFile() as tree:
            with engine_errors(f"read the files of {image!r}"):
                if subpath:
                    stream, _ = client.api.get_archive(reader, "/" + subpath)
                else:
                    stream = client.api.export(reader)
                for chunk in stream:
                    raw.write(chunk)
            raw.seek(0)
            if subpath:
                _strip_first(raw, tree)
                source: IO[bytes] = tree
            else:
                source = raw
            source.seek(0)
            with engine_errors(f"copy the files of {image!r} into volume {name!r}"):
                client.api.put_archive(filler, FILL_AT, source)
    except BaseException:
        with contextlib.suppress(Exception):
            for cid in (reader, filler):
                if cid:
                    _remove_container(client, cid)
            client.api.remove_volume(name, force=True)
        raise
    _remove_container(client, reader)
    _remove_container(client, filler)  # last: from now on the volume counts as complete


def _strip_first(src: IO[bytes], dst: IO[bytes]) -> None:
    """The archive API names entries after the path's last component
    (``etc/passwd`` for ``/etc``): rewrite them relative to the path itself."""
    with tarfile.open(fileobj=src, mode="r|") as tin, tarfile.open(fileobj=dst, mode="w|") as tout:
        for member in tin:
            _, _, rest = member.name.partition("/")
            if not rest:
                continue  # the directory itself: the volume's root stands for it
            member.name = rest
            if member.islnk():
                member.linkname = member.linkname.partition("/")[2]
            tout.addfile(member, tin.extractfile(member) if member.isreg() else None)
