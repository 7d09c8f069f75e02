"""Positioned YAML values: the tree every stage before validation works on.

A ``Node`` is one value from a Compose file together with where it was
written. Mappings hold ``dict[str, Node]``, sequences ``list[Node]``,
scalars a plain Python value. Interpolation, merging and ``extends`` build
new trees out of existing nodes, so the value that wins a merge keeps the
position of the file it came from. Once the tree is final it is split into
plain data (for the schema and the normaliser) and a map from key path to
position (for error messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from compound.errors import Location, SpecError

PathItem = str | int
Path = tuple[PathItem, ...]

RESET = "reset"  # YAML tag !reset: remove the value inherited from earlier files
OVERRIDE = "override"  # YAML tag !override: replace instead of merging


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in a file: 1-based line and column."""

    file: str | None
    line: int | None
    column: int | None


NOWHERE = Mark(None, None, None)


class Node:
    """One value and its position; ``key_mark`` is where its mapping key was written."""

    __slots__ = ("key_mark", "mark", "tag", "value")

    def __init__(
        self, value: Any, mark: Mark, key_mark: Mark | None = None, tag: str | None = None
    ) -> None:
        self.value = value
        self.mark = mark
        self.key_mark = key_mark
        self.tag = tag

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Node({self.value!r} @ {self.mark.line}:{self.mark.column})"

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def get(self, key: str) -> Node | None:
        if isinstance(self.value, dict):
            found: Node | None = self.value.get(key)
            return found
        return None

    def with_value(self, value: Any) -> Node:
        """The same position holding another value."""
        return Node(value, self.mark, self.key_mark, self.tag)

    def entry_mark(self) -> Mark:
        """Where to point at this value: its key if it has one."""
        return self.key_mark or self.mark


def mapping(items: dict[str, Node], mark: Mark = NOWHERE, key_mark: Mark | None = None) -> Node:
    return Node(items, mark, key_mark)


def from_plain(value: Any, mark: Mark) -> Node:
    """A synthetic node tree for ``value``, every part placed at ``mark``."""
    if isinstance(value, dict):
        return Node({str(k): from_plain(v, mark) for k, v in value.items()}, mark, mark)
    if isinstance(value, list | tuple):
        return Node([from_plain(v, mark) for v in value], mark, mark)
    return Node(value, mark, mark)


def to_plain(node: Node) -> Any:
    """The plain value of a tree; entries tagged ``!reset`` are left out."""
    value = node.value
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items() if v.tag != RESET}
    if isinstance(value, list):
        return [to_plain(v) for v in value if v.tag != RESET]
    return value


def marks_of(node: Node, path: Path = ()) -> dict[Path, Mark]:
    """Key path → position for every value in the tree (keys point at the key)."""
    out: dict[Path, Mark] = {}
    _collect_marks(node, path, out, is_root=True)
    return out


def _collect_marks(node: Node, path: Path, out: dict[Path, Mark], *, is_root: bool) -> None:
    out[path] = node.entry_mark() if not is_root else node.mark
    value = node.value
    if isinstance(value, dict):
        for k, v in value.items():
            if v.tag != RESET:
                _collect_marks(v, (*path, k), out, is_root=False)
    elif isinstance(value, list):
        index = 0
        for v in value:
            if v.tag != RESET:
                out_path = (*path, index)
                _collect_marks(v, out_path, out, is_root=False)
                out[out_path] = v.mark  # list items point at the item itself
                index += 1


def render_path(path: Iterable[PathItem]) -> str:
    """``("services", "web", "ports", 1)`` → ``services.web.ports[1]``."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        elif text:
            text += f".{item}"
        else:
            text = item
    return text


class Locator:
    """Finds the position of a key path, falling back to its nearest ancestor."""

    def __init__(self, marks: dict[Path, Mark], default_file: str | None = None) -> None:
        self._marks = marks
        self._default_file = default_file

    def mark(self, path: Path) -> Mark:
        probe = path
        while True:
            found = self._marks.get(probe)
            if found is not None and found.file is not None:
                return found
            if not probe:
                return Mark(self._default_file, None, None)
            probe = probe[:-1]

    def __call__(self, path: Path) -> Location:
        m = self.mark(path)
        return Location(file=m.file, line=m.line, column=m.column, path=render_path(path))


class Problems:
    """Collects located errors so one run reports all of them."""

    def __init__(self, locate: Locator) -> None:
        self.locate = locate
        self.errors: list[SpecError] = []

    def add(self, path: Path, message: str, hint: str | None = None) -> None:
        self.errors.append(SpecError(message, location=self.locate(path), hint=hint))

    def extend(self, errors: Iterable[SpecError]) -> None:
        self.errors.extend(errors)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __iter__(self) -> Iterator[SpecError]:
        return iter(self.errors)


def location_of(mark: Mark, path: Path) -> Location:
    return Location(file=mark.file, line=mark.line, column=mark.column, path=render_path(path))
