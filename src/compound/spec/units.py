"""Durations and byte sizes, parsed and printed the way Compose does.

Durations follow Go's ``time.ParseDuration`` plus ``d`` and ``w`` (Compose
uses str2duration): ``1m30s``, ``500ms``, ``1.5h``, ``2d``. A bare number is
not a duration, except ``0``. They are kept as float seconds computed from
whole nanoseconds, so printing and parsing again gives the same float.

Sizes follow docker/go-units ``RAMInBytes``: an integer number of bytes, or
a number with an optional binary unit ``k m g t p`` (case-insensitive, ``b``
and ``i`` optional): ``512m``, ``1.5GB``, ``100 KiB``.
"""

from __future__ import annotations

import re

_DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h|d|w)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class UnitError(ValueError):
    pass


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go-style duration string; raises UnitError."""
    s = text.strip()
    if not s:
        raise UnitError("empty duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            raise UnitError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * round(total)


def parse_duration(value: object) -> float:
    """Seconds in a duration given as a string (or 0); raises UnitError."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UnitError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise UnitError(f"invalid duration {value!r}: a unit is required, e.g. '{value}s'")
    return parse_duration_ns(value) / 1e9


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``1m30s``, ``500ms``, ``1h0m0s``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size or unit == "ns":
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600 * 1_000_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000_000)
    text = _fraction(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def parse_size(value: object) -> int:
    """Bytes in a size given as an int or a string like ``512m``; raises UnitError."""
    if isinstance(value, bool):
        raise UnitError(f"invalid size {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise UnitError(f"invalid size {value!r}: bytes must be a whole number")
    if not isinstance(value, str):
        raise UnitError(f"invalid size {value!r}")
    text = value.strip()
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    m = _SIZE.match(text)
    if m is None:
        raise UnitError(f"invalid size {value!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])
