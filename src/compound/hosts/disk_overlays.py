"""A persistent VM disk service's overlay on the Swarm: a named local volume.

A disk service (``x-compound.vm.disk``) boots from a per-task overlay over
the disk in its containerDisk, gone with the task. With ``persistent: true``
what the guest wrote must outlive the task, as on a single host, where the
overlay lives on the project volume ``<project>_<service>-disk-overlay``
(legacy.overlay_volume). Here the same volume becomes part of the project,
mounted where the launcher keeps the overlay, before the stack is made: the
stack declares it, and the service is pinned to the node that holds it with
the warning every local volume gets (stack.py), never started elsewhere on
an empty overlay.
"""

from __future__ import annotations

from compound.spec.model import Project, VolumeMount


def with_disk_overlays(project: Project) -> Project:
    persistent = [
        name
        for name, svc in project.services.items()
        if svc.x_compound.vm.disk and svc.x_compound.vm.persistent
    ]
    if not persistent:
        return project
    from compound.runtimes.vm.legacy import IN_PERSIST, overlay_volume  # only when one is

    services = dict(project.services)
    volumes = dict(project.volumes)
    for name in persistent:
        vol = overlay_volume(project.name, name)
        mount = VolumeMount(type="volume", source=vol.key, target=str(IN_PERSIST))
        svc = services[name]
        services[name] = svc.model_copy(update={"volumes": (*svc.volumes, mount)})
        volumes[vol.key] = vol
    return project.model_copy(update={"services": services, "volumes": volumes})
