"""What a load is asked (``LoadOptions``) and what it answers (``LoadResult``).

Apart from the loader so that a project kept by a cache (cli/project_cache.py)
is handed back without importing the loader, YAML and the schema checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Project


@dataclass(frozen=True)
class LoadOptions:
    files: Sequence[str] = ()  # -f, in merge order; empty → discover
    project_name: str | None = None  # -p
    project_directory: str | None = None  # --project-directory; default: dir of first file
    env_files: Sequence[str] = ()  # --env-file (replaces .env), repeatable
    profiles: Sequence[str] = ()  # --profile; else COMPOSE_PROFILES
    target_services: Sequence[str] = ()  # services named on the command line
    environ: Mapping[str, str] | None = None  # default os.environ
    cwd: str | None = None  # default os.getcwd()


@dataclass(frozen=True)
class LoadResult:
    project: Project
    warnings: tuple[str, ...]
