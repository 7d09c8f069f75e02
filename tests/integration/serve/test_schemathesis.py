"""Property-based requests from the OpenAPI document (schemathesis) against
the real server: no 5xx for anything generated, and every call without a
token refused."""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.serve.server import ServeProcess

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 12  # per operation, each sent three times: ~15 s on a loaded machine
STREAMS = ("/api/v1/events",)  # never ends: tested in test_api.py


def test_generated_requests_get_no_server_error_and_none_pass_without_a_token(
    served: ServeProcess,
) -> None:
    doc = served.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    tally: dict[str, int] = {"calls": 0, "unauthenticated": 0, "refused": 0}
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path not in STREAMS]
    assert len(operations) >= 20
    started = time.monotonic()
    for op in operations:
        _fuzz(op, served, tally, failures)
    took = time.monotonic() - started
    assert not failures, failures[:20]
    assert tally["unauthenticated"] > 0 and tally["refused"] == tally["unauthenticated"], tally
    assert took < 60, f"schemathesis took {took:.0f}s ({tally})"


def _fuzz(op: Any, served: ServeProcess, tally: dict[str, int], failures: list[str]) -> None:
    """MAX_EXAMPLES generated requests to ``op``, each sent with the
    read-only token, the operator token and no token."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        where = f"{case.method} {case.formatted_path}"
        for role in ("read-only", "operator", None):
            if role is None:  # also drop any Authorization the generator made up
                case.headers = {
                    k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
                }
            headers = served.headers(role) if role else None
            response = case.call(base_url=served.url, headers=headers, timeout=30)
            tally["calls"] += 1
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            if role is None and op.path != "/healthz":  # the probe: no token, on purpose
                tally["unauthenticated"] += 1
                if response.status_code in (401, 403):
                    tally["refused"] += 1
                else:
                    failures.append(f"unauthenticated {where}: {response.status_code}")

    run()
