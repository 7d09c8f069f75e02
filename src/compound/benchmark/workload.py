"""What runs inside the targets: the Compose files the bench brings up and
the shell scripts it runs in them. Pure text; the runner executes it.

Every target runs the image under test with the same entrypoint: it prints
a marker (the moment "to entrypoint" is read from the engine's log
timestamp), then serves HTTP with the image's own httpd when it has one.
Timings inside a target read /proc/uptime (10 ms resolution) because it is
the one clock every image and every guest kernel offers (busybox's date has
no %N); the workloads are sized well above that resolution.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compound.benchmark.figures import CONTAINER

MARKER = "COMPOUND-BENCH-ENTRYPOINT"
HTTP_PORT = 8000
# what the scripts below need from the image under test
TOOLS = ("sh", "httpd", "dd", "sha256sum", "awk", "cat", "rm", "mkdir", "sleep")
CLIENT = "client"
VOLUME = "data"


def serve_script(big_mib: int) -> str:
    big = f"dd if=/dev/zero of=/tmp/www/big bs=1M count={big_mib} 2>/dev/null; " if big_mib else ""
    return (
        f"echo {MARKER}; mkdir -p /tmp/www && echo ok > /tmp/www/index.html; {big}"
        f"if command -v httpd >/dev/null 2>&1; then exec httpd -f -p {HTTP_PORT} -h /tmp/www; fi; "
        "while :; do sleep 3600; done"
    )


TOOLS_SCRIPT = (
    "for t in " + " ".join(TOOLS) + "; do command -v $t >/dev/null 2>&1 && echo $t; done; exit 0"
)


@dataclass(frozen=True)
class Target:
    """One service the bench starts: a variant of the image under test."""

    variant: str  # container | vm-tcg | vm-kvm
    accel: str | None = None  # for VMs: tcg | kvm

    @property
    def service(self) -> str:
        return self.variant


def target_service(
    image: str, target: Target, *, vm_memory: str, big_mib: int, volume: bool
) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "image": image,
        "entrypoint": ["/bin/sh", "-c"],
        "command": [serve_script(big_mib)],
        "ports": [f"127.0.0.1::{HTTP_PORT}"],
        "stop_grace_period": "1s",
    }
    if volume:
        svc["volumes"] = [f"{VOLUME}:/data"]
    if target.accel:
        svc["x-compound"] = {
            "runtime": "vm",
            "vm": {"memory": vm_memory, "vcpus": 1, "accel": target.accel},
        }
    return svc


def compose_text(
    image: str,
    targets: Sequence[Target],
    *,
    vm_memory: str,
    big_mib: int = 0,
    volume: bool = False,
    client_image: str | None = None,
) -> str:
    """A Compose file (JSON is YAML) holding the targets, and the client
    container that runs the load generator when ``client_image`` is given."""
    services: dict[str, Any] = {
        t.service: target_service(image, t, vm_memory=vm_memory, big_mib=big_mib, volume=volume)
        for t in targets
    }
    if client_image:
        services[CLIENT] = {
            "image": client_image,
            "entrypoint": ["/bin/sh", "-c"],
            "command": ["exec sleep 2147483647"],
            "stop_grace_period": "1s",
        }
    doc: dict[str, Any] = {"services": services}
    if volume:
        doc["volumes"] = {VOLUME: {}}
    return json.dumps(doc, indent=1) + "\n"


TIMER = "t() { read u _ < /proc/uptime; echo $u; }"


def volume_script(tag: str, seq_mib: int, files: int) -> str:
    """Sequential and small-file work on the shared volume; prints
    `name start end` lines (uptime seconds)."""
    d = shlex.quote(f"/data/{tag}")
    return f"""set -e
{TIMER}
d={d}; rm -rf "$d"; mkdir -p "$d/s"; cd "$d"
a=$(t); dd if=/dev/zero of=big bs=1M count={seq_mib} 2>/dev/null; sync; b=$(t); echo seq_write $a $b
a=$(t); cat big > /dev/null; b=$(t); echo seq_read $a $b
rm -f big
a=$(t); i=0; while [ $i -lt {files} ]; do echo "line $i" > s/f$i; i=$((i + 1)); done; b=$(t)
echo small_create $a $b
a=$(t); cat s/* > /dev/null; b=$(t); echo small_read $a $b
a=$(t); rm -rf s; b=$(t); echo small_delete $a $b
cd /; rm -rf "$d"
"""


def cpu_script(mib: int) -> str:
    return f"""set -e
{TIMER}
a=$(t); dd if=/dev/zero bs=1M count={mib} 2>/dev/null | sha256sum > /dev/null; b=$(t)
echo cpu $a $b
"""


def parse_timings(out: str) -> dict[str, float]:
    """`name start end` lines → seconds per name."""
    res: dict[str, float] = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 3:
            try:
                res[w[0]] = round(float(w[2]) - float(w[1]), 3)
            except ValueError:
                continue
    return res


def variant_labels(accels: Mapping[str, str]) -> dict[str, str]:
    """variant → how the report names it."""
    labels = {CONTAINER: "container (Docker Engine, the host's kernel)"}
    for variant, accel in accels.items():
        labels[variant] = (
            "VM under KVM (hardware virtualisation)"
            if accel == "kvm"
            else "VM under TCG (emulated CPU, no KVM)"
        )
    return labels
