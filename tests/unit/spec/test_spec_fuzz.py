"""Fuzzing: any input either loads or raises a CompoundError, never anything else."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compound.errors import CompoundError
from compound.spec import LoadOptions, load_project, to_compose_dict

SERVICE_KEYS = [
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "networks",
    "network_mode",
    "volumes",
    "tmpfs",
    "depends_on",
    "healthcheck",
    "restart",
    "deploy",
    "scale",
    "cpus",
    "mem_limit",
    "shm_size",
    "ulimits",
    "secrets",
    "configs",
    "labels",
    "extra_hosts",
    "sysctls",
    "logging",
    "profiles",
    "extends",
    "x-compound",
    "stop_grace_period",
    "container_name",
    "devices",
    "user",
    "init",
    "privileged",
    "dns",
    "links",
    "pull_policy",
    "platform",
    "x-custom",
    "enviroment",
]
NESTED_KEYS = [
    "test",
    "interval",
    "retries",
    "disable",
    "condition",
    "required",
    "restart",
    "target",
    "source",
    "published",
    "protocol",
    "mode",
    "type",
    "read_only",
    "bind",
    "volume",
    "tmpfs",
    "size",
    "replicas",
    "resources",
    "limits",
    "memory",
    "cpus",
    "context",
    "dockerfile",
    "args",
    "service",
    "file",
    "runtime",
    "vm",
    "vcpus",
    "kernel",
    "hints",
    "soft",
    "hard",
    "aliases",
    "external",
    "name",
    "driver",
    "environment",
    "content",
    "path",
]
TEXTS = [
    "80",
    "8080:80",
    "127.0.0.1:53:53/udp",
    "8000-8001:80-81",
    "a:b:c:d",
    "data:/data",
    "./x:/y:ro",
    "/abs",
    "~/h:/h",
    "1m30s",
    "10x",
    "512m",
    "1.5gb",
    "lots",
    "$X",
    "${X",
    "${X:-d}",
    "${X:?e}",
    "$$",
    "service:web",
    "service:ghost",
    "web",
    "db",
    "CMD",
    "NONE",
    "host",
    "none",
    "vm",
    "auto",
    "container",
    "kvm",
    "true",
    "yes",
    "",
    " ",
    "-1",
    "0440",
    "service_healthy",
    "bind",
    "volume",
    "tmpfs",
    "image",
    "A=1",
    "B",
    "x=y=z",
    "ünïcödé",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(TEXTS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(NESTED_KEYS + TEXTS[:12]), children, max_size=4),
    ),
    max_leaves=12,
)
service = st.dictionaries(st.sampled_from(SERVICE_KEYS), values, max_size=6)
names = st.sampled_from(["web", "db", "cache", "a", "b", "bad name"])
document = st.fixed_dictionaries(
    {"services": st.dictionaries(names, st.one_of(service, values), max_size=4)},
    optional={
        "volumes": st.dictionaries(st.sampled_from(["data", "x"]), values, max_size=2),
        "networks": st.dictionaries(st.sampled_from(["front", "default"]), values, max_size=2),
        "secrets": st.dictionaries(st.sampled_from(["s"]), values, max_size=1),
        "configs": st.dictionaries(st.sampled_from(["c"]), values, max_size=1),
        "name": values,
        "version": values,
        "x-top": values,
        "include": values,
    },
)

# values that pass the schema more often, to exercise normalisation and checks
small_text = st.sampled_from(TEXTS)
durations = st.sampled_from(["10s", "1m30s", "0", "500ms", "5x", "1h", "-1s", "2d"])
sizes = st.one_of(st.sampled_from(["512m", "1g", "1.5gb", "0", "-1", "lots", "10k"]), st.integers())
plausible = st.fixed_dictionaries(
    {"image": st.sampled_from(["nginx", "${X}", "a:${X:-1}"])},
    optional={
        "ports": st.lists(
            st.one_of(
                small_text,
                st.integers(min_value=-5, max_value=70000),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "target": st.one_of(st.integers(-1, 70000), small_text),
                        "published": st.one_of(st.integers(-1, 70000), small_text),
                        "protocol": small_text,
                        "mode": small_text,
                        "host_ip": small_text,
                    },
                ),
            ),
            max_size=3,
        ),
        "volumes": st.lists(
            st.one_of(
                small_text,
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["bind", "volume", "tmpfs", "npipe", "image"])},
                    optional={
                        "source": small_text,
                        "target": st.sampled_from(["/a", "/b", "rel", "/a/"]),
                        "read_only": st.booleans(),
                        "tmpfs": st.fixed_dictionaries({}, optional={"size": sizes}),
                        "bind": st.fixed_dictionaries(
                            {}, optional={"create_host_path": st.booleans()}
                        ),
                    },
                ),
            ),
            max_size=3,
        ),
        "environment": st.one_of(
            st.dictionaries(small_text, scalars, max_size=3), st.lists(small_text, max_size=3)
        ),
        "healthcheck": st.fixed_dictionaries(
            {},
            optional={
                "test": st.one_of(small_text, st.lists(small_text, max_size=3)),
                "interval": durations,
                "retries": st.integers(-2, 5),
                "disable": st.booleans(),
            },
        ),
        "depends_on": st.one_of(
            st.lists(names, max_size=2, unique=True),
            st.dictionaries(
                names,
                st.fixed_dictionaries(
                    {"condition": st.sampled_from(["service_started", "service_healthy"])},
                    optional={"required": st.booleans(), "restart": st.booleans()},
                ),
                max_size=2,
            ),
        ),
        "deploy": st.fixed_dictionaries(
            {},
            optional={
                "replicas": st.integers(-1, 4),
                "mode": small_text,
                "resources": st.fixed_dictionaries(
                    {},
                    optional={
                        "limits": st.fixed_dictionaries(
                            {}, optional={"memory": small_text, "cpus": small_text}
                        )
                    },
                ),
            },
        ),
        "mem_limit": sizes,
        "stop_grace_period": durations,
        "network_mode": st.sampled_from(["host", "service:db", "service:ghost", "none"]),
        "networks": st.lists(
            st.sampled_from(["front", "default", "back"]), max_size=2, unique=True
        ),
        "secrets": st.lists(st.sampled_from(["s", "t"]), max_size=2),
        "extends": st.one_of(names, st.fixed_dictionaries({"service": names})),
        "container_name": small_text,
        "scale": st.integers(-1, 3),
        "profiles": st.lists(st.sampled_from(["p", "q"]), max_size=2, unique=True),
        "x-compound": st.fixed_dictionaries(
            {},
            optional={
                "runtime": st.sampled_from(["vm", "auto", "container", "kvm"]),
                "vm": st.fixed_dictionaries(
                    {}, optional={"memory": sizes, "vcpus": st.integers(-1, 4)}
                ),
            },
        ),
    },
)
plausible_document = st.fixed_dictionaries(
    {"services": st.dictionaries(names, plausible, min_size=1, max_size=4)},
    optional={
        "volumes": st.dictionaries(st.sampled_from(["data", "x"]), st.none(), max_size=2),
        "networks": st.dictionaries(st.sampled_from(["front", "back"]), st.none(), max_size=2),
        "secrets": st.dictionaries(
            st.sampled_from(["s", "t"]),
            st.fixed_dictionaries({}, optional={"file": small_text, "environment": small_text}),
            max_size=2,
        ),
    },
)

SETTINGS = settings(
    max_examples=int(os.environ.get("COMPOUND_FUZZ_EXAMPLES", "300")),  # raise for deep runs
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def attempt(directory: Path, text: str) -> None:
    (directory / "compose.yaml").write_text(text)
    try:
        result = load_project(LoadOptions(cwd=str(directory), environ={"X": "1"}, profiles=["*"]))
    except CompoundError as exc:
        exc.render()  # rendering must not fail either
        return
    yaml.safe_dump(to_compose_dict(result.project))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@SETTINGS
@given(document)
def test_random_documents(fuzz_dir: Path, doc: dict[str, Any]) -> None:
    attempt(fuzz_dir, yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(plausible_document)
def test_plausible_documents(fuzz_dir: Path, doc: dict[str, Any]) -> None:
    attempt(fuzz_dir, yaml.safe_dump(doc, allow_unicode=True))


@SETTINGS
@given(st.text(alphabet="ab:-[]{}&*!|>'\"#%@`\n \t$,.?<=~0123456789", max_size=120))
def test_random_text(fuzz_dir: Path, text: str) -> None:
    attempt(fuzz_dir, "services:\n  web:\n" + text)
    attempt(fuzz_dir, text)


@SETTINGS
@given(st.binary(max_size=64))
def test_random_bytes(fuzz_dir: Path, data: bytes) -> None:
    (fuzz_dir / "compose.yaml").write_bytes(data)
    with contextlib.suppress(CompoundError):
        load_project(LoadOptions(cwd=str(fuzz_dir), environ={}))
