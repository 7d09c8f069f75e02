"""``.env`` files, parsed like Compose.

* ``KEY=VALUE`` or ``KEY: VALUE``, optionally prefixed by ``export``;
* a line ``KEY`` alone takes KEY from the lookup (the process environment),
  and is skipped when unset;
* unquoted values end at the line end or at `` #``; surrounding spaces go;
* ``'single'`` quotes are literal; ``"double"`` quotes understand ``\\n``,
  ``\\t``, ``\\"``, ``\\\\``, ``\\$`` and may span lines;
* unquoted and double-quoted values are interpolated, first from the lookup,
  then from variables defined earlier in the same file;
* keys starting with a digit are ignored; ``#`` starts a comment line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from compound.errors import Location, SpecError

from .files import read_text_bounded
from .interpolate import Interpolator, TemplateError

Lookup = Callable[[str], str | None]

_KEY_CHARS = re.compile(r"[\w.\-\[\]]+")
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    '"': '"',
    "\\": "\\",
    "$": "$$",  # stays a literal $ through interpolation
}


def parse_dotenv(
    text: str,
    lookup: Lookup,
    *,
    file: str | None = None,
    warn: Callable[[str], None] = lambda _msg: None,
) -> dict[str, str]:
    """Variables defined by ``text``; raises SpecError at the offending line."""
    return _Parser(text, lookup, file, warn).parse()


def read_dotenv(
    path: str, lookup: Lookup, *, warn: Callable[[str], None] = lambda _msg: None
) -> dict[str, str]:
    text = read_text_bounded(path, "env file")
    return parse_dotenv(text, lookup, file=path, warn=warn)


class _Parser:
    def __init__(self, text: str, lookup: Lookup, file: str | None, warn: Callable[[str], None]):
        self.text = text.replace("\r\n", "\n")
        self.pos = 0
        self.file = file
        self.lookup = lookup
        self.out: dict[str, str] = {}
        self.interp = Interpolator(self._resolve, warn)

    def _resolve(self, name: str) -> str | None:
        found = self.lookup(name)
        return found if found is not None else self.out.get(name)

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def error(self, message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, location=Location(self.file, self.line), hint=hint)

    def parse(self) -> dict[str, str]:
        text = self.text
        while True:
            self._skip_blank_and_comments()
            if self.pos >= len(text):
                return {k: v for k, v in self.out.items() if not k[:1].isdigit()}
            self._statement()

    def _skip_blank_and_comments(self) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c.isspace():
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end + 1
            else:
                return

    def _statement(self) -> None:
        text = self.text
        m = re.compile(r"export[ \t]+").match(text, self.pos)
        if m:
            self.pos = m.end()
        m = _KEY_CHARS.match(text, self.pos)
        key = m.group() if m else ""
        after = m.end() if m else self.pos
        while after < len(text) and text[after] in " \t":
            after += 1
        sep = text[after] if after < len(text) else "\n"
        if not key or sep not in "=:\n":
            line_text = text[self.pos : (text.find("\n", self.pos) + 1 or len(text) + 1) - 1]
            raise self.error(
                f"invalid line {line_text!r}",
                hint="each line must be KEY=VALUE, KEY alone, or a # comment",
            )
        if sep == "\n":  # KEY alone: inherit from the environment
            self.pos = after
            inherited = self.lookup(key)
            if inherited is not None:
                self.out[key] = inherited
            return
        self.pos = after + 1
        while self.pos < len(text) and text[self.pos] in " \t":
            self.pos += 1
        self.out[key] = self._value()

    def _value(self) -> str:
        text = self.text
        quote = text[self.pos] if self.pos < len(text) else ""
        if quote in ("'", '"'):
            return self._quoted(quote)
        end = text.find("\n", self.pos)
        end = len(text) if end < 0 else end
        raw = text[self.pos : end]
        self.pos = end
        comment = raw.find(" #")
        if comment >= 0:
            raw = raw[:comment]
        return self._interpolate(raw.rstrip())

    def _quoted(self, quote: str) -> str:
        text = self.text
        start_line = self.line
        i = self.pos + 1
        chars: list[str] = []
        while i < len(text):
            c = text[i]
            if c == "\\" and i + 1 < len(text):
                nxt = text[i + 1]
                if nxt == quote:
                    chars.append(nxt)
                elif quote == '"' and nxt in _ESCAPES:
                    chars.append(_ESCAPES[nxt])
                else:
                    chars.append(c + nxt)
                i += 2
                continue
            if c == quote:
                self.pos = i + 1
                self._rest_of_line()
                value = "".join(chars)
                return self._interpolate(value) if quote == '"' else value
            chars.append(c)
            i += 1
        self.pos = len(text)
        raise SpecError(
            f"unterminated quoted value (opened with {quote})",
            location=Location(self.file, start_line),
            hint=f"close the value with {quote}",
        )

    def _rest_of_line(self) -> None:
        text = self.text
        end = text.find("\n", self.pos)
        end = len(text) if end < 0 else end
        rest = text[self.pos : end].strip()
        if rest and not rest.startswith("#"):
            raise self.error(
                f"unexpected text {rest!r} after a quoted value",
                hint="put comments after a space and #",
            )
        self.pos = end

    def _interpolate(self, value: str) -> str:
        try:
            return self.interp.substitute(value)
        except TemplateError as exc:
            raise self.error(exc.message, exc.hint) from None
