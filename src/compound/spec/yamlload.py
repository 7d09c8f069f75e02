"""Compose YAML text → positioned ``Node`` trees.

PyYAML's ``compose()`` gives a node graph with positions; we build our own
tree from it so that:

* scalars are typed like Docker Compose (go-yaml v3) types them, which is
  YAML 1.2-ish, not PyYAML's YAML 1.1: ``yes``/``on`` and ``22:22`` stay
  strings, ``0755`` is octal, timestamps stay strings;
* duplicate keys are an error (PyYAML silently keeps the last one);
* ``<<`` merge keys and aliases are expanded, with a bound on expansion so a
  "billion laughs" document fails cleanly;
* the ``!reset`` and ``!override`` tags of the Compose merge rules are kept.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
import yaml.reader
from yaml.composer import Composer
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from compound.errors import Location, SpecError

from .files import read_bounded
from .nodes import OVERRIDE, RESET, Mark, Node, Path, render_path

MAX_NODES = 1_000_000  # after alias expansion
# Scalar text after alias expansion: a big anchor aliased many times is small
# on disk but costs its expanded size in every later step (a 1 MB anchor
# aliased 200 times kept `config` busy for minutes).
MAX_EXPANDED_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 100  # nesting; far beyond any real Compose file

_PLAIN = "tag:compound:plain"  # every untagged plain scalar; typed by _plain_value
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_COMPOSE_TAGS = {"!reset": RESET, "!override": OVERRIDE}

_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INT_RE = re.compile(
    r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$",
)


class _Resolver(BaseResolver):
    """Tags every plain scalar as ``_PLAIN``; we type them ourselves."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {
        None: [(_PLAIN, re.compile(r"(?s).*"))],
        "": [(_PLAIN, re.compile(r"^$"))],
    }


class _Loader(Reader, Scanner, Parser, Composer, _Resolver):
    def __init__(self, stream: str | bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Resolver.__init__(self)


def _plain_value(text: str) -> Any:
    """Type an untagged plain scalar the way go-yaml v3 does for ``interface{}``."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in (".nan", ".NaN", ".NAN"):
        return math.nan
    if text.lstrip("+-") in (".inf", ".Inf", ".INF"):
        return -math.inf if text.startswith("-") else math.inf
    compact = text.replace("_", "")
    if _INT_RE.match(compact):
        return _parse_int(compact)
    if _FLOAT_RE.match(compact):
        return float(compact)
    return text


def _parse_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    lower = digits.lower()
    if lower.startswith("0x"):
        return sign * int(digits[2:], 16)
    if lower.startswith("0o"):
        return sign * int(digits[2:], 8)
    if lower.startswith("0b"):
        return sign * int(digits[2:], 2)
    if len(digits) > 1 and digits.startswith("0"):
        return sign * int(digits[1:], 8)  # Go's base-0 parsing: 0755 is octal
    return sign * int(digits)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.bytes = 0
        self.active: set[int] = set()

    def mark(self, ynode: yaml.Node) -> Mark:
        m = ynode.start_mark
        return Mark(self.file, m.line + 1, m.column + 1)

    def error(
        self, ynode: yaml.Node, path: Path, message: str, hint: str | None = None
    ) -> SpecError:
        m = self.mark(ynode)
        location = Location(self.file, m.line, m.column, render_path(path))
        return SpecError(message, location=location, hint=hint)

    def build(self, ynode: yaml.Node, path: Path = ()) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(ynode, path, "document too large after expanding YAML aliases")
        if len(path) > MAX_DEPTH:
            raise self.error(ynode, path, f"document nested more than {MAX_DEPTH} levels deep")
        if id(ynode) in self.active:
            raise self.error(ynode, path, "recursive YAML alias")
        tag = _COMPOSE_TAGS.get(ynode.tag)
        if isinstance(ynode, ScalarNode):
            self.bytes += len(ynode.value)
            if self.bytes > MAX_EXPANDED_BYTES:
                raise self.error(
                    ynode,
                    path,
                    f"document larger than {MAX_EXPANDED_BYTES >> 20} MiB after expanding"
                    " YAML aliases",
                    hint="an anchor aliased many times multiplies its size; use fewer aliases",
                )
            return Node(self.scalar(ynode, path), self.mark(ynode), tag=tag)
        self.active.add(id(ynode))
        try:
            if isinstance(ynode, SequenceNode):
                if tag is None and ynode.tag != _SEQ:
                    raise self.unknown_tag(ynode, path)
                items = [self.build(child, (*path, i)) for i, child in enumerate(ynode.value)]
                return Node(items, self.mark(ynode), tag=tag)
            if isinstance(ynode, MappingNode):
                if tag is None and ynode.tag != _MAP:
                    raise self.unknown_tag(ynode, path)
                return Node(self.mapping(ynode, path), self.mark(ynode), tag=tag)
        finally:
            self.active.discard(id(ynode))
        raise self.error(ynode, path, "unsupported YAML node")  # pragma: no cover

    def unknown_tag(self, ynode: yaml.Node, path: Path) -> SpecError:
        return self.error(
            ynode,
            path,
            f"unsupported YAML tag {ynode.tag}",
            hint="Compose files support only the !reset and !override tags",
        )

    def scalar(self, ynode: ScalarNode, path: Path) -> Any:
        text: str = ynode.value
        tag = ynode.tag
        if tag == _PLAIN or tag in _COMPOSE_TAGS or tag == "!":
            return _plain_value(text)
        if tag == _STR:
            return text
        try:
            if tag == _INT:
                return _parse_int(text.replace("_", ""))
            if tag == _FLOAT:
                return float(text.replace("_", ""))
        except ValueError:
            kind = tag.rsplit(":", 1)[-1]
            raise self.error(ynode, path, f"{text!r} is not a valid {kind}") from None
        if tag == _BOOL:
            value = _plain_value(text)
            if isinstance(value, bool):
                return value
            raise self.error(ynode, path, f"{text!r} is not a valid bool")
        if tag == _NULL:
            return None
        raise self.unknown_tag(ynode, path)

    def key(self, ynode: yaml.Node, path: Path) -> str:
        if not isinstance(ynode, ScalarNode):
            raise self.error(ynode, path, "mapping keys must be strings, not a list or mapping")
        return str(ynode.value)

    def mapping(self, ynode: MappingNode, path: Path) -> dict[str, Node]:
        own: dict[str, Node] = {}
        merged: dict[str, Node] = {}
        for key_node, value_node in ynode.value:
            if (
                isinstance(key_node, ScalarNode)
                and key_node.value == "<<"
                and key_node.tag in (_PLAIN, "tag:yaml.org,2002:merge")
            ):
                self.merge_into(merged, value_node, path)
                continue
            key = self.key(key_node, path)
            if key in own:
                first = own[key].key_mark
                where = f" (first defined at line {first.line})" if first else ""
                raise self.error(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r}{where}",
                    hint="remove or rename one of them",
                )
            child = self.build(value_node, (*path, key))
            child.key_mark = self.mark(key_node)
            own[key] = child
        # explicit keys win over merged ones, whatever their order
        return {**merged, **own} if merged else own

    def merge_into(self, merged: dict[str, Node], value_node: yaml.Node, path: Path) -> None:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.error(
                    source, path, "a '<<' merge key needs a mapping or a list of mappings"
                )
            if id(source) in self.active:
                raise self.error(source, path, "recursive YAML alias")
            self.active.add(id(source))
            try:
                for key, child in self.mapping(source, path).items():
                    merged.setdefault(key, child)  # earlier sources win
            finally:
                self.active.discard(id(source))


def parse_yaml(text: str | bytes, file: str) -> list[Node]:
    """All documents of a YAML stream; empty documents are left out."""
    builder = _Builder(file)
    docs: list[Node] = []
    try:
        loader = _Loader(text)
        try:
            while loader.check_node():
                ynode = loader.get_node()
                if ynode is None:
                    continue
                node = builder.build(ynode)
                if node.value is None and not node.is_map:
                    continue  # a document holding only comments or `~`
                docs.append(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, file) from None
    except yaml.reader.ReaderError as exc:
        # a character YAML does not allow: PyYAML gives its offset, the user wants a line
        raise _reader_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", location=Location(file)) from None
    except RecursionError:
        raise SpecError("document nested too deeply to parse", location=Location(file)) from None
    return docs


# PyYAML's wording → what the user most likely did
_PLAIN_PROBLEMS = (
    ("expected <block end>", "inconsistent indentation"),
    ("mapping values are not allowed here", "unexpected ':' (missing quotes or bad indentation?)"),
    ("found character '\\t'", "tab character: indent YAML with spaces"),
    ("could not find expected ':'", "expected 'key: value'"),
    ("found undefined alias", "unknown alias (no matching &anchor above)"),
    ("found unexpected end of stream", "the file ends inside a quoted or bracketed value"),
)


def _reader_error(exc: yaml.reader.ReaderError, text: str | bytes, file: str) -> SpecError:
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    before = decoded[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return SpecError(
        f"invalid YAML: character U+{code:04X} is not allowed in a YAML file",
        location=Location(file, line, column),
        hint="remove it, or quote binary data (base64)",
    )


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    column = mark.column + 1 if mark else None
    problem = exc.problem or "syntax error"
    for pattern, plain in _PLAIN_PROBLEMS:
        if pattern in problem:
            problem = f"{plain} ({problem})"
            break
    hint = None
    if exc.context:
        hint = exc.context
        if exc.context_mark and exc.context_mark is not mark:
            hint += f" started at line {exc.context_mark.line + 1}"
    return SpecError(f"invalid YAML: {problem}", location=Location(file, line, column), hint=hint)


def read_yaml_file(path: str, display: str | None = None) -> list[Node]:
    """Parse a file; ``display`` is the name used in positions (default: path)."""
    name = display or path
    return parse_yaml(read_bounded(path, "file", Location(name)), name)
