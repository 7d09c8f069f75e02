"""`compound diff`: instances that no longer match what they were created from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from compound.cli.context import AppContext, app_context

if TYPE_CHECKING:
    from compound.reconcile.drift import DriftReport

# `--exit-code`: like `git diff --exit-code`, but 1 is already every
# compound command's "a problem you can fix", so drift gets its own code.
EXIT_DRIFTED = 3


def print_report(app: AppContext, report: DriftReport, limit: int) -> None:
    from rich.markup import escape

    from compound.reconcile.drift import tally

    out = app.out
    for f in report.files:
        if f.unknown:
            out.print(f"{f.instance} ({f.runtime}): not checked: {escape(f.unknown)}")
        elif f.drifted:
            out.print(f"[bold]{f.instance}[/] ({f.runtime}): files {tally(f.changes)}")
            for change in f.changes[:limit]:
                out.print(f"  {change.kind} {change.path}", markup=False)
            if len(f.changes) > limit:
                out.print(f"  … {len(f.changes) - limit} more (--json lists all)", markup=False)
    for c in report.config:
        out.print(f"[bold]{c.instance}[/]: {escape(c.reason)} (the file differs)")
    if not report.drifted:
        checked = sum(1 for f in report.files if not f.unknown)
        out.print(f"no drift: {checked} instance(s) match their image and the file")
    else:
        out.print(
            "to get back to a known state: `compound up -d --recreate-drifted`"
            " (change the image or the file, not the running instance)",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    @app.command()
    def diff(
        ctx: typer.Context,
        services: Annotated[
            list[str] | None, typer.Argument(help="Services (default: all).")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        limit: Annotated[
            int, typer.Option("--limit", min=0, help="Paths shown per instance.")
        ] = 10,
        exit_code: Annotated[
            bool,
            typer.Option(
                "--exit-code", help=f"Exit {EXIT_DRIFTED} when something drifted, 0 when not."
            ),
        ] = False,
    ) -> None:
        """Instances whose files changed since they were created, or whose
        configuration differs from the file."""
        from compound.cli.render import print_json

        app_ctx = app_context(ctx)
        names = services or []
        report = app_ctx.session(names).drift(names)
        if json_out:
            print_json(report.to_json())
        else:
            print_report(app_ctx, report, limit)
        if exit_code and report.drifted:
            raise typer.Exit(EXIT_DRIFTED)
