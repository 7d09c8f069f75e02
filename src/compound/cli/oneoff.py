"""exec and run: commands inside a service's instances."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from compound.cli.context import app_context
from compound.errors import UsageError

if TYPE_CHECKING:
    pass

ARGS = {"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}


def parse_env(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, val = v.partition("=")
        if not key:
            raise UsageError(f"-e {v!r}: expected KEY=VALUE")
        out[key] = val if sep else ""
    return out


def register(app: typer.Typer) -> None:
    @app.command(context_settings=ARGS)
    def exec(
        ctx: typer.Context,
        service: Annotated[str, typer.Argument(help="Service.")],
        command: Annotated[list[str], typer.Argument(help="Command and its arguments.")],
        index: Annotated[int, typer.Option("--index", help="Which replica (1-based).")] = 1,
        user: Annotated[str | None, typer.Option("--user", "-u")] = None,
        workdir: Annotated[str | None, typer.Option("--workdir", "-w")] = None,
        env: Annotated[list[str] | None, typer.Option("--env", "-e")] = None,
        no_tty: Annotated[bool, typer.Option("--no-TTY", "-T", help="Disable TTY.")] = False,
    ) -> None:
        """Run a command in a running instance; exits with the command's code."""
        app_ctx = app_context(ctx)
        if app_ctx.on_swarm([service]):
            from compound.cli import swarm_cmd

            terminal = not no_tty and sys.stdin.isatty() and sys.stdout.isatty()
            return swarm_cmd.exec_in_task(
                app_ctx,
                service,
                command,
                index,
                user=user,
                workdir=workdir,
                variables=parse_env(env),
                interactive=terminal,
                tty=terminal,
                terminal_if_any=True,
            )
        session = app_ctx.session([service])
        session.check_services([service])
        running = [i for i in session.instances([service]) if i.running]
        if not running:
            raise UsageError(f"service {service!r} is not running", hint="start it: compound up -d")
        match = [i for i in running if i.number == index]
        if not match:
            raise UsageError(f"service {service!r} has no running instance #{index}")
        inst = match[0]
        driver = session.driver_for(inst)
        # a runtime without terminals (a VM's guest agent) runs commands without one
        tty = (
            not no_tty
            and driver.capabilities.terminal
            and sys.stdin.isatty()
            and sys.stdout.isatty()
        )
        code = driver.exec(
            inst, command, user=user, workdir=workdir, env=parse_env(env), tty=tty, interactive=tty
        )
        raise typer.Exit(code)

    @app.command(context_settings=ARGS)
    def run(
        ctx: typer.Context,
        service: Annotated[str, typer.Argument(help="Service.")],
        command: Annotated[list[str] | None, typer.Argument(help="Command override.")] = None,
        rm: Annotated[bool, typer.Option("--rm", help="Remove the container afterwards.")] = False,
        detach: Annotated[bool, typer.Option("--detach", "-d")] = False,
        no_deps: Annotated[bool, typer.Option("--no-deps")] = False,
        user: Annotated[str | None, typer.Option("--user", "-u")] = None,
        workdir: Annotated[str | None, typer.Option("--workdir", "-w")] = None,
        env: Annotated[list[str] | None, typer.Option("--env", "-e")] = None,
        entrypoint: Annotated[str | None, typer.Option("--entrypoint")] = None,
        name: Annotated[str | None, typer.Option("--name")] = None,
        no_tty: Annotated[bool, typer.Option("--no-TTY", "-T")] = False,
        service_ports: Annotated[bool, typer.Option("--service-ports")] = False,
    ) -> None:
        """Run a one-off command in a new instance of a service."""
        from compound.cli.render import LiveProgress
        from compound.planner.diff import UpOptions

        app_ctx = app_context(ctx)
        session = app_ctx.session([service])
        session.check_services([service])
        svc = session.project.services[service]
        deps = sorted(svc.depends_on)
        if deps and not no_deps:
            with LiveProgress(app_ctx.err, "Running", app_ctx.opts.progress) as progress:
                session.up(UpOptions(services=tuple(deps)), progress=progress, command="run")
        driver = session.drivers[session.decide([service])[service].runtime]
        tty = (
            not no_tty
            and not detach
            and driver.capabilities.terminal  # a VM's guest agent has no terminal to give
            and sys.stdin.isatty()
            and sys.stdout.isatty()
        )
        env_over = {**svc.environment, **parse_env(env)}
        update: dict[str, object] = {
            "environment": env_over,
            "container_name": name,
            "tty": tty,
            "stdin_open": tty,
            "restart": "no",
            "deploy": svc.deploy.model_copy(update={"restart_policy": None}),
        }
        if command:
            update["command"] = tuple(command)
        if entrypoint is not None:
            update["entrypoint"] = tuple(entrypoint.split()) if entrypoint else ()
        if user:
            update["user"] = user
        if workdir:
            update["working_dir"] = workdir
        if not service_ports:
            update["ports"] = ()
        one = svc.model_copy(update=update)
        session.ensure_resources_for([service])
        driver.prepare(session.project, one)
        inst = driver.create(session.project, one, 1, "oneoff", oneoff=True)
        if tty:
            # at a prompt: the user's terminal is the container's (`run --rm app sh`)
            try:
                code = driver.start_attached(inst, tty=True)
            finally:
                if rm:
                    driver.remove(driver.inspect(inst.id), volumes=True)
            raise typer.Exit(code)
        driver.start(inst)
        if detach:
            app_ctx.out.print(inst.name, markup=False)
            return
        try:
            for line in driver.logs(inst, follow=True):
                sys.stdout.write(line.text if line.text.endswith("\n") else line.text + "\n")
                sys.stdout.flush()
            code = driver.wait(inst)
        finally:
            if rm:
                driver.remove(driver.inspect(inst.id), volumes=True)
        raise typer.Exit(code)
