#!/usr/bin/env python3
"""How fast the `compound` CLI answers, beside Debian's docker-compose 1.29.

    .venv/bin/python bench/cli_start.py                 15 interleaved rounds
    .venv/bin/python bench/cli_start.py --rounds 31
    .venv/bin/python bench/cli_start.py --baseline /work/main/.venv/bin/compound

Each round runs every command once, in the same order, so load from other
processes hits all alike; the figures are whole-process wall times (spawn to
exit) of the installed entry points, medians and minima over the rounds.

  compound --version | --help | config (one-service file) | ps (same file)
  compound config, uncached           COMPOUND_NO_CONFIG_CACHE=1: the whole load each time
  compound ps, uncached               the same for `ps` (its project from no cache)
  compound up --swarm, to the manager bench/compose/twenty.yaml, uncached, with no Swarm
                                      formed: everything `up --swarm` does before its
                                      first question to the manager (start, imports, load)
  docker-compose config (same file)   the peer, in the same rounds

`compound config` answers a repeated question from its cache
(cli/config_cache.py: nothing it read has changed), so its row is the
cached answer and the uncached row is the first `config` after an edit.
`ps` takes its project from the project cache (cli/project_cache.py) when
the files did not change; its uncached row is the first `ps` after an edit.

compound's sources are byte-compiled first (as an installed package is):
with PYTHONDONTWRITEBYTECODE set, an edited checkout would otherwise compile
every changed module in every process, and the figures would measure that.

It also records `python -X importtime` of `compound ps`, of an uncached
`compound config` and of `up --swarm` to the manager: the heaviest imports
left, so a regression names its cause.

Results: bench/results/cli_start-<date>T<time>_<host>.{json,md}. Target:
every compound command <= 0.25 s (median).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TWENTY = ROOT / "bench" / "compose" / "twenty.yaml"
TARGET_S = 0.25
ONE_SERVICE = """\
services:
  web:
    image: nginx:alpine
    ports: ["8080:80"]
    environment:
      MODE: production
"""


def _compound() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "compound"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "compound.cli.main"]


def _time_once(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall time and CPU time (user + system, from wait4: less swayed by the
    other processes of a loaded machine than the wall time) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def compile_sources(root: Path = ROOT / "src") -> None:
    """Byte-compile compound's sources where they are stale (what installing
    does), so no timed run pays for compiling them."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root)],
        check=False,
        stdout=subprocess.DEVNULL,
    )


def _importtime(
    cmd: list[str], cwd: Path, top: int = 12, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The slowest imports (cumulative) of one run of ``cmd``'s module (never
    from config's cache: this is what a load costs)."""
    python = ROOT / ".venv" / "bin" / "python"
    code = "import sys; from compound.cli.entry import run; sys.argv[0] = 'compound'; run()"
    r = subprocess.run(
        [
            str(python if python.exists() else sys.executable),
            "-X",
            "importtime",
            "-c",
            code,
            *cmd[1:],
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COMPOUND_NO_CONFIG_CACHE": "1", **(env or {})},
    )
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        if not self_us.strip().isdigit():
            continue
        # nesting is shown by indentation: two spaces a level after the one separator space
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append(
            {
                "module": name.strip(),
                "depth": depth,
                "self_us": int(self_us),
                "cumulative_us": int(cumulative_us),
            }
        )
    top_level = [r for r in rows if r["depth"] == 0]
    total = {"module": "(all imports)", "depth": 0, "self_us": 0}
    total["cumulative_us"] = sum(r["cumulative_us"] for r in top_level)
    return [total, *sorted(top_level, key=lambda r: -r["cumulative_us"])[:top]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument(
        "--baseline",
        metavar="EXE",
        help="another `compound` (e.g. an older checkout's .venv/bin/compound) in the same rounds",
    )
    args = ap.parse_args()

    compile_sources()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="compose-clistart-"))
    (work / "compose.yaml").write_text(ONE_SERVICE)
    no_swarm = work / "hosts"  # no Swarm formed: `up --swarm` stops at its first manager call
    compound = _compound()
    uncached = ["env", "COMPOUND_NO_CONFIG_CACHE=1"]
    swarm_up = ["-f", str(TWENTY), "-p", "compose-clistart", "--progress", "quiet", "up"]
    swarm_up += ["--swarm", "--json"]
    cases: dict[str, list[str]] = {
        "compound --version": [*compound, "--version"],
        "compound --help": [*compound, "--help"],
        "compound config": [*compound, "-p", "compose-clistart", "config"],
        "compound config, uncached": [
            "env",
            "COMPOUND_NO_CONFIG_CACHE=1",
            *compound,
            "-p",
            "compose-clistart",
            "config",
        ],
        "compound ps": [*compound, "-p", "compose-clistart", "ps"],
        "compound ps, uncached": [*uncached, *compound, "-p", "compose-clistart", "ps"],
        "compound up --swarm, to the manager": [
            *uncached,
            f"COMPOUND_HOSTS_DIR={no_swarm}",
            *compound,
            *swarm_up,
        ],
    }
    if args.baseline:
        cases["baseline --version"] = [args.baseline, "--version"]
        cases["baseline config"] = [args.baseline, "-p", "compose-clistart", "config"]
        cases["baseline config, uncached"] = [*uncached, args.baseline, "-p", "compose-clistart"]
        cases["baseline config, uncached"].append("config")
        cases["baseline ps"] = [args.baseline, "-p", "compose-clistart", "ps"]
        cases["baseline ps, uncached"] = [*uncached, args.baseline, "-p", "compose-clistart", "ps"]
        cases["baseline up --swarm, to the manager"] = [
            *uncached,
            f"COMPOUND_HOSTS_DIR={no_swarm}",
            args.baseline,
            *swarm_up,
        ]
    peer = shutil.which("docker-compose")
    if peer:
        cases["docker-compose config"] = [peer, "-p", "compose-clistart", "config"]
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    codes: dict[str, set[int]] = {name: set() for name in cases}
    for cmd in cases.values():  # warm the page cache and any first-use cache
        _time_once(cmd, work)
    for _ in range(args.rounds):
        for name, cmd in cases.items():
            elapsed, used, code = _time_once(cmd, work)
            times[name].append(elapsed)
            cpu[name].append(used)
            codes[name].add(code)
    results = {
        name: {
            "median_s": round(statistics.median(ts), 4),
            "min_s": round(min(ts), 4),
            "max_s": round(max(ts), 4),
            "cpu_median_s": round(statistics.median(cpu[name]), 4),
            "wall_s": [round(t, 4) for t in ts],
            "cpu_s": [round(t, 4) for t in cpu[name]],
            "exit_codes": sorted(codes[name]),
            "meets_target": name.startswith("docker-compose") or statistics.median(ts) <= TARGET_S,
        }
        for name, ts in times.items()
    }
    report = {
        "benchmark": "cli_start",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "rounds": args.rounds,
        "target_s": TARGET_S,
        "results": results,
        "importtime_ps": _importtime(cases["compound ps"], work),
        "importtime_config": _importtime(cases["compound config, uncached"][2:], work),
        "importtime_swarm_up": _importtime(
            [*compound, *swarm_up], work, env={"COMPOUND_HOSTS_DIR": str(no_swarm)}
        ),
        "docker_compose": peer,
    }
    report["loadavg_after"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    out = ROOT / "bench" / "results" / f"cli_start-{stamp}_{platform.node()}"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(report))
    print(_markdown(report))
    print(f"written: {out}.json, {out}.md")
    return 0


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# cli_start, {report['date']} on {report['host']}",
        "",
        f"{report['rounds']} interleaved rounds, whole-process wall time; target "
        f"<= {report['target_s']} s median; load average after: "
        f"{', '.join(f'{x:.2f}' for x in report['loadavg_after'])} (before: "
        f"{', '.join(f'{x:.2f}' for x in report['loadavg_before'])}) on {report['cpus']} CPUs",
        "",
        "| command | median | min | max | CPU median | exit codes | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["results"].items():
        met = "met" if r["meets_target"] else "not met"
        if name.startswith(("docker-compose", "baseline")):
            met = "peer"
        lines.append(
            f"| `{name}` | {r['median_s']:.3f} s | {r['min_s']:.3f} s | {r['max_s']:.3f} s "
            f"| {r['cpu_median_s']:.3f} s | {r['exit_codes']} | {met} |"
        )
    for key, title in (
        ("importtime_ps", "ps"),
        ("importtime_config", "config (uncached)"),
        ("importtime_swarm_up", "up --swarm, to the manager"),
    ):
        lines += ["", f"Slowest top-level imports of `compound {title}` (cumulative):", ""]
        lines += [f"- {r['module']}: {r['cumulative_us'] / 1000:.1f} ms" for r in report[key]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
