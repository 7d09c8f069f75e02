"""``load_project``: Compose files → validated, normalised ``Project``.

The steps, in Compose's order:

1. environment: the process environment, plus ``.env`` from the project
   directory (or ``--env-file``); the process environment wins;
2. files: ``-f``, else ``COMPOSE_FILE``, else discovery (with the override);
3. each file parsed with positions, interpolated, its ``extends`` resolved,
   then merged onto the previous ones;
4. the merged document validated against the (modernised) Compose schema
   plus the ``x-compound`` schema, all errors at once;
5. profiles applied, services normalised into the model, cross-references
   and dependency cycles checked, again all errors at once.

Only ``CompoundError`` subclasses leave this module: SpecError for a
problem that stops loading early (YAML syntax, unreadable file, extends),
SpecErrors for the validation passes, UsageError for command-line problems.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from compound.errors import Location, SpecError, SpecErrors, UsageError

from . import resources
from .checks import ProjectChecks
from .context import Context
from .discovery import STDIN, absolute, discover, files_from_env
from .dotenv import read_dotenv
from .extends import ExtendsResolver
from .files import is_file
from .include import Includes
from .interpolate import Interpolator, TemplateError, interpolate_tree
from .merge import merge_documents
from .model import Project, Service
from .naming import INVALID_NAME_HINT, is_valid_project_name, normalize_project_name
from .nodes import Locator, Mark, Node, Problems, location_of, marks_of, to_plain
from .normalize import normalize_service
from .options import LoadOptions, LoadResult
from .profiles import active_profiles, select_services
from .validate import validate_document
from .yamlload import parse_yaml, read_yaml_file

_RESOURCE_KEYS = ("services", "networks", "volumes", "secrets", "configs")
_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


@dataclass
class _Warnings:
    items: list[str] = field(default_factory=list)

    def __call__(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)


def load_project(opts: LoadOptions) -> LoadResult:
    try:
        return _Load(opts).run()
    except RecursionError:  # a safety net: every known deep structure has its own limit
        raise SpecError("the Compose project is nested too deeply to load") from None


class _Load:
    def __init__(self, opts: LoadOptions) -> None:
        self.opts = opts
        self.warn = _Warnings()
        try:
            self.cwd = os.path.abspath(opts.cwd or os.getcwd())
        except OSError as exc:
            raise UsageError(f"cannot determine the current directory: {exc.strerror}") from None
        self.environ = dict(os.environ if opts.environ is None else opts.environ)
        self.env = dict(self.environ)
        self.display: dict[str, str] = {}  # absolute file → name shown in messages
        self.interp = Interpolator(self.env.get, self.warn)

    # --- environment and files ---------------------------------------------------

    def run(self) -> LoadResult:
        opts = self.opts
        project_dir = absolute(opts.project_directory, self.cwd) if opts.project_directory else None
        cli_files = [f if f == STDIN else absolute(f, self.cwd) for f in opts.files]
        env_files = [absolute(f, self.cwd) for f in opts.env_files]
        first_dir = project_dir or (
            os.path.dirname(cli_files[0]) if cli_files and cli_files[0] != STDIN else self.cwd
        )
        self.load_dotenv(env_files, first_dir)
        files = (
            cli_files
            or files_from_env(self.env, self.cwd)
            or discover(project_dir or self.cwd, self.warn)
        )
        for f in files:
            if f != STDIN and not is_file(f):
                raise UsageError(f"compose file not found: {f}", hint="check the -f argument")
        working_dir = project_dir or (os.path.dirname(files[0]) if files[0] != STDIN else self.cwd)
        if working_dir != first_dir and not env_files:
            self.load_dotenv([], working_dir)
        return self.load(files, working_dir)

    def load_dotenv(self, env_files: list[str], directory: str) -> None:
        if env_files:
            paths = env_files
            for p in paths:
                if not is_file(p):
                    raise UsageError(
                        f"env file not found: {p}", hint="check the --env-file argument"
                    )
        else:
            disabled = self.env.get("COMPOSE_DISABLE_ENV_FILE", "").lower() in ("1", "true")
            default = os.path.join(directory, ".env")
            paths = [] if disabled or not is_file(default) else [default]
        for p in paths:
            for key, value in read_dotenv(p, self.environ.get, warn=self.warn).items():
                self.env.setdefault(key, value)  # the process environment wins

    def shown(self, path: str) -> str:
        if path == STDIN:
            return "<stdin>"
        rel = os.path.relpath(path, self.cwd)
        return path if rel.startswith("..") else rel

    def parse(self, path: str) -> list[Node]:
        if path == STDIN:
            docs = parse_yaml(sys.stdin.read(), "<stdin>")
        else:
            docs = read_yaml_file(path, self.shown(path))
        for doc in docs:
            if not isinstance(doc.value, dict):
                kind = _KINDS.get(type(doc.value), "a single value")
                raise SpecError(
                    f"the top level of a Compose file must be a mapping, not {kind}",
                    location=location_of(doc.mark, ()),
                    hint="start with `services:`",
                )
        return docs

    # --- documents ------------------------------------------------------------------

    def load(self, files: list[str], working_dir: str) -> LoadResult:
        parsed = [(f, self.parse(f)) for f in files]
        name = self.project_name(parsed, working_dir)
        self.env["COMPOSE_PROJECT_NAME"] = name  # usable in the files, as in Compose
        errors: list[SpecError] = []
        interpolated = [
            (f, [interpolate_tree(d, self.interp, self.warn, errors) for d in docs])
            for f, docs in parsed
        ]
        if errors:
            raise SpecErrors(errors)
        resolver = ExtendsResolver(self.load_extended)
        includes = Includes(self.parse, resolver.apply, self.shown, self.environ, self.warn)
        merged: Node | None = None
        for f, docs in interpolated:
            key = os.path.join(self.cwd, "-") if f == STDIN else f
            for doc in docs:
                if "version" in doc.value:
                    self.warn(
                        f"{self.shown(f)}: the attribute `version` is obsolete, it will be "
                        "ignored, please remove it to avoid potential confusion"
                    )
                doc = includes.expand(doc, key)
                doc = resolver.apply(doc, key)
                merged = doc if merged is None else merge_documents(merged, doc)
        shown_first = self.shown(files[0])
        if merged is None or not any(k != "version" for k in merged.value):
            raise SpecError(
                "the Compose file is empty",
                location=Location(shown_first, 1, 1),
                hint="define at least one service under `services:`",
            )
        return self.build(merged, name, files, working_dir, shown_first)

    def load_extended(self, path: str) -> Node:
        """Another file named by ``extends.file``: parsed and interpolated."""
        docs = self.parse(path)
        errors: list[SpecError] = []
        merged: Node | None = None
        for doc in docs:
            doc = interpolate_tree(doc, self.interp, self.warn, errors)
            merged = doc if merged is None else merge_documents(merged, doc)
        if errors:
            raise SpecErrors(errors)
        return merged if merged is not None else Node({}, Mark(self.shown(path), None, None))

    def project_name(self, parsed: list[tuple[str, list[Node]]], working_dir: str) -> str:
        opts = self.opts
        if opts.project_name is not None:
            return _checked_name(opts.project_name, "-p")
        from_env = self.env.get("COMPOSE_PROJECT_NAME")
        if from_env:
            return _checked_name(from_env, "COMPOSE_PROJECT_NAME")
        node: Node | None = None
        for _f, docs in parsed:
            for doc in docs:
                found = doc.get("name")
                if found is not None and isinstance(found.value, str):
                    node = found
        if node is not None:
            try:
                text = self.interp.substitute(node.value)
            except TemplateError as exc:
                raise SpecError(
                    exc.message, location=location_of(node.entry_mark(), ("name",)), hint=exc.hint
                ) from None
            name = normalize_project_name(text)
            if not name:
                raise SpecError(
                    f"invalid project name {text!r}",
                    location=location_of(node.entry_mark(), ("name",)),
                    hint=INVALID_NAME_HINT,
                )
            if name != text:
                self.warn(f"project name {text!r} normalised to {name!r}")
            return name
        name = normalize_project_name(os.path.basename(working_dir))
        if not name:
            raise UsageError(
                f"cannot make a project name from the directory {working_dir}",
                hint="give one with -p NAME or `name:` in the Compose file",
            )
        return name

    # --- validation and model ----------------------------------------------------------

    def build(
        self, merged: Node, name: str, files: list[str], working_dir: str, shown_first: str
    ) -> LoadResult:
        top = dict(merged.value)
        top.pop("version", None)
        if "models" in top:
            raise SpecError(
                "top-level 'models' (AI models pulled and served by Docker Model Runner, "
                "their endpoints injected into services) is not supported by compound",
                location=location_of(top["models"].entry_mark(), ("models",)),
                hint="serve the model yourself (e.g. as a service with an image) and pass its "
                "URL in environment:, or run this project with docker compose",
            )
        for key in _RESOURCE_KEYS:
            if key in top and top[key].value is None:
                del top[key]  # `volumes:` with nothing under it means none
        merged = merged.with_value(top)
        plain: dict[str, Any] = to_plain(merged)
        locate = Locator(marks_of(merged), default_file=shown_first)
        order = [self.shown(f) for f in files]
        schema_errors = validate_document(plain, locate)
        if schema_errors:
            raise SpecErrors(_sorted(schema_errors, order))

        raw_services: dict[str, dict[str, Any]] = plain.get("services") or {}
        active = active_profiles(self.opts.profiles, self.env)
        enabled, disabled = select_services(raw_services, active, self.opts.target_services)
        ctx = Context(
            project=name,
            working_dir=working_dir,
            env=self.env,
            locate=locate,
            problems=Problems(locate),
            warn_text=self.warn,
        )
        services: dict[str, Service] = {}
        for svc_name, raw in raw_services.items():
            service = normalize_service(svc_name, raw, ctx, enabled=svc_name in enabled)
            if svc_name in enabled:
                services[svc_name] = service
        needs_default = any("default" in s.networks for s in services.values())
        used_secrets = {r.source for s in services.values() for r in s.secrets}
        used_configs = {r.source for s in services.values() for r in s.configs}
        project = Project(
            name=name,
            working_dir=working_dir,
            files=tuple(os.path.join(self.cwd, "-") if f == STDIN else f for f in files),
            services=services,
            networks=resources.networks(plain.get("networks") or {}, ctx, needs_default),
            volumes=resources.volumes(plain.get("volumes") or {}, ctx),
            secrets=resources.file_objects(
                plain.get("secrets") or {}, ctx, "secrets", used_secrets
            ),
            configs=resources.file_objects(
                plain.get("configs") or {}, ctx, "configs", used_configs
            ),
            extensions={k: v for k, v in plain.items() if k.startswith("x-")},
            disabled_services=tuple(disabled),
        )
        profiles_of = {
            n: tuple(p for p in (raw.get("profiles") or []) if isinstance(p, str))
            for n, raw in raw_services.items()
        }
        declared = {
            k: set(plain.get(k) or {}) for k in ("networks", "volumes", "secrets", "configs")
        }
        checked = ProjectChecks(ctx, raw_services, disabled, profiles_of, declared).run(project)
        if ctx.problems:
            raise SpecErrors(_sorted(list(ctx.problems), order))
        environment = {**self.interp.used, **ctx.used_env}
        environment.pop("COMPOSE_PROJECT_NAME", None)
        project = project.model_copy(update={"services": checked, "environment": environment})
        return LoadResult(project=project, warnings=tuple(self.warn.items))


def _checked_name(name: str, source: str) -> str:
    if is_valid_project_name(name):
        return name
    fixed = normalize_project_name(name)
    raise UsageError(
        f"invalid project name {name!r} (from {source}): {INVALID_NAME_HINT}",
        hint=f"try {fixed!r}" if fixed else None,
    )


def _sorted(errors: list[SpecError], order: list[str]) -> list[SpecError]:
    def key(e: SpecError) -> tuple[int, int, int, str]:
        loc = e.location
        rank = order.index(loc.file) if loc.file in order else len(order)
        return (rank, loc.line or 0, loc.column or 0, loc.path)

    return sorted(errors, key=key)
