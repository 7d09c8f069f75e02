"""SVG plots of a report, one per group of figures, with matplotlib (the
optional ``bench`` extra: ``pip install 'compound[bench]'``). Without it the
report says so and carries its tables only.

Bars are medians; whiskers span min..max over the rounds. A group whose
values span more than two decades is drawn on a log scale (a VM's small-file
work next to a container's would otherwise show one bar)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from compound.benchmark.figures import Figure, Report

GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("startup", "Startup (s, lower is better)", ("startup.entrypoint", "startup.healthy")),
    ("memory", "Idle memory per instance (MiB)", ("memory.rss", "memory.pss")),
    ("disk", "Disk (MiB)", ("disk.footprint", "disk.per_instance")),
    (
        "latency",
        "HTTP latency (ms)",
        (
            "network.c2t.latency_p50",
            "network.c2t.latency_p99",
            "network.host.latency_p50",
            "network.host.latency_p99",
        ),
    ),
    (
        "throughput",
        "HTTP throughput (MiB/s, higher is better)",
        ("network.c2t.throughput", "network.host.throughput"),
    ),
    (
        "volume",
        "Shared-volume I/O (s)",
        (
            "volume.seq_write",
            "volume.seq_read",
            "volume.small_create",
            "volume.small_read",
            "volume.small_delete",
        ),
    ),
    ("cpu", "CPU-bound work (s)", ("cpu.sha256",)),
)
COLOURS = {"container": "#1f77b4", "vm-tcg": "#d62728", "vm-kvm": "#2ca02c"}


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def unavailable_reason() -> str:
    return "matplotlib is not installed: `pip install 'compound[bench]'` adds the plots"


def _short(fig: Figure) -> str:
    """Two lines: where (container → target, host → published port), what."""
    return fig.title.replace(": ", "\n", 1)


def write_plots(report: Report, directory: Path, stem: str) -> dict[str, str]:
    """Write <stem>-<group>.svg for each group with a measured figure; the
    files' names by group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "compound-bench", "svg.fonttype": "none"})
    out: dict[str, str] = {}
    variants = list(report.variants)
    for group, title, ids in GROUPS:
        figs = [f for i in ids if (f := report.figure(i)) is not None and f.measured]
        if not figs:
            continue
        fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(figs) + 2), 3.2))
        width = 0.8 / max(1, len(variants))
        values: list[float] = []
        for k, variant in enumerate(variants):
            xs, med, lo, hi = [], [], [], []
            for j, f in enumerate(figs):
                s = f.summary(variant)
                if s is None:
                    continue
                xs.append(j + (k - (len(variants) - 1) / 2) * width)
                med.append(s.median)
                lo.append(s.median - s.min)
                hi.append(s.max - s.median)
                values += [s.min, s.max]
            if xs:
                ax.bar(
                    xs,
                    med,
                    width,
                    yerr=[lo, hi],
                    capsize=3,
                    label=variant,
                    color=COLOURS.get(variant),
                )
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 100:
            ax.set_yscale("log")
        ax.set_xticks(range(len(figs)), [_short(f) for f in figs], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"{stem}-{group}.svg"
        fig.savefig(directory / name, format="svg", metadata={"Date": None})
        plt.close(fig)
        out[group] = name
    density = report.figure("density.instances")
    if density is not None and density.measured:
        drawn = _density_plot(plt, density, directory, stem)
        if drawn:
            out["density"] = drawn
    return out


def _density_plot(plt: Any, f: Figure, directory: Path, stem: str) -> str | None:
    steps = f.details.get("steps") or {}
    if not any(v.get("steps") for v in steps.values()):
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for variant, run in steps.items():
        pts = run.get("steps") or []
        if pts:
            ax.plot(
                [p["instances"] for p in pts],
                [p["pss_mib"] for p in pts],
                marker="o",
                label=variant,
                color=COLOURS.get(variant),
            )
    budget = f.details.get("budget_mib")
    top = max((p["pss_mib"] for run in steps.values() for p in run.get("steps") or []), default=0)
    if budget and top >= budget / 4:  # else the line would flatten the curves
        ax.axhline(budget, linestyle="--", color="grey", linewidth=1, label="budget")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("idle instances started")
    ax.set_ylabel("PSS, all instances (MiB)")
    ax.set_title("Density: memory as instances are added", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    name = f"{stem}-density.svg"
    fig.savefig(directory / name, format="svg", metadata={"Date": None})
    plt.close(fig)
    return name
