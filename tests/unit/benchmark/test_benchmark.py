"""compound bench without an engine: statistics, verdicts, comparison,
parsing of what the targets print, and the report's rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compound.benchmark import claims, plots, render, workload
from compound.benchmark.compare import compare, load_report
from compound.benchmark.errors import BenchError
from compound.benchmark.figures import Figure, Report
from compound.benchmark.options import BenchOptions
from compound.benchmark.stats import noisy_load, pair_ratios, percentile, summarize


def fig(fid: str, ct: list[float | None], vm: list[float | None], **kw: object) -> Figure:
    f = Figure(fid, fid.split(".")[0], kw.pop("title", fid), str(kw.pop("unit", "s")), "lower")  # type: ignore[arg-type]
    f.rounds = {"container": list(ct), "vm-tcg": list(vm)}
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def report(*figures: Figure, **kw: object) -> Report:
    r = Report(
        date="2026-11-30T12:00:00+00:00",
        image="local/busybox:latest",
        mode="quick",
        host={"hostname": "h", "cpus": 2, "kernel": "6.1.0", "kvm_usable": False},
        variants={"container": "container", "vm-tcg": "VM under TCG"},
        figures=list(figures),
        options={"rounds": 3},
    )
    for k, v in kw.items():
        setattr(r, k, v)
    return r


# --- stats ----------------------------------------------------------------------------


def test_summary_is_median_min_max_of_finite_rounds() -> None:
    s = summarize([3.0, 1.0, 2.0, float("nan")])
    assert s is not None
    assert (s.n, s.median, s.min, s.max) == (3, 2.0, 1.0, 3.0)
    assert s.spread == 1.0
    assert summarize([]) is None


def test_ratios_are_taken_pair_by_pair_skipping_failed_rounds() -> None:
    assert pair_ratios([4.0, None, 9.0, 1.0], [2.0, 1.0, 3.0, 0.0]) == [2.0, 3.0]
    f = fig("startup.entrypoint", [1.0, 2.0, 4.0], [4.0, 4.0, 4.0])
    r = f.ratio("vm-tcg")
    assert r is not None
    # the ratio of medians would be 2.0; pair by pair the rounds are 4, 2, 1
    assert (r.median, r.min, r.max) == (2.0, 1.0, 4.0)


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert percentile([0.0, 10.0], 0.99) == pytest.approx(9.9)
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_noisy_host_by_load_and_by_spread() -> None:
    assert noisy_load([0.2, 0.5], 2) is None
    why = noisy_load([0.5, 3.1], 2)
    assert why is not None and "3.10 on 2 CPUs" in why
    assert fig("cpu.sha256", [1.0, 1.1], [1.0, 3.0]).noisy_variants() == ["vm-tcg"]


def test_quick_mode_is_small_and_overrides_win() -> None:
    q = BenchOptions.for_mode("quick", rounds=None, density_bound=3)
    assert q.rounds == 2 and q.density_bound == 3
    assert BenchOptions.for_mode("full").rounds > BenchOptions().rounds


# --- claims ----------------------------------------------------------------------------


def verdict(r: Report, name: str) -> dict[str, object]:
    return next(c for c in claims.check_claims(r) if c["claim"].startswith(name))


def test_startup_claim_holds_with_tcg_caveat_and_fails_when_vms_are_fast() -> None:
    slow_vm = report(fig("startup.entrypoint", [0.4, 0.5], [4.0, 5.0]))
    c = verdict(slow_vm, "Containers start")
    assert c["verdict"] == claims.CAVEAT
    assert "TCG" in str(c["why"]) and "10.00x" in str(c["measured"])
    fast_vm = report(fig("startup.entrypoint", [0.4, 0.5], [0.6, 0.7]))
    assert verdict(fast_vm, "Containers start")["verdict"] == claims.NOT_HERE


def test_startup_claim_under_kvm_without_caveat() -> None:
    f = fig("startup.entrypoint", [0.3, 0.3], [])
    f.rounds = {"container": [0.3, 0.3], "vm-kvm": [1.2, 1.5]}
    r = report(f)
    r.variants = {"container": "c", "vm-kvm": "k"}
    assert verdict(r, "Containers start")["verdict"] == claims.HOLDS


def test_a_skipped_figure_gives_no_verdict() -> None:
    f = fig("network.c2t.latency_p50", [], [], skipped="the image has no httpd")
    r = report(f, fig("network.c2t.throughput", [], []))
    c = verdict(r, "Container networking")
    assert c["verdict"] == claims.NOT_MEASURED and "httpd" in str(c["why"])
    assert verdict(report(), "Containers use less memory")["verdict"] == claims.NOT_MEASURED


def test_memory_disk_and_network_verdicts() -> None:
    r = report(
        fig("memory.pss", [1.5, 1.6], [150.0, 160.0], unit="MiB"),
        fig("disk.footprint", [2.0, 2.0], [2.1, 2.1], unit="MiB"),
        fig("network.c2t.latency_p50", [0.2, 0.2], [0.5, 0.6], unit="ms"),
        fig("network.c2t.throughput", [400.0, 400.0], [390.0, 410.0], unit="MiB/s"),
    )
    assert verdict(r, "Containers use less memory")["verdict"] == claims.HOLDS
    assert verdict(r, "Containers use less disk")["verdict"] == claims.CAVEAT
    net = verdict(r, "Container networking")
    assert net["verdict"] == claims.CAVEAT and "throughput comparable" in str(net["why"])


def test_isolation_claim_reads_kernels_and_launcher_confinement() -> None:
    iso = {
        "host_kernel": "6.1.0-host",
        "container": {"variant": "container", "kernel": "6.1.0-host", "confinement": {}},
        "vm": {
            "variant": "vm-tcg",
            "kernel": "6.1.176",
            "confinement": {"privileged": False, "extra_capabilities": ["NET_ADMIN"]},
        },
    }
    c = verdict(report(isolation=iso), "VMs isolate")
    assert c["verdict"] == claims.CAVEAT and "NET_ADMIN" in str(c["why"])
    iso["vm"]["confinement"] = {}  # type: ignore[index]
    assert verdict(report(isolation=iso), "VMs isolate")["verdict"] == claims.HOLDS
    iso["vm"]["kernel"] = "6.1.0-host"  # type: ignore[index]
    assert verdict(report(isolation=iso), "VMs isolate")["verdict"] == claims.NOT_HERE


# --- JSON and compare -------------------------------------------------------------------


def test_report_json_round_trip_keeps_rounds(tmp_path: Path) -> None:
    r = report(fig("startup.entrypoint", [0.5, None], [3.0, 3.5]))
    data = r.to_json()
    f = data["figures"][0]
    assert f["rounds"] == {"container": [0.5, None], "vm-tcg": [3.0, 3.5]}
    assert f["summary"]["container"]["n"] == 1
    assert f["ratio_vm_over_container"]["vm-tcg"]["rounds"] == [6.0]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    back = load_report(path)
    assert back.figures[0].rounds == r.figures[0].rounds


def test_bad_previous_report_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(BenchError, match="is not JSON"):
        load_report(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"version": 99}')
    with pytest.raises(BenchError, match="not a compound bench report"):
        load_report(tmp_path / "y.json")
    with pytest.raises(BenchError, match="cannot read"):
        load_report(tmp_path / "missing.json")


def test_compare_says_what_changed() -> None:
    old = report(fig("startup.entrypoint", [0.5, 0.5], [5.0, 5.0]))
    new = report(fig("startup.entrypoint", [0.52, 0.5], [1.0, 1.0]))
    new.host = {**new.host, "kvm_usable": True}
    old.claims = [{"claim": "x", "verdict": claims.HOLDS}]
    new.claims = [{"claim": "x", "verdict": claims.NOT_HERE}]
    d = compare(new, old)
    assert {"key": "kvm_usable", "before": False, "after": True} in d["host"]
    by = {c["variant"]: c for c in d["figures"]}
    assert by["container"]["verdict"] == "unchanged"
    assert by["vm-tcg"]["verdict"] == "better" and by["vm-tcg"]["factor"] == 0.2
    assert d["claims"] == [{"claim": "x", "before": claims.HOLDS, "after": claims.NOT_HERE}]


# --- workload output ----------------------------------------------------------------------


def test_parse_timings_and_compose_text() -> None:
    assert workload.parse_timings("seq_write 10.00 10.25\nnoise\ncpu 1 x") == {"seq_write": 0.25}
    doc = json.loads(
        workload.compose_text(
            "img",
            [workload.Target("container"), workload.Target("vm-tcg", "tcg")],
            vm_memory="128m",
            volume=True,
            client_image="probe",
        )
    )
    assert set(doc["services"]) == {"container", "vm-tcg", "client"}
    vm = doc["services"]["vm-tcg"]
    assert vm["x-compound"]["vm"]["accel"] == "tcg"
    assert "x-compound" not in doc["services"]["container"]
    assert workload.MARKER in vm["command"][0] and doc["volumes"] == {"data": {}}


def test_figures_an_image_cannot_produce_are_skipped_with_the_tool_it_lacks() -> None:
    from compound.benchmark.runner import skipped_for_tools

    ids = ["startup.entrypoint", "startup.healthy", "network.c2t.latency_p50", "cpu.sha256"]
    everything = {"httpd", "dd", "cat", "rm", "mkdir", "sha256sum"}
    assert skipped_for_tools(ids, everything) == {}
    got = skipped_for_tools(ids, everything - {"httpd", "sha256sum"})
    assert got == {
        "startup.healthy": "the image has no httpd",
        "network.c2t.latency_p50": "the image has no httpd",
        "cpu.sha256": "the image has no sha256sum",
    }


# --- rendering --------------------------------------------------------------------------


def full_report() -> Report:
    r = report(
        fig("startup.entrypoint", [0.4, 0.5], [4.0, 5.0], title="create → entrypoint"),
        fig("memory.pss", [1.5, 1.6], [150.0, 160.0], unit="MiB", title="idle memory, PSS"),
        fig("cpu.sha256", [], [], skipped="the image has no sha256sum", title="CPU"),
    )
    r.claims = claims.check_claims(r)
    r.advice = {"skipped": "no Compose project here"}
    r.errors = ["vm-tcg: startup: timed out"]
    return r


def test_markdown_and_html_say_the_same_things() -> None:
    r = full_report()
    r.plots = {"startup": "rep-startup.svg", "memory": "rep-memory.svg"}
    md, page = render.to_markdown(r), render.to_html(r)
    assert md.index("the seeds' claims, checked on this host".capitalize()) < md.index("## Figures")
    for text in ("HOLDS WITH A CAVEAT", "the image has no sha256sum", "timed out", "10.00x"):
        assert text in md and text in page
    assert "![rep-startup.svg](rep-startup.svg)" in md
    assert '<img src="rep-memory.svg"' in page
    assert md.rstrip().splitlines()[-1].startswith("Not given: no Compose project here")
    assert "<script" not in page


def test_a_report_without_plots_says_why() -> None:
    r = full_report()
    r.plots_skipped = plots.unavailable_reason()
    assert "No plots: matplotlib is not installed" in render.to_markdown(r)
    assert "<img" not in render.to_html(r)


def test_html_escapes_what_it_shows() -> None:
    r = full_report()
    r.image = "<img onerror=x>"
    assert "<img onerror" not in render.to_html(r)


def test_plots_are_svg_files(tmp_path: Path) -> None:
    r = full_report()
    density = Figure("density.instances", "density", "density", "", "higher")
    density.rounds = {"container": [2.0], "vm-tcg": [2.0]}
    density.details = {
        "budget_mib": 100,
        "steps": {
            "container": {"steps": [{"instances": 1, "pss_mib": 1.0}]},
            "vm-tcg": {"steps": [{"instances": 1, "pss_mib": 150.0}]},
        },
    }
    r.figures.append(density)
    written = plots.write_plots(r, tmp_path, "rep")
    assert set(written) == {"startup", "memory", "density"}  # cpu was skipped: no plot
    for name in written.values():
        assert (tmp_path / name).read_text().lstrip().startswith("<?xml")
