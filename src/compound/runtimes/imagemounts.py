"""Image volumes as ordinary read-only volume mounts, for every runtime.

A service's ``type: image`` mounts are replaced, at create time, by mounts
of the volumes ``engine/imagevolume.py`` fills from the image, declared as
external volumes of a copy of the project: the container and VM drivers
then mount them through their usual volume path (a VM through virtio-fs).
The service's configuration hash is the planner's, made before this, so
the replacement never reads as a change.
"""

from __future__ import annotations

from collections.abc import Callable

import docker

from compound.engine.imagevolume import ensure_image_volume
from compound.spec.model import Project, Service, Volume, VolumeMount


def with_image_volumes(
    client: docker.DockerClient,
    project: Project,
    service: Service,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[Project, Service]:
    if not any(v.type == "image" for v in service.volumes):
        return project, service
    volumes = dict(project.volumes)
    mounts: list[VolumeMount] = []
    for vol in service.volumes:
        if vol.type != "image":
            mounts.append(vol)
            continue
        name = ensure_image_volume(client, project.name, vol.source or "", vol.subpath, say)
        key = f"x-image-volume:{name}"  # no file can declare this key
        volumes[key] = Volume(key=key, name=name, external=True)
        mounts.append(
            VolumeMount(type="volume", source=key, target=vol.target, read_only=True, nocopy=True)
        )
    return (
        project.model_copy(update={"volumes": volumes}),
        service.model_copy(update={"volumes": tuple(mounts)}),
    )
