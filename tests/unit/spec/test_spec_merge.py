"""Merging several -f files by the Compose merge rules."""

from __future__ import annotations

from pathlib import Path

from compound.spec.model import Dependency, PortSpec, Project

from .spec_helpers import Loader, write


def merged(load: Loader, project_dir: Path, base: str, override: str, **kw: object) -> Project:
    write(project_dir, "base.yaml", base)
    write(project_dir, "override.yaml", override)
    return load(files=["base.yaml", "override.yaml"], **kw).project


def test_scalars_replaced_mappings_merged(load: Loader, project_dir: Path) -> None:
    project = merged(
        load,
        project_dir,
        """
        services:
          web:
            image: nginx:1
            restart: always
            logging: {driver: json-file, options: {max-size: 1m}}
        """,
        """
        services:
          web:
            image: nginx:2
            logging: {options: {max-file: "3"}}
          extra:
            image: busybox
        """,
    )
    web = project.services["web"]
    assert web.image == "nginx:2"
    assert web.restart == "always"
    assert web.logging is not None
    assert web.logging.driver == "json-file"
    assert web.logging.options == {"max-size": "1m", "max-file": "3"}
    assert set(project.services) == {"web", "extra"}


def test_logging_replaced_when_driver_changes(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        "services: {web: {image: x, logging: {driver: json-file, options: {a: '1'}}}}",
        "services: {web: {logging: {driver: syslog}}}",
    ).services["web"]
    assert web.logging is not None
    assert (web.logging.driver, web.logging.options) == ("syslog", {})


def test_command_entrypoint_and_healthcheck_test_replaced(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        """
        services:
          web:
            image: x
            command: [a, b, c]
            entrypoint: [sh, -c]
            healthcheck: {test: [CMD, a], interval: 10s}
        """,
        """
        services:
          web:
            command: [d]
            entrypoint: run
            healthcheck: {test: [CMD, b]}
        """,
    ).services["web"]
    assert web.command == ("d",)
    assert web.entrypoint == ("run",)
    assert web.healthcheck is not None
    assert web.healthcheck.test == ("CMD", "b")
    assert web.healthcheck.interval == 10.0


def test_environment_labels_extra_hosts_merge_as_maps(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        """
        services:
          web:
            image: x
            environment: [A=1, B=2, C=3]
            labels: {one: "1"}
            extra_hosts: ["db:10.0.0.1", "cache=10.0.0.2"]
            sysctls: [net.a=1]
        """,
        """
        services:
          web:
            environment: {B: two, D: "4", C: null}
            labels: [two=2, one=uno]
            extra_hosts: {db: 10.0.0.9}
            sysctls: {net.b: 2}
        """,
        env={"C": "from-env"},
    ).services["web"]
    assert web.environment == {"A": "1", "B": "two", "C": "from-env", "D": "4"}
    assert web.labels == {"one": "uno", "two": "2"}
    assert web.extra_hosts == {"db": "10.0.0.9", "cache": "10.0.0.2"}
    assert web.sysctls == {"net.a": "1", "net.b": "2"}


def test_ports_merge_by_identity(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        "services: {web: {image: x, ports: ['8080:80', '9090:90', 53/udp]}}",
        "services: {web: {ports: ['8081:81', {target: 80, published: 8080}, '53/udp']}}",
    ).services["web"]
    assert web.ports == (
        PortSpec(target=80, published="8080"),
        PortSpec(target=90, published="9090"),
        PortSpec(target=53, protocol="udp"),
        PortSpec(target=81, published="8081"),
    )


def test_volumes_merge_by_target(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        """
        services:
          web: {image: x, volumes: ["./a:/data", "cache:/cache"]}
        volumes: {cache: {}, other: {}}
        """,
        """
        services:
          web: {volumes: [{type: volume, source: other, target: /data}, "./logs:/logs"]}
        """,
    ).services["web"]
    assert [(v.type, v.source, v.target) for v in web.volumes] == [
        ("volume", "other", "/data"),
        ("volume", "cache", "/cache"),
        ("bind", str(project_dir / "logs"), "/logs"),
    ]


def test_secrets_configs_merge_by_target(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        """
        services:
          web: {image: x, secrets: [a, b]}
        secrets: {a: {file: ./a}, b: {file: ./b}, c: {file: ./c}}
        """,
        """
        services:
          web: {secrets: [{source: c, target: b}, a]}
        """,
    ).services["web"]
    assert [(s.source, s.target) for s in web.secrets] == [
        ("a", "/run/secrets/a"),
        ("c", "/run/secrets/b"),
    ]


def test_depends_on_and_networks_merge_as_maps(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        """
        services:
          web: {image: x, depends_on: [db], networks: [front]}
          db: {image: y, networks: [front, back]}
          cache: {image: z, networks: [back]}
        networks: {front: {}, back: {}}
        """,
        """
        services:
          web:
            depends_on: {db: {condition: service_healthy}, cache: {condition: service_started}}
            networks: {back: {aliases: [w]}}
        """,
    ).services["web"]
    assert web.depends_on == {
        "db": Dependency(condition="service_healthy"),
        "cache": Dependency(),
    }
    assert set(web.networks) == {"front", "back"}
    assert web.networks["back"].aliases == ("w",)


def test_build_string_merges_with_mapping(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        "services: {web: {build: ./app}}",
        "services: {web: {build: {dockerfile: Dev.Dockerfile, args: [A=1]}}}",
    ).services["web"]
    assert web.build is not None
    assert web.build.context == str(project_dir / "app")
    assert web.build.dockerfile == "Dev.Dockerfile"
    assert web.build.args == {"A": "1"}


def test_plain_lists_concatenate_and_dedupe(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        "services: {web: {image: x, dns: 1.1.1.1, cap_add: [A, B], security_opt: [s1]}}",
        "services: {web: {dns: [1.1.1.1, 8.8.8.8], cap_add: [B, C], security_opt: [s2]}}",
    ).services["web"]
    assert web.dns == ("1.1.1.1", "8.8.8.8")
    assert web.cap_add == ("A", "B", "C")
    assert web.security_opt == ("s1", "s2")


def test_null_in_override_keeps_value(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        "services: {web: {image: x, restart: always}}",
        "services: {web: {restart: null}}",
    ).services["web"]
    assert web.restart == "always"


def test_reset_and_override_tags(load: Loader, project_dir: Path) -> None:
    web = merged(
        load,
        project_dir,
        """
        services:
          web:
            image: x
            ports: ["80:80"]
            environment: {A: "1", B: "2"}
            labels: {a: "1"}
        """,
        """
        services:
          web:
            ports: !reset []
            environment:
              B: !reset
            labels: !override {b: "2"}
        """,
    ).services["web"]
    assert web.ports == ()
    assert web.environment == {"A": "1"}
    assert web.labels == {"b": "2"}


def test_relative_paths_in_later_files_use_the_project_directory(
    load: Loader, project_dir: Path
) -> None:
    write(project_dir, "compose.yaml", "services: {web: {image: x}}")
    write(project_dir, "sub/extra.yaml", "services: {web: {volumes: ['./data:/data']}}")
    project = load(files=["compose.yaml", "sub/extra.yaml"]).project
    assert project.services["web"].volumes[0].source == str(project_dir / "data")


def test_positions_follow_the_winning_value(load: Loader, project_dir: Path) -> None:
    import pytest

    from compound.errors import SpecErrors

    write(project_dir, "base.yaml", "services:\n  web:\n    image: x\n    mem_limit: 1g\n")
    write(project_dir, "override.yaml", "services:\n  web:\n    mem_limit: lots\n")
    with pytest.raises(SpecErrors) as info:
        load(files=["base.yaml", "override.yaml"])
    (error,) = info.value.errors
    assert (error.location.file, error.location.line, error.location.column) == (
        "override.yaml",
        3,
        5,
    )
