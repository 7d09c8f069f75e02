"""Which changed file a develop.watch rule claims, and what a batch does with it."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from compound.errors import UsageError
from compound.runtimes.base import Instance
from compound.spec.model import BuildSpec, Develop, WatchExec, WatchRule
from compound.watch.archive import pack
from compound.watch.loop import Watcher, describe
from compound.watch.rules import ServiceRules, files_under
from tests.unit.fakes import FakeDriver, instance, project, service


def _rules(tmp_path: Path, *rules: WatchRule, context: Path | None = None) -> ServiceRules:
    build = BuildSpec(context=str(context)) if context else None
    return ServiceRules(service("web", develop=Develop(watch=rules), build=build))


def test_first_rule_that_claims_a_path_wins_and_maps_it_under_the_target(tmp_path: Path) -> None:
    src = str(tmp_path / "src")
    rules = _rules(
        tmp_path,
        WatchRule(path=f"{src}/static", action="sync", target="/www"),
        WatchRule(path=src, action="sync+restart", target="/app"),
    )
    claim = rules.claim(f"{src}/static/css/a.css")
    assert claim is not None and claim.index == 0 and claim.target == "/www/css/a.css"
    claim = rules.claim(f"{src}/main.py")
    assert claim is not None and claim.index == 1 and claim.target == "/app/main.py"
    assert rules.claim(str(tmp_path / "elsewhere.py")) is None
    assert rules.claim(f"{src}2/x") is None  # a sibling that shares the prefix


def test_a_file_rule_maps_to_its_target_itself(tmp_path: Path) -> None:
    rules = _rules(
        tmp_path, WatchRule(path=str(tmp_path / "app.conf"), action="sync", target="/etc/app.conf")
    )
    claim = rules.claim(str(tmp_path / "app.conf"))
    assert claim is not None and claim.target == "/etc/app.conf"


@pytest.mark.parametrize(
    ("relative", "claimed"),
    [
        ("main.py", True),
        ("debug.log", False),  # ignore: *.log
        ("node_modules/x/index.js", False),  # ignore: node_modules/
        ("keep.log", True),  # !keep.log re-includes
        (".git/HEAD", False),  # always ignored
        ("main.py.swp", False),  # an editor's swap file
        ("main.py~", False),
        ("4913", False),  # Vim's write probe
    ],
)
def test_ignore_is_gitignore_style_relative_to_the_rule_path(
    tmp_path: Path, relative: str, claimed: bool
) -> None:
    rule = WatchRule(
        path=str(tmp_path),
        action="sync",
        target="/app",
        ignore=("*.log", "node_modules/", "!keep.log"),
    )
    assert (_rules(tmp_path, rule).claim(str(tmp_path / relative)) is not None) is claimed


def test_include_is_an_allow_list(tmp_path: Path) -> None:
    rule = WatchRule(path=str(tmp_path), action="sync", target="/app", include=("*.js",))
    rules = _rules(tmp_path, rule)
    assert rules.claim(str(tmp_path / "a" / "b.js")) is not None
    assert rules.claim(str(tmp_path / "a" / "b.css")) is None


def test_the_build_contexts_dockerignore_applies(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# comment\n/dist\n*.pyc\n")
    rule = WatchRule(path=str(tmp_path), action="rebuild")
    rules = _rules(tmp_path, rule, context=tmp_path)
    assert rules.claim(str(tmp_path / "dist" / "bundle.js")) is None
    assert rules.claim(str(tmp_path / "pkg" / "m.pyc")) is None
    assert rules.claim(str(tmp_path / "pkg" / "m.py")) is not None


def test_initial_sync_lists_the_claimed_files(tmp_path: Path) -> None:
    for rel in ("a.txt", "sub/b.txt", "sub/c.tmp", ".git/config"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    rules = _rules(
        tmp_path, WatchRule(path=str(tmp_path), action="sync", target="/app", ignore=("*.tmp",))
    )
    assert files_under(str(tmp_path), rules) == [
        str(tmp_path / "a.txt"),
        str(tmp_path / "sub/b.txt"),
    ]


def test_pack_splits_by_size_and_reports_vanished_files(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(b"x" * 3000)
        files.append((str(tmp_path / f"f{i}"), f"/app/f{i}"))
    files.append((str(tmp_path / "gone"), "/app/gone"))
    (tmp_path / "link").symlink_to("f0")
    files.append((str(tmp_path / "link"), "/app/link"))
    packed = pack(files, limit=8000)  # two 3000-byte files (+ headers) an archive
    assert packed.vanished == ["/app/gone"]
    assert packed.copied == ["/app/f0", "/app/f1", "/app/f2", "/app/link"]
    assert len(packed.archives) == 2
    names = []
    for archive in packed.archives:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            names += [(m.name, m.issym()) for m in tar.getmembers()]
    assert names == [("app/f0", False), ("app/f1", False), ("app/f2", False), ("app/link", True)]


class CopyingDriver(FakeDriver):
    def __init__(self) -> None:
        super().__init__()
        self.copied: list[tuple[str, list[str]]] = []
        self.execs: list[tuple[str, tuple[str, ...], dict[str, Any]]] = []

    def copy_in(self, instance: Instance, archive: bytes, dest: str) -> None:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            self.copied.append((instance.name, tar.getnames()))

    def exec_capture(
        self, instance: Instance, command: Sequence[str], **kw: Any
    ) -> tuple[int, bytes, bytes]:
        self.execs.append((instance.name, tuple(command), kw))
        return 0, b"", b""


def _watcher(
    tmp_path: Path, *rules: WatchRule, build: bool = False
) -> tuple[Watcher, CopyingDriver, list[dict[str, Any]], list[str]]:
    driver = CopyingDriver()
    events: list[dict[str, Any]] = []
    rebuilt: list[str] = []
    svc = service(
        "web",
        develop=Develop(watch=rules),
        build=BuildSpec(context=str(tmp_path)) if build else None,
    )
    running = [instance("web", 1), instance("web", 2), instance("web", 3, status="exited")]
    watcher = Watcher(
        project(svc),
        ["web"],
        instances=lambda _name: [(i, driver) for i in running],
        rebuild=rebuilt.append,
        emit=events.append,
    )
    return watcher, driver, events, rebuilt


def test_a_batch_syncs_to_every_running_instance_then_runs_the_exec(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    rule = WatchRule(
        path=str(tmp_path),
        action="sync+exec",
        target="/app",
        exec=WatchExec(command=("reload",), user="app", environment={"X": "1"}),
    )
    watcher, driver, events, _ = _watcher(tmp_path, rule)
    watcher.apply([(str(tmp_path / "a.txt"), False), (str(tmp_path / "old.txt"), True)])
    assert driver.copied == [("demo-web-1", ["app/a.txt"]), ("demo-web-2", ["app/a.txt"])]
    rm = [(n, c) for n, c, _ in driver.execs if c[0] == "rm"]
    assert rm == [(f"demo-web-{i}", ("rm", "-rf", "--", "/app/old.txt")) for i in (1, 2)]
    reload = [(n, kw) for n, c, kw in driver.execs if c == ("reload",)]
    assert reload == [
        (f"demo-web-{i}", {"user": "app", "workdir": None, "env": {"X": "1"}}) for i in (1, 2)
    ]
    assert describe(events[0]).startswith("synced 1 file to demo-web-1, deleted 1")


def test_a_rebuild_in_the_batch_wins_over_its_syncs(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "Dockerfile").write_text("FROM x")
    watcher, driver, events, rebuilt = _watcher(
        tmp_path,
        WatchRule(path=str(tmp_path / "src"), action="sync", target="/app"),
        WatchRule(path=str(tmp_path / "Dockerfile"), action="rebuild"),
        build=True,
    )
    watcher.apply([(str(tmp_path / "src" / "a.txt"), False), (str(tmp_path / "Dockerfile"), False)])
    assert rebuilt == ["web"] and driver.copied == []
    assert [e["event"] for e in events] == ["rebuilding", "rebuilt"]


def test_sync_restart_restarts_each_instance_once(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    rule = WatchRule(path=str(tmp_path), action="sync+restart", target="/app")
    watcher, driver, events, _ = _watcher(tmp_path, rule)
    watcher.apply([(str(tmp_path / "a"), False), (str(tmp_path / "b"), False)])
    assert [c for c in driver.calls if c[0] in ("stop", "start")] == [
        ("stop", "demo-web-1"),
        ("start", "demo-web-1"),
        ("stop", "demo-web-2"),
        ("start", "demo-web-2"),
    ]
    assert [e["files"] for e in events if e["event"] == "synced"] == [2, 2]


def test_a_rebuild_rule_needs_a_build_section(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no build section"):
        _watcher(tmp_path, WatchRule(path=str(tmp_path), action="rebuild"))


def test_a_missing_watch_path_is_refused_naming_the_rule(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"develop.watch\[0\].path .*/nope does not exist"):
        _watcher(tmp_path, WatchRule(path=str(tmp_path / "nope"), action="sync", target="/a"))
