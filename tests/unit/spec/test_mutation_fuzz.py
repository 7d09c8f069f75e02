"""2,000 mutants of the project's own Compose files per run: each loads or
is refused with a file:line, none raises anything else or takes over 20 s,
and the whole run stays under 512 MiB."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from tests.fuzz.mutate import run


@pytest.mark.timeout(900)
def test_two_thousand_mutants(tmp_path: Path) -> None:
    outcome = run(2000, tmp_path, seed=20261130)
    assert outcome.findings == [], "\n".join(outcome.findings[:30])
    assert outcome.loaded + outcome.rejected == 2000
    assert outcome.rejected > 200 and outcome.loaded > 100  # the mutants are varied
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mib < 512, peak_mib
