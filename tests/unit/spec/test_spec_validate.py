"""Schema messages: unknown keys, types, oneOf branch choice, the modern overlay."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from compound.errors import SpecError
from compound.spec.schema import compose_schema

from .spec_helpers import Loader


def one_error(load_error: Callable[..., list[SpecError]], service_body: str) -> SpecError:
    errors = load_error(f"services:\n  web:\n    image: x\n    {service_body}\n")
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            "command: 42",
            "services.web.command",
            "must be a string or a list of strings, not an integer (42)",
        ),
        ("command: [ls, 1]", "services.web.command[1]", "must be a string, not an integer (1)"),
        ("environment: [1]", "services.web.environment[0]", "must be a string, not an integer (1)"),
        (
            "environment: {A: [1]}",
            "services.web.environment.A",
            "must be a string or a number or a boolean or null, not a list",
        ),
        (
            "depends_on: {db: {condition: x}}",
            "services.web.depends_on.db.condition",
            "must be one of",
        ),
        ("depends_on: {db: {}}", "services.web.depends_on.db", "missing required key 'condition'"),
        (
            "networks: 5",
            "services.web.networks",
            "must be a list of strings or a mapping, not an integer (5)",
        ),
        (
            "build: {context: ., dockerfil: x}",
            "services.web.build.dockerfil",
            "unknown key 'dockerfil'",
        ),
        ("volumes: [{type: bind, source: /a}]", "services.web.volumes[0]", "volume needs a target"),
        ("volumes: [{type: bnd, target: /a}]", "services.web.volumes[0].type", "must be one of"),
        (
            "ports: [{target: 80, publishd: 8080}]",
            "services.web.ports[0].publishd",
            "unknown key 'publishd'",
        ),
        ("cap_add: [A, A]", "services.web.cap_add[1]", "duplicate entry 'A'"),
        ("oom_score_adj: 5000", "services.web.oom_score_adj", "must be at most 1000"),
        ("healthcheck: {tset: x}", "services.web.healthcheck.tset", "unknown key 'tset'"),
        (
            "deploy: {resources: {limits: {memory: 5}}}",
            "services.web.deploy.resources.limits.memory",
            "must be a string",
        ),
        ("x-compound: {runtime: 1}", "services.web.x-compound.runtime", "must be a string"),
        ("x-compound: []", "services.web.x-compound", "must be a mapping or null"),
    ],
)
def test_messages(
    load_error: Callable[..., list[SpecError]], body: str, path: str, message: str
) -> None:
    error = one_error(load_error, body)
    assert error.location.path == path, error.render()
    assert message in error.message, error.render()
    assert (
        "Additional properties" not in error.message and "is not valid under" not in error.message
    )


def test_did_you_mean_hints(load_error: Callable[..., list[SpecError]]) -> None:
    assert one_error(load_error, "enviroment: {}").hint == "did you mean 'environment'?"
    assert one_error(load_error, "healthcheck: {intervl: 1s}").hint == "did you mean 'interval'?"
    assert one_error(load_error, "zzzzzz: 1").hint is None


def test_top_level_unknown_and_resource_names(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services: {web: {image: x}}\nvolume: {}\n")
    assert (error.location.path, error.hint) == ("volume", "did you mean 'volumes'?")
    (error,) = load_error("services: {web: {image: x}}\nvolumes: {'bad name': {}}\n")
    assert "invalid name 'bad name'" in error.message


@pytest.mark.parametrize(
    "body",
    [
        "depends_on: {db: {condition: service_started, restart: true, required: false}}",
        "healthcheck: {test: [CMD, x], start_interval: 1s}",
        "build: {context: ., dockerfile_inline: 'FROM x', tags: [a], platforms: [linux/amd64],"
        " ssh: [default], additional_contexts: {a: ../a}}",
        "volumes: [{type: volume, source: v, target: /v, volume: {subpath: s}}]",
        "deploy: {resources: {limits: {pids: 10}}}",
        "ports: [{target: 80, published: '8080', name: web, app_protocol: http,"
        " host_ip: 127.0.0.1}]",
        "env_file: [{path: ./e.env, required: false}]",
        "environment: {FLAG: true}",
        "extra_hosts: {a: [1.2.3.4]}",
        "develop: {watch: [{path: ., action: rebuild}]}",
        "attach: false",
        "pull_policy: missing",
        "devices: [{source: /dev/fuse}]",
        "secrets: [{source: s, mode: '0400'}]",
    ],
)
def test_modern_keys_are_accepted(load: Loader, body: str) -> None:
    load(
        f"services:\n  web:\n    image: x\n    {body}\n  db: {{image: y}}\n"
        "volumes: {v: {}}\nsecrets: {s: {environment: S}}\nconfigs: {c: {content: x}}\n",
        env={"S": "s"},
    )


def test_overlay_keeps_the_vendored_schema_intact() -> None:
    schema = compose_schema()
    service = schema["definitions"]["service"]["properties"]
    assert "x-compound" in service
    assert "develop" in service
    assert schema["properties"]["name"] == {"type": "string"}
    assert "$schema" not in schema
