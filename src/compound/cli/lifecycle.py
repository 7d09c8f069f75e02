"""up, down, start, stop, restart, kill, rm, pull, build."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated

import typer

from compound.cli.context import AppContext, app_context
from compound.errors import CompoundError, UsageError

if TYPE_CHECKING:
    from compound.planner.diff import Plan
    from compound.reconcile.session import Session
    from compound.runtimes.base import Instance

Services = Annotated[list[str] | None, typer.Argument(help="Services (default: all).")]
Timeout = Annotated[
    float | None, typer.Option("--timeout", "-t", help="Seconds to wait before killing.")
]


def _parse_scale(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values or []:
        name, _, num = v.partition("=")
        if not name or not num.isdigit():
            raise UsageError(f"--scale {v!r}: expected SERVICE=NUMBER")
        out[name] = int(num)
    return out


def print_plan(app: AppContext, plan: Plan) -> None:
    out = app.out
    out.print(f"Plan for project [bold]{plan.project}[/]:")
    for r in plan.resources:
        if r.action == "create":
            out.print(f"  create   {r.kind} {r.name}")
    for sp in plan.services:
        for step in sp.steps:
            if step.action != "keep":
                out.print(f"  {step.describe()}", markup=False)
        if sp.update:
            out.print(f"  {'update':<8} {sp.service}: {sp.update}", markup=False)
    if plan.remove_orphans:
        for o in plan.orphans:
            out.print(f"  remove   {o.name}: orphan", markup=False)
    if not plan.changed:
        out.print("  nothing to do: every service is up to date")
    for note in plan.notes:
        out.print(f"  note: {note}", markup=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        ctx: typer.Context,
        services: Services = None,
        detach: Annotated[
            bool, typer.Option("--detach", "-d", help="Run in the background.")
        ] = False,
        wait: Annotated[
            bool, typer.Option("--wait", help="Wait until services are running/healthy.")
        ] = False,
        wait_timeout: Annotated[
            float, typer.Option("--wait-timeout", help="Seconds --wait and dependencies may take.")
        ] = 300.0,
        no_deps: Annotated[
            bool, typer.Option("--no-deps", help="Don't start linked services.")
        ] = False,
        force_recreate: Annotated[bool, typer.Option("--force-recreate")] = False,
        no_recreate: Annotated[bool, typer.Option("--no-recreate")] = False,
        remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
        recreate_drifted: Annotated[
            bool,
            typer.Option(
                "--recreate-drifted",
                help="Also recreate instances whose files changed (see `compound diff`).",
            ),
        ] = False,
        build: Annotated[
            bool, typer.Option("--build", help="Build images before starting.")
        ] = False,
        scale: Annotated[list[str] | None, typer.Option("--scale", help="SERVICE=NUM")] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the plan and change nothing.")
        ] = False,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print plan and outcome as JSON.")
        ] = False,
        timeout: Timeout = None,
        swarm: Annotated[
            bool, typer.Option("--swarm", help="Deploy to the Swarm (`compound swarm init`).")
        ] = False,
        watch: Annotated[
            bool, typer.Option("--watch", help="Then apply develop.watch rules as files change.")
        ] = False,
    ) -> None:
        """Create and start the services: change only what differs from the file."""
        app_ctx = app_context(ctx)
        if swarm or app_ctx.on_swarm(services or []):
            # before the single-host machinery's imports (planner, reconcile:
            # seconds on a loaded host), which a Swarm deploy does not use
            from compound.cli.swarm_cmd import swarm_up

            return swarm_up(app_ctx, services or [], json_out=json_out, timeout=wait_timeout)
        from compound.cli.logs_view import follow_logs
        from compound.cli.render import LiveProgress, print_json
        from compound.planner.diff import UpOptions
        from compound.reconcile.drift import recreate_reasons

        if force_recreate and no_recreate:
            raise UsageError("--force-recreate and --no-recreate cannot be combined")
        if recreate_drifted and no_recreate:
            raise UsageError("--recreate-drifted and --no-recreate cannot be combined")
        names = services or []
        session = app_ctx.session(names, writer=not dry_run)
        opts = UpOptions(
            services=tuple(names),
            no_deps=no_deps,
            force_recreate=force_recreate,
            no_recreate=no_recreate,
            remove_orphans=remove_orphans,
            scale=_parse_scale(scale),
            drifted=recreate_reasons(session.file_drift(names)) if recreate_drifted else {},
        )
        if build:
            _build(
                app_ctx,
                session,
                [
                    n
                    for n in names or session.project.services
                    if session.project.services[n].build is not None
                ],
            )
        if dry_run:
            from compound.planner.diff import missing_image_note

            plan = session.up(opts, dry_run=True).plan
            # what `up` would have to fetch or build first, and how without a registry
            missing = {
                sp.service: missing_image_note(session.project.services[sp.service])
                for sp in plan.services
                if sp.image_id is None
            }
            if json_out:
                print_json({**plan.to_json(), "missing_images": missing})
            else:
                print_plan(app_ctx, plan)
                for note in missing.values():
                    app_ctx.out.print(f"  image: {note}", markup=False)
            return
        mode = "quiet" if json_out else app_ctx.opts.progress
        with LiveProgress(app_ctx.err, "Running", mode) as progress:
            outcome = session.up(opts, progress=progress, dependency_timeout=wait_timeout)
            if wait:
                session.wait_running(
                    [sp.service for sp in outcome.plan.services], wait_timeout, progress
                )
        if json_out:
            print_json(
                {
                    "revision": outcome.revision,
                    "plan": outcome.plan.to_json(),
                    "result": outcome.result.to_json() if outcome.result else None,
                }
            )
        for note in outcome.plan.notes:
            app_ctx.err.print(f"note: {note}", markup=False)
        if watch and (detach or json_out):
            _watch_after_up(app_ctx, session, outcome.plan, detach=True)
            return
        if detach or wait or json_out:
            return
        # following logs changes nothing: another terminal's `down` must not wait for it
        app_ctx.close()
        selected = [sp.service for sp in outcome.plan.services]
        # `attach: false`: running, but its logs are not followed (stopped on Ctrl-C all the same)
        shown = [n for n in selected if session.project.services[n].attach]
        app_ctx.err.print("Attaching to logs; press Ctrl-C to stop the services.", markup=False)
        try:
            if watch:
                _watch_after_up(app_ctx, session, outcome.plan, detach=False)
                raise KeyboardInterrupt  # the watch ends only by Ctrl-C: stop, as without it
            if shown:
                follow_logs(
                    app_ctx,
                    session,
                    shown,
                    follow=True,
                    tail=None,
                    timestamps=False,
                )
            else:  # every service says attach: false; still in the foreground, as Compose
                threading.Event().wait()
        except KeyboardInterrupt:
            app_ctx.err.print("Gracefully stopping… (press Ctrl-C again to force)", markup=False)
            _act(
                app_ctx,
                session,
                selected,
                "Stopped",
                lambda s, i: _stop(s, i, timeout),
            )

    @app.command()
    def down(
        ctx: typer.Context,
        volumes: Annotated[
            bool, typer.Option("--volumes", "-v", help="Also remove named volumes.")
        ] = False,
        remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
        timeout: Timeout = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Stop and remove the project's instances and networks (and volumes with -v)."""
        from compound.cli.render import LiveProgress, print_json

        app_ctx = app_context(ctx)
        if app_ctx.on_swarm():
            from compound.cli import swarm_cmd

            if volumes:
                raise UsageError(
                    "down -v on the Swarm: its volumes live on the nodes, and compound "
                    "never removes them for you",
                    hint="remove one with `docker --context HOST volume rm NAME`",
                )
            return swarm_cmd.down(ctx)
        session = app_ctx.session(writer=True)
        mode = "quiet" if json_out else app_ctx.opts.progress
        with LiveProgress(app_ctx.err, "Running", mode) as progress:
            removed = session.down(
                volumes=volumes, remove_orphans=remove_orphans, timeout=timeout, progress=progress
            )
        if json_out:
            print_json(removed)

    @app.command()
    def rollback(
        ctx: typer.Context,
        services: Services = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Replace services' instances with what they ran before (the previous
        revision that deployed them), batch by batch as deploy.rollback_config says."""
        from compound.cli.render import LiveProgress, print_json

        app_ctx = app_context(ctx)
        if app_ctx.on_swarm(services or []):
            from compound.cli import swarm_cmd

            return swarm_cmd.rollback(ctx, services)
        session = app_ctx.session(services or [], writer=True)
        mode = "quiet" if json_out else app_ctx.opts.progress
        with LiveProgress(app_ctx.err, "Rolling back", mode) as progress:
            targets = session.rollback(services or [], progress=progress)
        if json_out:
            print_json({"rolled_back": targets})
            return
        for name, number in sorted(targets.items()):
            app_ctx.err.print(f"{name}: rolled back to revision {number}", markup=False)
        app_ctx.err.print(
            "note: the file still describes the newer version; the next `compound up`"
            " applies it again",
            markup=False,
        )

    @app.command()
    def start(ctx: typer.Context, services: Services = None) -> None:
        """Start existing stopped instances."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])
        _act(
            app_ctx,
            session,
            services,
            "Started",
            _start,
            only=lambda i: not i.running,
        )

    @app.command()
    def stop(ctx: typer.Context, services: Services = None, timeout: Timeout = None) -> None:
        """Stop running instances without removing them."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])
        _act(
            app_ctx,
            session,
            services,
            "Stopped",
            lambda s, i: _stop(s, i, timeout),
            only=lambda i: i.running,
            reverse=True,
        )

    @app.command()
    def restart(ctx: typer.Context, services: Services = None, timeout: Timeout = None) -> None:
        """Restart instances (stop, then start)."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])

        def bounce(s: Session, i: Instance) -> None:
            _stop(s, i, timeout)
            _start(s, i)

        _act(app_ctx, session, services, "Restarted", bounce)

    @app.command()
    def kill(
        ctx: typer.Context,
        services: Services = None,
        signal: Annotated[str, typer.Option("--signal", "-s")] = "SIGKILL",
    ) -> None:
        """Send a signal to running instances."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])
        _act(
            app_ctx,
            session,
            services,
            "Killed",
            lambda s, i: s.driver_for(i).kill(i, signal),
            only=lambda i: i.running,
        )

    @app.command()
    def rm(
        ctx: typer.Context,
        services: Services = None,
        force: Annotated[bool, typer.Option("--force", "-f", help="Don't ask.")] = False,
        stop_first: Annotated[bool, typer.Option("--stop", "-s", help="Stop first.")] = False,
        volumes: Annotated[
            bool, typer.Option("--volumes", "-v", help="Remove anonymous volumes.")
        ] = False,
    ) -> None:
        """Remove stopped instances."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])
        if stop_first:
            _act(
                app_ctx,
                session,
                services,
                "Stopped",
                lambda s, i: _stop(s, i, None),
                only=lambda i: i.running,
            )
        targets = [i for i in _instances(session, services) if not i.running]
        if not targets:
            app_ctx.err.print("No stopped instances to remove")
            return
        if not force:
            names = ", ".join(i.name for i in targets)
            if not typer.confirm(f"Going to remove {names}. Are you sure?", default=False):
                return
        _act(
            app_ctx,
            session,
            services,
            "Removed",
            lambda s, i: s.driver_for(i).remove(i, volumes=volumes),
            only=lambda i: not i.running,
        )

    @app.command()
    def pull(
        ctx: typer.Context,
        services: Services = None,
        ignore_pull_failures: Annotated[bool, typer.Option("--ignore-pull-failures")] = False,
    ) -> None:
        """Pull the images of services (fails fast when no registry answers)."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])
        names = session.check_services(services or sorted(session.project.services))
        targets = [n for n in names if session.project.services[n].image]
        _prepare_all(app_ctx, session, targets, "Pulled", "always", ignore_pull_failures)

    @app.command()
    def build(ctx: typer.Context, services: Services = None) -> None:
        """Build the images of services that have a build section."""
        app_ctx = app_context(ctx)
        session = app_ctx.session(services or [])
        names = session.check_services(services or sorted(session.project.services))
        _build(app_ctx, session, [n for n in names if session.project.services[n].build])


def _watch_after_up(app_ctx: AppContext, session: Session, plan: Plan, *, detach: bool) -> None:
    """`up --watch`: watch the started services with rules, following their logs
    beside it unless detached; returns when Ctrl-C ends the watch."""
    from compound.cli.watch_cmd import run_watch

    selected = [sp.service for sp in plan.services]
    watched = [n for n in selected if session.project.services[n].develop]
    if not detach:
        from compound.cli.logs_view import follow_logs

        shown = [n for n in selected if session.project.services[n].attach]
        threading.Thread(
            target=follow_logs,
            args=(app_ctx, session, shown),
            kwargs={"follow": True, "tail": None, "timestamps": False},
            daemon=True,
        ).start()
    run_watch(app_ctx, session, watched, json_out=False)


def _build(app_ctx: AppContext, session: Session, names: list[str]) -> None:
    if not names:
        app_ctx.err.print("No services to build")
        return
    _prepare_all(app_ctx, session, names, "Built", "build", False)


def _prepare_all(
    app_ctx: AppContext,
    session: Session,
    names: list[str],
    verb: str,
    policy: str,
    ignore_failures: bool,
) -> None:
    from compound.cli.render import LiveProgress
    from compound.reconcile.prepare import prepare_services

    with LiveProgress(app_ctx.err, verb, app_ctx.opts.progress) as progress:
        failures = prepare_services(
            session.project,
            names,
            session.decide(names),
            session.drivers,
            policy=policy,
            verb=verb,
            progress=progress,
        )
    if failures and not ignore_failures:
        first = next(iter(failures.values()))
        raise CompoundError(f"{len(failures)} of {len(names)} failed; first: {first}")


def _instances(session: Session, services: list[str] | None) -> list[Instance]:
    names = session.check_services(services or [])
    return session.instances(names)


def _start(session: Session, inst: Instance) -> None:
    """Start as Compose does: the service's post_start hooks after."""
    from compound.reconcile import hooks

    session.driver_for(inst).start(inst)
    svc = session.project.services.get(inst.service)
    if svc is not None:
        hooks.run_hooks(session.driver_for(inst), inst, svc, "post_start")


def _stop(session: Session, inst: Instance, timeout: float | None) -> None:
    """Stop as Compose does: the service's pre_stop hooks first."""
    from compound.reconcile import hooks

    grace = timeout if timeout is not None else _grace(session, inst)
    hooks.stop(session.driver_for(inst), inst, session.project.services.get(inst.service), grace)


def _grace(session: Session, inst: Instance) -> float | None:
    svc = session.project.services.get(inst.service)
    return svc.stop_grace_period if svc else None


def _act(
    app_ctx: AppContext,
    session: Session,
    services: list[str] | None,
    verb: str,
    action: Callable[[Session, Instance], None],
    *,
    only: Callable[[Instance], bool] = lambda i: True,
    reverse: bool = False,
) -> None:
    from compound.cli.render import LiveProgress

    targets = [i for i in _instances(session, services) if only(i)]
    if reverse:
        targets.reverse()
    errors: list[str] = []
    hints: list[str] = []
    with LiveProgress(app_ctx.err, verb, app_ctx.opts.progress) as progress:

        def one(inst: Instance) -> None:
            progress.update(inst.name, "Working")
            try:
                action(session, inst)
                progress.update(inst.name, verb, done=True)
            except CompoundError as exc:
                progress.fail(inst.name, exc.message)
                errors.append(f"{inst.name}: {exc.message}")
                if exc.hint:
                    hints.append(exc.hint)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, targets))
    if errors:
        raise CompoundError("; ".join(errors), hint=hints[0] if hints else None)
