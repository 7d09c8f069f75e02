"""compound volume ls | inspect | backup | restore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from compound.cli.context import AppContext, app_context

if TYPE_CHECKING:
    from compound.cli.render import ByteProgress

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Via = Annotated[
    str,
    typer.Option(
        "--via",
        help="How to reach the files: mount (the volume's directory, local driver, root),"
        " engine (a helper container, works anywhere), auto (mount when possible).",
    ),
]

volume_app = typer.Typer(
    name="volume",
    help="The project's volumes: list, inspect, back up, restore.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(volume_app, name="volume")


@volume_app.command("ls")
def ls(
    ctx: typer.Context,
    json_out: JsonOpt = False,
    size: Annotated[
        bool, typer.Option("--size", help="Add up file sizes (reads every directory).")
    ] = False,
) -> None:
    """The project's volumes: engine name, driver, who mounts them, who runs with them."""
    from rich.table import Table

    from compound.cli.render import human_bytes, print_json
    from compound.volumes import ops

    app_ctx = app_context(ctx)
    session = app_ctx.session(quiet=True)
    rows = ops.volume_rows(session, size=size)
    if json_out:
        print_json([{k: v for k, v in r.items() if k != "engine"} for r in rows])
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("VOLUME", "NAME", "DRIVER", "SIZE", "SERVICES", "RUNNING"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["key"] or "-",
            r["name"] if r["exists"] else f"{r['name']} (not created)",
            r["driver"] or "-",
            human_bytes(r["size"]) if r["size"] is not None else "-",
            ", ".join(r["services"]) or "-",
            ", ".join(r["running"]) or "-",
        )
    app_ctx.out.print(table)


@volume_app.command("inspect")
def inspect(ctx: typer.Context, name: str, json_out: JsonOpt = False) -> None:
    """A volume's engine attributes and the services and instances using it."""
    from compound.cli.render import print_json
    from compound.volumes import ops

    app_ctx = app_context(ctx)
    session = app_ctx.session(quiet=True)
    info = ops.volume_info(session, ops.resolve(session, name))
    if not info["exists"] and info["key"] is None:
        raise ops.missing_error(session, ops.resolve(session, name))
    if json_out:
        print_json(info)
        return
    app_ctx.out.print(json.dumps(info, indent=2, default=str), markup=False, highlight=False)


@volume_app.command("backup")
def backup(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume: the project's key or the engine name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Archive file to write.")],
    consistent: Annotated[
        bool,
        typer.Option(
            "--consistent",
            help="Pause the instances using the volume while it is read"
            " (containers: docker pause; VMs: sync in the guest, then QMP stop).",
        ),
    ] = False,
    via: Via = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Write a volume to a compressed archive with a manifest of sha256 checksums."""
    from compound.volumes import ops

    app_ctx = app_context(ctx)
    session = app_ctx.session(quiet=True)
    with _progress(app_ctx, f"backup {name}", json_out) as meter:
        result = ops.backup(session, name, output, consistent=consistent, via=via, meter=meter)
    _report(app_ctx, "Backed up", result.to_json(), json_out)


@volume_app.command("restore")
def restore(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume: the project's key or the engine name.")],
    archive: Annotated[Path, typer.Argument(help="Archive made by `compound volume backup`.")],
    via: Via = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Replace a volume's contents by a backup's, after verifying every checksum."""
    from compound.volumes import ops

    app_ctx = app_context(ctx)
    session = app_ctx.session(quiet=True, writer=True)
    with _progress(app_ctx, f"restore {name}", json_out) as meter:
        result = ops.restore(session, name, archive, via=via, meter=meter)
    _report(app_ctx, "Restored", result.to_json(), json_out)


def _progress(app_ctx: AppContext, title: str, json_out: bool) -> ByteProgress:
    from compound.cli.render import ByteProgress

    mode = "quiet" if json_out else app_ctx.opts.progress
    return ByteProgress(app_ctx.err, title, mode)


def _report(app_ctx: AppContext, verb: str, data: dict[str, Any], json_out: bool) -> None:
    from compound.cli.render import human_bytes, print_json

    if json_out:
        print_json(data)
        return
    rate = f", {data['mb_per_s']} MB/s" if data.get("mb_per_s") else ""
    where = (
        f"{data['volume']} -> {data['archive']}"
        if verb == "Backed up"
        else (f"{data['archive']} -> {data['volume']}")
    )
    app_ctx.out.print(
        f"{verb} {where}: {data['files']} files, {human_bytes(data['bytes'])}"
        f" ({human_bytes(data['archive_bytes'])} compressed) in {data['seconds']:.1f}s{rate}"
        f" via {data['via']}",
        markup=False,
        highlight=False,
    )
    if data.get("paused"):
        app_ctx.out.print("  paused while reading: " + ", ".join(data["paused"]), markup=False)
    if data.get("created"):
        app_ctx.out.print("  created the volume (with the project's labels)", markup=False)
    for warning in data.get("warnings") or ():
        app_ctx.err.print(f"[yellow]WARN[/] {warning}", markup=True, highlight=False)
