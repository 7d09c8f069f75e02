"""``compound bench``: the same image as a container and as a VM on this
host, measured, written as HTML (with SVG plots), Markdown and JSON.

    compound bench [--image IMG] [--quick|--full] [-o report.html] [--json]
                   [--compare previous.json] [--rounds N] [--density N]
                   [--density-budget MIB]

Beside ``report.html`` it writes ``report.md``, ``report.json`` and
``report-<group>.svg``. ``--json`` also prints the JSON on stdout (progress
stays on stderr). Ctrl-C stops the run and removes everything it started.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from compound.benchmark.options import DEFAULT_IMAGE, BenchOptions, Mode

if TYPE_CHECKING:
    from rich.console import Console
from compound.cli.context import AppContext


class ConsoleProgress:
    """One line per stage on stderr, with the time since the start."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console, self.quiet = console, quiet
        self.t0 = time.monotonic()

    def _line(self, text: str, style: str = "") -> None:
        if self.quiet:
            return
        stamp = f"[{time.monotonic() - self.t0:6.1f}s]"
        from rich.markup import escape

        self.console.print(f"[dim]{stamp}[/] [{style or 'default'}]{escape(text)}[/]")

    def step(self, text: str) -> None:
        self._line(text)

    def note(self, text: str) -> None:
        self._line(text, "yellow")


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        ctx: typer.Context,
        image: Annotated[
            str, typer.Option("--image", help="The image to run both ways.")
        ] = DEFAULT_IMAGE,
        quick: Annotated[
            bool, typer.Option("--quick", help="Few rounds, small workloads (~2 min under TCG).")
        ] = False,
        full: Annotated[
            bool, typer.Option("--full", help="More rounds, larger workloads, density to 10.")
        ] = False,
        output: Annotated[
            Path,
            typer.Option("--output", "-o", help="The HTML report (.md, .json, .svg beside it)."),
        ] = Path("compound-bench.html"),
        json_out: Annotated[
            bool, typer.Option("--json", help="Also print the report's JSON on stdout.")
        ] = False,
        previous: Annotated[
            Path | None,
            typer.Option("--compare", help="A previous report's JSON: say what changed."),
        ] = None,
        rounds: Annotated[
            int | None, typer.Option("--rounds", min=1, max=100, help="Interleaved rounds.")
        ] = None,
        density: Annotated[
            int | None,
            typer.Option("--density", min=1, max=1000, help="Most idle instances of each kind."),
        ] = None,
        density_budget: Annotated[
            int | None,
            typer.Option("--density-budget", min=16, help="MiB the density run may use."),
        ] = None,
    ) -> None:
        """Measure containers against VMs on this host, with the same image."""
        # imported here: every other command starts without the bench (or the
        # VM runtime it loads)
        from compound.benchmark import plots, render
        from compound.benchmark.compare import compare, load_report
        from compound.benchmark.errors import BenchError
        from compound.benchmark.runner import run_bench

        app_ctx: AppContext = ctx.obj
        if quick and full:
            raise typer.BadParameter("--quick and --full cannot be combined", param_hint="--quick")
        mode: Mode = "quick" if quick else "full" if full else "default"
        opts = BenchOptions.for_mode(
            mode,
            image=image,
            rounds=rounds,
            density_bound=density,
            density_budget_mib=density_budget,
        )
        old = load_report(previous) if previous is not None else None  # fail before measuring
        if output.suffix != ".html":
            raise BenchError(
                f"{output}: the report is HTML",
                hint="name it report.html (.md and .json go beside)",
            )
        output.parent.mkdir(parents=True, exist_ok=True)
        err = app_ctx.err
        progress = ConsoleProgress(err, app_ctx.opts.progress == "quiet")
        report = run_bench(opts, app_ctx.client, progress, lambda: app_ctx.load(quiet=True).project)
        if plots.available():
            report.plots = plots.write_plots(report, output.parent, output.stem)
        else:
            report.plots_skipped = plots.unavailable_reason()
            progress.note(plots.unavailable_reason())
        if old is not None:
            report.compare = compare(report, old)
        data: dict[str, Any] = report.to_json()
        output.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
        output.with_suffix(".md").write_text(render.to_markdown(report))
        output.write_text(render.to_html(report))
        for c in report.claims:
            progress.step(f"{c['claim']} {c['verdict'].upper()}")
        progress.step(f"report: {output} (+ .md, .json, {len(report.plots)} plots)")
        if json_out:
            sys.stdout.write(json.dumps(data, indent=1) + "\n")
