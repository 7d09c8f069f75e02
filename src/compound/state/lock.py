"""One writer per project: ``up``, ``down``, ``rollback`` and ``volume
restore`` hold an exclusive lock on ``<state dir>/locks/<project>.lock``.

Two writers at once raced to create the same network and left two networks
with one name, which wedged every later ``up``. ``flock`` is released by the
kernel when the process ends however it ends (SIGKILL included), so a lock
is never left behind; the file only records who holds it, for the message
a waiting caller prints. The lock is per host: two machines driving one
remote engine are not serialised.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from compound.errors import ProjectBusyError


def lock_path(state_dir: Path, project: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", project)
    return state_dir / "locks" / f"{safe}.lock"


class ProjectLock:
    """Held from :meth:`acquire` until :meth:`release` or the process ends."""

    def __init__(self, path: Path, project: str) -> None:
        self.path = path
        self.project = project
        self._fd: int | None = None

    def acquire(self, *, wait: bool = True, on_wait: Callable[[str], None] = print) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._holder(fd)
                if not wait:
                    raise ProjectBusyError(
                        f"project {self.project!r} is being changed by {holder}",
                        hint="wait for it to finish, or run again without --no-lock-wait",
                    ) from None
                on_wait(f"waiting for {holder} to finish with project {self.project!r}")
                fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
            os.ftruncate(fd, 0)
            record = {"pid": os.getpid(), "command": " ".join(sys.argv[1:])[:200]}
            os.pwrite(fd, json.dumps({**record, "since": time.time()}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> str:
        with contextlib.suppress(OSError, ValueError, TypeError):
            info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return f"`compound {info['command']}` (pid {info['pid']})"
        return "another compound"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
