"""The `compound` command: global options, command registration, error policy.

Exit codes: 0 ok, 1 a CompoundError (bad file, engine refused, service
failed), 2 a usage error, 130 interrupted; commands like `exec` and
`run` exit with the code of what they ran. No traceback reaches a user
for anything they can cause.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from compound.cli.context import AppContext, GlobalOptions
from compound.errors import CompoundError

if TYPE_CHECKING:
    # typer vendors click; its group methods are typed with these
    from typer._click.core import Command, Context


def _command_modules() -> tuple[str, ...]:
    # Every command module (compound/cli/<module>.py with register(app)), one a line,
    # in the order `--help` lists their commands. A module is imported only when one
    # of its commands runs (or `--help` lists them all), so its imports cost no other
    # command. "<module>: <commands>" names what it delivers, so a command is found
    # without importing the others; a bare name is found by its `<command>_cmd` name
    # or, failing that, by importing modules in order until one delivers it.
    return (
        "lifecycle: up down rollback start stop restart kill rm pull build",
        "oneoff: exec run",
        "inspect_cmds: ps logs top images events config history version",
        "advise_cmd",
        "doctor_cmd",
        "diff_cmd",
        "volume_cmd",
        "serve_cmd: serve",
        "bench_cmd: bench",
        "host_cmd: host",
        "swarm_cmd: swarm",
        "legacy_cmd: lift export",
        "watch_cmd: watch",
    )


def _parse_registry() -> list[tuple[str, frozenset[str]]]:
    entries = []
    for entry in _command_modules():
        module, _, commands = entry.partition(":")
        entries.append((module.strip(), frozenset(commands.split())))
    return entries


class _LazyGroup(TyperGroup):
    """The top-level group: each command module imported on first use."""

    _pending: list[tuple[str, frozenset[str]]] | None = None

    def _pending_modules(self) -> list[tuple[str, frozenset[str]]]:
        if self._pending is None:
            self._pending = _parse_registry()
        return self._pending

    def _load(self, entry: tuple[str, frozenset[str]]) -> None:
        self._pending_modules().remove(entry)
        module_name = entry[0]
        try:
            module = importlib.import_module(f"compound.cli.{module_name}")
        except ImportError as exc:
            if exc.name != f"compound.cli.{module_name}":
                raise  # the module exists but is broken: say so, never hide its commands
            return  # absent ones are simply not offered
        holder = _typer_app()
        module.register(holder)
        group = typer.main.get_group(holder)
        for name, command in group.commands.items():
            self.add_command(command, name)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        found = super().get_command(ctx, cmd_name)

        def likelihood(entry: tuple[str, frozenset[str]]) -> int:
            module, commands = entry
            if cmd_name in commands:
                return 0
            if not commands:  # a bare name: `<command>_cmd` first, the rest in order
                return 1 if module == f"{cmd_name}_cmd" else 2
            return 3  # it said what it delivers, and this is not among it

        for entry in sorted(self._pending_modules(), key=likelihood):
            if found is not None or likelihood(entry) == 3:
                break
            self._load(entry)
            found = super().get_command(ctx, cmd_name)
        return found

    def list_commands(self, ctx: Context) -> list[str]:
        for entry in list(self._pending_modules()):
            self._load(entry)
        order = {module: i for i, (module, _) in enumerate(_parse_registry())}
        names = super().list_commands(ctx)
        owner = {name: order.get(self._module_of(name), len(order)) for name in names}
        return sorted(names, key=lambda n: owner[n])  # stable: a module's own order kept

    def _module_of(self, name: str) -> str:
        command = self.commands[name]
        callback = getattr(command, "callback", None)
        module = getattr(callback, "__module__", "") or ""
        return module.rpartition(".")[2]


def _typer_app(**kwargs: object) -> typer.Typer:
    # plain help text (rich's renderer costs ~100 ms), no completion, no pretty tracebacks
    return typer.Typer(
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
        **kwargs,  # type: ignore[arg-type]
    )


app = _typer_app(
    cls=_LazyGroup,
    name="compound",
    help="Run Compose applications whose services are containers and virtual machines.",
    no_args_is_help=True,
)


def _print_version(value: bool) -> None:
    # eager: answers before click insists on a subcommand
    if value:
        print(version_string())
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    file: Annotated[
        list[str] | None,
        typer.Option("--file", "-f", help="Compose file (repeatable, merged in order)."),
    ] = None,
    project_name: Annotated[
        str | None, typer.Option("--project-name", "-p", help="Project name.")
    ] = None,
    project_directory: Annotated[
        str | None, typer.Option("--project-directory", help="Base directory for relative paths.")
    ] = None,
    env_file: Annotated[
        list[str] | None, typer.Option("--env-file", help="Environment file (replaces .env).")
    ] = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="Activate a profile (repeatable).")
    ] = None,
    progress: Annotated[
        str, typer.Option("--progress", help="Progress output: auto, tty, plain or quiet.")
    ] = "auto",
    no_lock_wait: Annotated[
        bool,
        typer.Option(
            "--no-lock-wait",
            help="Fail at once when another compound is changing the project, instead of waiting.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    if progress not in ("auto", "tty", "plain", "quiet"):
        raise typer.BadParameter("must be one of auto, tty, plain, quiet", param_hint="--progress")
    ctx.obj = AppContext(
        GlobalOptions(
            files=list(file or []),
            project_name=project_name,
            project_directory=project_directory,
            env_files=list(env_file or []),
            profiles=list(profile or []),
            progress=progress,
            lock_wait=not no_lock_wait,
        )
    )
    ctx.call_on_close(ctx.obj.close)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this directly).

    Click's standalone mode turns usage errors into exit 2 and typer.Exit into
    its code; everything compound raises on purpose is rendered here.
    """
    ctx = AppContext(GlobalOptions())
    try:
        app(args=list(argv) if argv is not None else None, prog_name="compound")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if exc.code == 130:  # typer's answer to a Ctrl-C it caught: say so, once
            ctx.err.print("interrupted")
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        ctx.err.print("interrupted")
        return 130
    except CompoundError as exc:
        ctx.err.print(f"[bold red]error:[/] {_escape(exc.render())}")
        return exc.exit_code
    return 0


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def run() -> None:
    from compound.cli.entry import run as entry_run

    entry_run()


def version_string() -> str:
    from compound.cli.entry import version_string as text

    return text()


if __name__ == "__main__":
    run()
