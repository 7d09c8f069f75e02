#!/usr/bin/env python3
"""`compound serve` under load: the instances listing of a 50-instance project.

    .venv/bin/python bench/api.py [--instances 50] [--seconds 15] [--connections 8] [--no-save]

Starts a project of N busybox containers (one service, `deploy.replicas:
N`), serves it with `compound serve` on loopback (its own state dir and
tokens), and drives GET /api/v1/projects/<p>/instances (what `compound ps
--all --json` prints: every instance's runtime, kernel, health, ports)
with wrk and the read-only token. Also measured: one /metrics scrape of
the same project (cgroup reads per instance) and the time of the `up` job.

Results go to bench/results/api-<date>_<host>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rolling_update import parse_wrk
from run import RESULTS_DIR, cleanup_project, log, machine_info, sh

ROOT = Path(__file__).resolve().parent.parent
COMPOUND = str(ROOT / ".venv" / "bin" / "compound")

COMPOSE = """
name: {name}
services:
  web:
    image: local/busybox:latest
    command: ["sleep", "100000"]
    stop_signal: SIGKILL
    deploy: {{replicas: {n}}}
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        data = r.read()
    return json.loads(data) if r.headers.get_content_type() == "application/json" else data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make deps`)")

    name = f"bench-api-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="compound-bench-api-"))
    (work / "compose.yaml").write_text(COMPOSE.format(name=name, n=args.instances))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COMPOUND_STATE_DIR": str(work / "state")}
    out = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [COMPOUND, "-f", str(work / "compose.yaml"), "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )
    res: dict[str, Any] = {"machine": machine_info(), "instances": args.instances}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        text = (work / "serve.log").read_text()
        tokens = dict(re.findall(r"^\s+(operator|read-only)\s+(\S+)$", text, re.M))
        op, ro = tokens["operator"], tokens["read-only"]
        log(f"up: {args.instances} busybox containers through the API")
        t0 = time.monotonic()
        job = _call(f"{url}/api/v1/projects/{name}/up", op, {"wait": True})
        while (state := _call(f"{url}/api/v1/jobs/{job['id']}", ro))["state"] == "running":
            time.sleep(0.5)
        res["up_job_s"] = round(time.monotonic() - t0, 1)
        assert state["state"] == "succeeded", state
        listing = f"{url}/api/v1/projects/{name}/instances"
        t = time.monotonic()  # the job's end made the cached listing stale: a full read
        rows = _call(listing, ro)
        res["first_listing_ms"] = round((time.monotonic() - t) * 1000, 1)
        assert len(rows) == args.instances, len(rows)
        res["listing_bytes"] = len(json.dumps(rows))
        singles = []
        for _ in range(10):
            t = time.monotonic()
            _call(listing, ro)
            singles.append((time.monotonic() - t) * 1000)
        res["single_request_ms_median"] = round(sorted(singles)[len(singles) // 2], 1)
        t = time.monotonic()
        metrics = _call(f"{url}/metrics", ro)
        res["metrics_scrape_ms"] = round((time.monotonic() - t) * 1000, 1)
        res["metrics_series"] = sum(
            1 for line in metrics.decode().splitlines() if line.startswith("compound_instance_")
        )
        log(f"wrk -t2 -c{args.connections} -d{args.seconds}s on the instances listing")
        r = sh(
            [
                "wrk",
                "-t2",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--latency",
                "-H",
                f"Authorization: Bearer {ro}",
                listing,
            ],
            timeout=args.seconds + 120,
        )
        load = parse_wrk(r.stdout)
        load["rps"] = round(load["requests"] / load["seconds"], 1) if load["seconds"] else None
        res["wrk"] = load
        res["wrk_command"] = (
            f"wrk -t2 -c{args.connections} -d{args.seconds}s --latency"
            f" -H 'Authorization: Bearer …' {listing}"
        )
    finally:
        server.terminate()
        server.wait(30)
        cleanup_project(name)
        shutil.rmtree(work, ignore_errors=True)
    report = render(res)
    print(report)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
        base = RESULTS_DIR / f"api-{stamp}_{res['machine']['hostname']}"
        base.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        base.with_suffix(".md").write_text(report + "\n")
        log(f"wrote {base}.json and .md")
    return 0 if res["wrk"]["failed"] == 0 else 1


def render(res: dict[str, Any]) -> str:
    w = res["wrk"]
    m = res["machine"]
    return "\n".join(
        [
            f"# compound serve: instances listing of {res['instances']} instances",
            "",
            f"{m.get('nproc')} CPUs, {m.get('memory_mib')} MiB, kernel {m.get('kernel')}"
            " (shared with other work while measured)",
            "",
            "| figure | value |",
            "|---|---|",
            f"| requests per second (wrk) | {w['rps']} |",
            f"| p99 latency | {w['p99_ms']} ms |",
            f"| requests / failed | {w['requests']} / {w['failed']} |",
            f"| one request, median of 10 | {res['single_request_ms_median']} ms |",
            f"| first request after a change (engine read) | {res['first_listing_ms']} ms |",
            f"| listing size | {res['listing_bytes']} bytes |",
            f"| one /metrics scrape ({res['metrics_series']} instance series) |"
            f" {res['metrics_scrape_ms']} ms |",
            f"| `up` job of {res['instances']} containers | {res['up_job_s']} s |",
            "",
            f"`{res['wrk_command']}`",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
