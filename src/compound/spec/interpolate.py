"""Variable interpolation, as in Compose: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?err}``, ``${VAR?err}``, ``${VAR:+alt}``,
``${VAR+alt}``, nesting inside the word, and ``$$`` for a literal ``$``.

Only values are interpolated, never keys, and ``x-*`` extensions too (Compose
does). A ``$`` not followed by a name or ``{`` is kept as it is. After
substitution, strings at the paths where Compose expects a number or a
boolean are converted, so ``replicas: ${N}`` becomes an integer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from compound.errors import SpecError

from .nodes import Node, Path, location_of

Lookup = Callable[[str], str | None]
Warn = Callable[[str], None]

_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
MAX_NESTING = 50  # ${A:-${B:-...}} levels; real files use two or three


class TemplateError(Exception):
    """A template that cannot be substituted; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Interpolator:
    """Substitutes variables from ``lookup``; warns once per unset variable."""

    def __init__(self, lookup: Lookup, warn: Warn) -> None:
        self._lookup = lookup
        self._warn = warn
        self._warned: set[str] = set()
        self._depth = 0
        self.used: dict[str, str] = {}  # variables that were read and are set

    def get(self, name: str) -> str | None:
        value = self._lookup(name)
        if value is not None:
            self.used[name] = value
        return value

    def substitute(self, text: str) -> str:
        if "$" not in text:
            return text
        if self._depth >= MAX_NESTING:
            raise TemplateError(f"variables nested more than {MAX_NESTING} levels deep")
        self._depth += 1
        try:
            return self._substitute(text)
        finally:
            self._depth -= 1

    def _substitute(self, text: str) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            dollar = text.find("$", i)
            if dollar < 0:
                out.append(text[i:])
                break
            out.append(text[i:dollar])
            nxt = text[dollar + 1] if dollar + 1 < n else ""
            if nxt == "$":
                out.append("$")
                i = dollar + 2
            elif nxt == "{":
                value, i = self._braced(text, dollar)
                out.append(value)
            else:
                m = _NAME.match(text, dollar + 1)
                if m is None:
                    out.append("$")  # not a variable: kept literally, like Compose
                    i = dollar + 1
                else:
                    out.append(self._plain(m.group()))
                    i = m.end()
        return "".join(out)

    def _plain(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            if name not in self._warned:
                self._warned.add(name)
                self._warn(f"the {name} variable is not set. Defaulting to a blank string.")
            return ""
        return value

    def _braced(self, text: str, dollar: int) -> tuple[str, int]:
        """Evaluate ``${...}`` starting at ``dollar``; returns the value and the end index."""
        start = dollar + 2
        m = _NAME.match(text, start)
        if m is None:
            raise _invalid(text)
        name, pos = m.group(), m.end()
        if pos < len(text) and text[pos] == "}":
            return self._plain(name), pos + 1
        op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
        if op is None:
            raise _invalid(text)
        word_start = pos + len(op)
        word_end = _closing_brace(text, word_start)
        if word_end < 0:
            raise _invalid(text)
        word = text[word_start:word_end]
        return self._apply(name, op, word), word_end + 1

    def _apply(self, name: str, op: str, word: str) -> str:
        value = self.get(name)
        empty_counts = op.startswith(":")
        missing = value is None or (empty_counts and value == "")
        kind = op[-1]
        if kind == "-":
            return self.substitute(word) if missing else (value or "")
        if kind == "+":
            return "" if missing else self.substitute(word)
        # "?": required
        if missing:
            reason = self.substitute(word)
            message = f"required variable {name} is missing a value"
            if reason:
                message += f": {reason}"
            raise TemplateError(message, hint=f"set {name} in the environment or in .env")
        return value or ""


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing a ``${`` whose word starts at ``start``; -1 if none."""
    depth = 1
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n and text[i + 1] in "${":
            if text[i + 1] == "{":
                depth += 1
            i += 2
            continue
        if c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _invalid(text: str) -> TemplateError:
    return TemplateError(
        f"invalid interpolation format in {text!r}",
        hint="write a literal $ as $$; a variable as $NAME or ${NAME}",
    )


# --- typed values --------------------------------------------------------

Cast = Callable[[str], object]


def _to_int(text: str) -> object:
    return int(text.strip())


def _to_float(text: str) -> object:
    return float(text.strip())


_TRUE = {"true": True, "false": False}
_YAML11 = {"y": True, "yes": True, "on": True, "n": False, "no": False, "off": False}


def _to_bool_with(warn: Warn) -> Cast:
    def cast(text: str) -> object:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return _TRUE[lowered]
        if lowered in _YAML11:
            value = _YAML11[lowered]
            word = "true" if value else "false"
            warn(f"{text!r} for boolean is not supported by YAML 1.2, please use `{word}`")
            return value
        raise ValueError(text)

    return cast


# "*" matches any mapping key, "[]" any list index (from compose-go's list of typed paths)
_SERVICE_CASTS: dict[tuple[str, ...], str] = {
    ("cpu_count",): "int",
    ("cpu_percent",): "float",
    ("cpu_period",): "int",
    ("cpu_quota",): "int",
    ("cpu_rt_period",): "int",
    ("cpu_rt_runtime",): "int",
    ("cpus",): "float",
    ("cpu_shares",): "int",
    ("init",): "bool",
    ("depends_on", "*", "required"): "bool",
    ("depends_on", "*", "restart"): "bool",
    ("deploy", "replicas"): "int",
    ("deploy", "update_config", "parallelism"): "int",
    ("deploy", "update_config", "max_failure_ratio"): "float",
    ("deploy", "rollback_config", "parallelism"): "int",
    ("deploy", "rollback_config", "max_failure_ratio"): "float",
    ("deploy", "restart_policy", "max_attempts"): "int",
    ("deploy", "placement", "max_replicas_per_node"): "int",
    ("deploy", "resources", "limits", "pids"): "int",
    ("healthcheck", "retries"): "int",
    ("healthcheck", "disable"): "bool",
    ("mem_swappiness",): "int",
    ("oom_kill_disable",): "bool",
    ("oom_score_adj",): "int",
    ("pids_limit",): "int",
    ("ports", "[]", "target"): "int",
    ("privileged",): "bool",
    ("read_only",): "bool",
    ("scale",): "int",
    ("stdin_open",): "bool",
    ("tty",): "bool",
    ("attach",): "bool",
    ("ulimits", "*"): "int",
    ("ulimits", "*", "hard"): "int",
    ("ulimits", "*", "soft"): "int",
    ("volumes", "[]", "read_only"): "bool",
    ("volumes", "[]", "volume", "nocopy"): "bool",
    ("volumes", "[]", "bind", "create_host_path"): "bool",
    ("env_file", "[]", "required"): "bool",
    ("build", "no_cache"): "bool",
    ("build", "pull"): "bool",
    ("build", "privileged"): "bool",
    ("x-compound", "vm", "vcpus"): "int",
}
_TOP_CASTS: dict[tuple[str, ...], str] = {
    ("networks", "*", "external"): "bool",
    ("networks", "*", "internal"): "bool",
    ("networks", "*", "attachable"): "bool",
    ("networks", "*", "enable_ipv4"): "bool",
    ("networks", "*", "enable_ipv6"): "bool",
    ("volumes", "*", "external"): "bool",
    ("secrets", "*", "external"): "bool",
    ("configs", "*", "external"): "bool",
}
CAST_PATTERNS: dict[tuple[str, ...], str] = {
    **{("services", "*", *k): v for k, v in _SERVICE_CASTS.items()},
    **_TOP_CASTS,
}


def _matches(pattern: tuple[str, ...], path: Path) -> bool:
    if len(pattern) != len(path):
        return False
    for want, got in zip(pattern, path, strict=True):
        if want == "[]":
            if not isinstance(got, int):
                return False
        elif want == "*":
            if not isinstance(got, str):
                return False
        elif want != got:
            return False
    return True


def cast_for(path: Path) -> str | None:
    for pattern, kind in CAST_PATTERNS.items():
        if _matches(pattern, path):
            return kind
    return None


def interpolate_tree(
    node: Node, interp: Interpolator, warn: Warn, errors: list[SpecError], path: Path = ()
) -> Node:
    """A new tree with every string value substituted and typed paths converted.

    Errors are appended to ``errors`` (each at its value's position) so one
    pass reports every bad template.
    """
    value = node.value
    if isinstance(value, dict):
        return node.with_value(
            {k: interpolate_tree(v, interp, warn, errors, (*path, k)) for k, v in value.items()}
        )
    if isinstance(value, list):
        return node.with_value(
            [interpolate_tree(v, interp, warn, errors, (*path, i)) for i, v in enumerate(value)]
        )
    if not isinstance(value, str):
        return node
    try:
        text = interp.substitute(value)
    except TemplateError as exc:
        errors.append(
            SpecError(exc.message, location=location_of(node.entry_mark(), path), hint=exc.hint)
        )
        return node
    kind = cast_for(path)
    if kind is None:
        return node.with_value(text)
    caster: Cast = {"int": _to_int, "float": _to_float, "bool": _to_bool_with(warn)}[kind]
    try:
        return node.with_value(caster(text))
    except ValueError:
        return node.with_value(text)  # left as a string: the schema says what was expected
