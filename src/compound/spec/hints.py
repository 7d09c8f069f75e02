"""The ``x-compound.hints`` a service may carry, and their validation.

Hints are what the Compose file cannot say by itself: who owns the code,
how much it is trusted, what the business needs from it. They are optional;
each one feeds one or more rules in :mod:`compound.advisor.rules`. ::

    services:
      billing:
        x-compound:
          runtime: auto
          hints:
            tenant: acme              # any non-empty string
            trust: untrusted          # trusted | untrusted
            latency: critical         # critical | normal
            os: windows               # linux | windows
            legacy: true              # a monolith needing a full OS, systemd, its own kernel
            kernel: "5.15"            # a version, a list of modules, or {version, modules}
            disaster_recovery: true   # needs site recovery / live migration
            licensing: true           # hypervisor licences are a cost to avoid
            automation: true          # hosts are provisioned through an API
            density: true             # pack as many as possible

The spec loader validates them (normalize.py), with the position of every
bad value; the advisor reads the typed :class:`Hints`. A wrong name or
value is a :class:`SpecError` at
``services.<name>.x-compound.hints.<hint>`` naming the allowed values, with
a did-you-mean for misspelt names. All problems of a project are reported
in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from compound.errors import Location, SpecError
from compound.spec.nodes import Path, render_path

Locate = Callable[[Path], Location]

Trust = Literal["trusted", "untrusted"]
Latency = Literal["critical", "normal"]
OS = Literal["linux", "windows"]


@dataclass(frozen=True)
class KernelNeed:
    """A specific kernel: a version string and/or modules it must load."""

    version: str | None = None
    modules: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.version:
            parts.append(f"kernel {self.version}")
        if self.modules:
            parts.append("modules " + ", ".join(self.modules))
        return " and ".join(parts) or "a specific kernel"


@dataclass(frozen=True)
class Hints:
    tenant: str | None = None
    trust: Trust | None = None
    latency: Latency | None = None
    os: OS | None = None
    legacy: bool = False
    kernel: KernelNeed | None = None
    disaster_recovery: bool = False
    licensing: bool = False
    automation: bool = False
    density: bool = False

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in HINTS:
            value = getattr(self, name)
            if isinstance(value, KernelNeed):
                value = {"version": value.version, "modules": list(value.modules)}
            out[name] = value
        return out


# name → (kind, allowed values for enums, what it means). The single source for
# validation, error messages and `compound advise --help`.
HINTS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "tenant": ("string", (), "who owns the workload; different tenants must not share a kernel"),
    "trust": ("enum", ("trusted", "untrusted"), "untrusted code gets its own kernel"),
    "latency": ("enum", ("critical", "normal"), "critical work avoids hypervisors"),
    "os": ("enum", ("linux", "windows"), "the guest operating system"),
    "legacy": ("bool", (), "a monolith needing a full OS, systemd or its own kernel"),
    "kernel": ("kernel", (), "a kernel version and/or modules it needs"),
    "disaster_recovery": ("bool", (), "needs site recovery / live migration"),
    "licensing": ("bool", (), "hypervisor licences are a cost to avoid"),
    "automation": ("bool", (), "hosts must be provisioned through an API"),
    "density": ("bool", (), "pack as many instances as possible"),
}

_KERNEL_KEYS = ("version", "modules")


class _Fail(Protocol):
    def __call__(self, path: Path, message: str, hint: str | None = None) -> None: ...


def hints_path(service: str, *rest: str | int) -> Path:
    return ("services", service, "x-compound", "hints", *rest)


def _no_locate(path: Path) -> Location:
    return Location(path=render_path(path))


def check_hints(raw: Any, service: str, fail: _Fail) -> Hints:
    """Typed hints of one service; each problem goes to ``fail`` (path, message, hint)."""
    values: dict[str, Any] = {}
    if not isinstance(raw, Mapping):  # the model types it, but be safe for direct callers
        fail(hints_path(service), "hints must be a mapping of hint name to value")
        return Hints()
    for name, value in raw.items():
        path = hints_path(service, str(name))
        spec = HINTS.get(str(name))
        if spec is None:
            close = difflib.get_close_matches(str(name).replace("-", "_"), HINTS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else None
            fail(path, f"unknown hint {name!r}; known hints: {', '.join(HINTS)}", hint)
            continue
        kind, allowed, _ = spec
        if kind == "string":
            if not isinstance(value, str) or not value.strip():
                fail(path, f"hint {name!r} must be a non-empty string, not {value!r}")
                continue
            values[name] = value.strip()
        elif kind == "enum":
            if not isinstance(value, str) or value not in allowed:
                close = difflib.get_close_matches(str(value), allowed, n=1)
                fail(
                    path,
                    f"hint {name!r} must be one of {', '.join(allowed)}, not {value!r}",
                    f"did you mean {close[0]!r}?" if close else None,
                )
                continue
            values[name] = value
        elif kind == "bool":
            if not isinstance(value, bool):
                fail(path, f"hint {name!r} must be true or false, not {value!r}")
                continue
            values[name] = value
        else:
            kernel = _parse_kernel(value, path, fail)
            if kernel is not None:
                values[name] = kernel
    return Hints(**values)


def parse_hints(
    raw: Mapping[str, Any], service: str, locate: Locate | None = None
) -> tuple[Hints, list[SpecError]]:
    """Typed hints of one service and every problem found (empty when valid)."""
    where = locate or _no_locate
    errors: list[SpecError] = []

    def fail(path: Path, message: str, hint: str | None = None) -> None:
        errors.append(SpecError(message, location=where(path), hint=hint))

    return check_hints(raw, service, fail), errors


def _parse_kernel(value: Any, path: Path, fail: _Fail) -> KernelNeed | None:
    """``"5.15"`` | ``[kvm, wireguard]`` | ``{version: "5.15", modules: [...]}``."""
    usage = 'use a version ("6.1"), a list of modules, or {version: ..., modules: [...]}'
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value).strip()
        if text:
            return KernelNeed(version=text)
    elif isinstance(value, list):
        listed = _modules(value)
        if listed is not None:
            return KernelNeed(modules=listed)
    elif isinstance(value, Mapping):
        bad = False
        for key in value:
            if key not in _KERNEL_KEYS:
                close = difflib.get_close_matches(str(key), _KERNEL_KEYS, n=1)
                fail(
                    (*path, str(key)),
                    f"unknown kernel field {key!r}; known fields: version, modules",
                    f"did you mean {close[0]!r}?" if close else None,
                )
                bad = True
        version = value.get("version")
        if version is not None and (isinstance(version, bool) or not str(version).strip()):
            fail((*path, "version"), f"kernel version must be a string, not {version!r}")
            bad = True
        modules: tuple[str, ...] | None = ()
        if "modules" in value:
            mods = value["modules"]
            modules = _modules(mods) if isinstance(mods, list) else None
            if modules is None:
                fail((*path, "modules"), "kernel modules must be a list of module names")
                bad = True
        if bad:
            return None
        if version is None and not modules:
            fail(path, "kernel hint is empty", usage)
            return None
        return KernelNeed(
            version=str(version).strip() if version is not None else None,
            modules=modules or (),
        )
    fail(path, f"hint 'kernel' cannot be {value!r}", usage)
    return None


def _modules(items: list[Any]) -> tuple[str, ...] | None:
    if not items or not all(isinstance(m, str) and m.strip() for m in items):
        return None
    return tuple(m.strip() for m in items)
