"""YAML loading: Compose's scalar typing, positions, duplicates, anchors, tags, limits."""

from __future__ import annotations

import math

import pytest

from compound.errors import SpecError
from compound.spec.nodes import OVERRIDE, RESET, marks_of, to_plain
from compound.spec.yamlload import parse_yaml


def plain(text: str) -> object:
    docs = parse_yaml(text, "f.yaml")
    assert len(docs) == 1
    return to_plain(docs[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),  # YAML 1.1 booleans stay strings, as in Compose
        ("on", "on"),
        ("no", "no"),
        ("true", True),
        ("False", False),
        ("22:22", "22:22"),  # no sexagesimal numbers
        ("8080:80", "8080:80"),
        ("0755", 0o755),  # Go-style octal
        ("0o17", 15),
        ("0x1f", 31),
        ("1_000", 1000),
        ("-12", -12),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("2001-12-14", "2001-12-14"),  # timestamps stay strings
        ("~", None),
        ("null", None),
        ("", None),
        ("'42'", "42"),
        ('"true"', "true"),
        ("!!str 42", "42"),
        ("!!int '7'", 7),
        ("|\n  multi\n  line", "multi\nline"),
    ],
)
def test_scalar_typing_follows_compose(text: str, expected: object) -> None:
    assert plain(f"v: {text}") == {"v": expected}


def test_infinity_and_nan() -> None:
    value = plain("a: .inf\nb: -.Inf\nc: .nan")
    assert isinstance(value, dict)
    assert value["a"] == math.inf and value["b"] == -math.inf and math.isnan(value["c"])


def test_positions_point_at_keys_and_list_items() -> None:
    doc = parse_yaml("services:\n  web:\n    ports:\n      - '80'\n      - '81'\n", "f.yaml")[0]
    marks = marks_of(doc)
    assert (marks[("services", "web")].line, marks[("services", "web")].column) == (2, 3)
    assert (
        marks[("services", "web", "ports")].line,
        marks[("services", "web", "ports")].column,
    ) == (3, 5)
    item = marks[("services", "web", "ports", 1)]
    assert (item.file, item.line, item.column) == ("f.yaml", 5, 9)


def test_duplicate_key_is_an_error_at_the_second_key() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    loc = info.value.location
    assert (loc.line, loc.column, loc.path) == (3, 1, "a")
    assert "duplicate key 'a'" in info.value.message
    assert "line 1" in info.value.message


def test_merge_keys_and_aliases() -> None:
    value = plain(
        """
        base: &b {image: x, environment: {A: "1"}}
        extra: &e {restart: always, image: y}
        svc:
          <<: [*b, *e]
          image: z
        copy: *b
        """.replace("        ", "")
    )
    assert isinstance(value, dict)
    assert value["svc"] == {"image": "z", "environment": {"A": "1"}, "restart": "always"}
    assert value["copy"] == {"image": "x", "environment": {"A": "1"}}


def test_merge_key_needs_a_mapping() -> None:
    with pytest.raises(SpecError, match="merge key needs a mapping"):
        parse_yaml("a: &x 1\nb:\n  <<: *x\n", "f.yaml")


def test_reset_and_override_tags_are_kept() -> None:
    doc = parse_yaml("a: !reset []\nb: !override {x: 1}\n", "f.yaml")[0]
    assert doc.value["a"].tag == RESET
    assert doc.value["b"].tag == OVERRIDE
    assert to_plain(doc) == {"b": {"x": 1}}  # a reset value is absent


def test_unknown_tag_is_rejected() -> None:
    with pytest.raises(SpecError, match="unsupported YAML tag !vault"):
        parse_yaml("a: !vault secret\n", "f.yaml")


def test_syntax_error_has_position_and_plain_words() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml("a:\n  b: 1\n c: 2\n", "f.yaml")
    assert info.value.location.line == 3
    assert "invalid YAML" in info.value.message


def test_unclosed_quote() -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml('a: "unclosed\n', "f.yaml")
    assert info.value.location.file == "f.yaml"


def test_billion_laughs_is_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(SpecError, match="too large"):
        parse_yaml("\n".join(lines), "f.yaml")


def test_recursive_alias_is_an_error() -> None:
    with pytest.raises(SpecError, match="recursive"):
        parse_yaml("a: &a\n  b: *a\n", "f.yaml")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(SpecError, match="nested"):
        parse_yaml("a: " + "[" * 500 + "]" * 500, "f.yaml")
    with pytest.raises(SpecError):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000, "f.yaml")


def test_non_string_key_is_an_error() -> None:
    with pytest.raises(SpecError, match="keys must be strings"):
        parse_yaml("? [a, b]\n: 1\n", "f.yaml")


def test_multiple_documents_and_empty_documents() -> None:
    docs = parse_yaml("---\n# only a comment\n---\na: 1\n---\nb: 2\n", "f.yaml")
    assert [to_plain(d) for d in docs] == [{"a": 1}, {"b": 2}]
    assert parse_yaml("", "f.yaml") == []


def test_invalid_utf8_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        parse_yaml(b"a: \xff\xfe\x00\n", "f.yaml")
