"""compound swarm init | join | leave | ls | ps | logs | history | rollback | down,
and ``compound up --swarm`` (:func:`swarm_up`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from compound.cli.context import AppContext, app_context
from compound.errors import UsageError

if TYPE_CHECKING:
    from compound.hosts import deploy

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

swarm_app = typer.Typer(
    name="swarm",
    help="One application across many hosts, on Docker Swarm mode.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(swarm_app, name="swarm")


def _say(app_ctx: AppContext) -> deploy.Progress:
    def say(msg: str) -> None:
        if msg.startswith("WARN "):
            app_ctx.err.print(f"[yellow]WARN[/] {msg[5:]}", markup=True)
        else:
            app_ctx.err.print(msg, markup=False)

    return say


@swarm_app.command("init")
def init(
    ctx: typer.Context,
    hosts: Annotated[
        str, typer.Option("--hosts", help="Comma-separated hosts; the first is the manager.")
    ],
) -> None:
    """Form a Swarm from recorded hosts and label each node with its facts."""
    from compound.hosts import swarm

    app_ctx = app_context(ctx)
    names = [h.strip() for h in hosts.split(",") if h.strip()]
    if not names:
        raise UsageError("--hosts: name at least one host")
    rec = swarm.init(names, progress=_say(app_ctx))
    app_ctx.out.print(
        f"Swarm formed: manager {rec.manager}, {len(rec.nodes)} node(s)", markup=False
    )


@swarm_app.command("join")
def join(
    ctx: typer.Context,
    host: str,
    manager: Annotated[bool, typer.Option("--manager", help="Join as a manager.")] = False,
) -> None:
    """Add a recorded host to the Swarm."""
    from compound.hosts import swarm

    app_ctx = app_context(ctx)
    node = swarm.join(host, manager_role=manager, progress=_say(app_ctx))
    app_ctx.out.print(f"{host}: joined as node {node[:12]}", markup=False)


@swarm_app.command("leave")
def leave(
    ctx: typer.Context,
    host: str,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Leave even if local volumes pin services there, or the host is gone; "
            "for the manager: dissolve the Swarm.",
        ),
    ] = False,
) -> None:
    """Take a host out of the Swarm: drain it, then it leaves (the manager last)."""
    from compound.hosts import swarm

    app_ctx = app_context(ctx)
    swarm.leave(host, force=force, progress=_say(app_ctx))
    app_ctx.out.print(f"{host}: left the Swarm", markup=False)


@swarm_app.command("ls")
def ls(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """The Swarm's nodes as its manager sees them now, with their fact labels."""
    from rich.table import Table

    from compound.cli.render import print_json
    from compound.hosts import swarm

    app_ctx = app_context(ctx)
    rows = swarm.nodes()
    if json_out:
        print_json(rows)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("HOST", "ROLE", "STATE", "AVAILABILITY", "ADDRESS", "ENGINE", "LABELS"):
        table.add_column(col)
    for r in rows:
        labels = ",".join(
            f"{k.removeprefix(swarm.LABEL_PREFIX)}={v}" for k, v in sorted(r["labels"].items())
        )
        table.add_row(
            r["host"], r["role"], r["state"], r["availability"], r["address"], r["engine"], labels
        )
    app_ctx.out.print(table)


def _project(app_ctx: AppContext) -> str:
    return app_ctx.load(quiet=True).project.name


@swarm_app.command("ps")
def ps(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """The project's tasks on every node."""
    from rich.table import Table

    from compound.cli.render import print_json
    from compound.hosts import deploy

    app_ctx = app_context(ctx)
    rows = deploy.ps(_project(app_ctx))
    if json_out:
        print_json(rows)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("TASK", "HOST", "STATE", "IMAGE", "NOTE"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["task"], r["host"], r["state"], r["image"], r["note"] or "")
    app_ctx.out.print(table)


@swarm_app.command("logs")
def logs(
    ctx: typer.Context,
    service: str,
    tail: Annotated[int, typer.Option("--tail", help="Lines per task.")] = 100,
) -> None:
    """A service's output from every node it runs on."""
    from compound.hosts import deploy

    app_ctx = app_context(ctx)
    app_ctx.out.print(deploy.logs(_project(app_ctx), service, tail=tail), markup=False, end="")


@swarm_app.command(
    "exec", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True}
)
def exec_(
    ctx: typer.Context,
    service: str,
    command: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
    index: Annotated[
        int | None, typer.Option("--index", help="Task slot (default: the first).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    workdir: Annotated[str | None, typer.Option("--workdir", "-w")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="Keep stdin open (containers only).")
    ] = False,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="A terminal (containers only).")] = False,
) -> None:
    """Run a command in a running task of a service, on whichever node it is;
    in a VM service, in its guest. Exits with the command's code."""
    from compound.cli.oneoff import parse_env

    exec_in_task(
        app_context(ctx),
        service,
        command,
        index,
        user=user,
        workdir=workdir,
        variables=parse_env(env),
        interactive=interactive,
        tty=tty,
    )


def exec_in_task(
    app_ctx: AppContext,
    service: str,
    command: list[str],
    index: int | None,
    *,
    user: str | None,
    workdir: str | None,
    variables: dict[str, str],
    interactive: bool,
    tty: bool,
    terminal_if_any: bool = False,
) -> None:
    """``swarm exec``, and ``compound exec`` of a project on the Swarm, which
    (``terminal_if_any``) gives a container a terminal when it has one and a
    VM none, as on one host."""
    import subprocess

    from compound.hosts import deploy

    target = deploy.exec_target(_project(app_ctx), service, index)
    if target.vm:
        from compound.hosts import vm_exec
        from compound.runtimes.vm.guestexec import no_terminal, run_in_guest

        if terminal_if_any:
            interactive = tty = False
        if interactive or tty:
            raise no_terminal(service)
        code, out, err = run_in_guest(
            vm_exec.guest_agent(target),
            target.labels,
            service,
            command,
            user=user,
            workdir=workdir,
            env=variables,
        )
        _write_apart(out, err)
        raise typer.Exit(code)
    from compound.hosts.engine import cli_host

    argv = ["docker", "--host", cli_host(target.host), "exec"]
    argv += ["-i"] * interactive + ["-t"] * tty
    if user:
        argv += ["-u", user]
    if workdir:
        argv += ["-w", workdir]
    for k, v in variables.items():
        argv += ["-e", f"{k}={v}"]
    argv += [target.container, *command]
    if tty or interactive:
        # the user's terminal and stdin are the command's
        raise typer.Exit(subprocess.run(argv, check=False).returncode)
    # through our own streams (a pipe, a test): stdout and stderr apart, bytes as they are
    proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    _write_apart(proc.stdout, proc.stderr)
    raise typer.Exit(proc.returncode)


def _write_apart(out: bytes, err: bytes) -> None:
    """A command's output on our stdout and stderr, bytes as they came."""
    for stream, data in ((sys.stdout, out), (sys.stderr, err)):
        stream.flush()
        stream.buffer.write(data)
        stream.buffer.flush()


@swarm_app.command("history")
def history(ctx: typer.Context) -> None:
    """Deploys and rollbacks, and each service's current and previous image (JSON)."""
    from compound.cli.render import print_json
    from compound.hosts import deploy

    app_ctx = app_context(ctx)
    print_json(deploy.history(_project(app_ctx))[0])


@swarm_app.command("rollback")
def rollback(
    ctx: typer.Context,
    services: Annotated[list[str] | None, typer.Argument(help="Default: every service.")] = None,
) -> None:
    """Return services to their previous version (Swarm's rollback_config applies)."""
    from compound.hosts import deploy

    app_ctx = app_context(ctx)
    done = deploy.rollback(_project(app_ctx), services or [], progress=_say(app_ctx))
    app_ctx.out.print(f"rolled back: {', '.join(done) or 'nothing'}", markup=False)


@swarm_app.command("down")
def down(ctx: typer.Context) -> None:
    """Remove the project's stack from the Swarm (volumes stay)."""
    from compound.hosts import deploy

    app_ctx = app_context(ctx)
    name = _project(app_ctx)
    deploy.down(name)
    app_ctx.out.print(f"{name}: removed from the Swarm", markup=False)


def swarm_up(app_ctx: AppContext, services: list[str], *, json_out: bool, timeout: float) -> None:
    """``compound up --swarm``: the project as Swarm services."""
    from compound.cli.render import print_json
    from compound.hosts import deploy

    if services:
        raise UsageError("up --swarm deploys the whole project; drop the service names")
    project = app_ctx.load().project
    result = deploy.deploy(project, progress=_say(app_ctx), timeout=timeout)
    if json_out:
        print_json(result.to_json())
        return
    app_ctx.out.print(
        f"{project.name}: {len(result.services)} service(s) running on the Swarm "
        f"({result.seconds:.1f}s); stack file {result.stack_file}",
        markup=False,
    )


def logs_of(app_ctx: AppContext, services: list[str], *, tail: str) -> None:
    """``compound logs`` of a project on the Swarm: each service's output
    from every node, prefixed with its name as on one host."""
    from compound.hosts import deploy

    project = app_ctx.load(quiet=True).project
    unknown = [s for s in services if s not in project.services]
    if unknown:
        raise UsageError(f"no such service: {', '.join(unknown)}")
    for name in services or sorted(project.services):
        for line in deploy.logs(project.name, name, tail=tail).splitlines():
            app_ctx.out.print(f"{name} | {line}", markup=False)
