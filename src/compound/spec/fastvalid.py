"""A yes/no check of a document against the Compose schema, without jsonschema.

Importing jsonschema costs more than everything else `compound config` does
(~0.1 s of CPU on the project's 2-core machine), and nearly every file a
user runs is valid. So the loader asks this module first: "valid" ends the
schema step; "invalid" or "cannot tell" hands the document to
``validate.validate_document``, which imports jsonschema and explains every
problem with its location. A wrong "invalid" therefore costs only time; a
wrong "valid" would hide an error, so the tests prove both answer alike on
every file of the corpus and on fuzzed mutants.

Only the keywords the (modernised) Compose schema uses are understood, with
jsonschema's Draft 2019-09 meaning (``$ref`` siblings apply; ``format`` is
an annotation, as jsonschema treats it without a format checker). A keyword
outside that set raises ``Unsupported``, and the caller takes the slow path.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_ANNOTATIONS = frozenset(
    {"id", "$id", "$schema", "title", "description", "deprecated", "format", "default"}
)
_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "patternProperties",
        "additionalProperties",
        "required",
        "items",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "enum",
        "const",
        "uniqueItems",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "$ref",
        "definitions",
    }
)


_SCALARS = (int, float, str, type(None))


class Unsupported(Exception):
    """The schema uses a keyword (or the document a value type) this module
    does not judge: ask jsonschema."""


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False  # JSON booleans are not numbers
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    raise Unsupported(f"type {name!r}")


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1, [1] equals [1.0], order of keys does not matter
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) in _SCALARS and type(b) in _SCALARS and bool(a == b)


class FastValidator:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.root = schema

    def is_valid(self, value: Any) -> bool:
        """True: valid. False: invalid. Raises Unsupported: cannot tell."""
        return self._valid(value, self.root)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise Unsupported(f"$ref {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise Unsupported(f"$ref {ref!r}")
            node = node[part]
        return node

    def _valid(self, value: Any, schema: Any) -> bool:
        if schema is True:
            return True
        if schema is False:
            return False
        if not isinstance(schema, dict):
            raise Unsupported("schema node")
        if not isinstance(value, (dict, list, str, int, float, bool, type(None))):
            raise Unsupported(f"value of type {type(value).__name__}")
        for key in schema:
            if key not in _KEYWORDS and key not in _ANNOTATIONS:
                raise Unsupported(f"keyword {key!r}")
        if "$ref" in schema and not self._valid(value, self._resolve(schema["$ref"])):
            return False
        kind = schema.get("type")
        if kind is not None:
            kinds = kind if isinstance(kind, list) else [kind]
            if not any(_is_type(value, k) for k in kinds):
                return False
        if "enum" in schema and not any(_equal(value, e) for e in schema["enum"]):
            return False
        if "const" in schema and not _equal(value, schema["const"]):
            return False
        if isinstance(value, dict) and not self._valid_object(value, schema):
            return False
        if isinstance(value, list) and not self._valid_array(value, schema):
            return False
        if isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                return False
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                return False
            if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
                return False
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                return False
            if "maximum" in schema and value > schema["maximum"]:
                return False
        if "allOf" in schema and not all(self._valid(value, s) for s in schema["allOf"]):
            return False
        if "anyOf" in schema and not any(self._valid(value, s) for s in schema["anyOf"]):
            return False
        if "oneOf" in schema and sum(1 for s in schema["oneOf"] if self._valid(value, s)) != 1:
            return False
        return not ("not" in schema and self._valid(value, schema["not"]))

    def _valid_object(self, value: dict[str, Any], schema: dict[str, Any]) -> bool:
        if any(name not in value for name in schema.get("required", ())):
            return False
        properties = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        additional = schema.get("additionalProperties", True)
        for key, item in value.items():
            if not isinstance(key, str):
                raise Unsupported("a non-string key")
            matched = False
            if key in properties:
                matched = True
                if not self._valid(item, properties[key]):
                    return False
            for pattern, sub in patterns.items():
                if _pattern(pattern).search(key):
                    matched = True
                    if not self._valid(item, sub):
                        return False
            if not matched and not self._valid(item, additional):
                return False
        return True

    def _valid_array(self, value: list[Any], schema: dict[str, Any]) -> bool:
        if "minItems" in schema and len(value) < schema["minItems"]:
            return False
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return False
        items = schema.get("items")
        if isinstance(items, list):
            raise Unsupported("tuple items")
        if items is not None and not all(self._valid(v, items) for v in value):
            return False
        if schema.get("uniqueItems"):
            for i, a in enumerate(value):
                if any(_equal(a, b) for b in value[i + 1 :]):
                    return False
        return True
