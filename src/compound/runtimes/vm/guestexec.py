"""Running a command in a VM's guest through its agent, as ``exec`` means it:
the same for a VM on this machine (VMDriver.exec_capture) and for a Swarm
task on another node (hosts/vm_exec.py); only how the agent is reached
differs (agentlink.py).

- An image VM: ``/sbin/compound-exec USER WORKDIR K=V... -- CMD...`` (our
  initramfs's helper): chrooted into the service's root, with its user,
  working dir and environment unless told otherwise.
- A legacy disk: the agent runs commands as root in /, so user, working dir
  and environment are said through the guest's own shell (``su``/``sh``);
  a disk without qemu-guest-agent cannot run commands at all.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from compound.errors import NotSupportedError, ServiceError, VMError

from .qemu import GuestAgent

COMPOUND_EXEC = "/sbin/compound-exec"
# labels on a launcher (legacy.py sets them; repeated here so that reading
# them does not import the disk reader)
LABEL_VM_DISK = "io.compound.vm.disk"
LABEL_VM_AGENT = "io.compound.vm.guest-agent"


def compound_exec_args(
    command: Sequence[str],
    user: str | None = None,
    workdir: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """compound-exec's arguments: empty user/workdir mean the service's own."""
    return [
        user or "",
        workdir or "",
        *(f"{k}={v}" for k, v in (env or {}).items()),
        "--",
        *command,
    ]


def legacy_argv(
    command: Sequence[str],
    user: str | None = None,
    workdir: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv the agent runs in a legacy guest for ``command``."""
    argv = list(command)
    if not (user or workdir or env):
        return argv
    script = " ".join(shlex.quote(a) for a in argv)
    if env:
        script = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + script
    if workdir:
        script = f"cd {shlex.quote(workdir)} && {script}"
    if user:
        return ["/bin/su", "-s", "/bin/sh", user, "-c", script]
    return ["/bin/sh", "-c", script]


def no_terminal(service: str) -> NotSupportedError:
    """What an interactive or tty exec into a VM gets: the agent has no terminal."""
    return NotSupportedError(
        f"service {service!r}: interactive or tty exec into a VM is not supported yet",
        hint="run the command without -it",
    )


def no_agent(service: str) -> NotSupportedError:
    return NotSupportedError(
        f"service {service!r} is a legacy VM disk without qemu-guest-agent: compound"
        " cannot run commands in it",
        hint="install qemu-guest-agent in the guest, or use a TCP/HTTP check from another service",
    )


def is_disk(labels: Mapping[str, str]) -> bool:
    return LABEL_VM_DISK in labels


def run_in_guest(
    agent: GuestAgent,
    labels: Mapping[str, str],
    service: str,
    command: Sequence[str],
    *,
    user: str | None = None,
    workdir: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> tuple[int, bytes, bytes]:
    """Run ``command`` in the guest of the launcher labelled ``labels``
    through ``agent`` (not yet connected); (exit code, stdout, stderr)."""
    if is_disk(labels):
        if labels.get(LABEL_VM_AGENT) != "yes":
            raise no_agent(service)
        argv = legacy_argv(command, user, workdir, env)
        path, args = argv[0], argv[1:]
    else:
        path, args = COMPOUND_EXEC, compound_exec_args(command, user, workdir, env)
    try:
        with agent:
            res = agent.exec(path, args, timeout=timeout)
    except VMError:
        raise
    except OSError as exc:
        raise ServiceError(service, f"the guest agent does not answer: {exc}") from exc
    return res.exit_code, res.stdout, res.stderr
