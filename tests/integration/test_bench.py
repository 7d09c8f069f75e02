"""`compound bench --quick` on local/busybox, for real: both runtimes, TCG.

One run (~1.5 min under TCG on 2 idle cores) in a directory holding a
Compose project, so the report's last section has advice to give. It checks
that the JSON holds every figure with each round of each variant, that the
HTML and Markdown reference plot files that exist, that the claims are
judged, and that nothing the bench started remains in the engine.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from compound.runtimes.base import LABEL_PROJECT

pytestmark = pytest.mark.integration

COMPOUND = str(Path(sys.executable).parent / "compound")
PROJECT = """\
services:
  web:
    image: local/busybox:latest
  legacy:
    image: local/busybox:latest
    x-compound: {runtime: vm}
"""
VARIANTS = {"container", "vm-tcg"}
ONE_ROUND = {"density.instances"}  # one run per variant, by its nature


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory, busybox_image: str) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bench")
    (work / "compose.yaml").write_text(PROJECT)
    out = work / "out" / "report.html"
    # a previous report, as if from another host: --compare must say what changed
    previous = {
        "version": 1,
        "date": "2026-01-01T00:00:00+00:00",
        "image": busybox_image,
        "mode": "quick",
        "host": {"kvm_usable": True},
        "variants": {"container": "c", "vm-kvm": "k"},
        "figures": [
            {
                "id": "startup.entrypoint",
                "group": "startup",
                "title": "create → entrypoint",
                "unit": "s",
                "better": "lower",
                "rounds": {"container": [0.001, 0.001]},
            }
        ],
    }
    (work / "previous.json").write_text(json.dumps(previous))
    proc = subprocess.run(
        [
            COMPOUND,
            "bench",
            "--quick",
            "--image",
            busybox_image,
            "-o",
            str(out),
            "--json",
            "--compare",
            str(work / "previous.json"),
            # one VM passes the budget: the density run stops there and removes it
            "--density-budget",
            "64",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert json.loads((out.with_suffix(".json")).read_text()) == data
    return {"data": data, "out": out, "stderr": proc.stderr}


def test_every_figure_has_its_rounds(bench_run: dict[str, Any]) -> None:
    data = bench_run["data"]
    assert set(data["variants"]) == VARIANTS  # no KVM here: TCG, labelled
    rounds = data["options"]["rounds"]
    ids = {f["id"] for f in data["figures"]}
    for group in ("startup", "memory", "density", "disk", "network", "volume", "cpu"):
        assert any(i.startswith(group + ".") for i in ids), group
    for f in data["figures"]:
        assert f["skipped"] is None, (f["id"], f["skipped"])
        assert set(f["rounds"]) == VARIANTS, f["id"]
        want = 1 if f["id"] in ONE_ROUND else rounds
        for variant, values in f["rounds"].items():
            assert len(values) == want, (f["id"], variant, values)
            assert any(v is not None for v in values), (f["id"], variant)
            s = f["summary"][variant]
            assert s["min"] <= s["median"] <= s["max"]
    startup = next(f for f in data["figures"] if f["id"] == "startup.entrypoint")
    ratio = startup["ratio_vm_over_container"]["vm-tcg"]
    assert len(ratio["rounds"]) == rounds and ratio["median"] > 1
    assert data["errors"] == [], data["errors"]
    density = next(f for f in data["figures"] if f["id"] == "density.instances")
    assert density["rounds"] == {"container": [2.0], "vm-tcg": [0.0]}
    runs = density["details"]["steps"]
    assert runs["container"]["stopped_because"] == "the bound (2) was reached"
    assert runs["vm-tcg"]["stopped_because"] == "1 instance used more than the budget (64 MiB)"
    assert [s["instances"] for s in runs["vm-tcg"]["steps"]] == [1]


def test_claims_isolation_and_advice(bench_run: dict[str, Any]) -> None:
    data = bench_run["data"]
    verdicts = {c["claim"]: c["verdict"] for c in data["claims"]}
    assert len(verdicts) == 5 and "not measured" not in verdicts.values(), verdicts
    iso = data["isolation"]
    assert iso["container"]["kernel"] == iso["host_kernel"] != iso["vm"]["kernel"]
    assert iso["vm"]["confinement"]["privileged"] is False
    advised = {s["service"]: s for s in data["advice"]["services"]}
    assert advised["legacy"]["effective"] == "vm" and advised["web"]["effective"] == "container"
    assert "as a VM (vm-tcg) it pays, measured here" in advised["legacy"]["in_light"]
    assert "kept a container" in advised["web"]["in_light"]
    assert "noisy" in data["noise"] and data["noise"]["load1_samples"]


def test_compare_with_a_previous_report(bench_run: dict[str, Any]) -> None:
    cmp = bench_run["data"]["compare"]
    assert {"key": "kvm_usable", "before": True, "after": False} in cmp["host"]
    assert cmp["variants"] == {"added": ["vm-tcg"], "removed": ["vm-kvm"]}
    [startup] = cmp["figures"]
    assert startup["variant"] == "container" and startup["verdict"] == "worse"
    assert (
        "Changes since the report of 2026-01-01" in bench_run["out"].with_suffix(".md").read_text()
    )


def test_reports_reference_their_plots(bench_run: dict[str, Any]) -> None:
    out: Path = bench_run["out"]
    plots = bench_run["data"]["plots"]
    assert {"startup", "memory", "latency", "volume", "cpu", "density"} <= set(plots)
    page, md = out.read_text(), out.with_suffix(".md").read_text()
    for name in plots.values():
        assert (out.parent / name).read_text().lstrip().startswith("<?xml")
        assert f'src="{name}"' in page and f"]({name})" in md
    assert md.index("claims, checked on this host") < md.index("## Figures")


def test_nothing_started_by_the_bench_remains(
    bench_run: dict[str, Any], engine: docker.DockerClient
) -> None:
    prefix = bench_run["data"]["options"]["project_prefix"]

    assert not _left(engine, prefix)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert prefix not in ps


def _no_shell_image(engine: docker.DockerClient) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    tag = f"cbench-test/no-shell:{uuid.uuid4().hex[:8]}"
    engine.api.import_image_from_data(
        buf.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1]
    )
    return tag


def test_an_image_that_cannot_run_both_ways_is_refused(
    engine: docker.DockerClient, tmp_path: Path
) -> None:
    missing = subprocess.run(
        [
            COMPOUND,
            "bench",
            "--quick",
            "--image",
            "cbench-test/absent:0",
            "-o",
            str(tmp_path / "r.html"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1
    assert "image 'cbench-test/absent:0' is not on this host" in missing.stderr
    assert "Traceback" not in missing.stderr
    tag = _no_shell_image(engine)
    try:
        no_shell = subprocess.run(
            [COMPOUND, "bench", "--quick", "--image", tag, "-o", str(tmp_path / "r.html")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        engine.images.remove(tag, force=True)
    prefix = _prefix(no_shell.stderr)
    # the preflight's container included
    left = _left(engine, prefix)
    assert no_shell.returncode == 1, no_shell.stderr
    assert "needs a POSIX shell" in no_shell.stderr and "Traceback" not in no_shell.stderr
    assert not left
    assert not (tmp_path / "r.html").exists()


def _prefix(progress: str) -> str:
    line = next(x for x in progress.splitlines() if "run cbench-" in x)
    return line.split("run ", 1)[1].split(":", 1)[0]


def _mine(labels: dict[str, str] | None, prefix: str) -> bool:
    return (labels or {}).get(LABEL_PROJECT, "").startswith(prefix)


def _left(engine: docker.DockerClient, prefix: str) -> list[str]:
    """Containers, networks and volumes of the run (low-level lists: other
    tests remove their objects meanwhile, which must not fail this one)."""
    api = engine.api
    return [
        *(c["Names"][0] for c in api.containers(all=True) if _mine(c.get("Labels"), prefix)),
        *(n["Name"] for n in api.networks() if _mine(n.get("Labels"), prefix)),
        *(v["Name"] for v in api.volumes().get("Volumes") or [] if _mine(v.get("Labels"), prefix)),
    ]


def test_ctrl_c_removes_everything_the_bench_started(
    engine: docker.DockerClient, busybox_image: str, tmp_path: Path
) -> None:
    """Interrupted while it starts its targets: containers and the VM's
    launcher exist, the up may still be in flight."""
    proc = subprocess.Popen(
        [COMPOUND, "bench", "--quick", "--image", busybox_image, "-o", str(tmp_path / "r.html")],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "starting container" in line:
            break
    prefix = _prefix("".join(seen))
    deadline = time.monotonic() + 120
    while len([c for c in engine.api.containers(all=True) if _mine(c.get("Labels"), prefix)]) < 2:
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    assert "removing everything the bench started" in rest
    assert not _left(engine, prefix)
    assert not (tmp_path / "r.html").exists()
