"""10,000 mutants of the project's own Compose files through the loader
(tests/fuzz/mutate.py; the test suite runs 2,000 per CI run).

Prints and writes ``bench/results/fuzz_spec-<date>_<host>.{json,md}``: how
many loaded and were refused, the findings (a traceback, a refusal without
file:line, a run over 20 s), the slowest mutant, mutants per second, and the
peak memory of the process. Peer: `docker-compose config` (1.29, Debian's)
on a sample of the same mutants, when it is installed, for the rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.mutate import mutate, run, seeds


def _peer_rate(sample: int, seed: int) -> float | None:
    """Mutants per second for docker-compose 1.29's `config` (a process each)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        return None
    import random

    rng = random.Random(seed)
    texts = [p.read_text() for p in seeds()]
    with tempfile.TemporaryDirectory() as d:
        file = Path(d) / "compose.yaml"
        t0 = time.monotonic()
        for _ in range(sample):
            file.write_text(mutate(rng.choice(texts), rng), errors="surrogatepass")
            subprocess.run(
                [binary, "-f", str(file), "config", "-q"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        return sample / (time.monotonic() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--peer-sample", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.monotonic()
        outcome = run(args.count, Path(d), seed=args.seed)
        seconds = time.monotonic() - t0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peer = _peer_rate(args.peer_sample, args.seed)
    date = time.strftime("%Y-%m-%dT%H%M%S")
    doc = {
        "date": date,
        "machine": {
            "hostname": socket.gethostname(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "mutants": args.count,
        "seed": args.seed,
        "loaded": outcome.loaded,
        "refused": outcome.rejected,
        "findings": outcome.findings,
        "slowest_seconds": round(outcome.slowest, 3),
        "mutants_per_second": round(args.count / seconds, 1),
        "peak_rss_mib": round(peak_mib, 1),
        "peer_docker_compose_mutants_per_second": round(peer, 1) if peer else None,
        "targets": {
            "no_findings": not outcome.findings,
            "slowest_under_20s": outcome.slowest < 20,
            "peak_under_512mib": peak_mib < 512,
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"fuzz_spec-{date}_{socket.gethostname()}"
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    ratio = f" (docker-compose config: {peer:.1f}/s)" if peer else ""
    lines = [
        f"# Compose loader fuzzing, {date}",
        "",
        f"Machine: {doc['machine']['hostname']}, {doc['machine']['cores']} cores, "
        f"Python {doc['machine']['python']}, load average {doc['machine']['load_average']}",
        "",
        f"- mutants: {args.count:,} (seed {args.seed}); loaded {outcome.loaded:,}, "
        f"refused {outcome.rejected:,}",
        f"- findings (tracebacks, refusals without file:line, runs over 20 s): "
        f"{len(outcome.findings)}",
        f"- slowest mutant: {outcome.slowest:.2f} s; {doc['mutants_per_second']}/s{ratio}",
        f"- peak memory of the process: {peak_mib:.0f} MiB",
        "",
        *(f"    {f}" for f in outcome.findings[:50]),
    ]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {base}.json and {base}.md")
    return 0 if not outcome.findings else 1


if __name__ == "__main__":
    raise SystemExit(main())
