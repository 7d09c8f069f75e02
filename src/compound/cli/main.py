"""The `compound` command: global options, command registration, error policy.

Exit codes: 0 ok, 1 a CompoundError (bad file, engine refused, service
failed), 2 a usage error, 130 interrupted; commands like `exec` and
`run` exit with the code of what they ran. No traceback reaches a user
for anything they can cause.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from compound import __version__
from compound.cli import inspect_cmds, lifecycle, oneoff
from compound.cli.context import AppContext, GlobalOptions
from compound.errors import CompoundError

app = typer.Typer(
    name="compound",
    help="Run Compose applications whose services are containers and virtual machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
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


lifecycle.register(app)
oneoff.register(app)
inspect_cmds.register(app)


def _register_optional() -> None:
    # command groups delivered by their own modules; absent ones are simply not offered
    import importlib

    for name in ("advise_cmd", "doctor_cmd", "diff_cmd", "volume_cmd", "legacy_cmd"):
        try:
            module = importlib.import_module(f"compound.cli.{name}")
        except ImportError:
            continue
        module.register(app)


_register_optional()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (tests call this directly).

    Click's standalone mode turns usage errors into exit 2 and typer.Exit into
    its code; everything compound raises on purpose is rendered here.
    """
    err = AppContext(GlobalOptions()).err
    try:
        app(args=list(argv) if argv is not None else None, prog_name="compound")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except CompoundError as exc:
        err.print(f"[bold red]error:[/] {_escape(exc.render())}")
        return exc.exit_code
    return 0


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def run() -> None:
    sys.exit(main())


def version_string() -> str:
    return f"compound version {__version__}"
