from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from compound.advisor import RULES, HostFacts
from compound.cli.advise_cmd import register
from compound.errors import CompoundError, UsageError
from tests.unit.advisor.helpers import proj, svc

runner = CliRunner()

PROJECT = proj(
    svc("web", runtime="container", replicas=3, healthcheck=True),
    svc("billing", hints={"tenant": "acme"}),
    svc("crm", hints={"tenant": "globex", "latency": "critical"}),
)


def make_app(project=PROJECT, facts=None):
    app = typer.Typer()
    register(app, load=lambda: project, host_facts=(lambda: facts) if facts else None)

    @app.callback()
    def _main() -> None:
        pass

    return app


def test_advise_explains_each_service():
    result = runner.invoke(make_app(), ["advise"], catch_exceptions=False)
    assert result.exit_code == 0
    out = result.output
    assert "billing  runtime: vm" in out
    assert "crm  runtime: vm" in out and "host: bare-metal" in out
    assert "tenant acme shares the project with tenant(s) globex" in out
    assert "would change: runtime becomes container if every service had the same tenant" in out


def test_advise_json_is_json_only_and_carries_host_facts():
    facts = HostFacts(kvm_usable=False, host_is_vm=True)
    result = runner.invoke(make_app(facts=facts), ["advise", "web", "--json"])
    data = json.loads(result.output)
    assert data["version"] == 1
    assert data["host_facts"]["kvm_usable"] is False
    (web,) = data["services"]
    assert web["service"] == "web" and web["runtime"] == "container"
    assert "kvm-unavailable" in {f["rule"] for f in web["factors"]}


def test_advise_rules_lists_the_table():
    result = runner.invoke(make_app(), ["advise", "--rules", "--json"])
    assert [r["rule"] for r in json.loads(result.output)] == [r.id for r in RULES]
    text = runner.invoke(make_app(), ["advise", "--rules"]).output
    assert "multitenant" in text


def test_unknown_service_is_a_usage_error():
    try:
        runner.invoke(make_app(), ["advise", "wbe"], catch_exceptions=False)
    except UsageError as exc:
        assert exc.hint == "did you mean 'web'?"
    else:  # pragma: no cover
        raise AssertionError("expected a UsageError")


def test_bad_hints_surface_as_spec_errors():
    bad = proj(svc("web", hints={"trust": "maybe"}))
    try:
        runner.invoke(make_app(bad), ["advise"], catch_exceptions=False)
    except CompoundError as exc:
        assert "services.web.x-compound.hints.trust" in exc.render()
    else:  # pragma: no cover
        raise AssertionError("expected a SpecError")


def test_a_tie_is_shown_as_a_tie():
    p = proj(svc("x", hints={"os": "windows"}, network_mode="host"))
    out = runner.invoke(make_app(p), ["advise"]).output
    assert "container (tie: container by default)" in out
