"""Registers `compound doctor`; the checks live in ``doctor.py`` and are
imported only when the command runs (they import the engine client and the
drivers)."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_command(
        ctx: typer.Context,
        quick: Annotated[
            bool,
            typer.Option(
                "--quick",
                help="Skip what may take more than a second (kernel/initramfs, KVM probe).",
            ),
        ] = False,
        prepare: Annotated[
            bool,
            typer.Option(
                "--prepare", help="Also build the launcher and load balancer images if missing."
            ),
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Check what this host offers compound (engine, QEMU, KVM, caches) and what to fix."""
        from rich.console import Console

        from compound.cli.doctor import doctor

        obj: Any = ctx.obj
        out: Console = getattr(obj, "out", None) or Console(highlight=False, emoji=False)
        err: Console = getattr(obj, "err", None) or Console(
            stderr=True, highlight=False, emoji=False
        )
        opts = getattr(obj, "opts", None)
        mode = str(getattr(opts, "progress", "auto"))
        code = doctor(
            quick=quick, prepare=prepare, json_out=json_out, out=out, err=err, progress_mode=mode
        )
        if code:
            raise typer.Exit(code)
