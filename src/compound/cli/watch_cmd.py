"""`compound watch`: start the services, then apply their develop.watch rules
as files change (the loop is ``compound.watch.loop``; `up --watch` runs the
same after its `up`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from compound.cli.context import AppContext, app_context

if TYPE_CHECKING:
    from compound.reconcile.session import Session


def register(app: typer.Typer) -> None:
    @app.command()
    def watch(
        ctx: typer.Context,
        services: Annotated[
            list[str] | None, typer.Argument(help="Services to watch (default: all with rules).")
        ] = None,
        no_up: Annotated[
            bool, typer.Option("--no-up", help="Don't build and start the services first.")
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="One JSON event a line.")] = False,
    ) -> None:
        """Sync, rebuild or restart services as their develop.watch rules say,
        while files change (Ctrl-C stops watching; the services keep running)."""
        app_ctx = app_context(ctx)
        names = services or []
        session = app_ctx.session(names, writer=not no_up)
        watched = session.check_services(names) or [
            n for n, s in session.project.services.items() if s.develop and s.develop.watch
        ]
        if not no_up:
            from compound.cli.render import LiveProgress
            from compound.planner.diff import UpOptions

            mode = "quiet" if json_out else app_ctx.opts.progress
            with LiveProgress(app_ctx.err, "Running", mode) as progress:
                session.up(UpOptions(services=tuple(names)), progress=progress)
        run_watch(app_ctx, session, watched, json_out=json_out)


def run_watch(
    app_ctx: AppContext, session: Session, services: list[str], *, json_out: bool
) -> None:
    """Watch until Ctrl-C; the project lock is taken only while a rebuild runs."""
    import json
    import sys

    from compound.watch.loop import Watcher, describe

    app_ctx.close()  # watching changes nothing; a rebuild takes the lock for itself

    def emit(event: dict[str, Any]) -> None:
        if json_out:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        else:
            app_ctx.err.print(describe(event), markup=False)

    watcher = Watcher(
        session.project,
        services,
        instances=lambda name: [(i, session.driver_for(i)) for i in session.instances([name])],
        rebuild=lambda name: _rebuild(app_ctx, session, name, quiet=json_out),
        emit=emit,
    )
    try:
        watcher.run()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop_event.set()
    emit({"event": "stopped", "service": ""})


def _rebuild(app_ctx: AppContext, session: Session, service: str, *, quiet: bool) -> None:
    """Build the service's image again and let `up` recreate what changed
    (the planner sees the new image id; update_config applies)."""
    from compound.cli.render import LiveProgress
    from compound.errors import CompoundError
    from compound.planner.diff import UpOptions
    from compound.reconcile.prepare import prepare_services
    from compound.state.lock import ProjectLock, lock_path

    name = session.project.name
    lock = ProjectLock(lock_path(app_ctx.store.path.parent, name), name)
    lock.acquire(on_wait=lambda m: app_ctx.err.print(f"{m}…", markup=False))
    try:
        mode = "quiet" if quiet else "plain"
        with LiveProgress(app_ctx.err, "Rebuilding", mode) as progress:
            failures = prepare_services(
                session.project,
                [service],
                session.decide([service]),
                session.drivers,
                policy="build",
                verb="Built",
                progress=progress,
            )
            if failures:
                raise CompoundError(f"rebuild of {service} failed: {failures[service]}")
            session.up(UpOptions(services=(service,), no_deps=True), progress=progress)
    finally:
        lock.release()
