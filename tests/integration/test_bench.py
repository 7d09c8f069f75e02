"""`compound bench --quick` on local/busybox, for real: both runtimes, TCG.

One run (~1.5 min under TCG on 2 idle cores) in a directory holding a
Compose project, so the report's last section has advice to give. It checks
that the JSON holds every figure with each round of each variant, that the
HTML and Markdown reference plot files that exist, that the claims are
judged, and that nothing the bench started remains in the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    proc = subprocess.run(
        [COMPOUND, "bench", "--quick", "--image", busybox_image, "-o", str(out), "--json"],
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

    def mine(labels: dict[str, str] | None) -> bool:
        return (labels or {}).get(LABEL_PROJECT, "").startswith(prefix)

    assert not [c.name for c in engine.containers.list(all=True) if mine(c.labels)]
    assert not [n.name for n in engine.networks.list() if mine(n.attrs.get("Labels"))]
    assert not [v.name for v in engine.volumes.list() if mine(v.attrs.get("Labels"))]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert prefix not in ps
