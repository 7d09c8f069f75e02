from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from compound.cli.advise_cmd import register
from compound.errors import CompoundError
from tests.unit.advisor.helpers import GiB, proj, svc

runner = CliRunner()

HOSTS = """hosts:
  - {name: bm-1, cpus: 8, memory: 32GiB, labels: {zone: a}}
  - {name: v-1, cpus: 4, memory: 8GiB, class: virtual, kvm: true}
"""


def app_for(projects, files_to_projects=None):
    app = typer.Typer()
    register(
        app,
        load=lambda: projects[0],
        load_many=lambda files: [files_to_projects[f] for f in files],
    )

    @app.callback()
    def _main() -> None:  # keep subcommands as subcommands
        pass

    return app


def invoke(app, args):
    try:
        return runner.invoke(app, args, catch_exceptions=False)
    except CompoundError as exc:  # the real CLI prints these; here we return them
        return exc


def test_plan_prints_hosts_utilisation_instances_and_bound(tmp_path: Path):
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(HOSTS)
    p = proj(svc("web", runtime="container", replicas=2, cpus=1, memory=GiB), name="shop")
    result = invoke(app_for([p]), ["plan", "--hosts", str(hosts)])
    assert result.exit_code == 0, result.output
    assert "shop-web-1" in result.output and "shop-web-2" in result.output
    assert "lower bound: 2 (by spread)" in result.output
    assert "unplaced: 0" in result.output


def test_plan_json_and_unplaced_exit_code(tmp_path: Path):
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(HOSTS)
    p = proj(
        svc("web", runtime="container", replicas=1, cpus=1, memory=GiB),
        svc("huge", runtime="container", cpus=64, memory=GiB),
        name="shop",
    )
    result = invoke(app_for([p]), ["plan", "--hosts", str(hosts), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)  # JSON only, nothing else on stdout
    assert data["unplaced"][0]["instances"] == ["shop-huge-1"]
    assert "largest eligible host has 8 CPUs" in data["unplaced"][0]["reason"]


def test_plan_with_one_application_per_file(tmp_path: Path):
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(HOSTS)
    a = proj(svc("api", runtime="container"), name="a")
    b = proj(svc("api", runtime="container"), name="b")
    app = app_for([a], {"a.yaml": a, "b.yaml": b})
    result = invoke(app, ["plan", "--hosts", str(hosts), "-f", "a.yaml", "-f", "b.yaml", "--json"])
    placed = {r["instance"] for r in json.loads(result.output)["placements"]}
    assert placed == {"a-api-1", "b-api-1"}


def test_plan_limit_truncates_instance_lists(tmp_path: Path):
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("hosts:\n  - {name: h, cpus: 64, memory: 64GiB}\n")
    p = proj(svc("w", runtime="container", replicas=12, cpus=0.1, memory=GiB // 8), name="s")
    result = invoke(app_for([p]), ["plan", "--hosts", str(hosts), "--limit", "3"])
    assert "(+9 more)" in result.output


def test_bad_hosts_file_is_a_located_error_not_a_traceback(tmp_path: Path):
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text("hosts:\n  - {name: a, cpus: -1, memory: 1g}\n")
    err = invoke(app_for([proj(svc("w"))]), ["plan", "--hosts", str(hosts)])
    assert isinstance(err, CompoundError)
    assert err.render().startswith(f"{hosts}:2:15: hosts[0].cpus: cpus must be greater than 0")
