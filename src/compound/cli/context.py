"""What every command needs: global options, the loaded project, the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    # imported where used: `compound --version` and `--help` load none of these
    from rich.console import Console

    from compound.engine import Client
    from compound.reconcile.session import Session
    from compound.spec import LoadResult
    from compound.state.lock import ProjectLock
    from compound.state.store import Store


@dataclass
class GlobalOptions:
    files: list[str] = field(default_factory=list)
    project_name: str | None = None
    project_directory: str | None = None
    env_files: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    progress: str = "auto"  # auto | tty | plain | quiet
    lock_wait: bool = True  # a second writer of a project waits (False: fails at once)


class AppContext:
    """Created once per invocation; loads lazily so `version` needs no file."""

    def __init__(self, opts: GlobalOptions) -> None:
        self.opts = opts
        self._loaded: dict[tuple[str, ...], LoadResult] = {}
        self._locks: dict[str, ProjectLock] = {}
        self.command = ""  # the command being run (its name), for messages

    @cached_property
    def out(self) -> Console:
        from rich.console import Console  # rich costs ~50 ms: only commands that print pay

        out = Console(highlight=False, soft_wrap=True, emoji=False)
        if not out.is_terminal:
            # pipes and CI logs: never squeeze tables into 80 columns
            out = Console(highlight=False, soft_wrap=True, width=240, emoji=False)
        return out

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

    def load(self, target_services: Sequence[str] = (), *, quiet: bool = False) -> LoadResult:
        from compound.cli import project_cache
        from compound.spec import LoadOptions

        key = tuple(target_services)
        if key not in self._loaded:
            result = project_cache.load(
                LoadOptions(
                    files=tuple(self.opts.files),
                    project_name=self.opts.project_name,
                    project_directory=self.opts.project_directory,
                    env_files=tuple(self.opts.env_files),
                    profiles=tuple(self.opts.profiles),
                    target_services=key,
                )
            )
            if not quiet:
                for warning in result.warnings:
                    self.err.print(f"[yellow]WARN[/] {warning}", markup=True)
            self._loaded[key] = result
        return self._loaded[key]

    def on_swarm(self, target_services: Sequence[str] = (), *, quiet: bool = False) -> bool:
        """Whether the project's commands act on the Swarm: ``$COMPOUND_TARGET``
        (host | swarm) if set, else the file's top-level ``x-compound.target``."""
        import os

        from compound.errors import UsageError

        forced = os.environ.get("COMPOUND_TARGET", "")
        if forced:
            if forced not in ("host", "swarm"):
                raise UsageError(
                    f"COMPOUND_TARGET={forced!r}: expected host or swarm",
                    hint="unset it to use the file's x-compound.target",
                )
            return forced == "swarm"
        return self.load(target_services, quiet=quiet).project.target == "swarm"

    @cached_property
    def client(self) -> Client:
        from compound.engine import connect

        return connect()

    @cached_property
    def store(self) -> Store:
        from compound.state.store import Store

        return Store(warn=lambda m: self.err.print(f"WARN {m}", markup=False))

    def close(self) -> None:
        """The command ended: let the next writer of its projects in (tests
        and `compound serve` run many commands in one process)."""
        for lock in self._locks.values():
            lock.release()
        self._locks.clear()

    def session(
        self, target_services: Sequence[str] = (), *, quiet: bool = False, writer: bool = False
    ) -> Session:
        """The project's session; ``writer``: this command changes the project,
        so it first takes the project's lock (held until the command ends)."""
        from compound.reconcile.session import Session
        from compound.state.lock import ProjectLock, lock_path

        project = self.load(target_services, quiet=quiet).project
        if self.on_swarm(target_services):
            from compound.errors import UsageError

            raise UsageError(
                f"project {project.name} runs on the Swarm (x-compound.target: swarm): "
                f"`compound {self.command}` acts on this host's engine",
                hint="up, down, ps, logs, exec, history and rollback act on the Swarm; "
                "COMPOUND_TARGET=host runs the project on this host instead",
            )
        if writer and project.name not in self._locks:
            lock = ProjectLock(lock_path(self.store.path.parent, project.name), project.name)
            lock.acquire(
                wait=self.opts.lock_wait,
                on_wait=lambda m: self.err.print(f"{m}…", markup=False),
            )
            self._locks[project.name] = lock
        return Session(project, self.client, self.store)


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the global-options callback stored on the click context."""
    obj = ctx.obj
    assert isinstance(obj, AppContext)
    obj.command = ctx.info_name or obj.command
    return obj
