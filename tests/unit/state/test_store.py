import sqlite3

from compound.state.store import Store


def test_revisions_are_numbered_per_project_and_live_is_last_success(tmp_path):
    store = Store(tmp_path / "s.db")
    a1 = store.begin("a", "up", {"m": 1}, {"p": 1})
    store.finish("a", a1, "succeeded", {"done": ["web"]})
    a2 = store.begin("a", "up", {"m": 2}, {"p": 2}, {"web": {"runtime": "container"}})
    store.finish("a", a2, "failed", {"failed": {"web": "x"}})
    b1 = store.begin("b", "up", {}, {})
    assert (a1, a2, b1) == (1, 2, 1)
    hist = store.history("a")
    assert [r.number for r in hist] == [2, 1]
    assert hist[0].decisions == {"web": {"runtime": "container"}}
    live = store.live("a")
    assert live is not None and live.number == 1 and live.model == {"m": 1}


def test_abandoned_running_revisions_become_interrupted(tmp_path):
    store = Store(tmp_path / "s.db")
    store.begin("a", "up", {}, {})
    assert store.mark_abandoned("a") == 1
    assert store.history("a")[0].outcome == "interrupted"


def test_unwritable_location_is_a_clear_error(tmp_path):
    import pytest

    from compound.errors import StateError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot open the state store"):
        Store(blocker / "sub" / "s.db")


def _deploy(store, hash_, outcome="succeeded", done=("web",)):
    n = store.begin("a", "up", {}, {}, specs={"web": {"config_hash": hash_, "service": {}}})
    store.finish("a", n, outcome, {"done": list(done)})
    return n


def test_previous_spec_is_what_ran_before_the_newest_running_configuration(tmp_path):
    store = Store(tmp_path / "s.db")
    _deploy(store, "A")
    _deploy(store, "B")
    _deploy(store, "C", outcome="failed", done=())  # a paused update: C and B instances run
    assert store.previous_spec("a", "web", {"B", "C"})[0] == 2  # type: ignore[index]
    assert store.previous_spec("a", "web", {"B"})[0] == 1  # type: ignore[index]
    assert store.previous_spec("a", "web", {"A"}) is None
    assert store.deployed_spec("a", "web", "B")[0] == 2  # type: ignore[index]
    assert store.deployed_spec("a", "web", "Z") is None


def test_schema_1_gains_the_specs_column_and_is_private(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE revisions (id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL,"
        " number INTEGER NOT NULL, command TEXT NOT NULL, started REAL NOT NULL, finished REAL,"
        " outcome TEXT NOT NULL, model TEXT NOT NULL, plan TEXT NOT NULL,"
        " decisions TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '{}',"
        " UNIQUE (project, number));"
        "INSERT INTO revisions (project, number, command, started, outcome, model, plan)"
        " VALUES ('a', 1, 'up', 0, 'succeeded', '{}', '{}');"
    )
    db.commit()
    db.close()
    store = Store(path)
    (rev,) = store.history("a")
    assert rev.specs == {}
    assert path.stat().st_mode & 0o777 == 0o600


def _fill(store):
    for i in range(3):
        n = store.begin("a", "up", {"m": i}, {"p": i}, specs={"web": {"config_hash": f"h{i}"}})
        store.finish("a", n, "succeeded", {"done": ["web"]})


def test_files_are_owner_only_from_the_start(tmp_path):
    import stat

    store = Store(tmp_path / "new" / "state.db")
    _fill(store)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    files = list((tmp_path / "new").iterdir())
    assert {f.name for f in files} >= {"state.db", "state.db-wal", "state.db-shm"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"garbage, not sqlite" * 100)
    told = []
    store = Store(path, warn=told.append)
    assert len(told) == 1 and "was damaged" in told[0] and "moved to" in told[0]
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"garbage")
    _fill(store)  # and the fresh store works
    assert [r.number for r in store.history("a")] == [3, 2, 1]


def test_a_database_whose_pages_are_damaged_is_moved_aside_at_open(tmp_path):
    path = tmp_path / "state.db"
    store = Store(path)
    _fill(store)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # the schema page survives, nothing else
    path.write_bytes(bytes(data))
    told = []
    fresh = Store(path, warn=told.append)
    assert len(told) == 1 and "malformed" in told[0]
    assert fresh.history("a") == []
    assert fresh.begin("a", "up", {}, {}) == 1


class _Corrupt:
    """A connection whose file turned out damaged after it was opened."""

    def execute(self, *args):
        exc = sqlite3.DatabaseError("database disk image is malformed")
        exc.sqlite_errorname = "SQLITE_CORRUPT"
        raise exc

    def close(self):
        pass


def test_damage_found_by_a_read_or_a_write_replaces_the_file_and_retries(tmp_path):
    told = []
    store = Store(tmp_path / "state.db", warn=told.append)
    _fill(store)
    store._db = _Corrupt()
    assert store.history("a") == []  # read: recovered, then read the fresh file
    store._db = _Corrupt()
    assert store.begin("a", "up", {}, {}) == 1  # write: recovered, then written
    assert len([m for m in told if "was damaged" in m]) == 2
    asides = [f for f in tmp_path.glob("state.db.damaged-*") if not f.name.endswith(("wal", "shm"))]
    assert len(asides) == 2  # neither set aside file overwrote the other


def test_a_revision_with_bad_json_is_skipped_with_a_warning(tmp_path):
    told = []
    store = Store(tmp_path / "s.db", warn=told.append)
    _fill(store)
    store._db.execute("UPDATE revisions SET specs = '{not json' WHERE number = 2")
    store._db.execute("UPDATE revisions SET model = '[1]' WHERE number = 3")
    assert [r.number for r in store.history("a")] == [1]
    assert [n for n, _, _ in store.deployments("a")] == [3, 1]
    live = store.live("a")
    assert live is not None and live.number == 1  # the newest that can be read
    assert any("revision 2" in m for m in told) and any("revision 3" in m for m in told)
    assert len(told) == len(set(told))  # each once


def test_many_stores_on_one_file_in_one_process(tmp_path):
    # as the CLI run in-process does (tests, a server): each command opens
    # its own Store on the same file while earlier ones are still open
    path = tmp_path / "state.db"
    first = Store(path)
    n = first.begin("a", "up", {}, {})
    stores = [Store(path) for _ in range(5)]
    first.finish("a", n, "succeeded", {})
    for s in stores:
        revision = s.get("a", 1)
        assert revision is not None and revision.outcome == "succeeded"
        s.begin("a", "up", {}, {})
    assert [r.number for r in first.history("a")] == [6, 5, 4, 3, 2, 1]
