"""Small converters from validated plain values to model field values.

Each takes the value and its key path and raises ``Invalid`` with a message
for the user when the value cannot be converted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .context import invalid
from .nodes import Path
from .shortsyntax import split_key_value
from .units import UnitError, parse_duration, parse_size

DURATION_HINT = "use a number with a unit, e.g. 10s, 1m30s, 500ms"
SIZE_HINT = "use bytes or a number with a unit, e.g. 512m, 1.5g, 100k"


def scalar_text(value: Any) -> str:
    """A YAML scalar as Compose writes it into a string (Go's %v)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def duration(value: Any, path: Path) -> float:
    try:
        return parse_duration(value)
    except UnitError as exc:
        invalid(path, str(exc), DURATION_HINT)


# What the engine takes for a size (an int64 of bytes); beyond it a file
# would pass `config` and fail only at `up`.
MAX_SIZE = 2**63 - 1


def size(value: Any, path: Path, *, maximum: int = MAX_SIZE) -> int:
    try:
        result = parse_size(value)
    except UnitError as exc:
        invalid(path, str(exc), SIZE_HINT)
    if result > maximum:
        invalid(path, f"{value!r} is larger than {_bytes(maximum)}", SIZE_HINT)
    return result


def _bytes(n: int) -> str:
    for unit, shift in (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


def integer(
    value: Any, path: Path, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, bool):
        invalid(path, f"must be an integer, not {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            invalid(path, f"must be an integer, not {value!r}")
    if not isinstance(value, int):
        invalid(path, f"must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        invalid(path, f"must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        invalid(path, f"must be at most {maximum}, not {value}")
    return value


def number(value: Any, path: Path) -> float:
    if isinstance(value, bool):
        invalid(path, f"must be a number, not {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        invalid(path, f"must be a number, not {value!r}")
    if math.isnan(result) or math.isinf(result):
        invalid(path, f"must be a finite number, not {value!r}")
    return result


def file_mode(value: Any, path: Path) -> int:
    """A permission mode: a number (YAML ``0440`` is already octal) or an octal string."""
    if isinstance(value, str):
        try:
            return int(value.strip(), 8)
        except ValueError:
            invalid(path, f"{value!r} is not an octal file mode", "write it like 0440")
    return integer(value, path, minimum=0)


def string_list(value: Any) -> tuple[str, ...]:
    """A string or a list of scalars as a tuple of strings."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(scalar_text(v) for v in value)
    return (scalar_text(value),)


def key_values(
    value: Any,
    path: Path,
    *,
    missing: Callable[[str], str | None],
) -> dict[str, str | None]:
    """A ``list_or_dict`` as a map; ``missing(key)`` fills entries given without a value."""
    out: dict[str, str | None] = {}
    if isinstance(value, dict):
        for key, v in value.items():
            out[key] = missing(key) if v is None else scalar_text(v)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                invalid((*path, i), f"must be a string 'KEY=VALUE', not {item!r}")
            key, v = split_key_value(item)
            if not key:
                invalid((*path, i), f"{item!r} has no key", "write KEY=VALUE")
            out[key] = missing(key) if v is None else v
    return out


def strict_map(value: Any, path: Path) -> dict[str, str]:
    """A ``list_or_dict`` where entries without a value become empty strings."""
    result = key_values(value, path, missing=lambda _k: "")
    return {k: v or "" for k, v in result.items()}


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0", "")


def boolean(value: Any, path: Path) -> bool:
    """A boolean the schema also allows as a string ("true", after interpolation)."""
    if isinstance(value, bool):
        return value
    text = scalar_text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    invalid(path, f"{value!r} is not a boolean", "write true or false")
