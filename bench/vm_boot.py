#!/usr/bin/env python3
"""Boot-to-entrypoint of a busybox-class image as a compound VM, beside the
same kernel/initramfs/disk under a hand-written minimal QEMU command, beside
the same image as a plain container; and the memory of one idle VM
(launcher + QEMU) beside the same image as a container.

    .venv/bin/python bench/vm_boot.py                  10 runs of each path
    .venv/bin/python bench/vm_boot.py --runs 5 --image probe/busybox:1
    .venv/bin/python bench/vm_boot.py --no-launcher    bare QEMU paths only

Paths, interleaved per round so load from other processes hits all alike:
  launcher   docker create + start of the launcher container -> COMPOUND-START
             on the guest console (what `compound up` pays for one VM)
  bare       compound's full QEMU command (QMP, agent, balloon, rng, net,
             serial ports) as a child process -> COMPOUND-START
  handmade   a minimal hand-written QEMU command (disk + fw_cfg config +
             serial console) with the same kernel/initramfs/disk -> COMPOUND-START
  container  docker create + start + wait of the image running `true`

"Boot-to-entrypoint" is from spawning QEMU (or starting the container) to
the moment /init prints COMPOUND-START, right before it execs the service's
entrypoint, seen by polling the console file every 5 ms.

Results: bench/results/vm_boot-<date>T<time>_<host>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import docker  # noqa: E402
import docker.errors  # noqa: E402

from compound.runtimes.vm.accel import probe_accel  # noqa: E402
from compound.runtimes.vm.basedisk import ensure_base_disk  # noqa: E402
from compound.runtimes.vm.guestconfig import GuestConfig  # noqa: E402
from compound.runtimes.vm.guestkernel import ensure_guest_kernel  # noqa: E402
from compound.runtimes.vm.initramfs import ensure_initramfs  # noqa: E402
from compound.runtimes.vm.kernel import ensure_kernel  # noqa: E402
from compound.runtimes.vm.launcher import (  # noqa: E402
    LauncherSpec,
    create_launcher,
    remove_run_dir,
    run_dir_for,
)
from compound.runtimes.vm.launcher_image import ensure_launcher_image  # noqa: E402
from compound.runtimes.vm.qemu import (  # noqa: E402
    QemuSpec,
    create_overlay,
    host_tsc_khz,
    kernel_cmdline,
    qemu_version,
)
from compound.runtimes.vm.vm import BareVM, read_markers, slirp_network  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
TIMEOUT = 90.0
TARGET_BOOT_S = 2.0
TARGET_RSS_MIB = 100.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "p95": round(pct(values, 0.95), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "all": [round(v, 3) for v in values],
    }


def wait_start(console: Path, t0: float, alive: Any) -> float:
    while True:
        if any(k == "START" for k, _ in read_markers(console)):
            return time.monotonic() - t0
        if any(k == "ERROR" for k, _ in read_markers(console)):
            raise RuntimeError(f"guest error: {console.read_text(errors='replace')[-500:]}")
        if not alive():
            raise RuntimeError("VM ended before reaching its entrypoint")
        if time.monotonic() - t0 > TIMEOUT:
            raise RuntimeError("timeout waiting for COMPOUND-START")
        time.sleep(0.005)


def run_bare(ctx: dict[str, Any], work: Path) -> float:
    rd = work / f"bare-{uuid.uuid4().hex[:6]}"
    spec = QemuSpec(
        kernel=ctx["kernel"].vmlinux,
        initrd=ctx["initramfs"].path,
        root_disk=rd / "root.qcow2",
        config=rd / "config",
        runtime_dir=rd,
        accel=ctx["accel"],
        tsc_khz=host_tsc_khz(),
    )
    vm = BareVM.start(spec, ctx["disk"].path, GuestConfig(argv=("true",), network=slirp_network()))
    with vm:
        _, t = vm.wait_marker("START", TIMEOUT)
        vm.wait(30)
    shutil.rmtree(rd, ignore_errors=True)
    return t


def handmade_argv(ctx: dict[str, Any], rd: Path) -> list[str]:
    """What a person would type: kernel, initrd, disk, console, config."""
    spec = QemuSpec(
        kernel=ctx["kernel"].vmlinux,
        initrd=ctx["initramfs"].path,
        root_disk=rd / "root.qcow2",
        config=rd / "config",
        runtime_dir=rd,
        accel=ctx["accel"],
        tsc_khz=host_tsc_khz(),
    )
    return [
        "qemu-system-x86_64",
        "-M",
        "microvm",
        "-accel",
        ctx["accel"],
        "-cpu",
        "max" if ctx["accel"] == "tcg" else "host",
        "-m",
        "256M",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-kernel",
        str(spec.kernel),
        "-initrd",
        str(spec.initrd),
        "-append",
        kernel_cmdline(spec),
        "-fw_cfg",
        f"name=opt/compound/config,file={spec.config}",
        "-drive",
        f"id=root,file={spec.root_disk},format=qcow2,if=none",
        "-device",
        "virtio-blk-device,drive=root",
        "-serial",
        f"file:{spec.console_log}",
    ]


def run_handmade(ctx: dict[str, Any], work: Path) -> float:
    rd = work / f"hand-{uuid.uuid4().hex[:6]}"
    rd.mkdir(parents=True)
    create_overlay(ctx["disk"].path, rd / "root.qcow2")
    (rd / "config").write_text(GuestConfig(argv=("true",)).render())
    argv = handmade_argv(ctx, rd)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        t = wait_start(rd / "console.log", t0, lambda: proc.poll() is None)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    shutil.rmtree(rd, ignore_errors=True)
    return t


def launcher_spec(ctx: dict[str, Any], name: str, argv: tuple[str, ...]) -> LauncherSpec:
    return LauncherSpec(
        name=name,
        image=ctx["launcher"].tag,
        kernel=ctx["kernel"],
        initramfs=ctx["initramfs"],
        base=ctx["disk"],
        run_dir=run_dir_for(name),
        guest=GuestConfig(argv=argv, hostname="", network=slirp_network()),
        accel=ctx["accel"],
        tsc_khz=host_tsc_khz(),
        memory_mib=ctx["memory"],
        labels={"io.compound.bench": "vm_boot"},
    )


def run_launcher(ctx: dict[str, Any], client: docker.DockerClient) -> float:
    name = f"bench-vm-{uuid.uuid4().hex[:8]}"
    spec = launcher_spec(ctx, name, ("true",))
    try:
        t0 = time.monotonic()
        c = create_launcher(client, spec)
        c.start()

        def alive() -> bool:
            c.reload()
            return c.status in ("created", "running")

        t = wait_start(spec.run_dir / "console.log", t0, alive)
        c.wait(timeout=30)
        return t
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(name).remove(force=True)
        remove_run_dir(spec.run_dir)


def run_container(ctx: dict[str, Any], client: docker.DockerClient) -> float:
    t0 = time.monotonic()
    c = client.containers.create(ctx["image"], ["true"], labels={"io.compound.bench": "vm_boot"})
    try:
        c.start()
        c.wait(timeout=30)
        return time.monotonic() - t0
    finally:
        c.remove(force=True)


def proc_mem(pid: int) -> dict[str, int]:
    """RSS, anonymous RSS and PSS of one process, in KiB."""
    out = {"rss": 0, "anon": 0, "pss": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                out["anon"] = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1])
    return out


def container_mem(c: Any) -> dict[str, Any]:
    """Summed memory of every process of a container (host view)."""
    top = c.top(ps_args="-eo pid,comm")
    procs = {}
    for row in top["Processes"]:
        pid, comm = int(row[0]), row[1]
        procs[f"{comm}[{pid}]"] = proc_mem(pid)
    total = {k: sum(p[k] for p in procs.values()) for k in ("rss", "anon", "pss")}
    return {"processes": procs, **{f"{k}_mib": round(v / 1024, 1) for k, v in total.items()}}


def measure_memory(
    ctx: dict[str, Any], client: docker.DockerClient, settle: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"settle_seconds": settle, "guest_memory_mib": ctx["memory"]}
    name = f"bench-vm-idle-{uuid.uuid4().hex[:8]}"
    spec = launcher_spec(ctx, name, ("sleep", "3600"))
    cname = f"bench-ct-idle-{uuid.uuid4().hex[:8]}"
    try:
        c = create_launcher(client, spec)
        c.start()
        wait_start(spec.run_dir / "console.log", time.monotonic(), lambda: True)
        ct = client.containers.run(
            ctx["image"],
            ["sleep", "3600"],
            name=cname,
            detach=True,
            labels={"io.compound.bench": "vm_boot"},
        )
        time.sleep(settle)  # let free page reporting hand back what the boot freed
        out["vm"] = container_mem(c)
        out["container"] = container_mem(ct)
    finally:
        for n in (name, cname):
            with contextlib.suppress(docker.errors.APIError):
                client.containers.get(n).remove(force=True)
        remove_run_dir(spec.run_dir)
    return out


def machine(client: docker.DockerClient) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {
        "hostname": socket.gethostname(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_mib": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "qemu": qemu_version(),
        "docker": client.version().get("Version"),
    }


def write_results(res: dict[str, Any]) -> tuple[Path, Path]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    base = RESULTS_DIR / f"vm_boot-{stamp}_{res['machine']['hostname']}"
    jpath, mpath = base.with_suffix(".json"), base.with_suffix(".md")
    jpath.write_text(json.dumps(res, indent=1) + "\n")
    m = res["machine"]
    lines = [
        f"# VM boot benchmark — {res['date']} on {m['hostname']}",
        "",
        f"{m['cpus']} x {m['cpu']}, {m['memory_mib']} MiB, kernel {m['kernel']}, "
        f"QEMU {m['qemu']}, Docker {m['docker']}; accel **{res['accel']}** "
        f"({res['accel_reason']}); guest kernel {res['guest_kernel']}; image `{res['image']}`; "
        f"load average before/after: {res['load_before']} / {res['load_after']}.",
        "",
        "Boot-to-entrypoint (s): spawn/start → `COMPOUND-START` on the console.",
        "",
        "| path | median | p95 | min | max | runs |",
        "|---|---|---|---|---|---|",
    ]
    for path in ("launcher", "bare", "handmade", "container"):
        s = res["boot"].get(path)
        if s and s.get("n"):
            lines.append(
                f"| {path} | {s['median']:.3f} | {s['p95']:.3f} | {s['min']:.3f} | "
                f"{s['max']:.3f} | {s['n']} |"
            )
    r = res["ratios"]
    lines += [
        "",
        "Ratios of medians: "
        + ", ".join(f"{k} **{v}**" for k, v in r.items())
        + f" (target: VM boot ≤ {TARGET_BOOT_S} s under TCG).",
        "",
    ]
    mem = res.get("memory")
    if mem:
        lines += [
            f"Idle memory after {mem['settle_seconds']} s "
            f"(guest RAM {mem['guest_memory_mib']} MiB), "
            "summed over the container's processes (MiB):",
            "",
            "| | RSS | anon RSS | PSS |",
            "|---|---|---|---|",
            f"| VM (launcher + QEMU) | {mem['vm']['rss_mib']} | {mem['vm']['anon_mib']} | "
            f"{mem['vm']['pss_mib']} |",
            f"| container | {mem['container']['rss_mib']} | {mem['container']['anon_mib']} | "
            f"{mem['container']['pss_mib']} |",
            "",
            f"Target: VM RSS ≤ {TARGET_RSS_MIB} MiB.",
        ]
    mpath.write_text("\n".join(lines) + "\n")
    return jpath, mpath


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--image", default="local/busybox:latest")
    ap.add_argument(
        "--memory", type=int, default=128, help="guest RAM (MiB) for the launcher paths"
    )
    ap.add_argument(
        "--kernel",
        choices=("compound", "debian"),
        default="compound",
        help="guest kernel: compound's own (default) or Debian's generic one",
    )
    ap.add_argument("--no-launcher", action="store_true")
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    client = docker.from_env()
    kernel = ensure_guest_kernel() if args.kernel == "compound" else ensure_kernel()
    initramfs = ensure_initramfs(kernel)
    probe = probe_accel(kernel, initramfs, timeout=15)
    ctx: dict[str, Any] = {
        "kernel": kernel,
        "initramfs": initramfs,
        "accel": probe.accel,
        "image": args.image,
        "disk": ensure_base_disk(client, args.image),
        "memory": args.memory,
    }
    paths = ["bare", "handmade", "container"]
    if not args.no_launcher:
        ctx["launcher"] = ensure_launcher_image(client)
        paths.insert(0, "launcher")
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {p: [] for p in paths}
    failures: dict[str, list[str]] = {p: [] for p in paths}
    with tempfile.TemporaryDirectory(prefix="compound-bench-") as tmp:
        work = Path(tmp)
        # one warm-up of each (page cache, image layers)
        for rnd in range(args.runs + 1):
            for p in paths:
                try:
                    if p == "launcher":
                        t = run_launcher(ctx, client)
                    elif p == "bare":
                        t = run_bare(ctx, work)
                    elif p == "handmade":
                        t = run_handmade(ctx, work)
                    else:
                        t = run_container(ctx, client)
                except Exception as exc:  # a failed run is reported, not fatal
                    failures[p].append(repr(exc)[:300])
                    print(f"  {p}: FAILED {exc!r}", file=sys.stderr)
                    continue
                if rnd > 0:
                    times[p].append(t)
                print(f"round {rnd}{' (warm-up)' if rnd == 0 else ''} {p}: {t:.3f}s", flush=True)
        memory = None if args.no_launcher else measure_memory(ctx, client, args.settle)
    load_after = os.getloadavg()
    boot = {p: summary(v) for p, v in times.items()}

    def ratio(a: str, b: str) -> float | None:
        if boot.get(a, {}).get("n") and boot.get(b, {}).get("n"):
            return round(float(boot[a]["median"]) / float(boot[b]["median"]), 2)
        return None

    ratios = {
        k: v
        for k, v in {
            "launcher/handmade": ratio("launcher", "handmade"),
            "bare/handmade": ratio("bare", "handmade"),
            "launcher/container": ratio("launcher", "container"),
        }.items()
        if v is not None
    }
    res = {
        "benchmark": "vm_boot",
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(client),
        "accel": probe.accel,
        "accel_reason": probe.reason,
        "guest_kernel": kernel.version,
        "initramfs_bytes": initramfs.size,
        "image": args.image,
        "runs": args.runs,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "boot": boot,
        "ratios": ratios,
        "failures": {k: v for k, v in failures.items() if v},
        "memory": memory,
        "handmade_argv": handmade_argv(ctx, Path("/RUNDIR")),
    }
    print(
        json.dumps(
            {
                "boot": {k: {x: v.get(x) for x in ("median", "p95")} for k, v in boot.items()},
                "ratios": ratios,
            },
            indent=1,
        )
    )
    if memory:
        print(
            "memory MiB: vm",
            {k: memory["vm"][k] for k in ("rss_mib", "anon_mib", "pss_mib")},
            "container",
            {k: memory["container"][k] for k in ("rss_mib", "anon_mib", "pss_mib")},
        )
    if not args.no_save:
        for written in write_results(res):
            print("wrote", written.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
