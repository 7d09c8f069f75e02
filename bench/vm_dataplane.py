#!/usr/bin/env python3
"""The VM data plane beside a container's, same run, same host: network
(container -> container vs container -> VM) and volume work (in a container
vs in the VM, on one shared named volume).

    .venv/bin/python bench/vm_dataplane.py             5 rounds (about 10 min under TCG)
    .venv/bin/python bench/vm_dataplane.py --quick     2 rounds, shorter runs
    .venv/bin/python bench/vm_dataplane.py --rounds 3 --no-save

One compound project (`compound up -d --wait`) holds every target, so the
targets share the host's load; rounds are interleaved (round 1: container,
vm-before, vm-after; round 2: the same...) and the report gives medians:

  ct         a container running the servers (iperf3 -s, lighttpd)
  vm-before  the same image as a VM, `x-compound.vm: {net: user, share: 9p}`
             (QEMU user networking + virtio-9p: the path before issue 10)
  vm-after   the same image as a VM with compound's defaults (tap + virtio-fs
             once they exist)
  client     a container that runs every client (iperf3 -c, wrk)

When this compound does not know `vm.net`/`vm.share` (`compound config`
rejects them), the defaults ARE slirp + 9p: the run then measures one VM,
reported as vm-before, and says so.

Network, client container -> target, by service name:
  TCP throughput  iperf3 -t T, both directions (-R: target sends)
  HTTP            wrk -t1 -c1 -d T --latency against lighttpd (one process,
                  no fork per request): p50, p99, requests/s (keep-alive)
  UDP loss        iperf3 -u -b 50M -t T: lost/total datagrams at the server
Volume work (inside the target, timed there with `date +%s%N`, on the shared
volume `data`):
  seq write       dd 256 MiB bs=1M conv=fsync; seq read: dd it back (bs=1M)
  small files     2,000 files of one line: create (shell builtin echo, no
                  fork per file), read (one `cat` of all), `ls -lR`, delete
  visible         the target writes a fresh token, the `vol` container
                  reads it at once (docker exec right after): seen or not

Image: local/compound-bench-net:1 (Debian minbase + iperf3, lighttpd, wrk;
`images/build.sh benchnet`, built on first use). VMs: 1 vCPU, 128 MiB.

Results: bench/results/vm_dataplane-<date>T<time>_<host>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import RESULTS_DIR, ROOT, log, machine_info, sh, tail

COMPOUND = str(ROOT / ".venv" / "bin" / "compound")
IMAGE = "local/compound-bench-net:1"
IPERF_PORT = 5201
HTTP_PORT = 8080
UDP_RATE = "50M"
SMALL_FILES = 2000
SEQ_MIB = 256
TIMEOUT = 600.0

# targets of the report (issue 10)
TARGET_TCP_GAIN = 3.0  # container -> VM throughput, after / before, both ways
TARGET_HTTP_P50_MS = 2.0
TARGET_SMALL_FILES_RATIO = 10.0  # VM / container

SERVE = (
    "mkdir -p /www && echo ok > /www/index.html && "
    """echo 'server.document-root = "/www"' > /tmp/httpd.conf && """
    f"echo 'server.port = {HTTP_PORT}' >> /tmp/httpd.conf && "
    f"(iperf3 -s -p {IPERF_PORT} >/dev/null 2>&1 &) && "
    "exec lighttpd -D -f /tmp/httpd.conf"
)

VOLUME_SCRIPT = r"""
set -e
# the image's tools by full path: in the VM the script has been run by a
# busybox ash whose built-in date has no %N ("123%N" then reads as a modulo
# by zero); seen in the bench VM, not reproduced by hand
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
now() { /usr/bin/date +%s%N; }
d=/data/$1; rm -rf "$d"; mkdir -p "$d/small"; cd "$d"
t0=$(now); dd if=/dev/zero of=big bs=1M count=$2 conv=fsync 2>/dev/null; t1=$(now)
echo "seq_write $(( (t1 - t0) / 1000 ))"
sync; t0=$(now); dd if=big of=/dev/null bs=1M 2>/dev/null; t1=$(now)
echo "seq_read $(( (t1 - t0) / 1000 ))"
rm -f big
t0=$(now); i=0; while [ $i -lt $3 ]; do echo "line $i" > small/f$i; i=$((i + 1)); done; t1=$(now)
echo "create $(( (t1 - t0) / 1000 ))"
t0=$(now); cat small/* > /dev/null; t1=$(now)
echo "read $(( (t1 - t0) / 1000 ))"
t0=$(now); ls -lR small > /dev/null; t1=$(now)
echo "ls_lR $(( (t1 - t0) / 1000 ))"
t0=$(now); rm -rf small; t1=$(now)
echo "delete $(( (t1 - t0) / 1000 ))"
cd /; rm -rf "$d"
"""


def compose_yaml(variants: dict[str, dict[str, Any] | None]) -> str:
    """Services: client, vol, ct and one VM per variant (its x-compound.vm)."""
    lines = ["services:"]

    def service(name: str, command: str, vm: dict[str, Any] | None, is_vm: bool) -> None:
        lines.extend(
            [
                f"  {name}:",
                f"    image: {IMAGE}",
                f"    command: [sh, -c, {json.dumps(command)}]",
                "    volumes: [data:/data]",
            ]
        )
        if is_vm:
            opts = {"memory": "128m", "vcpus": 1, **(vm or {})}
            lines.append(f"    x-compound: {json.dumps({'runtime': 'vm', 'vm': opts})}")
            # slirp forwards only declared ports; with the launcher's own IP
            # (tap) this is not needed but harmless
            lines.append(f'    expose: ["{IPERF_PORT}", "{IPERF_PORT}/udp", "{HTTP_PORT}"]')

    service("client", "exec sleep infinity", None, False)
    service("vol", "exec sleep infinity", None, False)
    service("ct", SERVE, None, False)
    for name, vm in variants.items():
        service(name, SERVE, vm, True)
    lines.append("volumes:\n  data: {}")
    return "\n".join(lines) + "\n"


class Project:
    def __init__(self, name: str, workdir: Path) -> None:
        self.name, self.workdir = name, workdir

    def compound(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return sh([COMPOUND, "-p", self.name, *args], timeout=timeout, cwd=self.workdir)

    def container(self, service: str) -> str:
        r = sh(
            [
                "docker",
                "ps",
                "-q",
                "--filter",
                f"label=io.compound.project={self.name}",
                "--filter",
                f"label=io.compound.service={service}",
            ]
        )
        ids = r.stdout.split()
        if not ids:
            raise RuntimeError(f"no running container for {service} in {self.name}")
        return ids[0]

    def run_in(self, service: str, script: str, *args: str, timeout: float = TIMEOUT) -> str:
        """Run sh -c SCRIPT in a service: docker exec for containers,
        compound exec (the guest agent) for VMs."""
        if service.startswith("vm"):
            cmd = [
                COMPOUND,
                "-p",
                self.name,
                "exec",
                "-T",
                service,
                "sh",
                "-c",
                script,
                "sh",
                *args,
            ]
        else:
            cmd = ["docker", "exec", self.container(service), "/bin/sh", "-c", script, "sh", *args]
        r = sh(cmd, timeout=timeout, cwd=self.workdir)
        if r.returncode != 0:
            raise RuntimeError(f"{service}: exit {r.returncode}: {tail(r.stderr or r.stdout)}")
        return r.stdout


def knows_vm_keys(workdir: Path) -> bool:
    """Does this compound accept x-compound.vm.net / vm.share?"""
    probe = workdir / "probe.yaml"
    probe.write_text(
        "services:\n  v:\n    image: local/busybox:latest\n"
        "    x-compound: {runtime: vm, vm: {net: user, share: 9p}}\n"
    )
    return sh([COMPOUND, "-f", str(probe), "config"], cwd=workdir).returncode == 0


def ensure_image() -> None:
    r = sh(["bash", str(ROOT / "images" / "build.sh"), "benchnet"], timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"images/build.sh benchnet failed:\n{tail(r.stderr, 30)}")


def iperf(p: Project, target: str, seconds: int, *extra: str) -> dict[str, Any]:
    cmd = f"iperf3 -J -c {target} -p {IPERF_PORT} -t {seconds} {' '.join(extra)}"
    out = p.run_in("client", f"timeout {seconds + 20} {cmd}", timeout=seconds + 60)
    j = dict(json.loads(out))
    if "error" in j:
        raise RuntimeError(f"iperf3 to {target}: {j['error']}")
    return j


def tcp(p: Project, target: str, seconds: int, reverse: bool) -> float:
    j = iperf(p, target, seconds, *(["-R"] if reverse else []))
    return float(j["end"]["sum_received"]["bits_per_second"]) / 1e9


def udp_loss(p: Project, target: str, seconds: int) -> float:
    """Lost datagrams in percent (100 when nothing arrives or iperf3 gives up)."""
    try:
        j = iperf(p, target, seconds, "-u", "-b", UDP_RATE)
    except (RuntimeError, json.JSONDecodeError):
        return 100.0
    s = j.get("end", {}).get("sum") or {}
    if "error" in j or not s.get("packets"):
        return 100.0
    return float(s["lost_percent"])


def http(p: Project, target: str, seconds: int) -> dict[str, float]:
    out = p.run_in(
        "client",
        f"wrk -t1 -c1 -d{seconds}s --latency http://{target}:{HTTP_PORT}/index.html",
        timeout=seconds + 60,
    )
    res: dict[str, float] = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 2 and w[0] in ("50%", "99%"):
            res["p50_ms" if w[0] == "50%" else "p99_ms"] = _ms(w[1])
        elif line.startswith("Requests/sec:"):
            res["rps"] = float(w[1])
    if len(res) != 3:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    return res


def _ms(v: str) -> float:
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    raise ValueError(v)


def volume(p: Project, target: str, tag: str) -> dict[str, float]:
    out = p.run_in(target, VOLUME_SCRIPT, tag, str(SEQ_MIB), str(SMALL_FILES))
    res = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        if v.strip().isdigit():
            res[k] = int(v) / 1e6  # microseconds -> seconds
    return res


def visible(p: Project, target: str) -> bool:
    token = uuid.uuid4().hex
    p.run_in(target, f"echo {token} > /data/visible-{target}")
    seen = p.run_in("vol", f"cat /data/visible-{target} 2>/dev/null || true").strip()
    return seen == token


def wait_serving(p: Project, target: str, timeout: float = 180.0) -> None:
    """`up --wait` means the entrypoint started; the servers in a VM under
    TCG answer some seconds later."""
    deadline = time.monotonic() + timeout
    probe = (
        f"iperf3 -c {target} -p {IPERF_PORT} -t 1 >/dev/null && "
        f"wrk -t1 -c1 -d1s http://{target}:{HTTP_PORT}/index.html >/dev/null"
    )
    while True:
        try:
            p.run_in("client", probe, timeout=60)
            return
        except RuntimeError as e:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{target} does not serve iperf3/HTTP: {e}") from e
            time.sleep(2)


def steps(
    p: Project, t: str, seconds: int, tag: str
) -> list[tuple[str, Callable[[], dict[str, float]]]]:
    """One round's measurements of target t, in order."""
    return [
        ("tcp_to", lambda: {"tcp_to_gbps": tcp(p, t, seconds, reverse=False)}),
        ("tcp_from", lambda: {"tcp_from_gbps": tcp(p, t, seconds, reverse=True)}),
        ("http", lambda: {f"http_{k}": v for k, v in http(p, t, seconds).items()}),
        ("udp", lambda: {"udp_loss_pct": udp_loss(p, t, seconds)}),
        ("volume", lambda: {f"vol_{k}_s": v for k, v in volume(p, t, tag).items()}),
        ("visible", lambda: {"visible": 1.0 if visible(p, t) else 0.0}),
    ]


def med(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_image()
    work = Path(tempfile.mkdtemp(prefix="compound-dataplane-"))
    keys = knows_vm_keys(work)
    variants: dict[str, dict[str, Any] | None] = (
        {"vm-before": {"net": "user", "share": "9p"}, "vm-after": None}
        if keys
        else {"vm-before": None}
    )
    (work / "compose.yaml").write_text(compose_yaml(variants))
    p = Project(f"{args.project_prefix}-{uuid.uuid4().hex[:6]}", work)
    targets = ["ct", *variants]
    seconds = args.seconds
    res: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "image": IMAGE,
        "vm_keys_known": keys,
        "variants": {k: v or "defaults" for k, v in variants.items()},
        "rounds": args.rounds,
        "seconds": seconds,
        "load_before": list(os.getloadavg()),
        "samples": {t: {} for t in targets},
        "errors": [],
    }
    log(f"[dataplane] project {p.name}: {', '.join(targets)}; vm.net/vm.share known: {keys}")
    try:
        t0 = time.monotonic()
        up = p.compound("up", "-d", "--wait")
        if up.returncode != 0:
            raise RuntimeError(f"compound up failed:\n{tail(up.stderr or up.stdout, 30)}")
        res["up_seconds"] = round(time.monotonic() - t0, 1)
        for t in targets:
            wait_serving(p, t)
        for rnd in range(args.rounds):
            for t in targets:
                s = res["samples"][t]
                log(f"[dataplane] round {rnd + 1}/{args.rounds}: {t}")
                for step, measure in steps(p, t, seconds, f"{t}-{rnd}"):
                    # one failed measurement is reported, not the end of the run
                    try:
                        for k, v in measure().items():
                            s.setdefault(k, []).append(v)
                    except (RuntimeError, ValueError, KeyError) as e:
                        log(f"[dataplane] {t} {step}: {e}")
                        res["errors"].append(f"round {rnd + 1} {t} {step}: {e}")
    finally:
        res["load_after"] = list(os.getloadavg())
        down = p.compound("down", "-v", timeout=300)
        if down.returncode != 0:
            log(f"[dataplane] compound down failed:\n{tail(down.stderr)}")
    res["medians"] = {t: {k: med(v) for k, v in s.items()} for t, s in res["samples"].items()}
    res["ratios"], res["targets"] = ratios(res["medians"])
    return res


def ratios(m: dict[str, dict[str, float | None]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    ct = m["ct"]
    out: dict[str, Any] = {}
    for vm in (k for k in m if k.startswith("vm")):
        r = out[vm] = {}
        for k in ("tcp_to_gbps", "tcp_from_gbps", "http_rps"):
            r[f"{k} ct/vm"] = div(ct.get(k), m[vm].get(k))
        for k in ("http_p50_ms", "http_p99_ms", *(x for x in ct if x.startswith("vol_"))):
            r[f"{k} vm/ct"] = div(m[vm].get(k), ct.get(k))
    small = ("vol_create_s", "vol_read_s", "vol_ls_lR_s", "vol_delete_s")
    goals: list[dict[str, Any]] = []
    before, after = m.get("vm-before"), m.get("vm-after")
    for k in ("tcp_to_gbps", "tcp_from_gbps"):
        gain = div(after.get(k), before.get(k)) if after and before else None
        goals.append(
            {
                "target": f"container→VM {k} after/before ≥ {TARGET_TCP_GAIN}",
                "value": gain,
                "met": None if gain is None else gain >= TARGET_TCP_GAIN,
            }
        )
    for vm, v in ((k, m[k]) for k in ("vm-before", "vm-after") if k in m):
        p50 = v.get("http_p50_ms")
        goals.append(
            {
                "target": f"{vm}: HTTP p50 ≤ {TARGET_HTTP_P50_MS} ms",
                "value": p50,
                "met": None if p50 is None else p50 <= TARGET_HTTP_P50_MS,
            }
        )
        each = [div(v.get(k), ct.get(k)) for k in small]
        worst = None if None in each else max(x for x in each if x is not None)
        goals.append(
            {
                "target": f"{vm}: small-file work VM/container ≤ {TARGET_SMALL_FILES_RATIO}x "
                "(worst of create/read/ls -lR/delete)",
                "value": worst,
                "met": None if worst is None else worst <= TARGET_SMALL_FILES_RATIO,
            }
        )
        vis = v.get("visible")
        goals.append(
            {
                "target": f"{vm}: a VM's write visible to a container at once",
                "value": vis,
                "met": None if vis is None else vis == 1.0,
            }
        )
    return out, goals


ROWS = (
    ("tcp_to_gbps", "TCP client → target (Gbit/s)"),
    ("tcp_from_gbps", "TCP target → client (Gbit/s)"),
    ("http_p50_ms", "HTTP p50 (ms)"),
    ("http_p99_ms", "HTTP p99 (ms)"),
    ("http_rps", "HTTP requests/s (1 connection)"),
    ("udp_loss_pct", f"UDP loss at {UDP_RATE}bit/s (%)"),
    ("vol_seq_write_s", f"volume: write {SEQ_MIB} MiB + fsync (s)"),
    ("vol_seq_read_s", f"volume: read {SEQ_MIB} MiB (s)"),
    ("vol_create_s", f"volume: create {SMALL_FILES:,} files (s)"),
    ("vol_read_s", f"volume: read {SMALL_FILES:,} files (s)"),
    ("vol_ls_lR_s", "volume: ls -lR (s)"),
    ("vol_delete_s", f"volume: delete {SMALL_FILES:,} files (s)"),
    ("visible", "write seen by a container at once (share of rounds)"),
)


def write_results(res: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    base = RESULTS_DIR / f"vm_dataplane-{stamp}_{res['machine']['hostname']}"
    jpath, mpath = base.with_suffix(".json"), base.with_suffix(".md")
    jpath.write_text(json.dumps(res, indent=1) + "\n")
    m, med_ = res["machine"], res["medians"]
    targets = list(med_)
    lines = [
        f"# VM data-plane benchmark — {res['date']} on {m['hostname']}",
        "",
        f"{m.get('nproc')} x {m.get('cpu')}, {m.get('memory_mib')} MiB, kernel {m.get('kernel')}, "
        f"Docker {m.get('docker_server')}, KVM usable: {m.get('kvm')}; image `{res['image']}`; "
        f"VMs 1 vCPU, 128 MiB; {res['rounds']} interleaved rounds, {res['seconds']} s per "
        f"network run; `compound up --wait` of the project took {res['up_seconds']} s; "
        f"load average before/after: {[round(x, 2) for x in res['load_before']]} / "
        f"{[round(x, 2) for x in res['load_after']]}.",
        "",
        "Variants: "
        + "; ".join(f"{k} = `{json.dumps(v)}`" for k, v in res["variants"].items())
        + (
            ""
            if res["vm_keys_known"]
            else " (this compound has no `vm.net`/`vm.share` keys: its defaults are"
            " slirp + 9p, i.e. the before path; no after variant measured)"
        )
        + ". Network runs go from a client container to the target by service name.",
        "",
        "| medians | " + " | ".join(targets) + " |",
        "|---|" + "---|" * len(targets),
    ]
    for key, label in ROWS:
        cells = []
        for t in targets:
            v = med_[t].get(key)
            cells.append("—" if v is None else f"{v:.3g}" if key != "visible" else f"{v:.0%}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Ratios of medians:", ""]
    for vm, r in res["ratios"].items():
        lines.append(f"- {vm}: " + ", ".join(f"{k} **{v}**" for k, v in r.items() if v is not None))
    lines += ["", "Targets (issue 10):", "", "| target | value | met |", "|---|---|---|"]
    for g in res["targets"]:
        met = "not measured" if g["met"] is None else ("met" if g["met"] else "**not met**")
        lines.append(f"| {g['target']} | {g['value']} | {met} |")
    if res["errors"]:
        lines += ["", "Measurements that failed (left out of the medians):", ""]
        lines += [f"- {e}" for e in res["errors"]]
    mpath.write_text("\n".join(lines) + "\n")
    return jpath, mpath


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3, help="length of each network run")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 2 s network runs")
    ap.add_argument("--project-prefix", default="bench-dataplane")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 2
    try:
        res = run(args)
    except RuntimeError as e:
        log(f"[dataplane] error: {e}")
        return 1
    print(json.dumps(res["medians"], indent=1))
    for g in res["targets"]:
        log(f"[dataplane] {g['target']}: {g['value']} ({g['met']})")
    if not args.no_save:
        for path in write_results(res):
            log(f"[dataplane] wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
