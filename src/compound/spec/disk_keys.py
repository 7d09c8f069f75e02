"""Service keys a VM disk service (``x-compound.vm.disk``) cannot apply.

An image VM's process is started by compound's /init in the guest, which
applies the container keys (capabilities, no_new_privs, rlimits, user, ...)
as Docker would. A disk boots its own OS with its own init: compound has no
process inside that guest to apply them. Keys that would confine or widen
what the guest's processes may do are refused (a silently dropped
``cap_drop: [ALL]`` would look like protection that is not there); keys that
only shape the process are ignored with a warning. Each names what applies
instead. What a disk service does honour: networks, ports/expose, hostname,
labels, restart, stop_grace_period, healthcheck (through qemu-guest-agent),
memory and CPU limits, depends_on, deploy.replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .nodes import Path

_INSIDE = "configure it inside the guest (its own init, units, sysctl.conf, limits.conf)"

# key -> what applies instead (refused: it is about the guest's security)
REFUSED: dict[str, str] = {
    "cap_add": _INSIDE,
    "cap_drop": _INSIDE + "; the QEMU launcher itself is always confined",
    "privileged": "the guest's root is already root in the guest; the launcher stays confined",
    "security_opt": _INSIDE + " (its own AppArmor/SELinux/seccomp)",
    "user": "the guest's units say which user runs what",
    "group_add": _INSIDE,
    "read_only": "the disk is never written: each instance boots from an overlay"
    " (persistent: true keeps it); make the guest's root read-only inside it",
    "sysctls": _INSIDE,
    "ulimits": _INSIDE,
    "pids_limit": _INSIDE + "; deploy.resources.limits.memory/cpus bound the whole VM",
    "devices": "a disk service gets no host devices",
    "userns_mode": "the guest has its own kernel and users",
}
# key -> what applies instead (ignored with a warning: it shapes a process)
IGNORED: dict[str, str] = {
    "command": "the guest starts its own services at boot",
    "entrypoint": "the guest starts its own services at boot",
    "environment": "set it in the guest's units",
    "env_file": "set it in the guest's units",
    "working_dir": "set it in the guest's units",
    "init": "the guest has its own init",
    "stop_signal": "stop is an ACPI power-down over QMP, then stop_grace_period, then a kill",
    "tmpfs": "mount it in the guest's fstab",
    "volumes": "the guest has its own disk; share data over the network (NFS, a service)",
    "secrets": "pass them in over the network or cloud-init",
    "configs": "pass them in over the network or cloud-init",
    "shm_size": "the guest sizes its own /dev/shm",
    "tty": "logs are the serial console",
    "stdin_open": "logs are the serial console",
}
RUNTIME = "a VM disk service (x-compound.vm.disk) boots its own OS and init, so compound"


def check_disk_service_keys(
    raw: Mapping[str, Any],
    at: Callable[[str], Path],
    warn: Callable[[Path, str], None],
    refuse: Callable[[Path, str, str], None],
) -> None:
    for key, instead in REFUSED.items():
        if key in raw and raw[key] not in (None, False, [], {}):
            refuse(
                at(key),
                f"{RUNTIME} cannot apply {key!r} inside the guest",
                f"remove it; {instead}",
            )
    for key, instead in IGNORED.items():
        if key in raw and raw[key] not in (None, False, [], {}):
            warn(at(key), f"ignored: {RUNTIME} has no process of its own to apply it to; {instead}")
