"""The host inventory of ``compound plan --hosts hosts.yaml``. ::

    hosts:
      - name: bm-01
        cpus: 64              # > 0; fractions allowed
        memory: 256GiB        # bytes, or a size: 512m, 64g, 1.5TiB (units are binary)
        class: bare-metal     # bare-metal (default) | virtual
        os: linux             # linux (default) | windows
        kvm: true             # default: true on bare-metal, false on virtual
        labels: {zone: a, ssd: "true"}
        tenant: acme          # optional: the host is dedicated to this tenant

Every problem of the file is reported at once, each as a :class:`SpecError`
with file, line, column and key path (``hosts[3].memory``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from compound.errors import Location, SpecError, SpecErrors
from compound.spec.nodes import Mark, Node, Path, render_path
from compound.spec.yamlload import parse_yaml, read_yaml_file

HostClass = Literal["bare-metal", "virtual"]
HostOS = Literal["linux", "windows"]

HOST_CLASSES: tuple[HostClass, ...] = ("bare-metal", "virtual")
HOST_OSES: tuple[HostOS, ...] = ("linux", "windows")
HOST_KEYS = ("name", "cpus", "memory", "class", "os", "kvm", "labels", "tenant")

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "ki": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "ti": 1024**4,
    "tib": 1024**4,
}


@dataclass(frozen=True)
class Host:
    name: str
    cpus: float
    memory: int  # bytes
    host_class: HostClass = "bare-metal"
    os: HostOS = "linux"
    kvm: bool = True
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    tenant: str | None = None  # dedicated to this tenant

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "cpus": self.cpus,
            "memory": self.memory,
            "class": self.host_class,
            "os": self.os,
            "kvm": self.kvm,
            "labels": dict(self.labels),
            "tenant": self.tenant,
        }


def parse_size(value: object) -> int | None:
    """Bytes from an int or a size string (Docker's binary units); None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        m = _SIZE_RE.match(value)
        if m and m.group(2).lower() in _UNITS:
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    return None


class _Checker:
    def __init__(self, file: str | None) -> None:
        self.file = file
        self.errors: list[SpecError] = []

    def fail(self, node: Node | None, path: Path, message: str, hint: str | None = None) -> None:
        mark = node.entry_mark() if node is not None else Mark(self.file, None, None)
        self.errors.append(
            SpecError(
                message,
                location=Location(
                    mark.file or self.file, mark.line, mark.column, render_path(path)
                ),
                hint=hint,
            )
        )


def _host(item: Node, index: int, check: _Checker, seen: dict[str, int]) -> Host | None:
    path: Path = ("hosts", index)
    if not isinstance(item.value, dict):
        check.fail(item, path, "each host must be a mapping with name, cpus and memory")
        return None
    entries: dict[str, Node] = item.value
    ok = True
    for key, child in entries.items():
        if key not in HOST_KEYS:
            close = difflib.get_close_matches(key, HOST_KEYS, n=1)
            check.fail(
                child,
                (*path, key),
                f"unknown host field {key!r}; known fields: {', '.join(HOST_KEYS)}",
                f"did you mean {close[0]!r}?" if close else None,
            )
            ok = False

    def need(key: str) -> Node | None:
        node = entries.get(key)
        if node is None or node.value is None:
            check.fail(item, (*path, key), f"host is missing {key!r}")
        return node if node is not None and node.value is not None else None

    name_node = need("name")
    name = None
    if name_node is not None:
        if not isinstance(name_node.value, str | int) or not str(name_node.value).strip():
            check.fail(name_node, (*path, "name"), "host name must be a non-empty string")
        else:
            name = str(name_node.value).strip()
            if name in seen:
                check.fail(
                    name_node,
                    (*path, "name"),
                    f"duplicate host name {name!r} (also hosts[{seen[name]}])",
                )
                ok = False
            seen.setdefault(name, index)

    cpus = None
    cpus_node = need("cpus")
    if cpus_node is not None:
        v = cpus_node.value
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            check.fail(cpus_node, (*path, "cpus"), f"cpus must be a number, not {v!r}")
        elif v <= 0:
            check.fail(cpus_node, (*path, "cpus"), f"cpus must be greater than 0, not {v}")
        else:
            cpus = float(v)

    memory = None
    mem_node = need("memory")
    if mem_node is not None:
        size = parse_size(mem_node.value)
        if size is None:
            check.fail(
                mem_node,
                (*path, "memory"),
                f"memory must be bytes or a size like 64GiB, not {mem_node.value!r}",
            )
        elif size <= 0:
            check.fail(
                mem_node, (*path, "memory"), f"memory must be greater than 0, not {mem_node.value}"
            )
        else:
            memory = size

    host_class: HostClass = "bare-metal"
    node: Node | None = entries.get("class")
    if node is not None:
        if node.value == "virtual":
            host_class = "virtual"
        elif node.value != "bare-metal":
            close = difflib.get_close_matches(str(node.value), HOST_CLASSES, n=1)
            check.fail(
                node,
                (*path, "class"),
                f"class must be bare-metal or virtual, not {node.value!r}",
                f"did you mean {close[0]!r}?" if close else None,
            )
            ok = False

    os_name: HostOS = "linux"
    node = entries.get("os")
    if node is not None:
        if node.value == "windows":
            os_name = "windows"
        elif node.value != "linux":
            check.fail(node, (*path, "os"), f"os must be linux or windows, not {node.value!r}")
            ok = False

    kvm = host_class == "bare-metal"
    node = entries.get("kvm")
    if node is not None:
        if not isinstance(node.value, bool):
            check.fail(node, (*path, "kvm"), f"kvm must be true or false, not {node.value!r}")
            ok = False
        else:
            kvm = node.value

    labels: dict[str, str] = {}
    node = entries.get("labels")
    if node is not None and node.value is not None:
        if not isinstance(node.value, dict):
            check.fail(node, (*path, "labels"), "labels must be a mapping of name to value")
            ok = False
        else:
            for key, val in node.value.items():
                if isinstance(val.value, dict | list) or val.value is None:
                    check.fail(val, (*path, "labels", key), "a label value must be a string")
                    ok = False
                else:
                    raw = val.value
                    labels[key] = str(raw).lower() if isinstance(raw, bool) else str(raw)

    tenant = None
    node = entries.get("tenant")
    if node is not None and node.value is not None:
        if not isinstance(node.value, str) or not node.value.strip():
            check.fail(node, (*path, "tenant"), "tenant must be a non-empty string")
            ok = False
        else:
            tenant = node.value.strip()

    if not ok or name is None or cpus is None or memory is None:
        return None
    return Host(name, cpus, memory, host_class, os_name, kvm, labels, tenant)


def _hosts_from(docs: list[Node], file: str) -> list[Host]:
    check = _Checker(file)
    if not docs:
        raise SpecError(
            "the hosts file is empty", location=Location(file), hint="list hosts under 'hosts:'"
        )
    root = docs[0]
    items: Node | None = None
    if isinstance(root.value, dict):
        for key, node in root.value.items():
            if key != "hosts":
                check.fail(node, (key,), f"unknown top-level key {key!r}; expected 'hosts'")
        items = root.get("hosts")
        if items is None:
            check.fail(root, ("hosts",), "the hosts file has no 'hosts' list")
    elif isinstance(root.value, list):
        items = root  # a bare list of hosts is accepted too
    else:
        check.fail(root, (), "a hosts file is a mapping with a 'hosts' list")
    hosts: list[Host] = []
    if items is not None:
        if not isinstance(items.value, list):
            check.fail(items, ("hosts",), "'hosts' must be a list of hosts")
        elif not items.value and not check.errors:
            check.fail(items, ("hosts",), "'hosts' is empty: there is nowhere to place anything")
        else:
            seen: dict[str, int] = {}
            for i, item in enumerate(items.value):
                host = _host(item, i, check, seen)
                if host is not None:
                    hosts.append(host)
    if len(check.errors) == 1:
        raise check.errors[0]
    if check.errors:
        raise SpecErrors(check.errors)
    return hosts


def parse_hosts(text: str | bytes, file: str = "<hosts>") -> list[Host]:
    return _hosts_from(parse_yaml(text, file), file)


def load_hosts(path: str) -> list[Host]:
    """Hosts from a file; every problem is a located :class:`SpecError`."""
    return _hosts_from(read_yaml_file(path), path)


def host_from_facts(
    name: str,
    cpus: float,
    memory: int,
    *,
    kvm: bool | None = None,
    host_is_vm: bool | None = None,
    os: HostOS = "linux",
    labels: Mapping[str, Any] | None = None,
) -> Host:
    """The local machine as a one-host inventory (for the check at ``up``)."""
    return Host(
        name=name,
        cpus=cpus,
        memory=memory,
        host_class="virtual" if host_is_vm else "bare-metal",
        os=os,
        kvm=bool(kvm),
        labels={k: str(v) for k, v in (labels or {}).items()},
    )
