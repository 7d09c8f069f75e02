from __future__ import annotations

from pathlib import Path

import pytest

from compound.advisor import HINTS, Hints, KernelNeed, advise
from compound.advisor.hints import parse_hints, project_hints
from compound.errors import SpecError, SpecErrors
from tests.unit.advisor.helpers import proj, svc


def test_every_hint_parses_to_its_typed_value():
    raw = {
        "tenant": " acme ",
        "trust": "untrusted",
        "latency": "critical",
        "os": "windows",
        "legacy": True,
        "kernel": "6.1",
        "disaster_recovery": True,
        "licensing": True,
        "automation": True,
        "density": True,
    }
    hints, errors = parse_hints(raw, "web")
    assert errors == []
    assert hints == Hints(
        tenant="acme",
        trust="untrusted",
        latency="critical",
        os="windows",
        legacy=True,
        kernel=KernelNeed(version="6.1"),
        disaster_recovery=True,
        licensing=True,
        automation=True,
        density=True,
    )
    assert set(raw) == set(HINTS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5.15", KernelNeed(version="5.15")),
        (6.1, KernelNeed(version="6.1")),
        (["kvm", "wireguard"], KernelNeed(modules=("kvm", "wireguard"))),
        ({"version": "6.1"}, KernelNeed(version="6.1")),
        ({"modules": ["zfs"]}, KernelNeed(modules=("zfs",))),
        ({"version": "6.1", "modules": ["zfs"]}, KernelNeed("6.1", ("zfs",))),
    ],
)
def test_kernel_hint_forms(value, expected):
    hints, errors = parse_hints({"kernel": value}, "web")
    assert errors == []
    assert hints.kernel == expected


def test_unknown_hint_suggests_the_close_name_and_lists_known_ones():
    _, errors = parse_hints({"tennant": "acme"}, "web")
    (err,) = errors
    assert err.location.path == "services.web.x-compound.hints.tennant"
    assert "unknown hint 'tennant'" in err.message
    assert "disaster_recovery" in err.message  # the known names are listed
    assert err.hint == "did you mean 'tenant'?"


def test_dashed_spelling_suggests_the_underscored_name():
    _, errors = parse_hints({"disaster-recovery": True}, "db")
    assert errors[0].hint == "did you mean 'disaster_recovery'?"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("trust", "maybe", "must be one of trusted, untrusted, not 'maybe'"),
        ("latency", "fast", "must be one of critical, normal"),
        ("os", "macos", "must be one of linux, windows"),
        ("legacy", "yes", "must be true or false, not 'yes'"),
        ("density", 1, "must be true or false"),
        ("tenant", "", "non-empty string"),
        ("tenant", 42, "non-empty string"),
        ("kernel", True, "cannot be True"),
        ("kernel", [], "cannot be []"),
        ("kernel", {"version": "6.1", "modulez": ["x"]}, "unknown kernel field 'modulez'"),
        ("kernel", {"modules": "zfs"}, "list of module names"),
        ("kernel", {}, "kernel hint is empty"),
    ],
)
def test_bad_values_name_the_allowed_ones(name, value, fragment):
    _, errors = parse_hints({name: value}, "web")
    assert errors, f"{name}={value!r} should be rejected"
    assert any(fragment in e.message or fragment in (e.hint or "") for e in errors), errors
    assert errors[0].location.path.startswith(f"services.web.x-compound.hints.{name}")


def test_enum_typo_gets_a_did_you_mean():
    _, errors = parse_hints({"trust": "untrustd"}, "web")
    assert errors[0].hint == "did you mean 'untrusted'?"


def test_all_problems_of_a_project_are_reported_together():
    p = proj(svc("a", hints={"trust": "x"}), svc("b", hints={"bogus": 1, "latency": "slow"}))
    with pytest.raises(SpecErrors) as info:
        project_hints(p)
    paths = [e.location.path for e in info.value.errors]
    assert paths == [
        "services.a.x-compound.hints.trust",
        "services.b.x-compound.hints.bogus",
        "services.b.x-compound.hints.latency",
    ]


def test_a_single_problem_is_a_single_spec_error():
    with pytest.raises(SpecError):
        project_hints(proj(svc("a", hints={"trust": "x"})))


def test_errors_point_at_the_line_in_the_compose_file(tmp_path: Path):
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    x-compound:\n"
        "      hints:\n"
        "        trust: sometimes\n"
    )
    p = proj(svc("web", hints={"trust": "sometimes"}), files=(str(compose),))
    with pytest.raises(SpecError) as info:
        advise(p)
    loc = info.value.location
    assert (loc.file, loc.line, loc.column) == (str(compose), 6, 9)
    assert info.value.render().startswith(f"{compose}:6:9: services.web.x-compound.hints.trust:")


def test_later_files_win_when_locating(tmp_path: Path):
    base = tmp_path / "a.yaml"
    base.write_text("services:\n  web:\n    image: nginx\n")
    override = tmp_path / "b.yaml"
    override.write_text("services:\n  web:\n    x-compound:\n      hints: {trust: nope}\n")
    p = proj(svc("web", hints={"trust": "nope"}), files=(str(base), str(override)))
    with pytest.raises(SpecError) as info:
        advise(p)
    assert info.value.location.file == str(override)
    assert info.value.location.line == 4


def test_missing_files_still_give_the_key_path():
    p = proj(svc("web", hints={"trust": "x"}), files=("/nonexistent/compose.yaml",))
    with pytest.raises(SpecError) as info:
        advise(p)
    assert info.value.location.path == "services.web.x-compound.hints.trust"
    assert info.value.location.line is None
