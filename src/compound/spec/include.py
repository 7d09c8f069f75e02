"""Top-level ``include``: other Compose applications imported into this one.

Compose's rules, followed here:

- an entry is a path (short form) or ``{path, project_directory, env_file}``
  (long form); ``path`` may be a list of files, merged like ``-f`` files;
  relative paths are relative to the including file's directory;
- an included file is interpolated with its own environment: the process
  environment, then its ``env_file`` (default: ``.env`` in its project
  directory); its relative paths are relative to its project directory
  (default: the directory of its first file);
- includes nest; a file that includes itself, directly or not, is refused
  naming the chain;
- the imported resources (services, networks, volumes, secrets, configs)
  join the including file's; one defined twice (by two includes, or by an
  include and the including file) is refused naming both places: an
  imported resource is not overridden (use ``-f`` files or ``extends`` for
  that).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from compound.errors import SpecError, SpecErrors

from .dotenv import read_dotenv
from .extends import absolute_path, rebase_paths
from .files import is_file
from .interpolate import Interpolator, interpolate_tree
from .merge import merge_documents
from .nodes import Mark, Node, location_of

RESOURCES = ("services", "networks", "volumes", "secrets", "configs")

ParseFile = Callable[[str], list[Node]]
ApplyExtends = Callable[[Node, str], Node]
Shown = Callable[[str], str]


class Includes:
    def __init__(
        self,
        parse: ParseFile,
        apply_extends: ApplyExtends,
        shown: Shown,
        environ: Mapping[str, str],
        warn: Callable[[str], None],
    ) -> None:
        self.parse = parse
        self.apply_extends = apply_extends
        self.shown = shown
        self.environ = environ
        self.warn = warn

    def expand(self, doc: Node, file: str, chain: tuple[str, ...] = ()) -> Node:
        """``doc`` (of ``file``) with its ``include`` entries imported."""
        include = doc.get("include")
        if include is None:
            return doc
        chain = chain or (file,)
        own = {k: v for k, v in doc.value.items() if k != "include"}
        if not isinstance(include.value, list):
            raise SpecError(
                "include must be a list of files or {path, project_directory, env_file}",
                location=location_of(include.entry_mark(), ("include",)),
            )
        imported: dict[str, dict[str, Node]] = {kind: {} for kind in RESOURCES}
        base_dir = os.path.dirname(file)
        for i, entry in enumerate(include.value):
            paths, project_dir, env_files = _entry(entry, i, base_dir)
            for path in paths:
                if path in chain:
                    steps = " → ".join(self.shown(p) for p in (*chain, path))
                    raise SpecError(
                        f"include cycle: {steps}",
                        location=location_of(entry.mark, ("include", i)),
                        hint="remove one of the includes",
                    )
                if not is_file(path):
                    raise SpecError(
                        f"included file not found: {path}",
                        location=location_of(entry.mark, ("include", i)),
                    )
            app = self._load(paths, project_dir, env_files, chain)
            for kind in RESOURCES:
                section = app.get(kind)
                for name, node in (section.value if section and section.is_map else {}).items():
                    if name in imported[kind]:
                        raise _conflict(kind, name, imported[kind][name], node)
                    imported[kind][name] = node
        for kind in RESOURCES:
            section = own.get(kind)
            for name, node in (section.value if section and section.is_map else {}).items():
                if name in imported[kind]:
                    raise _conflict(kind, name, imported[kind][name], node)
            if imported[kind]:
                items = {**imported[kind], **(section.value if section and section.is_map else {})}
                own[kind] = (
                    section.with_value(items)
                    if section is not None
                    else Node(items, include.mark, include.key_mark)
                )
        return doc.with_value(own)

    def _load(
        self, paths: list[str], project_dir: str, env_files: list[str], chain: tuple[str, ...]
    ) -> Node:
        env = dict(self.environ)
        for env_file in env_files or [os.path.join(project_dir, ".env")]:
            if is_file(env_file):
                for key, value in read_dotenv(env_file, self.environ.get, warn=self.warn).items():
                    env.setdefault(key, value)  # the process environment wins
            elif env_files:
                raise SpecError(f"env file of an include not found: {env_file}")
        interp = Interpolator(env.get, self.warn)
        merged: Node | None = None
        for path in paths:
            errors: list[SpecError] = []
            for doc in self.parse(path):
                doc = interpolate_tree(doc, interp, self.warn, errors)
                if errors:
                    raise SpecErrors(errors)
                doc = self.expand(doc, path, (*chain, path))
                doc = self.apply_extends(doc, path)
                merged = doc if merged is None else merge_documents(merged, doc)
        if merged is None:
            return Node({}, Mark(self.shown(paths[0]), None, None))
        return _rebased(merged, project_dir)


def _entry(entry: Node, i: int, base_dir: str) -> tuple[list[str], str, list[str]]:
    """The files, project directory and env files of include entry ``i``."""

    def files(node: Node, what: str) -> list[str]:
        values = node.value if isinstance(node.value, list) else [node]
        out = []
        for item in values:
            if not isinstance(item.value, str) or not item.value:
                raise SpecError(
                    f"include {what} must be a path or a list of paths",
                    location=location_of(item.entry_mark(), ("include", i)),
                )
            out.append(os.path.normpath(os.path.join(base_dir, os.path.expanduser(item.value))))
        return out

    if isinstance(entry.value, str):
        paths = files(entry, "entry")
        return paths, os.path.dirname(paths[0]), []
    if not isinstance(entry.value, dict) or entry.get("path") is None:
        raise SpecError(
            "an include entry is a path, or a mapping with `path` "
            "(and optionally project_directory, env_file)",
            location=location_of(entry.mark, ("include", i)),
        )
    path_node = entry.get("path")
    assert path_node is not None
    paths = files(path_node, "path")
    directory = entry.get("project_directory")
    project_dir = (
        files(directory, "project_directory")[0] if directory else os.path.dirname(paths[0])
    )
    env_node = entry.get("env_file")
    return paths, project_dir, files(env_node, "env_file") if env_node else []


def _rebased(app: Node, project_dir: str) -> Node:
    """Relative host paths of an included application made absolute against its directory."""
    out: dict[str, Any] = dict(app.value)
    services = app.get("services")
    if services is not None and services.is_map:
        out["services"] = services.with_value(
            {k: rebase_paths(v, project_dir) for k, v in services.value.items()}
        )
    for kind in ("secrets", "configs"):
        section = app.get(kind)
        if section is None or not section.is_map:
            continue
        items = {}
        for name, node in section.value.items():
            source = node.get("file")
            if source is not None:
                node = node.with_value({**node.value, "file": absolute_path(source, project_dir)})
            items[name] = node
        out[kind] = section.with_value(items)
    return app.with_value({k: v for k, v in out.items() if k in RESOURCES})


def _conflict(kind: str, name: str, first: Node, second: Node) -> SpecError:
    where = location_of(first.entry_mark(), (kind, name))
    return SpecError(
        f"{kind[:-1]} {name!r} is defined twice: here and at {where.render()} "
        "(an imported resource cannot be overridden)",
        location=location_of(second.entry_mark(), (kind, name)),
        hint="rename one of them, or use -f files or extends to override",
    )
