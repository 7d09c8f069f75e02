"""Which changed host file a ``develop.watch`` rule claims, and where it goes.

Compose's path rules: ``path`` is a file or a directory (watched
recursively); ``ignore`` and ``include`` are gitignore-style patterns
relative to ``path``; the ``.dockerignore`` of the service's build context
applies too (relative to the context); ``.git`` directories and the
temporary files of common editors never count. A service's rules are tried
in file order and the first that claims a file acts on it, so a narrower
rule written first wins over a broader one.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from compound.spec.model import Service, WatchRule

# what editors and VCS write beside the files (Vim, Emacs, JetBrains, macOS)
DEFAULT_IGNORE = (
    ".git/",
    "*~",
    "*.swp",
    "*.swx",
    "*.swo",
    ".#*",
    "#*#",
    "4913",
    "*___jb_tmp___",
    "*___jb_old___",
    ".DS_Store",
)


def _spec(lines: Iterable[str]) -> pathspec.GitIgnoreSpec | None:
    lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def dockerignore(context: str | None) -> pathspec.GitIgnoreSpec | None:
    if not context:
        return None
    try:
        text = (Path(context) / ".dockerignore").read_text()
    except OSError:
        return None
    # .dockerignore patterns are anchored at the context ("/x" and "x" alike)
    return _spec(line.strip().lstrip("/") for line in text.splitlines())


@dataclass(frozen=True)
class Claim:
    rule: WatchRule
    index: int  # the rule's position in develop.watch
    target: str | None  # the path in the instance (sync actions)


class ServiceRules:
    """A service's watch rules, ready to claim changed paths."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.rules: tuple[WatchRule, ...] = service.develop.watch if service.develop else ()
        self._default = _spec(DEFAULT_IGNORE)
        self._ignore = [_spec(r.ignore) for r in self.rules]
        self._include = [_spec(r.include) for r in self.rules]
        self._context = service.build.context if service.build else None
        self._dockerignore = dockerignore(self._context)

    def claim(self, host_path: str) -> Claim | None:
        for i, rule in enumerate(self.rules):
            rel = _relative(host_path, rule.path)
            if rel is None or not self._counts(i, rel, host_path):
                continue
            target = None
            if rule.target:
                target = rule.target if rel == "." else posixpath.join(rule.target, rel)
            return Claim(rule, i, target)
        return None

    def _counts(self, i: int, rel: str, host_path: str) -> bool:
        name = rel if rel != "." else os.path.basename(host_path)
        if self._default and self._default.match_file(name):
            return False
        ignore = self._ignore[i]
        if ignore and ignore.match_file(name):
            return False
        include = self._include[i]
        if include and not include.match_file(name):
            return False
        if self._dockerignore and self._context:
            in_context = _relative(host_path, self._context)
            if in_context not in (None, ".") and self._dockerignore.match_file(in_context):
                return False
        return True


def _relative(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` in POSIX form ("." for root itself), or
    None when it is outside."""
    if path == root:
        return "."
    prefix = root.rstrip(os.sep) + os.sep
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].replace(os.sep, "/")


def files_under(root: str, rules: ServiceRules) -> list[str]:
    """Every file under ``root`` (or ``root`` itself) a rule claims: an initial sync."""
    if os.path.isfile(root):
        return [root] if rules.claim(root) else []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            full = os.path.join(dirpath, name)
            if rules.claim(full):
                found.append(full)
    return sorted(found)


def watched_roots(rules: Sequence[WatchRule]) -> list[str]:
    return sorted({r.path for r in rules})
