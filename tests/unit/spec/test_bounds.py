"""Bounded input: hostile or mistyped files fail fast at `config` with a
location, never by reading forever, exhausting memory or taking minutes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from compound.errors import CompoundError
from compound.spec import LoadOptions, load_project
from compound.spec.files import MAX_FILE_BYTES


def _load(tmp_path: Path, text: str, name: str = "compose.yaml") -> None:
    (tmp_path / name).write_text(text)
    load_project(LoadOptions(files=(str(tmp_path / name),), project_name="b"))


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(CompoundError) as err:
        _load(tmp_path, text)
    return err.value.render()


def test_extends_from_a_device_is_refused_where_it_is_named(tmp_path: Path) -> None:
    t0 = time.monotonic()
    text = _error(tmp_path, "services:\n  a:\n    extends: {file: /dev/zero, service: x}\n")
    assert time.monotonic() - t0 < 5
    assert "compose.yaml:3:5: services.a.extends.file" in text
    assert "/dev/zero is not a regular file" in text


def test_a_fifo_is_never_opened_for_reading(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "env.fifo")  # nobody writes: a plain open() would block forever
    text = _error(tmp_path, "services:\n  a:\n    image: x\n    env_file: ./env.fifo\n")
    assert "compose.yaml:4:5: services.a.env_file" in text and "not a regular file" in text


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(b"services:\n  a:\n    image: x\n")
        f.truncate(MAX_FILE_BYTES + 10)  # sparse: costs no disk
    with pytest.raises(CompoundError, match=r"larger than 16 MiB"):
        load_project(LoadOptions(files=(str(big),), project_name="b"))


def test_an_anchor_aliased_many_times_stops_at_the_budget(tmp_path: Path) -> None:
    labels = "".join(f"      l{i}: *big\n" for i in range(200))
    text = f'x-big: &big "{"x" * 1_000_000}"\nservices:\n  a:\n    image: x\n    labels:\n{labels}'
    t0 = time.monotonic()
    out = _error(tmp_path, text)
    assert time.monotonic() - t0 < 20
    assert "larger than 16 MiB after expanding YAML aliases" in out
    assert "services.a.labels.l" in out


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("deploy: {replicas: 1000000000}", "services.a.deploy.replicas: must be at most 10000"),
        ("scale: 20000", "services.a.scale: must be at most 10000"),
        ("x-compound: {vm: {memory: 99999999999999999999999999t}}", "larger than 16 TiB"),
        ("x-compound: {vm: {vcpus: 1e20}}", "services.a.x-compound.vm.vcpus: must be at most 288"),
        ("x-compound: {vm: {vcpus: 0}}", "must be at least 1"),
        ("mem_limit: 99999999999999999999999999t", "larger than 8 EiB"),
    ],
)
def test_sane_maxima(tmp_path: Path, snippet: str, message: str) -> None:
    text = _error(tmp_path, f"services:\n  a:\n    image: x\n    {snippet}\n")
    assert message in text and "compose.yaml:4:" in text, text


def test_the_maxima_leave_real_values_alone(tmp_path: Path) -> None:
    _load(
        tmp_path,
        "services:\n  a:\n    image: x\n    deploy: {replicas: 10000}\n"
        "    mem_limit: 64g\n    x-compound: {vm: {memory: 1t, vcpus: 64}}\n",
    )
