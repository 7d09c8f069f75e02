#!/usr/bin/env python3
"""compound benchmarks (standard library only; imports nothing from compound).

    python bench/run.py                        run every benchmark with defaults
    python bench/run.py compose-up-down        one benchmark
    python bench/run.py compose-up-down --rounds 9 --tools docker-compose
    python bench/run.py --list                 list benchmarks

Results are printed and written to bench/results/<date>T<time>_<host>.{json,md}
(unless --no-save). Tools are driven only through their command lines and checked
only through the Docker Engine (`docker ps` with label filters), so the same
numbers mean the same thing for every tool.

Benchmarks
  compose-up-down  `up -d` then `down` of bench/compose/twenty.yaml (20 busybox
                   services), compound vs Debian's docker-compose 1.29, tools
                   interleaved per round, fresh project name per run. Reports
                   medians and the ratio compound/docker-compose (target <= 0.8).

Adding one: write run_<name>(args, ctx) -> dict and register it in BENCHMARKS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Labels each tool puts on the containers it creates (how we find "its" containers).
COMPOUND_PROJECT_LABEL = "io.compound.project"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"

TARGET_RATIO = 0.8
ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_COMPOSE_FILE = ROOT / "bench" / "compose" / "twenty.yaml"
COMMAND_TIMEOUT = 600.0


# ----------------------------------------------------------------------------- helpers


def sh(
    cmd: list[str], timeout: float = COMMAND_TIMEOUT, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; never raises for a non-zero exit."""
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as e:
        return subprocess.CompletedProcess(cmd, 127, "", str(e))
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return subprocess.CompletedProcess(
            cmd, 124, out, err + f"\n(timed out after {timeout:.0f}s)"
        )


def out_of(cmd: list[str], timeout: float = 30.0) -> str | None:
    r = sh(cmd, timeout=timeout)
    return r.stdout.strip() if r.returncode == 0 else None


def tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def summarize(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None, "mean": None, "stdev": None}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def fmt_s(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}s"


def fmt_ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


# ----------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mib"] = int(line.split()[1]) // 1024
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', Path("/etc/os-release").read_text(), re.M)
        if m:
            info["os"] = m.group(1)
    except OSError:
        pass
    info["kvm"] = os.access("/dev/kvm", os.R_OK | os.W_OK)
    info["docker_server"] = out_of(["docker", "version", "--format", "{{.Server.Version}}"])
    docker_info = out_of(
        ["docker", "info", "--format", "{{.Driver}} {{.CgroupDriver}} {{.CgroupVersion}}"]
    )
    if docker_info:
        parts = docker_info.split()
        info["docker_storage_driver"] = parts[0] if parts else None
        info["docker_cgroup"] = " v".join(parts[1:3]) if len(parts) >= 3 else None
    info["docker_compose"] = out_of(["docker-compose", "version", "--short"])
    info["git_commit"] = out_of(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    return info


# ----------------------------------------------------------------------------- tools


@dataclass
class Tool:
    name: str
    cmd: list[str]
    project_label: str
    available: bool = False
    version: str | None = None
    reason: str | None = None
    detail: str | None = None

    def compose(self, file: Path, project: str, *args: str) -> list[str]:
        return [*self.cmd, "-f", str(file), "-p", project, *args]


def find_compound(explicit: str | None) -> list[str] | None:
    if explicit:
        return explicit.split()
    venv = ROOT / ".venv" / "bin" / "compound"
    if venv.exists():
        return [str(venv)]
    which = shutil.which("compound")
    return [which] if which else None


def probe_tool(tool: Tool, version_args: list[str]) -> Tool:
    if not tool.cmd:
        tool.reason = "not installed"
        return tool
    r = sh([*tool.cmd, *version_args], timeout=60)
    if r.returncode != 0:
        output = (r.stderr or r.stdout).strip()
        last = output.splitlines()[-1] if output else f"exit status {r.returncode}"
        tool.reason = f"`{' '.join([*tool.cmd, *version_args])}` failed: {last}"
        tool.detail = tail(output, 20)
        return tool
    tool.available = True
    first = (r.stdout.strip() or r.stderr.strip()).splitlines()
    tool.version = first[0].strip() if first else None
    return tool


def make_tools(args: argparse.Namespace) -> dict[str, Tool]:
    compound_cmd = find_compound(getattr(args, "compound", None))
    tools = {
        "compound": Tool("compound", compound_cmd or [], COMPOUND_PROJECT_LABEL),
        "docker-compose": Tool(
            "docker-compose",
            (getattr(args, "docker_compose", None) or "docker-compose").split(),
            COMPOSE_PROJECT_LABEL,
        ),
        # Compose v2 CLI plugin, if a machine has it (Debian 12's docker.io does not).
        "docker-compose-v2": Tool(
            "docker-compose-v2", ["docker", "compose"], COMPOSE_PROJECT_LABEL
        ),
    }
    if compound_cmd is None:
        tools[
            "compound"
        ].reason = "not installed (no .venv/bin/compound and none on PATH; run: make venv)"
    else:
        probe_tool(tools["compound"], ["--version"])
        if not tools["compound"].available:
            # --version may not exist yet; --help proves the CLI at least loads
            reason, detail = tools["compound"].reason, tools["compound"].detail
            probe_tool(tools["compound"], ["--help"])
            if tools["compound"].available:
                tools["compound"].version = "unknown (no --version)"
                tools["compound"].reason = tools["compound"].detail = None
            else:
                tools["compound"].reason, tools["compound"].detail = reason, detail
    probe_tool(tools["docker-compose"], ["version", "--short"])
    probe_tool(tools["docker-compose-v2"], ["version", "--short"])
    return tools


# ----------------------------------------------------------------------------- docker state


def containers(label: str, project: str, running_only: bool) -> list[str]:
    cmd = ["docker", "ps", "-q", "--filter", f"label={label}={project}"]
    if running_only:
        cmd += ["--filter", "status=running"]
    else:
        cmd.insert(2, "-a")
    r = sh(cmd, timeout=60)
    return r.stdout.split() if r.returncode == 0 else []


def cleanup_project(project: str) -> None:
    """Remove whatever a run left behind (untimed): containers, networks, volumes."""
    for label in (COMPOUND_PROJECT_LABEL, COMPOSE_PROJECT_LABEL):
        flt = f"label={label}={project}"
        ids = sh(["docker", "ps", "-aq", "--filter", flt], timeout=60).stdout.split()
        if ids:
            sh(["docker", "rm", "-f", "-v", *ids], timeout=300)
        nets = sh(["docker", "network", "ls", "-q", "--filter", flt], timeout=60).stdout.split()
        if nets:
            sh(["docker", "network", "rm", *nets], timeout=120)
        vols = sh(["docker", "volume", "ls", "-q", "--filter", flt], timeout=60).stdout.split()
        if vols:
            sh(["docker", "volume", "rm", "-f", *vols], timeout=120)
    # objects named after the project but labelled differently
    for kind in ("network", "volume"):
        names = sh(["docker", kind, "ls", "--format", "{{.Name}}"], timeout=60).stdout.split()
        leftovers = [n for n in names if n.startswith(f"{project}_") or n.startswith(f"{project}-")]
        if leftovers:
            sh(["docker", kind, "rm", *leftovers], timeout=120)


def count_services(file: Path) -> int:
    """Count the keys of the top-level `services:` mapping (enough for our own files)."""
    count, inside, indent = 0, False, None
    for raw in file.read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip() if raw.lstrip().startswith("#") else raw.rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            inside = line.startswith("services:")
            indent = None
            continue
        if inside:
            width = len(line) - len(line.lstrip())
            if indent is None:
                indent = width
            if width == indent and re.match(r"\s*[A-Za-z0-9._-]+:\s*$", line):
                count += 1
    return count


# ----------------------------------------------------------------------------- compose-up-down


@dataclass
class Run:
    round: int
    project: str
    warmup: bool = False
    up_s: float | None = None
    down_s: float | None = None
    running_after_up: int | None = None
    left_after_down: int | None = None
    ok: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ToolResult:
    tool: Tool
    runs: list[Run] = field(default_factory=list)

    def values(self, phase: str) -> list[float]:
        return [getattr(r, f"{phase}_s") for r in self.runs if r.ok and not r.warmup]


def one_up_down(tool: Tool, file: Path, project: str, expect: int, rnd: int, warmup: bool) -> Run:
    run = Run(round=rnd, project=project, warmup=warmup)
    try:
        t0 = time.perf_counter()
        r = sh(tool.compose(file, project, "up", "-d"), cwd=file.parent)
        run.up_s = time.perf_counter() - t0
        if r.returncode != 0:
            run.error = f"up -d exited {r.returncode}: {tail(r.stderr or r.stdout)}"
            return run
        run.running_after_up = len(containers(tool.project_label, project, running_only=True))
        if run.running_after_up != expect:
            run.error = (
                f"after up -d, {run.running_after_up} containers labelled "
                f"{tool.project_label}={project} are running, expected {expect}"
            )
        t0 = time.perf_counter()
        r = sh(tool.compose(file, project, "down"), cwd=file.parent)
        run.down_s = time.perf_counter() - t0
        if r.returncode != 0:
            run.error = run.error or f"down exited {r.returncode}: {tail(r.stderr or r.stdout)}"
            return run
        run.left_after_down = len(containers(tool.project_label, project, running_only=False))
        if run.left_after_down:
            run.error = (
                run.error or f"after down, {run.left_after_down} containers of {project} remain"
            )
        run.ok = run.error is None
        return run
    finally:
        cleanup_project(project)


def run_compose_up_down(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    file = Path(getattr(args, "file", None) or DEFAULT_COMPOSE_FILE).resolve()
    rounds = int(getattr(args, "rounds", 5))
    warmups = int(getattr(args, "warmup", 1))
    pause = float(getattr(args, "pause", 1.0))
    expect = int(getattr(args, "expect", 0) or count_services(file))
    wanted = (getattr(args, "tools", None) or "compound,docker-compose").split(",")
    tools: dict[str, Tool] = ctx["tools"]
    unknown = [t for t in wanted if t not in tools]
    if unknown:
        raise SystemExit(f"unknown tool(s) {unknown}; known: {', '.join(tools)}")

    results = {name: ToolResult(tools[name]) for name in wanted}
    active = [name for name in wanted if tools[name].available]
    for name in wanted:
        t = tools[name]
        if t.available:
            log(f"[compose-up-down] {name}: {' '.join(t.cmd)} ({t.version})")
        else:
            log(f"[compose-up-down] {name}: NOT AVAILABLE — {t.reason}")
            if t.detail:
                log("    " + t.detail.replace("\n", "\n    "))
    log(
        f"[compose-up-down] {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}: "
        f"{expect} services, {warmups} warm-up + {rounds} rounds, tools interleaved"
    )

    stamp = dt.datetime.now().strftime("%H%M%S")
    total = warmups + rounds
    for i in range(total):
        warm = i < warmups
        rnd = i - warmups + 1
        # alternate which tool goes first, so neither always runs on a "cold" engine
        order = active if i % 2 == 0 else list(reversed(active))
        for name in order:
            short = "cpd" if name == "compound" else re.sub(r"[^a-z0-9]", "", name)[:6]
            project = f"bench{short}{stamp}r{i}"
            run = one_up_down(tools[name], file, project, expect, rnd, warm)
            results[name].runs.append(run)
            label = "warm-up" if warm else f"round {rnd}/{rounds}"
            status = "ok" if run.ok else f"FAILED: {run.error}"
            log(
                f"  {label:>11}  {name:<17} up {fmt_s(run.up_s):>7}  "
                f"down {fmt_s(run.down_s):>7}  {status}"
            )
            time.sleep(pause)

    summary: dict[str, Any] = {}
    for name, res in results.items():
        t = res.tool
        summary[name] = {
            "available": t.available,
            "reason": t.reason,
            "detail": t.detail,
            "command": t.cmd,
            "version": t.version,
            "project_label": t.project_label,
            "runs": [r.as_dict() for r in res.runs],
            "failed_runs": sum(1 for r in res.runs if not r.ok and not r.warmup),
            "up": summarize(res.values("up")),
            "down": summarize(res.values("down")),
        }

    def ratio(phase: str) -> float | None:
        a = summary.get("compound", {}).get(phase, {}).get("median")
        b = summary.get("docker-compose", {}).get(phase, {}).get("median")
        return a / b if a is not None and b else None

    return {
        "benchmark": "compose-up-down",
        "file": str(file.relative_to(ROOT) if file.is_relative_to(ROOT) else file),
        "services": expect,
        "rounds": rounds,
        "warmup_rounds": warmups,
        "pause_s": pause,
        "tools": summary,
        "ratios": {"up": ratio("up"), "down": ratio("down")},
        "target_ratio": TARGET_RATIO,
    }


def report_compose_up_down(res: dict[str, Any]) -> tuple[str, str]:
    """Plain-text table and Markdown section."""
    head = (
        f"compose-up-down: {res['file']} "
        f"({res['services']} services, {res['rounds']} rounds, medians)"
    )
    rows = []
    for name, t in res["tools"].items():
        if not t["available"]:
            rows.append((name, "—", "", "", "—", "", "", "not available (see below)"))
            continue
        u, d = t["up"], t["down"]
        rows.append(
            (
                name,
                fmt_s(u["median"]),
                fmt_s(u["min"]),
                fmt_s(u["max"]),
                fmt_s(d["median"]),
                fmt_s(d["min"]),
                fmt_s(d["max"]),
                f"{u['n']}/{res['rounds']} ok"
                + (f", {t['failed_runs']} failed" if t["failed_runs"] else ""),
            )
        )
    cols = ("tool", "up", "up min", "up max", "down", "down min", "down max", "runs")
    widths = [max(len(str(r[i])) for r in [cols, *rows]) for i in range(len(cols) - 1)]
    lines = [head, ""]
    lines.append(
        "  ".join(c.ljust(w) for c, w in zip(cols[:-1], widths, strict=True)) + "  " + cols[-1]
    )
    for r in rows:
        lines.append(
            "  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        )
    ru, rd = res["ratios"]["up"], res["ratios"]["down"]
    target = res["target_ratio"]

    def verdict(v: float | None) -> str:
        return "" if v is None else (" (meets target)" if v <= target else " (misses target)")

    lines.append("")
    lines.append(
        f"ratio compound/docker-compose: up {fmt_ratio(ru)}{verdict(ru)}, "
        f"down {fmt_ratio(rd)}{verdict(rd)}; target <= {target}"
    )
    if not res["tools"].get("compound", {}).get("available", True):
        lines.append("compound was NOT measured: " + str(res["tools"]["compound"]["reason"]))
    for name, t in res["tools"].items():
        if not t["available"] and name != "compound":
            lines.append(f"{name} was NOT measured: {t['reason']}")
    text = "\n".join(lines)

    md = [
        "## compose-up-down",
        "",
        f"`{res['file']}`: {res['services']} services, "
        f"{res['warmup_rounds']} warm-up + {res['rounds']} measured rounds, tools interleaved, "
        "fresh project per run; times are wall-clock seconds of the CLI call.",
        "",
    ]
    md.append("| tool | version | up median | up min-max | down median | down min-max | runs |")
    md.append("|---|---|---|---|---|---|---|")
    for name, t in res["tools"].items():
        if not t["available"]:
            md.append(f"| {name} | — | not available: {t['reason']} | | | | |".replace("\n", " "))
            continue
        u, d = t["up"], t["down"]
        md.append(
            f"| {name} | {t['version']} | {fmt_s(u['median'])} "
            f"| {fmt_s(u['min'])}-{fmt_s(u['max'])} | {fmt_s(d['median'])} "
            f"| {fmt_s(d['min'])}-{fmt_s(d['max'])} | {u['n']}/{res['rounds']} ok |"
        )
    md += [
        "",
        f"Ratio compound/docker-compose (median): up **{fmt_ratio(ru)}**, down **{fmt_ratio(rd)}** "
        f"(target ≤ {target}).",
        "",
    ]
    failures = [(name, r) for name, t in res["tools"].items() for r in t["runs"] if not r["ok"]]
    if failures:
        md += ["Failed runs:", ""]
        md += [
            f"- {name} round {r['round']}{' (warm-up)' if r['warmup'] else ''}: "
            f"{(r['error'] or '').splitlines()[0] if r['error'] else ''}"
            for name, r in failures
        ]
        md.append("")
    return text, "\n".join(md)


# ----------------------------------------------------------------------------- registry / main


@dataclass
class Benchmark:
    name: str
    help: str
    add_args: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, dict[str, Any]], dict[str, Any]]
    report: Callable[[dict[str, Any]], tuple[str, str]]


def _compose_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--file",
        default=argparse.SUPPRESS,
        help=f"compose file (default {DEFAULT_COMPOSE_FILE.relative_to(ROOT)})",
    )
    p.add_argument(
        "--expect",
        type=int,
        default=argparse.SUPPRESS,
        help="services expected running after up (default: counted from the file)",
    )
    p.add_argument(
        "--pause",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds to idle between runs (default 1)",
    )


BENCHMARKS: dict[str, Benchmark] = {
    "compose-up-down": Benchmark(
        "compose-up-down",
        "up -d / down of a 20-service file: compound vs docker-compose",
        _compose_args,
        run_compose_up_down,
        report_compose_up_down,
    ),
}


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rounds", type=int, default=argparse.SUPPRESS, help="measured rounds per tool (default 5)"
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=argparse.SUPPRESS,
        help="untimed warm-up rounds per tool (default 1)",
    )
    p.add_argument(
        "--tools",
        default=argparse.SUPPRESS,
        help="comma-separated: compound, docker-compose, docker-compose-v2 "
        "(default compound,docker-compose)",
    )
    p.add_argument(
        "--compound",
        default=argparse.SUPPRESS,
        help="compound command (default .venv/bin/compound, else PATH)",
    )
    p.add_argument(
        "--docker-compose",
        dest="docker_compose",
        default=argparse.SUPPRESS,
        help="docker-compose command",
    )
    p.add_argument(
        "--results-dir",
        default=argparse.SUPPRESS,
        help=f"where to write results (default {RESULTS_DIR.relative_to(ROOT)})",
    )
    p.add_argument(
        "--no-save",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print only, write no files",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        default=argparse.SUPPRESS,
        help="exit non-zero when a selected tool is unavailable (default: report and go on)",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="compound benchmarks; no benchmark named = run all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="benchmarks:\n" + "\n".join(f"  {b.name:<18} {b.help}" for b in BENCHMARKS.values()),
    )
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    _common_args(parser)
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for b in BENCHMARKS.values():
        sp = sub.add_parser(b.name, help=b.help)
        _common_args(sp)
        b.add_args(sp)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:<18} {b.help}")
        return 0
    selected = [BENCHMARKS[args.benchmark]] if args.benchmark else list(BENCHMARKS.values())

    if out_of(["docker", "version", "--format", "{{.Server.Version}}"]) is None:
        log("error: the Docker Engine does not answer (run: make engine)")
        return 2

    started = dt.datetime.now().astimezone()
    machine = machine_info()
    tools = make_tools(args)
    ctx = {"tools": tools, "machine": machine}
    results: dict[str, Any] = {}
    texts, mds = [], []
    for b in selected:
        res = b.run(args, ctx)
        results[b.name] = res
        text, md = b.report(res)
        texts.append(text)
        mds.append(md)

    print()
    print("\n\n".join(texts))
    doc = {
        "schema": 1,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine,
        "benchmarks": results,
    }
    if not getattr(args, "no_save", False):
        outdir = Path(getattr(args, "results_dir", None) or RESULTS_DIR)
        outdir.mkdir(parents=True, exist_ok=True)
        host = re.sub(r"[^A-Za-z0-9.-]", "-", machine["hostname"])
        base = outdir / f"{started.strftime('%Y-%m-%dT%H%M%S')}_{host}"
        (base.parent / f"{base.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
        m = machine
        ct = tools["compound"]
        compound_version = ct.version if ct.available else "not available"
        md_doc = [
            f"# compound benchmarks — {started.strftime('%Y-%m-%d %H:%M')} on {m['hostname']}",
            "",
            "| machine | |",
            "|---|---|",
            f"| CPU | {m.get('nproc')} x {m.get('cpu', '?')} |",
            f"| memory | {m.get('memory_mib', '?')} MiB |",
            f"| OS / kernel | {m.get('os', '?')} / {m.get('kernel')} |",
            f"| Docker Engine | {m.get('docker_server')} "
            f"({m.get('docker_storage_driver')}, cgroup {m.get('docker_cgroup')}) |",
            f"| docker-compose | {m.get('docker_compose')} |",
            f"| compound | {compound_version} (git {m.get('git_commit') or '-'}) |",
            f"| python | {m.get('python')} |",
            "",
            *mds,
        ]
        (base.parent / f"{base.name}.md").write_text("\n".join(md_doc))
        shown = base.relative_to(ROOT) if base.is_relative_to(ROOT) else base
        log(f"\nwrote {shown}.json and {shown}.md")

    # Exit status: 1 when a compound run failed (or, with --strict, any run failed or a
    # selected tool was unavailable). A peer's failed run is reported but does not fail
    # the benchmark: docker-compose 1.29 sometimes fails `down` with "network ... has
    # active endpoints" on this engine, a race on its side.
    failed = False
    strict = getattr(args, "strict", False)
    for res in results.values():
        for name, t in res.get("tools", {}).items():
            if t.get("failed_runs") and (name == "compound" or strict):
                failed = True
            if strict and not t.get("available"):
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
