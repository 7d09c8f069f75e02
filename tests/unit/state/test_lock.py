"""One writer per project: the lock waits or fails fast, names its holder,
and is released when its holder ends."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compound.errors import ProjectBusyError
from compound.state.lock import ProjectLock, lock_path


def test_a_second_writer_fails_fast_naming_the_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "shop")
    first = ProjectLock(path, "shop")
    first.acquire()
    with pytest.raises(ProjectBusyError) as err:
        ProjectLock(path, "shop").acquire(wait=False)
    assert f"(pid {os.getpid()})" in err.value.message
    assert "--no-lock-wait" in (err.value.hint or "")
    first.release()
    again = ProjectLock(path, "shop")
    again.acquire(wait=False)  # free once released
    again.release()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert oct(path.parent.stat().st_mode & 0o777) == oct(0o700)


def test_a_second_writer_waits_with_a_message(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "shop")
    first = ProjectLock(path, "shop")
    first.acquire()
    said: list[str] = []
    got = threading.Event()

    def second() -> None:
        lock = ProjectLock(path, "shop")
        lock.acquire(on_wait=said.append)
        got.set()
        lock.release()

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.3)
    assert not got.is_set() and said and "waiting for" in said[0]
    first.release()
    assert got.wait(5)
    t.join(5)


def test_projects_do_not_block_each_other(tmp_path: Path) -> None:
    a = ProjectLock(lock_path(tmp_path, "a"), "a")
    a.acquire()
    b = ProjectLock(lock_path(tmp_path, "b/../b c"), "b/../b c")
    b.acquire(wait=False)
    assert b.path.parent == a.path.parent  # odd names stay inside the lock dir
    a.release()
    b.release()


def test_the_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "shop")
    code = (
        "import sys, time; from pathlib import Path; from compound.state.lock import ProjectLock;"
        f"ProjectLock(Path({str(path)!r}), 'shop').acquire(); print('held', flush=True);"
        "time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectBusyError, match=f"pid {holder.pid}"):
            ProjectLock(path, "shop").acquire(wait=False)
    finally:
        holder.kill()
        holder.wait()
    lock = ProjectLock(path, "shop")
    lock.acquire(wait=False)
    lock.release()
