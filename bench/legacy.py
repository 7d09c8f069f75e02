"""Legacy VM disks, in one run against their shortest honest baselines:

- lift of the 2 GiB Debian 12 test disk (images/legacy-disk.sh) vs the
  tar of the same root (FUSE raw view + loop mount, as lift reads it)
  piped into `docker import`, and vs `virt-tar-out -a DISK / - | docker
  import` when libguestfs is installed (it boots an appliance under TCG);
- export of the lifted image to qcow2 vs `qemu-img convert` of an
  equivalent raw disk (the same export written as raw);
- boot to healthy: `compound up -d --wait` of a disk service with a
  healthcheck through its guest agent.

Usage: .venv/bin/python bench/legacy.py   (root; the disk is built once)
Writes bench/results/legacy-<date>_<hostname>.{json,md}.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from compound.runtimes.vm.diskread import open_disk  # noqa: E402
from compound.runtimes.vm.export import export  # noqa: E402
from compound.runtimes.vm.lift import lift  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
COMPOUND = str(ROOT / ".venv" / "bin" / "compound")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.monotonic()
    out = fn()
    return round(time.monotonic() - t0, 2), out


def docker_import(argv: list[str], tag: str) -> None:
    tar = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imp = subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, capture_output=True)
    _, err = tar.communicate()
    if tar.returncode != 0 or imp.returncode != 0:
        why = (err or imp.stderr).decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{argv[0]} | docker import failed: {why[-1] if why else '?'}")


def main() -> None:
    client = docker.from_env()
    disk = Path(
        subprocess.run(
            ["bash", str(ROOT / "images/legacy-disk.sh")],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        ).stdout.strip()
    )
    res: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "disk": str(disk),
        "disk_virtual_gib": 2,
        "load_before": load(),
    }
    work = Path(tempfile.mkdtemp(prefix="bench-legacy-"))
    tags = [f"bench-legacy/{n}-{uuid.uuid4().hex[:6]}:1" for n in ("lift", "tar", "virt")]
    try:
        secs, lifted = timed(lambda: lift(client, disk, tags[0], work / "erp.yaml"))
        res["lift_s"] = secs
        res["lift_image_mb"] = round(lifted.size_bytes / 1e6)

        def tar_baseline() -> None:
            with open_disk(disk) as od:
                docker_import(["tar", "-c", "-C", str(od.root), "."], tags[1])

        res["tar_loop_import_s"], _ = timed(tar_baseline)
        # libguestfs needs a host kernel in /boot (or SUPERMIN_KERNEL and
        # SUPERMIN_MODULES) and, where KVM does not work,
        # LIBGUESTFS_BACKEND_SETTINGS=force_tcg; without them it fails.
        res["virt_tar_out_import_s"] = None
        if shutil.which("virt-tar-out"):
            try:
                res["virt_tar_out_import_s"], _ = timed(
                    lambda: docker_import(["virt-tar-out", "-a", str(disk), "/", "-"], tags[2])
                )
            except RuntimeError as exc:
                res["virt_tar_out_error"] = str(exc)
        else:
            res["virt_tar_out_error"] = "libguestfs-tools is not installed"
        res["export_qcow2_s"], exp = timed(
            lambda: export(client, tags[0], work / "disk.qcow2", "qcow2")
        )
        res["export_raw_s"], _ = timed(lambda: export(client, tags[0], work / "disk.raw", "raw"))
        res["qemu_img_convert_s"], _ = timed(
            lambda: subprocess.run(
                [
                    "qemu-img",
                    "convert",
                    "-O",
                    "qcow2",
                    str(work / "disk.raw"),
                    str(work / "c.qcow2"),
                ],
                check=True,
            )
        )
        res["export_kernel"] = exp["kernel"]
        proj = f"bench-legacy-{uuid.uuid4().hex[:6]}"
        (work / "compose.yaml").write_text(
            "services:\n  erp:\n    x-compound:\n      runtime: vm\n"
            f"      vm: {{disk: {disk}}}\n    healthcheck:\n"
            '      test: ["CMD", "python3", "-c", "import urllib.request as u; '
            "u.urlopen('http://127.0.0.1/health')\"]\n      interval: 2s\n      retries: 300\n"
        )
        base = [COMPOUND, "-f", str(work / "compose.yaml"), "-p", proj]
        try:
            res["boot_to_healthy_s"], _ = timed(
                lambda: subprocess.run(
                    [*base, "up", "-d", "--wait", "--wait-timeout", "900"],
                    check=True,
                    capture_output=True,
                )
            )
            res["stop_s"], _ = timed(
                lambda: subprocess.run([*base, "stop", "-t", "60"], check=True, capture_output=True)
            )
        finally:
            subprocess.run([*base, "down", "-v"], capture_output=True, check=False)
    finally:
        for t in tags:
            subprocess.run(["docker", "rmi", "-f", t], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    res["load_after"] = load()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    out = RESULTS_DIR / f"legacy-{stamp}_{res['hostname']}"
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    vt = res["virt_tar_out_import_s"]
    md = [
        f"# Legacy disks — {res['date']} on {res['hostname']} ({res['cpus']} CPUs, TCG)",
        "",
        f"Load average before/after: {res['load_before']} / {res['load_after']}.",
        "",
        "| what | compound | baseline, same run |",
        "|---|---|---|",
        f"| lift of the 2 GiB Debian 12 disk ({res['lift_image_mb']} MB image)"
        f" | {res['lift_s']} s |"
        f" tar of the loop-mounted root \\| docker import: {res['tar_loop_import_s']} s;"
        f" virt-tar-out \\| docker import: "
        f"{f'{vt} s' if vt is not None else res.get('virt_tar_out_error')} |",
        f"| export of the lifted image, qcow2 | {res['export_qcow2_s']} s |"
        f" qemu-img convert of the same disk as raw: {res['qemu_img_convert_s']} s"
        f" (export as raw: {res['export_raw_s']} s) |",
        f"| boot to healthy (`up -d --wait`, systemd guest) | {res['boot_to_healthy_s']} s | — |",
        f"| stop (ACPI + agent power-down) | {res['stop_s']} s | — |",
    ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
