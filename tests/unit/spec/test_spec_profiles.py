"""Profiles: which services are enabled, and what that does to dependencies."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compound.errors import SpecError, UsageError
from compound.spec.profiles import active_profiles, select_services

from .spec_helpers import Loader

FILE = """
services:
  app: {image: app}
  db: {image: db, profiles: [backend, all]}
  debug: {image: dbg, profiles: [debug], depends_on: [helper]}
  helper: {image: h, profiles: [helpers]}
"""


def test_services_without_profiles_always_enabled(load: Loader) -> None:
    project = load(FILE).project
    assert list(project.services) == ["app"]
    assert project.disabled_services == ("db", "debug", "helper")


def test_profile_flag_enables(load: Loader) -> None:
    project = load(FILE, profiles=["backend"]).project
    assert list(project.services) == ["app", "db"]


def test_compose_profiles_env_used_when_no_flag(load: Loader) -> None:
    assert list(load(FILE, env={"COMPOSE_PROFILES": "all, helpers"}).project.services) == [
        "app",
        "db",
        "helper",
    ]
    # an explicit --profile replaces COMPOSE_PROFILES, as in Compose
    project = load(FILE, env={"COMPOSE_PROFILES": "all"}, profiles=["helpers"]).project
    assert list(project.services) == ["app", "helper"]


def test_star_enables_everything(load: Loader) -> None:
    assert load(FILE, profiles=["*"]).project.disabled_services == ()


def test_target_service_enabled_with_its_dependencies(load: Loader) -> None:
    project = load(FILE, target_services=["debug"]).project
    assert list(project.services) == ["app", "debug", "helper"]


def test_dependency_on_disabled_service_is_an_error(
    load_error: Callable[..., list[SpecError]],
) -> None:
    (error,) = load_error(FILE, profiles=["debug"])
    assert "service 'helper', which is disabled by its profiles" in error.message
    assert error.hint == "enable it with --profile helpers"
    assert error.location.path == "services.debug.depends_on[0]"


def test_optional_dependency_on_disabled_service_is_dropped(load: Loader) -> None:
    result = load(
        """
        services:
          app:
            image: app
            depends_on: {tool: {condition: service_started, required: false}}
          tool: {image: t, profiles: [x]}
        """
    )
    assert result.project.services["app"].depends_on == {}
    assert any("optional dependency" in w and "tool" in w for w in result.warnings)


def test_unknown_target_is_a_usage_error(load: Loader) -> None:
    with pytest.raises(UsageError, match="no such service: dbb") as info:
        load(FILE, target_services=["dbb"])
    assert info.value.hint == "did you mean 'db'?"


def test_active_profiles_parsing() -> None:
    assert active_profiles([], {"COMPOSE_PROFILES": " a ,b,, "}) == ["a", "b"]
    assert active_profiles(["x"], {"COMPOSE_PROFILES": "a"}) == ["x"]


def test_select_services_is_robust_to_odd_input() -> None:
    services = {"a": {"profiles": "notalist"}, "b": None, "c": {"depends_on": {"a": None}}}
    assert select_services(services, [], ["c"]) == (["a", "b", "c"], [])
