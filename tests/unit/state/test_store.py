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
