"""Interpolation: every form, errors, warnings, typed paths."""

from __future__ import annotations

import pytest

from compound.errors import SpecError
from compound.spec.interpolate import Interpolator, TemplateError, cast_for, interpolate_tree
from compound.spec.nodes import to_plain
from compound.spec.yamlload import parse_yaml

ENV = {"SET": "value", "EMPTY": "", "NAME": "web", "PORT": "8080"}


def sub(text: str, env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    warnings: list[str] = []
    interp = Interpolator((env if env is not None else ENV).get, warnings.append)
    return interp.substitute(text), warnings


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "plain"),
        ("$SET", "value"),
        ("${SET}", "value"),
        ("pre-${SET}-post", "pre-value-post"),
        ("$SET$SET", "valuevalue"),
        ("${SET:-d}", "value"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${SET-d}", "value"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${SET:?err}", "value"),
        ("${EMPTY?err}", ""),
        ("${UNSET:-${NAME}}", "web"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-a-${PORT}-b}", "a-8080-b"),
        ("${UNSET:-{braces}}", "{braces}"),
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("cost: 5$", "cost: 5$"),  # a lone $ stays
        ("$1 and $-", "$1 and $-"),
        ("${UNSET:-}", ""),
        ("${UNSET:-a:b}", "a:b"),
        ("${SET}}", "value}"),
    ],
)
def test_forms(template: str, expected: str) -> None:
    assert sub(template)[0] == expected


def test_unset_variable_warns_once() -> None:
    text, warnings = sub("$UNSET ${UNSET} ${OTHER}")
    assert text == "  "
    assert warnings == [
        "the UNSET variable is not set. Defaulting to a blank string.",
        "the OTHER variable is not set. Defaulting to a blank string.",
    ]


def test_defaults_do_not_warn() -> None:
    assert sub("${UNSET:-x}${UNSET-y}${UNSET:+z}")[1] == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${UNSET:?must set UNSET}", "required variable UNSET is missing a value: must set UNSET"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${UNSET?no}", "required variable UNSET is missing a value: no"),
        ("${UNSET:?port ${PORT}}", "port 8080"),
        ("${SET", "invalid interpolation format"),
        ("${", "invalid interpolation format"),
        ("${}", "invalid interpolation format"),
        ("${1A}", "invalid interpolation format"),
        ("${SET.x}", "invalid interpolation format"),
        ("${UNSET:-${NESTED}", "invalid interpolation format"),
    ],
)
def test_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        sub(template)
    assert message in info.value.message


def test_required_default_is_only_evaluated_when_needed() -> None:
    assert sub("${SET:-${UNSET:?never}}")[0] == "value"


def test_used_variables_are_recorded() -> None:
    interp = Interpolator(lambda name: ENV.get(name), lambda _m: None)
    interp.substitute("${SET} ${UNSET:-x} ${PORT:+p}")
    assert interp.used == {"SET": "value", "PORT": "8080"}


def test_tree_interpolates_values_not_keys_and_casts_typed_paths() -> None:
    doc = parse_yaml(
        """
services:
  $NAME:
    image: "img:${PORT}"
    scale: "${REPLICAS}"
    privileged: "${PRIV}"
    tty: yes
    ports: [{target: "${PORT}"}]
    x-anything: "$NAME"
    labels: {"${NAME}": "$$escaped"}
    cpus: "not a number"
""",
        "f.yaml",
    )[0]
    errors: list[SpecError] = []
    warnings: list[str] = []
    env = {**ENV, "REPLICAS": "3", "PRIV": "true"}
    out = interpolate_tree(doc, Interpolator(env.get, warnings.append), warnings.append, errors)
    assert not errors
    svc = to_plain(out)["services"]["$NAME"]
    assert svc["image"] == "img:8080"
    assert svc["scale"] == 3
    assert svc["privileged"] is True
    assert svc["tty"] is True
    assert svc["ports"] == [{"target": 8080}]
    assert svc["x-anything"] == "web"  # extensions are interpolated too
    assert svc["labels"] == {"${NAME}": "$escaped"}
    assert svc["cpus"] == "not a number"  # left for the schema/normaliser to report
    assert any("yes" in w and "YAML 1.2" in w for w in warnings)


def test_tree_errors_are_located_and_all_collected() -> None:
    doc = parse_yaml("a: ${X:?need X}\nb:\n  - ${\n", "f.yaml")[0]
    errors: list[SpecError] = []
    interpolate_tree(
        doc, Interpolator(lambda _name: None, lambda _m: None), lambda _m: None, errors
    )
    assert [(e.location.line, e.location.column, e.location.path) for e in errors] == [
        (1, 1, "a"),
        (3, 5, "b[0]"),
    ]


def test_cast_paths() -> None:
    assert cast_for(("services", "web", "deploy", "replicas")) == "int"
    assert cast_for(("services", "web", "ports", 0, "target")) == "int"
    assert cast_for(("services", "web", "ports", "x", "target")) is None
    assert cast_for(("networks", "n", "external")) == "bool"
    assert cast_for(("services", "web", "image")) is None
