"""The Compose security keys of a VM service, applied inside its guest.

A container's process gets Docker's default capabilities, adjusted by
``cap_add``/``cap_drop`` (all of them when ``privileged``), no_new_privs
from ``security_opt``, ``ulimits`` and a pids limit. A VM's service process
gets exactly the same, from the guest's /init: compound-enter (the static
helper in the initramfs) shrinks the bounding and process capability sets,
sets no_new_privs and the rlimits; /init puts the service in a pids cgroup.
The guest kernel enforces them, as the host kernel does for a container.

``security_opt`` entries that ask the host's LSMs or seccomp for something
(a profile, a label) have no meaning for a guest kernel that runs neither:
``unconfined``/``disable`` are honoured as they are, anything else is
refused rather than silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from compound.errors import NotSupportedError, ServiceError
from compound.spec.model import Service

# linux/capability.h
CAP_NUMBERS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11,
    "NET_ADMIN": 12,
    "NET_RAW": 13,
    "IPC_LOCK": 14,
    "IPC_OWNER": 15,
    "SYS_MODULE": 16,
    "SYS_RAWIO": 17,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_PACCT": 20,
    "SYS_ADMIN": 21,
    "SYS_BOOT": 22,
    "SYS_NICE": 23,
    "SYS_RESOURCE": 24,
    "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26,
    "MKNOD": 27,
    "LEASE": 28,
    "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30,
    "SETFCAP": 31,
    "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33,
    "SYSLOG": 34,
    "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36,
    "AUDIT_READ": 37,
    "PERFMON": 38,
    "BPF": 39,
    "CHECKPOINT_RESTORE": 40,
}
# What Docker gives a container's process unless told otherwise.
DOCKER_DEFAULT_CAPS = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)
# sys/resource.h, by the names Compose's ulimits use
RLIMITS = {
    "cpu": 0,
    "fsize": 1,
    "data": 2,
    "stack": 3,
    "core": 4,
    "rss": 5,
    "nproc": 6,
    "nofile": 7,
    "memlock": 8,
    "as": 9,
    "locks": 10,
    "sigpending": 11,
    "msgqueue": 12,
    "nice": 13,
    "rtprio": 14,
    "rttime": 15,
}
_NO_MEANING_IN_A_GUEST = ("seccomp=unconfined", "apparmor=unconfined", "label=disable")


@dataclass(frozen=True)
class GuestHardening:
    caps: str  # hex mask of the capabilities kept, or "all"
    no_new_privileges: bool
    rlimits: str  # "RES:SOFT:HARD,..." or "-"
    pids_max: int | None


def _cap(name: str, service: str) -> str:
    cap = name.upper().removeprefix("CAP_")
    if cap != "ALL" and cap not in CAP_NUMBERS:
        raise ServiceError(
            service,
            f"unknown capability {name!r}",
            hint="capabilities are the names of capabilities(7), e.g. NET_ADMIN",
        )
    return cap


def capability_set(service: Service) -> frozenset[str]:
    """The capabilities the service's process holds, as Docker computes them."""
    if service.privileged:
        return frozenset(CAP_NUMBERS)
    adds = {_cap(c, service.name) for c in service.cap_add}
    drops = {_cap(c, service.name) for c in service.cap_drop}
    caps = set(CAP_NUMBERS) if "ALL" in adds else set(DOCKER_DEFAULT_CAPS)
    caps = set() if "ALL" in drops else caps - drops
    return frozenset(caps | (adds - {"ALL"}))


def no_new_privileges(service: Service) -> bool:
    nnp = False
    for opt in service.security_opt:
        key, _, value = opt.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges":
            nnp = value in ("", "true")
        elif opt not in _NO_MEANING_IN_A_GUEST:
            raise NotSupportedError(
                f"service {service.name!r}: security_opt {opt!r} is not applied inside a VM "
                "(its guest kernel runs no host seccomp profile, AppArmor or SELinux label)",
                hint="remove it (a VM is isolated by its own kernel), or run the service as "
                "a container",
            )
    return nnp


def rlimits(service: Service) -> str:
    items = []
    for name, limit in sorted(service.ulimits.items()):
        if name not in RLIMITS:
            raise ServiceError(
                service.name,
                f"unknown ulimit {name!r}",
                hint="one of: " + ", ".join(sorted(RLIMITS)),
            )
        items.append(f"{RLIMITS[name]}:{limit.soft}:{limit.hard}")
    return ",".join(items) or "-"


def guest_hardening(service: Service) -> GuestHardening:
    caps = capability_set(service)
    mask = sum(1 << CAP_NUMBERS[c] for c in caps)
    pids = service.pids_limit or service.deploy.resources.limits.pids
    return GuestHardening(
        caps="all" if caps == frozenset(CAP_NUMBERS) else f"{mask:x}",
        no_new_privileges=no_new_privileges(service),
        rlimits=rlimits(service),
        pids_max=pids if pids and pids > 0 else None,
    )
