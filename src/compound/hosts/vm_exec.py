"""``compound swarm exec`` into a VM service: the command runs in the guest,
as single-host ``compound exec`` runs it (runtimes/vm/guestexec.py), not in
the launcher container that holds QEMU.

The guest agent's socket is in the task's run dir, inside the launcher on
whichever node runs it. compound reaches it with the node's engine:
``docker exec -i LAUNCHER flock ... socat - UNIX-CONNECT:<run dir>/qga.sock``
relays the agent's byte stream over the exec's stdin/stdout (socat is in
the launcher image), and the same GuestAgent client speaks on it
(agentlink.CommandLink). flock takes the run dir's ``qga.sock.lock``, the
lock a single-host exec takes too, so two clients never share the socket.

``docker exec`` runs with the launcher's capabilities, which do not include
DAC_OVERRIDE, and QEMU (its own uid, unless a 9p volume or a disk keeps it
root) owns the socket: socat connects as the socket's owner (setpriv, with
the launcher's SETUID/SETGID), flock stays root's.
"""

from __future__ import annotations

from compound.runtimes.vm.agentlink import CommandLink
from compound.runtimes.vm.launcher import IN_RUN
from compound.runtimes.vm.qemu import GuestAgent

from .deploy import ExecTarget
from .engine import cli_host

BUSY_EXIT = 75  # flock's exit when another client holds the agent (EX_TEMPFAIL)
LOCK_WAIT = 5  # seconds flock waits for it (within CommandLink.attempt_seconds)


# run in the launcher by `sh -c RELAY sh SOCKET`
RELAY = (
    'owner=$(stat -c %u:%g "$1") || exit 1; '
    f'exec flock -w {LOCK_WAIT} -E {BUSY_EXIT} "$1.lock" '
    'setpriv --reuid="${owner%:*}" --regid="${owner#*:}" --clear-groups '
    'socat - "UNIX-CONNECT:$1"'
)


def relay_argv(docker_host: str, container: str) -> list[str]:
    """The command whose stdin/stdout are the guest agent's socket in ``container``."""
    sock = f"{IN_RUN}/qga.sock"
    return ["docker", "--host", docker_host, "exec", "-i", container, "sh", "-c", RELAY, "sh", sock]


def guest_agent(target: ExecTarget, timeout: float = 10.0) -> GuestAgent:
    link = CommandLink(
        relay_argv(cli_host(target.host), target.container),
        f"{target.host.name}:{target.task}",
        busy_exit=BUSY_EXIT,
    )
    return GuestAgent(link=link, timeout=timeout)
