"""compound lift DISK -t NAME:TAG | compound export IMAGE -o DISK: the way
from VMs to containers and back (runtimes/vm/lift.py, runtimes/vm/export.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compound.cli.context import app_context

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _sigterm_interrupts() -> None:
    """SIGTERM ends a lift or export as Ctrl-C does: through its cleanup
    (temporary image, file, mounts), so an ended run leaves nothing."""
    import signal

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def register(app: typer.Typer) -> None:
    app.command("lift")(lift_cmd)
    app.command("export")(export_cmd)


def lift_cmd(
    ctx: typer.Context,
    disk: Annotated[Path, typer.Argument(help="A VM disk: qcow2, raw, vmdk, vdi, ...")],
    tag: Annotated[str, typer.Option("-t", "--tag", help="The image to make, NAME:TAG.")],
    compose_out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--compose",
            help="Where to write the compose fragment (default NAME.compose.yaml).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Turn a VM disk into an image plus a Compose service, offline (no boot)."""
    from compound.runtimes.vm.lift import lift

    _sigterm_interrupts()
    app_ctx = app_context(ctx)
    name = tag.rsplit(":", 1)[0].split("/")[-1] or "lifted"
    out = compose_out or Path(f"{name}.compose.yaml")

    def say(msg: str) -> None:
        app_ctx.err.print(f"[lift] {msg}", markup=False, highlight=False)

    from compound.engine import connect

    res = lift(connect(), disk, tag, out, progress=say)
    if json_out:
        from compound.cli.render import print_json

        print_json(res.to_json())
        return
    p = app_ctx.out.print
    p(f"lifted {res.disk} ({res.os}) into {res.image} in {res.seconds}s", markup=False)
    p(f"  command:  {' '.join(res.command)}", markup=False)
    p(f"  services: {', '.join(res.units) or '-'}", markup=False)
    p(f"  ports:    {', '.join(map(str, res.ports)) or '-'}", markup=False)
    p(f"  users:    {', '.join(res.users) or '-'}", markup=False)
    vols = ", ".join(f"{k} -> {v}" for k, v in res.volumes.items())
    p(f"  volumes:  {vols or '-'}", markup=False)
    p(f"  removed:  {', '.join(res.removed)}", markup=False)
    if res.oneshots:
        p(f"  run once first (oneshot): {', '.join(res.oneshots)}", markup=False)
    for line in res.sockets:
        p(f"  socket-activated: {line}", markup=False)
    if res.not_carried:
        p("  not carried over:", markup=False)
        for n in res.not_carried:
            p(f"    - {n}", markup=False)
    p(f"compose fragment: {res.compose_file}", markup=False)


def export_cmd(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="The image to export.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The disk file to write.")],
    fmt: Annotated[
        str, typer.Option("--format", help="qcow2 | raw | vmdk (default qcow2).")
    ] = "qcow2",
    json_out: JsonOpt = False,
) -> None:
    """Make a bootable disk from an image (partition table, extlinux,
    compound's guest kernel, an init that runs the entrypoint)."""
    from compound.runtimes.vm.export import export

    _sigterm_interrupts()
    app_ctx = app_context(ctx)

    def say(msg: str) -> None:
        app_ctx.err.print(f"[export] {msg}", markup=False, highlight=False)

    from compound.engine import connect

    res = export(connect(), image, output, fmt, progress=say)
    if json_out:
        from compound.cli.render import print_json

        print_json(res)
        return
    app_ctx.out.print(
        f"exported {image} to {res['disk']} ({res['format']}, {res['seconds']}s);"
        f" boot it with: {res['boot']}",
        markup=False,
    )
