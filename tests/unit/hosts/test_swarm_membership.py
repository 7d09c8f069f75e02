"""The Swarm record's bookkeeping when hosts leave or go, without a cluster:
which host is what, what `swarm leave` refuses before it touches anything,
and what `host rm --force` of a node leaves behind."""

from pathlib import Path

import pytest

from compound.hosts import swarm
from compound.hosts.errors import SwarmError


@pytest.fixture(autouse=True)
def hosts_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPOUND_HOSTS_DIR", str(tmp_path))
    return tmp_path


def _three() -> None:
    swarm.save(swarm.SwarmRecord(manager="a", nodes={"a": "n-a", "b": "n-b", "c": "n-c"}))


def test_roles_come_from_the_record() -> None:
    assert swarm.role_of("a") is None  # no Swarm yet
    _three()
    assert [swarm.role_of(h) for h in ("a", "b", "z")] == ["manager", "worker", None]


def test_leave_refuses_a_stranger_and_a_manager_others_depend_on() -> None:
    _three()
    with pytest.raises(SwarmError, match="host 'z' is not a node of the Swarm"):
        swarm.leave("z")
    with pytest.raises(SwarmError, match=r"manager and 2 other node\(s\) depend on it \(b, c\)"):
        swarm.leave("a")
    assert swarm.load().nodes == {"a": "n-a", "b": "n-b", "c": "n-c"}  # nothing touched


def test_dropping_a_worker_keeps_the_swarm_and_dropping_the_manager_forgets_it() -> None:
    _three()
    swarm.drop_host("b")
    assert swarm.load().nodes == {"a": "n-a", "c": "n-c"}
    swarm.drop_host("a")
    assert swarm.role_of("c") is None
    with pytest.raises(SwarmError, match="no Swarm formed yet"):
        swarm.load()
