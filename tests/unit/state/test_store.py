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
