#!/usr/bin/env python3
"""Rolling update under load: does anyone notice?

    .venv/bin/python bench/rolling_update.py [--rounds 3] [--replicas 3] [--no-save]

A 3-replica HTTP service (busybox httpd, images built locally) publishes a
port, so compound puts its HAProxy in front. wrk (Debian) drives constant
load on loopback; each round moves the image tag to a new build and runs
`compound up -d`, with wrk running from just before the update until just
after it. Reported per round and in total:

- requests sent and failed (socket errors + non-2xx; target 0);
- p99 latency during the update beside p99 at rest (wrk, same run);
- total update time beside the sum of the new instances' time-to-healthy
  (engine events: created → health_status healthy).

Results go to bench/results/rolling_update-<date>_<host>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import RESULTS_DIR, log, machine_info, sh

ROOT = Path(__file__).resolve().parent.parent
COMPOUND = str(ROOT / ".venv" / "bin" / "compound")
IMAGE = "local/bench-rolling:latest"
LABEL = "io.compound.project"

COMPOSE = """
services:
  web:
    image: {image}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    init: true  # httpd as PID 1 would ignore SIGTERM and wait out the grace period
    ports: ["127.0.0.1:{port}:8080"]
    healthcheck:
      test: ["CMD", "test", "-f", "/www/index.html"]
      interval: 1s
      retries: 30
    deploy:
      replicas: {replicas}
      update_config: {{parallelism: 1, order: start-first}}
    x-compound:
      lb: {{maxconn: {maxconn}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(version: int, work: Path) -> None:
    (work / "Dockerfile").write_text(
        f"FROM local/busybox:latest\nRUN mkdir -p /www && echo v{version} > /www/index.html\n"
    )
    r = sh(["docker", "build", "-q", "-t", IMAGE, str(work)])
    if r.returncode != 0:
        raise SystemExit(f"docker build failed:\n{r.stdout}{r.stderr}")


def compound(work: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [COMPOUND, "--progress", "plain", "-f", str(work / "compose.yaml"), "-p", project]
    return sh([*cmd, *args], timeout=900)


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return str(r.read().decode().strip())
    except OSError:
        return None


def wait_serving(url: str, want: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(url) == want:
            return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer {want!r} within {timeout:.0f}s")


def parse_wrk(text: str) -> dict[str, Any]:
    def num(pattern: str) -> float:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else 0.0

    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    m = re.search(r"99%\s+([\d.]+)(us|ms|s|m)\b", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    socket_errors = sum(int(x) for x in errors.groups()) if errors else 0
    non2xx = int(num(r"Non-2xx or 3xx responses: (\d+)"))
    return {
        "requests": int(num(r"(\d+) requests in")),
        "seconds": num(r"requests in ([\d.]+)s"),
        "p99_ms": ms(*m.groups()) if m else None,
        "socket_errors": socket_errors,
        "non_2xx": non2xx,
        "failed": socket_errors + non2xx,
    }


def wrk_for(url: str, seconds: int) -> dict[str, Any]:
    r = sh(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url], timeout=seconds + 60)
    return parse_wrk(r.stdout)


def time_to_healthy(since: float, until: float, project: str) -> dict[str, float]:
    """Container id -> seconds from its creation to its first healthy report."""
    r = sh(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--filter",
            f"label={LABEL}={project}",
            "--format",
            "{{json .}}",
        ],
        timeout=60,
    )
    created: dict[str, float] = {}
    healthy: dict[str, float] = {}
    for line in r.stdout.splitlines():
        ev = json.loads(line)
        when = ev.get("timeNano", 0) / 1e9
        if ev.get("status") == "create":
            created[ev["id"]] = when
        elif ev.get("status") == "health_status: healthy":
            healthy.setdefault(ev["id"], when)
    return {cid: healthy[cid] - t for cid, t in created.items() if cid in healthy}


def one_round(work: Path, project: str, url: str, version: int) -> dict[str, Any]:
    build(version, work)
    wrk = subprocess.Popen(
        ["wrk", "-t2", "-c16", "-d600s", "--latency", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.0)
    since = time.time()
    t0 = time.monotonic()
    up = compound(work, project, "up", "-d")
    update_s = time.monotonic() - t0
    until = time.time()
    time.sleep(1.0)
    wrk.send_signal(signal.SIGINT)  # wrk prints its report when interrupted
    out, _ = wrk.communicate(timeout=60)
    if up.returncode != 0:
        raise SystemExit(f"compound up failed:\n{up.stdout}{up.stderr}")
    wait_serving(url, f"v{version}", timeout=10)
    tth = time_to_healthy(since, until + 1, project)
    return {
        "version": version,
        "update_s": update_s,
        "time_to_healthy_s": sorted(tth.values()),
        "sum_time_to_healthy_s": sum(tth.values()),
        "load": parse_wrk(out),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--rest-seconds", type=int, default=10)
    ap.add_argument(
        "--maxconn",
        type=int,
        default=8,
        help="x-compound.lb.maxconn per replica (busybox httpd listens with a backlog of 9)",
    )
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk, or `make deps`)")
    project = f"benchroll{os.getpid()}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/index.html"
    work = Path(tempfile.mkdtemp(prefix="compound-bench-roll-"))
    (work / "compose.yaml").write_text(
        COMPOSE.format(image=IMAGE, port=port, replicas=args.replicas, maxconn=args.maxconn)
    )
    res: dict[str, Any] = {
        "benchmark": "rolling_update",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "replicas": args.replicas,
        "maxconn": args.maxconn,
        "load_generator": "wrk -t2 -c16 (loopback, through compound's HAProxy)",
        "rounds": [],
    }
    try:
        build(1, work)
        r = compound(work, project, "up", "-d", "--wait")
        if r.returncode != 0:
            raise SystemExit(f"compound up failed:\n{r.stdout}{r.stderr}")
        wait_serving(url, "v1")
        log(f"at rest: wrk for {args.rest_seconds}s")
        res["rest"] = wrk_for(url, args.rest_seconds)
        for version in range(2, 2 + args.rounds):
            log(f"round {version - 1}: rolling update to v{version} under load")
            res["rounds"].append(one_round(work, project, url, version))
    finally:
        compound(work, project, "down", "-v")
        sh(["docker", "image", "rm", "-f", IMAGE])
        shutil.rmtree(work, ignore_errors=True)
    rounds = res["rounds"]
    sent = sum(x["load"]["requests"] for x in rounds)
    failed = sum(x["load"]["failed"] for x in rounds)
    p99s = [x["load"]["p99_ms"] for x in rounds if x["load"]["p99_ms"] is not None]
    res["total"] = {
        "requests": sent,
        "failed": failed,
        "p99_update_ms_worst": max(p99s) if p99s else None,
        "p99_rest_ms": res["rest"]["p99_ms"],
        "update_s_mean": sum(x["update_s"] for x in rounds) / len(rounds),
        "sum_tth_s_mean": sum(x["sum_time_to_healthy_s"] for x in rounds) / len(rounds),
    }
    report = render(res)
    print(report)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
        base = RESULTS_DIR / f"rolling_update-{stamp}_{res['machine']['hostname']}"
        base.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
        base.with_suffix(".md").write_text(report + "\n")
        log(f"wrote {base}.json and .md")
    return 0 if failed == 0 else 1


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    t = res["total"]
    rest = res["rest"]
    lines = [
        f"# Rolling update under load — {res['date']} on {m['hostname']}",
        "",
        f"{m.get('nproc')} x {m.get('cpu')}, {m.get('memory_mib')} MiB, Docker "
        f"{m.get('docker_server')}, commit {m.get('git_commit')}. {res['replicas']} replicas "
        f"of busybox httpd behind compound's HAProxy (lb.maxconn {res.get('maxconn')}); "
        f"{res['load_generator']}; update_config: parallelism 1, start-first.",
        "",
        f"At rest: {rest['requests']} requests in {rest['seconds']:.1f} s, "
        f"p99 {rest['p99_ms']:.2f} ms, failed {rest['failed']}.",
        "",
        "| round | requests | failed | p99 during update (ms) | p99 ratio to rest "
        "| update (s) | sum of time-to-healthy (s) | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, x in enumerate(res["rounds"], start=1):
        load = x["load"]
        p99 = load["p99_ms"]
        lines.append(
            f"| {i} | {load['requests']} | {load['failed']} | "
            f"{p99:.2f} | {p99 / rest['p99_ms']:.2f} | {x['update_s']:.2f} | "
            f"{x['sum_time_to_healthy_s']:.2f} | "
            f"{x['update_s'] / max(x['sum_time_to_healthy_s'], 1e-9):.2f} |"
        )
    lines += [
        "",
        f"Total: {t['requests']} requests during updates, **{t['failed']} failed** (target 0); "
        f"worst p99 during an update {t['p99_update_ms_worst']:.2f} ms vs {t['p99_rest_ms']:.2f} "
        f"ms at rest; mean update {t['update_s_mean']:.2f} s vs mean sum of time-to-healthy "
        f"{t['sum_tth_s_mean']:.2f} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
