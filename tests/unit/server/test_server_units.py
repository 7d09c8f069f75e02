"""Units of compound.server that need no engine: tokens, the listing cache,
the listen address's rules, the audit tables across a restart."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest

from compound.errors import StateError, UsageError
from compound.server.cache import ListingCache
from compound.server.run import ServeOptions, check_bind, parse_listen
from compound.server.tokens import OPERATOR, READ_ONLY, load_or_create
from compound.state.audit import AuditStore


def test_tokens_are_made_once_kept_as_digests_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "serve-tokens.json"
    tokens, fresh = load_or_create(path)
    assert fresh is not None and tokens.role_of(fresh[OPERATOR]) == OPERATOR
    assert fresh is not None and set(fresh) == {OPERATOR, READ_ONLY}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert fresh[OPERATOR] not in text and fresh[READ_ONLY] not in text
    again, none = load_or_create(path)
    assert none is None
    assert again.role_of(fresh[OPERATOR]) == OPERATOR
    assert again.role_of(fresh[READ_ONLY]) == READ_ONLY
    assert again.role_of(fresh[OPERATOR] + "x") is None and again.role_of("") is None
    path.write_text("{not json")
    with pytest.raises(StateError, match="cannot be read") as info:
        load_or_create(path)
    assert "delete it" in str(info.value.hint)


def test_listing_cache_reuses_until_an_event_or_max_age(tmp_path: Path) -> None:
    cache = ListingCache(max_age=0.3)
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        time.sleep(0.05)
        return len(reads)

    assert cache.get("p", "", read) == 1
    assert cache.get("p", "", read) == 1
    cache.invalidate("other")
    assert cache.get("p", "", read) == 1
    cache.invalidate("p")
    assert cache.get("p", "", read) == 2
    time.sleep(0.35)
    assert cache.get("p", "", read) == 3
    # concurrent requests for a stale listing share one read
    cache.invalidate("p")
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("p", "", read))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [4] * 8 and len(reads) == 4


def test_listen_rules() -> None:
    assert parse_listen("127.0.0.1:8765") == ("127.0.0.1", 8765)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("8765", "host:", "host:99999", "host:x"):
        with pytest.raises(UsageError):
            parse_listen(bad)
    assert check_bind(ServeOptions("localhost:1")) == ("localhost", 1)
    with pytest.raises(UsageError, match="other machines could reach") as info:
        check_bind(ServeOptions("0.0.0.0:8765"))
    assert "--insecure-listen" in str(info.value.hint) and "--tls-cert" in str(info.value.hint)
    assert check_bind(ServeOptions("0.0.0.0:8765", insecure_remote=True))[0] == "0.0.0.0"
    assert check_bind(ServeOptions("0.0.0.0:1", tls_cert="c", tls_key="k"))[1] == 1
    with pytest.raises(UsageError, match="together"):
        check_bind(ServeOptions("127.0.0.1:1", tls_cert="c"))


def test_audit_and_jobs_survive_a_restart_and_unfinished_jobs_become_interrupted(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    first = AuditStore(db)
    first.add_job("j1", "p", "up", "", "operator")
    first.record("operator", "up", "p", outcome="accepted", job="j1")
    first.add_job("j2", "p", "down", "", "operator")
    first.record("operator", "down", "p", outcome="accepted", job="j2")
    first.save_job("j2", "succeeded", [{"item": "x"}], {"ok": True})
    first.complete("j2", "succeeded")
    first.close()  # the process ends with j1 running
    second = AuditStore(db)
    assert second.interrupt_unfinished() == ["j1"]
    j1, j2 = second.job("j1"), second.job("j2")
    assert j1 is not None and j1.state == "interrupted" and j1.finished is not None
    assert j2 is not None and j2.state == "succeeded" and j2.result == {"ok": True}
    rows = {r["job"]: r for r in second.audit()}
    assert rows["j1"]["outcome"] == "interrupted" and rows["j2"]["outcome"] == "succeeded"
    assert second.interrupt_unfinished() == []
