"""compound volume ls/inspect/backup/restore against the real engine.

Volumes are written by real containers; archives are checked by restoring
them and comparing every path's type, mode, owner, mtime and content through
the volume's directory on this host (the tests run as root beside the
engine). Pausing is observed through the engine while the backup holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from compound.engine import connect
from compound.reconcile.session import Session
from compound.runtimes.base import Instance
from compound.spec import LoadOptions, load_project
from compound.volumes import ops
from tests.integration.apps import App
from tests.unit.volumes.helpers import craft_archive, snapshot, tar_dir, tar_file, tar_link

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

BUSYBOX = "local/busybox:latest"

# Everything a restore must keep: owners, modes (setgid, no-write dir), an old
# mtime, relative/absolute/dangling symlinks, a hardlink, empty dirs, a fifo.
FILL = (
    "mkdir -p /data/dir/empty /data/conf /data/ro/inner && "
    "echo secret > /data/conf/key && chown 1000:2000 /data/conf/key && "
    "chmod 600 /data/conf/key && touch -d '2001-02-03 04:05:06' /data/conf/key && "
    "ln -s conf/key /data/keylink && ln -s /nowhere /data/dangling && "
    "ln /data/conf/key /data/conf/key.hard && mkfifo /data/dir/pipe && "
    "dd if=/dev/urandom of=/data/dir/blob bs=1k count=700 2>/dev/null && "
    "seq 1 20000 > /data/dir/text && chmod 2750 /data/dir && chmod 0500 /data/ro && "
    "chown 33:33 /data"
)


def _write_app(app: App, command: str, restart: str = "no", reader: bool = False) -> None:
    # a read-only user of the volume: it needs no pause for a consistent backup
    reader_svc = (
        f"""
          report:
            image: {BUSYBOX}
            command: ["sleep", "3600"]
            stop_signal: SIGKILL
            volumes: ["ledger:/data:ro"]"""
        if reader
        else ""
    )
    app.write(f"""
        services:
          store:
            image: {BUSYBOX}
            command: ["sh", "-c", {json.dumps(command)}]
            restart: "{restart}"
            stop_signal: SIGKILL
            volumes: ["ledger:/data"]{reader_svc}
        volumes:
          ledger: {{}}
        """)


def _mountpoint(app: App) -> Path:
    return Path(app.client.api.inspect_volume(f"{app.name}_ledger")["Mountpoint"])


def _until(what: str, probe: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s", pytrace=False)
        time.sleep(0.2)


def _status(client: docker.DockerClient, name: str) -> str:
    return str(client.api.inspect_container(name)["State"]["Status"])


def _filled(app: App) -> Path:
    """The project up with `store` having filled the volume and exited."""
    _write_app(app, FILL)
    app.ok("up", "-d")
    _until(
        "store filled the volume", lambda: _status(app.client, f"{app.name}-store-1") == "exited"
    )
    assert app.client.api.inspect_container(f"{app.name}-store-1")["State"]["ExitCode"] == 0
    return _mountpoint(app)


def _whole_seconds(snap: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
    return {
        path: (*attrs[:4], int(mtime) if isinstance(mtime, float) else mtime, attrs[5])
        for path, attrs in snap.items()
        for mtime in [attrs[4]]
    }


def _session(app: App) -> Session:
    project = load_project(LoadOptions(files=(str(app.file),), project_name=app.name)).project
    return Session(project, connect())


@pytest.mark.parametrize("via", ["mount", "engine"])
def test_round_trip_keeps_contents_owners_modes_links_and_empty_dirs(
    app: App, tmp_path: Path, via: str
) -> None:
    mountpoint = _filled(app)
    before = snapshot(mountpoint)
    assert before["conf/key"][1:3] == (1000, 2000)
    archive = tmp_path / "ledger.tar.zst"
    out = json.loads(
        app.ok("volume", "backup", "ledger", "-o", str(archive), "--via", via, "--json")
    )
    assert out["via"] == via and out["volume"] == f"{app.name}_ledger"
    assert out["files"] == 3 and out["bytes"] == 700 * 1024 + len("secret\n") + 108894
    assert archive.stat().st_size == out["archive_bytes"] > 0
    assert sorted(os.listdir(tmp_path)) == sorted([app.name, "ledger.tar.zst"])  # no temp file

    # the volume changes after the backup: a restore brings the backup's state back
    (mountpoint / "conf" / "key").write_text("overwritten\n")
    (mountpoint / "added").write_text("not in the backup\n")
    os.unlink(mountpoint / "keylink")
    out = json.loads(app.ok("volume", "restore", "ledger", str(archive), "--via", via, "--json"))
    assert out["via"] == via and out["origin"]["project"] == app.name
    after = snapshot(mountpoint)
    if via == "engine":
        # the helper sets the root's owner and mode, not its mtime; and the engine's
        # archive API carries whole-second mtimes
        before.pop(".")
        after.pop(".")
        before, after = _whole_seconds(before), _whole_seconds(after)
    assert after == before
    # and a container of the service reads what was restored
    code, text = app.run("run", "--rm", "-T", "store", "cat", "/data/conf/key")
    assert code == 0 and "secret" in text, text


def test_ls_and_inspect_show_services_and_running_users(app: App) -> None:
    _write_app(app, "echo x > /data/x; exec sleep 3600")
    app.ok("up", "-d")
    rows = json.loads(app.ok("volume", "ls", "--json", "--size"))
    assert [(r["key"], r["name"], r["driver"], r["services"]) for r in rows] == [
        ("ledger", f"{app.name}_ledger", "local", ["store"])
    ]
    _until("store wrote", lambda: ops.volume_rows(_session(app), size=True)[0]["size"] == 2)
    assert json.loads(app.ok("volume", "ls", "--json"))[0]["running"] == [f"{app.name}-store-1"]
    info = json.loads(app.ok("volume", "inspect", f"{app.name}_ledger", "--json"))
    assert info["key"] == "ledger" and info["engine"]["Labels"]["io.compound.volume"] == "ledger"
    assert info["instances"] == [
        {"name": f"{app.name}-store-1", "service": "store", "status": "running"}
    ]
    code, out = app.run("volume", "inspect", "nope")
    assert code == 1 and "no volume 'nope'" in out


def test_corrupt_archive_is_refused_and_volume_untouched(app: App, tmp_path: Path) -> None:
    mountpoint = _filled(app)
    archive = tmp_path / "ledger.tar.zst"
    app.ok("volume", "backup", "ledger", "-o", str(archive))
    (mountpoint / "conf" / "key").write_text("newer data\n")
    before = snapshot(mountpoint)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    corrupt = tmp_path / "corrupt.tar.zst"
    corrupt.write_bytes(bytes(data))
    truncated = tmp_path / "truncated.tar.zst"
    truncated.write_bytes(bytes(data[: len(data) // 3]))
    for bad in (corrupt, truncated):
        for via in ("mount", "engine"):
            code, out = app.run("volume", "restore", "ledger", str(bad), "--via", via)
            assert code == 1, out
            assert "damaged or truncated" in out and "nothing was changed" in out, out
            assert snapshot(mountpoint) == before
    assert sorted(os.listdir(mountpoint.parent)) == ["_data"]


def test_restore_into_a_volume_in_use_is_refused(app: App, tmp_path: Path) -> None:
    _write_app(app, "echo v1 > /data/f; exec sleep 3600")
    app.ok("up", "-d")
    archive = tmp_path / "b.tar.zst"
    app.ok("volume", "backup", "ledger", "-o", str(archive))
    code, out = app.run("volume", "restore", "ledger", str(archive))
    assert code == 1
    assert f"in use by running instance(s): {app.name}-store-1" in out
    assert "compound stop store" in out
    app.ok("stop", "store")
    app.ok("volume", "restore", "ledger", str(archive))


def test_missing_volume_and_unwritable_output(app: App, tmp_path: Path) -> None:
    _write_app(app, "true")
    code, out = app.run("volume", "backup", "ledger", "-o", str(tmp_path / "x"))
    assert code == 1 and "volume 'ledger'" in out and "does not exist yet" in out, out
    code, out = app.run("volume", "backup", "other", "-o", str(tmp_path / "x"))
    assert code == 1 and "no volume 'other'" in out and "ledger" in out, out
    app.ok("up", "-d")
    code, out = app.run("volume", "backup", "ledger", "-o", str(tmp_path / "no-dir" / "x"))
    assert code == 1 and "cannot write the backup" in out, out
    assert os.listdir(tmp_path) == [app.name]


def test_restore_creates_a_missing_volume_that_up_adopts(app: App, tmp_path: Path) -> None:
    mountpoint = _filled(app)
    before = snapshot(mountpoint)
    archive = tmp_path / "b.tar.zst"
    app.ok("volume", "backup", "ledger", "-o", str(archive))
    app.ok("down", "-v")
    out = json.loads(app.ok("volume", "restore", "ledger", str(archive), "--json"))
    assert out["created"] is True
    labels = app.client.api.inspect_volume(f"{app.name}_ledger")["Labels"]
    assert labels["io.compound.project"] == app.name and labels["io.compound.volume"] == "ledger"
    assert snapshot(_mountpoint(app)) == before
    _write_app(app, "cat /data/conf/key; exec sleep 3600")
    app.ok("up", "-d")
    _until("store printed the restored file", lambda: "secret" in app.ok("logs", "store"))
    # a damaged archive into a missing volume creates nothing
    app.ok("down", "-v")
    bad = tmp_path / "bad.tar.zst"
    bad.write_bytes(archive.read_bytes()[:-100])
    code, out = app.run("volume", "restore", "ledger", str(bad))
    assert code == 1, out
    assert not app.client.api.volumes(filters={"name": f"{app.name}_ledger"})["Volumes"]


# --- --consistent ---------------------------------------------------------------------------


WRITER = "i=0; while true; do i=$((i+1)); echo $i >> /data/log; usleep 20000; done"


def test_consistent_backup_pauses_the_writer_and_resumes_it(app: App, tmp_path: Path) -> None:
    _write_app(app, WRITER, reader=True)
    app.ok("up", "-d")
    name = f"{app.name}-store-1"
    _until("writer writes", lambda: (_mountpoint(app) / "log").exists())
    seen: dict[str, object] = {}

    def look(paused: list[Instance]) -> None:
        seen["paused"] = [i.name for i in paused]
        seen["state"] = _status(app.client, name)
        log = _mountpoint(app) / "log"
        size = log.stat().st_size
        time.sleep(0.3)  # a paused writer does not write
        seen["grew"] = log.stat().st_size != size

    result = ops.backup(
        _session(app), "ledger", tmp_path / "b.tar.zst", consistent=True, on_paused=look
    )
    assert seen == {"paused": [name], "state": "paused", "grew": False}  # not the reader
    assert result.paused == [name]
    assert _status(app.client, name) == "running"
    size = (_mountpoint(app) / "log").stat().st_size
    _until("writer writes again", lambda: (_mountpoint(app) / "log").stat().st_size > size)

    # through the CLI: the JSON names what was paused
    out = json.loads(
        app.ok(
            "volume",
            "backup",
            "ledger",
            "-o",
            str(tmp_path / "c.tar.zst"),
            "--consistent",
            "--json",
        )
    )
    assert out["paused"] == [name]
    assert _status(app.client, name) == "running"


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_consistent_backup_resumes_writers_when_it_fails(
    app: App, tmp_path: Path, failure: BaseException
) -> None:
    _write_app(app, WRITER)
    app.ok("up", "-d")
    name = f"{app.name}-store-1"
    states: list[str] = []

    def fail(paused: list[Instance]) -> None:
        states.append(_status(app.client, name))
        raise failure

    with pytest.raises(type(failure)):
        ops.backup(_session(app), "ledger", tmp_path / "b.tar.zst", consistent=True, on_paused=fail)
    assert states == ["paused"]
    assert _status(app.client, name) == "running"
    assert os.listdir(tmp_path) == [app.name], "a partial backup file was left"


def test_consistent_leaves_an_instance_paused_by_someone_else_paused(
    app: App, tmp_path: Path
) -> None:
    _write_app(app, WRITER)
    app.ok("up", "-d")
    name = f"{app.name}-store-1"
    app.client.api.pause(name)
    try:
        result = ops.backup(_session(app), "ledger", tmp_path / "b.tar.zst", consistent=True)
        assert result.paused == []
        assert _status(app.client, name) == "paused"
    finally:
        app.client.api.unpause(name)


@contextlib.contextmanager
def _tiny_filesystem(mountpoint: Path, size: str = "1m") -> Iterator[None]:
    """The volume's directory becomes a small tmpfs (as a volume on a small
    disk would be), so a restore can run out of space."""
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.mark.parametrize("via", ["mount", "engine"])
def test_a_restore_that_runs_out_of_space_leaves_the_volume_as_it_was(
    app: App, tmp_path: Path, via: str
) -> None:
    mountpoint = _filled(app)
    archive = tmp_path / "big.tar.zst"  # ~810 KB of files
    app.ok("volume", "backup", "ledger", "-o", str(archive))
    with _tiny_filesystem(mountpoint):
        (mountpoint / "keep.txt").write_text("the only copy of these\n")
        (mountpoint / "blob").write_bytes(os.urandom(400_000))
        os.chown(mountpoint / "keep.txt", 1000, 1000)
        before = snapshot(mountpoint)
        code, out = app.run("volume", "restore", "ledger", str(archive), "--via", via)
        assert code == 1, out
        assert "no space left on device" in out.lower(), out
        assert "Traceback" not in out
        assert snapshot(mountpoint) == before
        assert sorted(os.listdir(mountpoint)) == ["blob", "keep.txt"]  # no staging left


@pytest.mark.parametrize("via", ["mount", "engine"])
def test_an_archive_that_writes_through_its_own_symlink_leaves_the_volume_as_it_was(
    app: App, tmp_path: Path, via: str
) -> None:
    mountpoint = _filled(app)
    before = snapshot(mountpoint)
    evil = tmp_path / "evil.tar.zst"
    craft_archive(
        evil,
        [
            (tar_dir("data"), None),
            (tar_link("data/conf", "/etc"), None),  # inside the helper: its /etc
            (tar_file("data/conf/passwd"), b"owned\n"),
        ],
    )
    code, out = app.run("volume", "restore", "ledger", str(evil), "--via", via)
    assert code == 1, out
    assert "parent is not a directory of the archive" in out, out
    assert snapshot(mountpoint) == before
    assert sorted(os.listdir(mountpoint.parent)) == ["_data"]
