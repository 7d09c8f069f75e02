"""How compound reaches a guest agent's socket: one client (``GuestAgent``
in qemu.py), two links.

- ``UnixSocketLink``: the socket is on this machine (the run dir a launcher
  bind-mounts); one client at a time is an flock on ``<socket>.lock``.
- ``CommandLink``: the socket is somewhere only a command reaches, e.g.
  inside a Swarm task on another node (``docker exec -i LAUNCHER socat -
  UNIX-CONNECT:...``). One end of a socketpair is the command's stdin and
  stdout, the client speaks on the other: bytes pass unchanged, so the
  protocol code is the same for both. The command takes the lock itself,
  where the socket is (``flock``), and exits ``busy_exit`` when it cannot.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from compound.errors import VMError


class AgentLink(Protocol):
    where: str  # for messages: the socket's path, or where the command reaches it
    attempt_seconds: float  # how long one connection waits for the agent's first answer

    def acquire(self, deadline: float) -> None:
        """One client per guest (QEMU serves one connection, the next one waits
        unanswered); raises VMError when another still holds it at ``deadline``."""

    def open(self, timeout: float) -> socket.socket: ...

    def disconnect(self) -> None:
        """After the socket was closed: end whatever ``open`` started."""

    def release(self) -> None: ...

    def fatal(self) -> str | None:
        """Why retrying cannot help (the command failed), or None."""


class UnixSocketLink:
    attempt_seconds = 2.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._lock_fd: int | None = None

    def acquire(self, deadline: float) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise busy(self.where) from None
                time.sleep(0.05)

    def open(self, timeout: float) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(str(self.path))
        except OSError:
            s.close()
            raise
        return s

    def disconnect(self) -> None:
        pass

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # drops the flock
            self._lock_fd = None

    def fatal(self) -> str | None:
        return None


class CommandLink:
    # the command starts first (docker exec: a round trip to the node's
    # engine, then the lock), so the first answer may take a while
    attempt_seconds = 8.0

    def __init__(self, argv: Sequence[str], where: str, *, busy_exit: int | None = None) -> None:
        self.argv = list(argv)
        self.where = where
        self.busy_exit = busy_exit
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._failed: str | None = None  # the command could not even start

    def acquire(self, deadline: float) -> None:
        pass  # the command locks, next to the socket

    def open(self, timeout: float) -> socket.socket:
        ours, theirs = socket.socketpair()
        # a file, not a pipe nobody reads while the relay runs; closed in disconnect()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=self._stderr,
                close_fds=True,
            )
        except OSError as exc:
            self._failed = f"cannot run {self.argv[0]}: {exc.strerror or exc}"
            ours.close()
            raise
        finally:
            theirs.close()  # the command holds it now: its exit closes our end's peer
        ours.settimeout(timeout)
        return ours

    def disconnect(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # our end is closed: the relay sees EOF and ends by itself
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def release(self) -> None:
        self.disconnect()

    def fatal(self) -> str | None:
        if self._failed:
            return self._failed
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        if self.busy_exit is not None and proc.returncode == self.busy_exit:
            return "busy with another command"
        err = b""
        if self._stderr is not None:
            self._stderr.seek(0)
            err = self._stderr.read()
        lines = err.decode(errors="replace").strip().splitlines()
        return f"{self.argv[0]} exited {proc.returncode}" + (f": {lines[-1]}" if lines else "")


def busy(where: str) -> VMError:
    return VMError(
        f"guest agent at {where} is busy with another command",
        hint="try again when it has finished",
    )


def close_quietly(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()
