"""Host records: one directory per host, as Docker Machine kept them.

    $COMPOUND_HOSTS_DIR (else $XDG_STATE_HOME/compound/hosts)/
      ssh_config          one Host block per host (compound.NAME), included
                          from ~/.ssh/config so `docker --context NAME` and
                          plain `ssh compound.NAME` reach the same machine
      known_hosts         host keys, learnt on first contact
      NAME/host.json      driver, address, user, facts, labels, tenant
      NAME/id_ed25519     the generated key (0600; the directory is 0700)

The record is what compound was told and what it measured; whether the
host is up right now is asked of the host, never read from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from compound.dirs import xdg_state_dir
from compound.runtimes.hostops import atomic_write

from .errors import HostError

Driver = Literal["local", "ssh", "nested", "qemu"]
DRIVERS: tuple[Driver, ...] = ("local", "ssh", "nested", "qemu")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
RECORD = "host.json"
KEY = "id_ed25519"


def hosts_dir() -> Path:
    env = os.environ.get("COMPOUND_HOSTS_DIR")
    if env:
        return Path(env)
    return xdg_state_dir() / "hosts"


def ssh_alias(name: str) -> str:
    return f"compound.{name}"


@dataclass
class HostRecord:
    name: str
    driver: Driver
    address: str | None = None  # None: this machine
    user: str = "root"
    port: int = 22
    labels: dict[str, str] = field(default_factory=dict)
    tenant: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # measured on the host
    machine: dict[str, Any] = field(default_factory=dict)  # driver's own: container, disk, pid

    @property
    def context(self) -> str:
        """The Docker context of this host (same name)."""
        return self.name

    @property
    def docker_host(self) -> str:
        if self.address is None:
            return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        return f"ssh://{ssh_alias(self.name)}"

    @property
    def key_path(self) -> Path:
        return hosts_dir() / self.name / KEY

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["context"] = self.context
        out["docker_host"] = self.docker_host
        out["identity_file"] = str(self.key_path) if self.address is not None else None
        return out


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise HostError(
            name,
            "not a valid host name",
            hint="use lower-case letters, digits, '.', '_' and '-' (at most 63), "
            "starting with a letter or digit",
        )


def host_dir(name: str) -> Path:
    return hosts_dir() / name


def exists(name: str) -> bool:
    return (host_dir(name) / RECORD).is_file()


def load(name: str) -> HostRecord:
    path = host_dir(name) / RECORD
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        known = ", ".join(r.name for r in load_all()) or "none"
        raise HostError(
            name,
            "no such host",
            hint=f"known hosts: {known}; create one with `compound host create`",
        ) from None
    except (OSError, ValueError) as exc:
        raise HostError(name, f"cannot read its record {path}: {exc}") from exc
    return HostRecord(**data)


def load_all() -> list[HostRecord]:
    root = hosts_dir()
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if (d / RECORD).is_file():
            out.append(load(d.name))
    return out


def save(record: HostRecord) -> None:
    d = host_dir(record.name)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    d.chmod(0o700)
    atomic_write(d / RECORD, json.dumps(asdict(record), indent=2, sort_keys=True).encode(), 0o600)


def remove(name: str) -> None:
    shutil.rmtree(host_dir(name), ignore_errors=True)
