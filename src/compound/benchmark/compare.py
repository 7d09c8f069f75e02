"""What changed since a previous report (`--compare previous.json`): the
host's conditions, each figure's median per variant, each claim's verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compound.benchmark.errors import BenchError
from compound.benchmark.figures import Report

# a median that moved less than this share is reported as unchanged
UNCHANGED = 0.10
HOST_KEYS = ("cpus", "memory_mib", "kernel", "kvm_usable", "host_is_vm", "docker", "qemu")


def load_report(path: Path) -> Report:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise BenchError(
            f"{path} is not JSON ({exc})", hint="pass the .json file `compound bench` wrote"
        ) from exc
    return Report.from_json(data, str(path))


def compare(current: Report, previous: Report) -> dict[str, Any]:
    host = [
        {"key": k, "before": previous.host.get(k), "after": current.host.get(k)}
        for k in HOST_KEYS
        if previous.host.get(k) != current.host.get(k)
    ]
    variants = {
        "added": [v for v in current.variants if v not in previous.variants],
        "removed": [v for v in previous.variants if v not in current.variants],
    }
    changes: list[dict[str, Any]] = []
    for fig in current.figures:
        old = previous.figure(fig.id)
        if old is None:
            continue
        for variant in fig.rounds:
            now, before = fig.summary(variant), old.summary(variant)
            if now is None or before is None or before.median == 0:
                continue
            factor = now.median / before.median
            if abs(factor - 1) < UNCHANGED:
                verdict = "unchanged"
            else:
                improved = factor < 1 if fig.better == "lower" else factor > 1
                verdict = "better" if improved else "worse"
            changes.append(
                {
                    "id": fig.id,
                    "title": fig.title,
                    "unit": fig.unit,
                    "variant": variant,
                    "before": before.median,
                    "after": now.median,
                    "factor": round(factor, 4),
                    "verdict": verdict,
                }
            )
    old_claims = {c["claim"]: c["verdict"] for c in previous.claims}
    claims = [
        {"claim": c["claim"], "before": old_claims.get(c["claim"]), "after": c["verdict"]}
        for c in current.claims
        if old_claims.get(c["claim"]) != c["verdict"]
    ]
    return {
        "previous": {"date": previous.date, "image": previous.image, "mode": previous.mode},
        "host": host,
        "variants": variants,
        "figures": changes,
        "claims": claims,
    }
