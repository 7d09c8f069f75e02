"""Read-only commands: ps, logs, top, images, events, config, history, version."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

from compound import __version__
from compound.cli.context import AppContext, app_context
from compound.errors import EngineError, NotSupportedError, UsageError

Services = Annotated[list[str] | None, typer.Argument(help="Services (default: all).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _boot(row: dict[str, Any]) -> str:
    boot = row.get("boot_time")
    return f"{boot:.1f}s" if isinstance(boot, (int, float)) else "-"


def _status_text(row: dict[str, Any]) -> str:
    status = str(row["status"])
    if row["health"]:
        status += f" ({row['health']})"
    if row["status"] in ("exited", "failed"):
        status += f" ({row['exit_code']})"
    return status


def register(app: typer.Typer) -> None:
    @app.command()
    def ps(
        ctx: typer.Context,
        services: Services = None,
        all_: Annotated[
            bool, typer.Option("--all", "-a", help="Include stopped instances.")
        ] = False,
        json_out: JsonOpt = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only IDs.")] = False,
        services_only: Annotated[
            bool, typer.Option("--services", help="Only service names.")
        ] = False,
    ) -> None:
        """List the project's instances: which runtime and kernel each runs on."""
        from rich.table import Table

        from compound.cli.render import print_json

        app_ctx = app_context(ctx)
        if app_ctx.on_swarm(services or [], quiet=True):
            from compound.cli import swarm_cmd

            if services or quiet or services_only:
                raise UsageError(
                    "on the Swarm, `compound ps` lists every task of the project",
                    hint="use --json and filter it, or `compound config --services`",
                )
            return swarm_cmd.ps(ctx, json_out=json_out)
        session = app_ctx.session(services or [], quiet=True)
        from compound.reconcile.views import ps_rows

        rows = ps_rows(session, services or [], all_=all_)
        if json_out:
            print_json(rows)
            return
        if quiet:
            for r in rows:
                app_ctx.out.print(r["id"], markup=False)
            return
        if services_only:
            for s in sorted({r["service"] for r in rows}):
                app_ctx.out.print(s, markup=False)
            return
        table = Table(box=None, pad_edge=False, header_style="bold")
        cols = ("NAME", "SERVICE", "RUNTIME", "KERNEL", "ACCEL", "BOOT", "IMAGE", "STATUS", "PORTS")
        for col in cols:
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["name"],
                r["service"],
                r["runtime"],
                str(r["kernel"]),
                str(r["accel"]),
                _boot(r),
                r["image"],
                _status_text(r),
                ", ".join(r["ports"]),
            )
        app_ctx.out.print(table)

    @app.command()
    def logs(
        ctx: typer.Context,
        services: Services = None,
        follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
        tail: Annotated[
            str, typer.Option("--tail", "-n", help="Lines from the end, or 'all'.")
        ] = "all",
        timestamps: Annotated[bool, typer.Option("--timestamps", "-t")] = False,
        since: Annotated[str | None, typer.Option("--since")] = None,
        no_color: Annotated[bool, typer.Option("--no-color")] = False,
        no_log_prefix: Annotated[bool, typer.Option("--no-log-prefix")] = False,
        console: Annotated[
            bool, typer.Option("--console", help="VMs: the guest kernel's console instead.")
        ] = False,
    ) -> None:
        """Show the output of the services' instances (for VMs: the application's
        output from the guest; kernel messages with --console)."""
        from compound.cli.logs_view import follow_logs

        app_ctx = app_context(ctx)
        if tail != "all" and not tail.isdigit():
            raise UsageError(f"--tail {tail!r}: expected a number or 'all'")
        if app_ctx.on_swarm(services or [], quiet=True):
            from compound.cli import swarm_cmd

            if follow or console or since:
                raise UsageError(
                    "on the Swarm, `compound logs` shows what the tasks wrote so far",
                    hint="follow one service with `docker --context MANAGER service logs -f`",
                )
            return swarm_cmd.logs_of(app_ctx, services or [], tail=tail)
        session = app_ctx.session(services or [], quiet=True)
        names = session.check_services(services or [])
        if console:
            for inst in session.instances(names):
                try:
                    text = session.driver_for(inst).console(inst)
                except NotSupportedError as exc:
                    app_ctx.err.print(exc.message, markup=False)
                    continue
                for line in text.splitlines():
                    app_ctx.out.print(f"{inst.service}-{inst.number} | {line}", markup=False)
            return
        try:
            follow_logs(
                app_ctx,
                session,
                names,
                follow=follow,
                tail=None if tail == "all" else int(tail),
                timestamps=timestamps,
                since=since,
                prefix=not no_log_prefix,
                colour=not no_color,
            )
        except KeyboardInterrupt:
            return

    @app.command()
    def top(ctx: typer.Context, services: Services = None) -> None:
        """Show the processes running in each instance."""
        from rich.table import Table

        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [], quiet=True)
        names = session.check_services(services or [])
        for inst in session.instances(names, include_stopped=False):
            try:
                procs = session.driver_for(inst).top(inst)
            except NotSupportedError as exc:
                app_ctx.out.print(exc.message, markup=False)
                continue
            table = Table(title=inst.name, box=None, header_style="bold", title_justify="left")
            for title in procs.titles:
                table.add_column(title)
            for proc in procs.rows:
                table.add_row(*proc)
            app_ctx.out.print(table)

    @app.command()
    def images(ctx: typer.Context, services: Services = None, json_out: JsonOpt = False) -> None:
        """List the images used by the project's instances."""
        from rich.table import Table

        from compound.cli.render import print_json
        from compound.engine import images as engine_images

        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [], quiet=True)
        names = session.check_services(services or [])
        rows: list[dict[str, Any]] = []
        for inst in session.instances(names):
            # None: the image was removed after the container was made
            img = engine_images.inspect(session.client, inst.image_id or inst.image) or {}
            size = int(img.get("Size", 0))
            tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
            rows.append(
                {
                    "instance": inst.name,
                    # a VM's container runs the launcher image; the service's image is what boots
                    "image": session.driver_for(inst).shown_image(inst, session.project),
                    "id": inst.image_id,
                    "tags": tags,
                    "size": size,
                }
            )
        if json_out:
            print_json(rows)
            return
        table = Table(box=None, header_style="bold")
        for col in ("INSTANCE", "IMAGE", "ID", "SIZE"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["instance"],
                r["image"],
                str(r["id"]).removeprefix("sha256:")[:12],
                f"{r['size'] / 1e6:.1f}MB",
            )
        app_ctx.out.print(table)

    @app.command()
    def events(ctx: typer.Context, services: Services = None, json_out: JsonOpt = False) -> None:
        """Stream the engine's events for the project's instances."""
        from compound.engine.events import events as engine_events
        from compound.runtimes.base import LABEL_PROJECT, LABEL_SERVICE

        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [], quiet=True)
        names = set(session.check_services(services or []))
        stream = engine_events(session.client, labels=[f"{LABEL_PROJECT}={session.project.name}"])
        try:
            for ev in stream:
                attrs = ev.get("Actor", {}).get("Attributes", {})
                svc = attrs.get(LABEL_SERVICE, "")
                if names and svc not in names:
                    continue
                when = dt.datetime.fromtimestamp(ev.get("timeNano", 0) / 1e9, tz=dt.UTC)
                row = {
                    "time": when.isoformat(),
                    "type": ev.get("Type"),
                    "action": ev.get("Action"),
                    "service": svc,
                    "id": ev.get("id"),
                    "name": attrs.get("name"),
                }
                if json_out:
                    print(json.dumps(row), flush=True)
                else:
                    app_ctx.out.print(
                        f"{row['time']} {row['type']} {row['action']} {row['name']} ({svc})",
                        markup=False,
                    )
        except KeyboardInterrupt:
            return
        finally:
            stream.close()

    @app.command()
    def config(
        ctx: typer.Context,
        json_out: JsonOpt = False,
        services_only: Annotated[
            bool, typer.Option("--services", help="Service names only.")
        ] = False,
        volumes_only: Annotated[bool, typer.Option("--volumes", help="Volume names only.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only validate.")] = False,
        hashes: Annotated[
            bool, typer.Option("--hash", help="Config hash of each service.")
        ] = False,
    ) -> None:
        """Validate and print the resolved, normalised Compose file."""
        app_ctx = app_context(ctx)
        project = app_ctx.load().project
        if quiet:
            return
        if services_only:
            for name in sorted(project.services):
                app_ctx.out.print(name, markup=False)
            return
        if volumes_only:
            for name in sorted(project.volumes):
                app_ctx.out.print(name, markup=False)
            return
        if hashes:
            for name, svc in sorted(project.services.items()):
                app_ctx.out.print(f"{name} {svc.config_hash()}", markup=False)
            return
        from compound.spec import to_compose_dict  # only `config` needs the writer

        data = to_compose_dict(project)
        if json_out:
            from compound.cli.render import print_json

            print_json(data)
        else:
            import yaml

            print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")

    @app.command()
    def history(
        ctx: typer.Context,
        json_out: JsonOpt = False,
        limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    ) -> None:
        """The project's revisions: every `up`, its plan and outcome."""
        from rich.table import Table

        from compound.cli.render import print_json

        app_ctx = app_context(ctx)
        if app_ctx.on_swarm(quiet=True):
            from compound.cli import swarm_cmd

            return swarm_cmd.history(ctx)
        project = app_ctx.load(quiet=True).project
        revisions = app_ctx.store.history(project.name, limit)
        live = _live_revision(app_ctx, project.name) if revisions else None
        if json_out:
            print_json([{**r.summary(), "live": r.number == live} for r in revisions])
            return
        if not revisions:
            app_ctx.out.print(f"no revisions recorded for project {project.name}", markup=False)
            return
        table = Table(box=None, header_style="bold")
        for col in ("REV", "WHEN", "COMMAND", "OUTCOME", "CHANGES", "RUNTIMES"):
            table.add_column(col)
        for r in revisions:
            when = dt.datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M:%S")
            changes = (
                ", ".join(
                    f"{s['service']}: {s['summary']}"
                    for s in r.plan.get("services", [])
                    if s.get("summary") != "unchanged"
                )
                or "none"
            )
            runtimes = ", ".join(
                f"{k}={v.get('runtime')}" + (" (auto)" if v.get("declared") == "auto" else "")
                for k, v in sorted(r.decisions.items())
            )
            mark = " (live)" if r.number == live else ""
            table.add_row(f"{r.number}{mark}", when, r.command, r.outcome, changes, runtimes)
        app_ctx.out.print(table)
        # runtime: auto is a decision, so say why it was taken (newest revision first)
        for r in revisions:
            auto = {k: v for k, v in sorted(r.decisions.items()) if v.get("declared") == "auto"}
            for svc, d in auto.items():
                app_ctx.out.print(
                    f"rev {r.number}: {svc} ran as {d.get('runtime')} (runtime: auto, "
                    f"confidence {float(d.get('confidence') or 0):.2f})",
                    markup=False,
                )
                for why in d.get("why") or ["no factor: the default"]:
                    app_ctx.out.print(f"    {why}", markup=False)

    def _live_revision(app_ctx: AppContext, project: str) -> int | None:
        try:  # what runs decides; without an engine, the newest that succeeded
            return app_ctx.session(quiet=True).live_revision()
        except EngineError:
            newest = app_ctx.store.live(project)
            return newest.number if newest else None

    @app.command()
    def version(
        ctx: typer.Context,
        short: Annotated[bool, typer.Option("--short")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        """Show compound's version (and the engine's, when one answers)."""
        from compound.cli.render import print_json

        app_ctx = app_context(ctx)
        if short:
            app_ctx.out.print(__version__, markup=False)
            return
        from compound.reconcile.views import version_info

        info = version_info(lambda: app_ctx.client)
        if json_out:
            print_json(info)
        else:
            for k, v in info.items():
                app_ctx.out.print(f"{k}: {v}", markup=False)
