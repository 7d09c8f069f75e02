"""CIS Docker Benchmark section 5 on the flagship demo's containers.

Brings examples/shop up (project ``cisbench``), then:
- checks every container compound started (containers, the balancer, the VM
  launchers) with compound's own reading of section 5 (tests/integration/
  cis.py, the same checks the suite runs), per container;
- with ``--docker-bench DIR`` (a checkout of docker/docker-bench-security;
  its code is not part of compound), runs its section 5 on the same
  containers (``-c container_runtime -i cisbench``) and counts PASS, WARN,
  INFO and NOTE, naming each WARN;
then takes the demo down. Writes bench/results/cis_section5-<host>-<date>.json.

    .venv/bin/python bench/cis_section5.py [--docker-bench /path/to/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.integration.cis import findings  # noqa: E402

PROJECT = "cisbench"
COMPOUND = str(ROOT / ".venv" / "bin" / "compound")


def compound(*args: str, env: dict[str, str]) -> None:
    subprocess.run(
        [COMPOUND, "--progress", "plain", "-p", PROJECT, *args],
        check=True,
        env=env,
        cwd=env["SHOP"],
    )


def kind_of(labels: dict[str, str]) -> str:
    if labels.get("io.compound.role") == "lb":
        return "balancer"
    return "launcher" if labels.get("io.compound.runtime") == "vm" else "container"


def docker_bench(checkout: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "out"
        proc = subprocess.run(
            [
                "sh",
                "docker-bench-security.sh",
                "-c",
                "container_runtime",
                "-i",
                PROJECT,
                "-l",
                str(log),
            ],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    counts: dict[str, int] = {}
    warned: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\[(PASS|WARN|INFO|NOTE)\] (5\.\d+)\s+- (.*)", line)
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
            if m.group(1) == "WARN":
                warned.append(f"{m.group(2)} {m.group(3)}")
    return {"counts": counts, "warn": warned, "exit": proc.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docker-bench", type=Path, help="a checkout of docker-bench-security")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shop = Path(tmp) / "shop"
        shutil.copytree(ROOT / "examples" / "shop", shop)
        env = {**os.environ, "SHOP": str(shop), "WEB_PORT": "18080", "API_PORT": "18081"}
        started = time.monotonic()
        compound("up", "-d", "--wait", "--wait-timeout", "1200", env=env)
        try:
            client = docker.from_env()
            per_container: dict[str, dict[str, Any]] = {}
            for row in client.api.containers(filters={"label": f"io.compound.project={PROJECT}"}):
                name = row["Names"][0].lstrip("/")
                attrs = client.api.inspect_container(name)
                fs = findings(attrs)
                per_container[name] = {
                    "kind": kind_of(row["Labels"]),
                    "pass": sum(f.ok for f in fs),
                    "warn": [f"{f.rule} {f.title}" for f in fs if not f.ok],
                }
            bench = docker_bench(args.docker_bench) if args.docker_bench else None
        finally:
            compound("down", "-v", env=env)
    result = {
        "machine": platform.node(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": round(time.monotonic() - started, 1),
        "compound_checks": per_container,
        "docker_bench_section5": bench,
    }
    for name, row in sorted(per_container.items()):
        warn = list(row["warn"])
        print(
            f"{name:28} {row['kind']:10} PASS {row['pass']:2}  WARN {len(warn)}: {', '.join(warn)}"
        )
    if bench:
        print(f"docker-bench-security section 5: {bench['counts']}")
        for w in bench["warn"]:
            print(f"  WARN {w}")
    out = (
        ROOT
        / "bench"
        / "results"
        / f"cis_section5-{platform.node()}-{time.strftime('%Y%m%d')}.json"
    )
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
