"""What every command needs: global options, the loaded project, the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import docker
import typer
from rich.console import Console

from compound.advisor.hints import project_hints
from compound.advisor.source import project_locator
from compound.engine import connect
from compound.reconcile.session import Session
from compound.spec import LoadOptions, LoadResult, load_project
from compound.state.store import Store


@dataclass
class GlobalOptions:
    files: list[str] = field(default_factory=list)
    project_name: str | None = None
    project_directory: str | None = None
    env_files: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    progress: str = "auto"  # auto | tty | plain | quiet


class AppContext:
    """Created once per invocation; loads lazily so `version` needs no file."""

    def __init__(self, opts: GlobalOptions) -> None:
        self.opts = opts
        self.out = Console(highlight=False, soft_wrap=True, emoji=False)
        if not self.out.is_terminal:
            # pipes and CI logs: never squeeze tables into 80 columns
            self.out = Console(highlight=False, soft_wrap=True, width=240, emoji=False)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
        self._loaded: dict[tuple[str, ...], LoadResult] = {}

    def load(self, target_services: Sequence[str] = (), *, quiet: bool = False) -> LoadResult:
        key = tuple(target_services)
        if key not in self._loaded:
            result = load_project(
                LoadOptions(
                    files=tuple(self.opts.files),
                    project_name=self.opts.project_name,
                    project_directory=self.opts.project_directory,
                    env_files=tuple(self.opts.env_files),
                    profiles=tuple(self.opts.profiles),
                    target_services=key,
                )
            )
            # hints are part of the file: bad ones fail every command, not just advise
            project_hints(result.project, project_locator(result.project))
            if not quiet:
                for warning in result.warnings:
                    self.err.print(f"[yellow]WARN[/] {warning}", markup=True)
            self._loaded[key] = result
        return self._loaded[key]

    @cached_property
    def client(self) -> docker.DockerClient:
        return connect()

    @cached_property
    def store(self) -> Store:
        return Store(warn=lambda m: self.err.print(f"WARN {m}", markup=False))

    def session(self, target_services: Sequence[str] = (), *, quiet: bool = False) -> Session:
        project = self.load(target_services, quiet=quiet).project
        return Session(project, self.client, self.store)


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the global-options callback stored on the click context."""
    obj = ctx.obj
    assert isinstance(obj, AppContext)
    return obj
