"""Schema validation with messages written for people.

jsonschema finds every problem; this module turns each into one located
SpecError: "unknown key 'enviroment'" with a did-you-mean, "must be a string
or a list of strings, not an integer (42)", and for ``oneOf`` failures the
branch the value was evidently meant for instead of every branch.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from compound.errors import SpecError

from .fastvalid import FastValidator, Unsupported
from .nodes import Locator, Path
from .schema import compose_schema

if TYPE_CHECKING:
    # imported only when a document is invalid (or the fast check cannot tell)
    from jsonschema import Draft201909Validator
    from jsonschema.exceptions import ValidationError

_TYPE_PHRASES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_NAME_RULE = "only letters, digits, '.', '_' and '-' are allowed"


@lru_cache(maxsize=1)
def _validator() -> Draft201909Validator:
    from jsonschema import Draft201909Validator

    return Draft201909Validator(compose_schema())


@lru_cache(maxsize=1)
def _fast() -> FastValidator:
    return FastValidator(compose_schema())


def validate_document(data: dict[str, Any], locate: Locator) -> list[SpecError]:
    """Every schema violation of the merged, interpolated document."""
    try:
        if _fast().is_valid(data):
            return []
    except Unsupported:
        pass  # jsonschema decides
    explained: list[Explained] = []
    for error in _validator().iter_errors(data):
        explained.extend(_explain(error))
    # a value of the wrong type also fails the other rules of its key: say it once
    wrong_type = {path for path, message, _ in explained if _is_type_message(message)}
    found: list[SpecError] = []
    seen: set[tuple[Path, str]] = set()
    for path, message, hint in explained:
        if (path, message) in seen or (path in wrong_type and not _is_type_message(message)):
            continue
        seen.add((path, message))
        found.append(SpecError(message, location=locate(path), hint=hint))
    return found


Explained = tuple[Path, str, str | None]


def _is_type_message(message: str) -> bool:
    return message.startswith(("must be a ", "must be an ", "must be null"))


def _explain(error: ValidationError) -> list[Explained]:
    path: Path = tuple(error.absolute_path)
    kind = error.validator
    expected: Any = error.validator_value
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(instance, dict):
        return _unknown_keys(path, instance, schema)
    if kind == "type":
        return [
            (
                path,
                f"must be {_types_phrase(error.validator_value)}, not {_describe(instance)}",
                None,
            )
        ]
    if kind in ("oneOf", "anyOf"):
        return _explain_choice(error, path)
    if kind == "enum":
        allowed = [str(v) for v in expected]
        hint = _did_you_mean(instance, allowed) if isinstance(instance, str) else None
        return [(path, f"must be one of {', '.join(allowed)}, not {_describe(instance)}", hint)]
    if kind == "required" and isinstance(instance, dict):
        return [
            (path, f"missing required key {key!r}", None) for key in expected if key not in instance
        ]
    if kind == "uniqueItems" and isinstance(instance, list):
        return [_duplicate(path, instance)]
    if kind == "minimum":
        return [(path, f"must be at least {expected}, not {instance}", None)]
    if kind == "maximum":
        return [(path, f"must be at most {expected}, not {instance}", None)]
    return [(path, error.message, None)]


def _unknown_keys(path: Path, instance: dict[str, Any], schema: dict[str, Any]) -> list[Explained]:
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    out: list[Explained] = []
    for key in instance:
        if key in known or any(re.search(p, key) for p in patterns):
            continue
        if known:
            out.append(
                (
                    (*path, key),
                    f"unknown key {key!r}",
                    _did_you_mean(key, known),
                )
            )
        else:
            out.append(((*path, key), f"invalid name {key!r}: {_NAME_RULE}", None))
    return out


def _explain_choice(error: ValidationError, path: Path) -> list[Explained]:
    """A failed ``oneOf``: explain the branch the value was meant for."""
    branches: Any = error.validator_value
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    if len(by_branch) < len(branches):
        # valid under several branches at once: only possible with odd schemas
        return [(path, "matches more than one allowed form", None)]
    # branches whose type fits the value: the user meant one of those
    fitting = [
        i
        for i, errors in by_branch.items()
        if not any(e.validator == "type" and not e.relative_path for e in errors)
    ]
    if not fitting:
        phrases = _dedupe(_schema_phrase(b) for b in branches)
        return [(path, f"must be {' or '.join(phrases)}, not {_describe(error.instance)}", None)]
    best = max(fitting, key=lambda i: max(len(e.absolute_path) for e in by_branch[i]))
    out: list[Explained] = []
    for sub in by_branch[best]:
        out.extend(_explain(sub))
    return out


def _duplicate(path: Path, items: list[Any]) -> Explained:
    seen: list[Any] = []
    for i, item in enumerate(items):
        if item in seen:
            return ((*path, i), f"duplicate entry {_short(item)}", "remove one of them")
        seen.append(item)
    return (path, "contains duplicate entries", None)


def _did_you_mean(word: str, candidates: list[str]) -> str | None:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _types_phrase(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    return " or ".join(_TYPE_PHRASES.get(t, t) for t in types)


def _resolve(schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        node: Any = compose_schema()
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _schema_phrase(schema: Any) -> str:
    schema = _resolve(schema)
    if not isinstance(schema, dict):
        return "a value"
    if "oneOf" in schema or "anyOf" in schema:
        choices = schema.get("oneOf") or schema.get("anyOf") or []
        return " or ".join(_dedupe(_schema_phrase(s) for s in choices))
    kind = schema.get("type")
    if kind == "array":
        items = _resolve(schema.get("items"))
        if isinstance(items, dict) and items.get("type") == "string":
            return "a list of strings"
        return "a list"
    if kind is None:
        return "a value"
    return _types_phrase(kind)


def _dedupe(phrases: Any) -> list[str]:
    out: list[str] = []
    for p in phrases:
        if p not in out:
            out.append(p)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({_short(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
