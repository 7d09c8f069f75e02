from __future__ import annotations

from pathlib import Path

import pytest

from compound.errors import SpecError, SpecErrors
from compound.placement import Host, load_hosts, parse_hosts
from compound.placement.inventory import host_from_facts, parse_size

GiB = 1024**3


def test_a_full_host_entry():
    (h,) = parse_hosts(
        "hosts:\n"
        "  - name: bm-1\n"
        "    cpus: 32\n"
        "    memory: 128GiB\n"
        "    class: bare-metal\n"
        "    os: linux\n"
        "    kvm: true\n"
        "    labels: {zone: a, ssd: true}\n"
        "    tenant: acme\n"
    )
    labels = {"zone": "a", "ssd": "true"}  # booleans become the strings constraints compare
    assert h == Host("bm-1", 32.0, 128 * GiB, "bare-metal", "linux", True, labels, "acme")


def test_defaults_and_a_bare_list():
    bm, v = parse_hosts(
        "- {name: a, cpus: 2, memory: 4g}\n- {name: b, cpus: 1.5, memory: 1024, class: virtual}\n"
    )
    assert (bm.host_class, bm.os, bm.kvm, bm.tenant) == ("bare-metal", "linux", True, None)
    assert (v.host_class, v.kvm, v.cpus, v.memory) == ("virtual", False, 1.5, 1024)


@pytest.mark.parametrize(
    ("text", "size"),
    [("512m", 512 * 1024**2), ("1.5GiB", int(1.5 * GiB)), ("64 gb", 64 * GiB), ("2t", 2 * 1024**4)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "12 parsecs", True, None, "-"])
def test_bad_sizes(bad):
    assert parse_size(bad) is None


@pytest.mark.parametrize(
    ("entry", "path", "fragment"),
    [
        ("{name: a, cpus: -2, memory: 1g}", "hosts[0].cpus", "greater than 0, not -2"),
        ("{name: a, cpus: 0, memory: 1g}", "hosts[0].cpus", "greater than 0"),
        ("{name: a, cpus: two, memory: 1g}", "hosts[0].cpus", "must be a number"),
        ("{name: a, memory: 1g}", "hosts[0].cpus", "missing 'cpus'"),
        ("{name: a, cpus: 2}", "hosts[0].memory", "missing 'memory'"),
        ("{name: a, cpus: 2, memory: 0}", "hosts[0].memory", "greater than 0"),
        ("{name: a, cpus: 2, memory: -5}", "hosts[0].memory", "greater than 0"),
        ("{name: a, cpus: 2, memory: lots}", "hosts[0].memory", "size like 64GiB"),
        ("{cpus: 2, memory: 1g}", "hosts[0].name", "missing 'name'"),
        ("{name: a, cpus: 2, memory: 1g, class: metal}", "hosts[0].class", "bare-metal or virtual"),
        ("{name: a, cpus: 2, memory: 1g, os: bsd}", "hosts[0].os", "linux or windows"),
        ("{name: a, cpus: 2, memory: 1g, kvm: maybe}", "hosts[0].kvm", "true or false"),
        ("{name: a, cpus: 2, memory: 1g, labels: [x]}", "hosts[0].labels", "mapping"),
        ("{name: a, cpus: 2, memory: 1g, tenant: ''}", "hosts[0].tenant", "non-empty"),
        ("{name: a, cpus: 2, memory: 1g, cpu: 4}", "hosts[0].cpu", "unknown host field 'cpu'"),
        ("just-a-name", "hosts[0]", "must be a mapping"),
    ],
)
def test_bad_entries_are_located(entry, path, fragment):
    with pytest.raises(SpecError) as info:
        parse_hosts(f"hosts:\n  - {entry}\n", "hosts.yaml")
    err = info.value
    assert err.location.path == path
    assert fragment in err.message
    assert err.location.file == "hosts.yaml" and err.location.line == 2


def test_unknown_field_suggests_the_right_one():
    with pytest.raises(SpecError) as info:
        parse_hosts("hosts:\n  - {name: a, cpus: 2, memory: 1g, lables: {}}\n")
    assert info.value.hint == "did you mean 'labels'?"


def test_all_problems_are_reported_together_with_lines():
    text = "hosts:\n  - {name: a, cpus: -1, memory: 1g}\n  - {name: a, cpus: 1, memory: x}\n"
    with pytest.raises(SpecErrors) as info:
        parse_hosts(text, "h.yaml")
    got = [(e.location.line, e.location.path) for e in info.value.errors]
    assert got == [(2, "hosts[0].cpus"), (3, "hosts[1].name"), (3, "hosts[1].memory")]
    assert "duplicate host name 'a'" in info.value.errors[1].message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("hosts: []\n", "'hosts' is empty"),
        ("hosts: {a: 1}\n", "must be a list"),
        ("machines: []\n", "unknown top-level key 'machines'"),
        ("42\n", "mapping with a 'hosts' list"),
        ("hosts: [\n", "invalid YAML"),
    ],
)
def test_bad_files(text, fragment):
    with pytest.raises((SpecError, SpecErrors)) as info:
        parse_hosts(text, "h.yaml")
    assert fragment in info.value.render()


def test_load_hosts_reads_a_file_and_reports_a_missing_one(tmp_path: Path):
    f = tmp_path / "hosts.yaml"
    f.write_text("hosts:\n  - {name: a, cpus: 2, memory: 2GiB}\n")
    assert [h.name for h in load_hosts(str(f))] == ["a"]
    with pytest.raises(SpecError) as info:
        load_hosts(str(tmp_path / "nope.yaml"))
    assert "file not found" in info.value.message


def test_host_from_doctor_facts():
    h = host_from_facts("local", 8, 16 * GiB, kvm=True, host_is_vm=True)
    assert (h.host_class, h.kvm, h.cpus) == ("virtual", True, 8)
