"""Top-level ``networks``, ``volumes``, ``secrets`` and ``configs`` → model objects.

Engine names follow Compose: ``{project}_{key}`` unless ``name:`` is given;
an external resource is named ``name`` or its key. File sources become
absolute; an ``environment`` source keeps the variable name and gets its
content from the project environment when a running service uses it.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from . import convert
from .context import Context, invalid
from .model import FileObject, Network, Volume
from .naming import engine_name


def _external(
    spec: dict[str, Any], key: str, path: tuple[str, str], ctx: Context
) -> tuple[bool, str | None]:
    """(external?, explicit name) with the deprecated ``external: {name: x}`` folded in."""
    ext = spec.get("external")
    name = spec.get("name")
    if isinstance(ext, dict):
        ext_name = ext.get("name")
        if ext_name is not None:
            ctx.warn(
                (*path, "external", "name"),
                "external.name is deprecated; set name: and external: true instead",
            )
            if name is not None and name != ext_name:
                invalid((*path, "name"), "name and external.name conflict", "use only name:")
            name = ext_name
        return True, name
    return bool(ext), name


def _resource_name(ctx: Context, key: str, external: bool, name: str | None) -> str:
    if name is not None:
        return str(name)
    return key if external else engine_name(ctx.project, key)


def _conflicts(spec: dict[str, Any], external: bool) -> list[str]:
    if not external:
        return []
    return [k for k in spec if k not in ("name", "external") and not k.startswith("x-")]


def networks(raw: dict[str, Any], ctx: Context, needs_default: bool) -> dict[str, Network]:
    out: dict[str, Network] = {}
    for key, spec in raw.items():
        spec = spec or {}
        path = ("networks", key)

        def build(
            key: str = key, spec: dict[str, Any] = spec, path: tuple[str, str] = path
        ) -> Network:
            external, name = _external(spec, key, path, ctx)
            for extra in _conflicts(spec, external):
                ctx.warn((*path, extra), "ignored: the network is external")
            if spec.get("enable_ipv4") is False:
                invalid(
                    (*path, "enable_ipv4"),
                    "an IPv6-only network (enable_ipv4: false) needs Docker Engine 28.0 "
                    "(API 1.48); compound does not create one",
                    "remove enable_ipv4 (IPv4 stays on, the default)",
                )
            return Network(
                key=key,
                name=_resource_name(ctx, key, external, name),
                driver=spec.get("driver"),
                driver_opts=_options(spec.get("driver_opts")),
                external=external,
                internal=bool(spec.get("internal", False)),
                attachable=bool(spec.get("attachable", False)),
                enable_ipv6=bool(spec.get("enable_ipv6", False)),
                ipam=dict(spec.get("ipam") or {}),
                labels=convert.strict_map(spec.get("labels") or {}, (*path, "labels")),
            )

        network = ctx.guarded(path, build)
        if network is not None:
            out[key] = network
    if needs_default and "default" not in out:
        out["default"] = Network(key="default", name=engine_name(ctx.project, "default"))
    return out


def volumes(raw: dict[str, Any], ctx: Context) -> dict[str, Volume]:
    out: dict[str, Volume] = {}
    for key, spec in raw.items():
        spec = spec or {}
        path = ("volumes", key)

        def build(
            key: str = key, spec: dict[str, Any] = spec, path: tuple[str, str] = path
        ) -> Volume:
            external, name = _external(spec, key, path, ctx)
            conflicts = _conflicts(spec, external)
            if conflicts:
                invalid(
                    (*path, conflicts[0]),
                    f"conflicting parameters 'external' and {conflicts[0]!r}",
                    "an external volume is created outside compound; only name: applies",
                )
            driver_opts = _options(spec.get("driver_opts"))
            if spec.get("driver") in (None, "local") and driver_opts.get("o") == "bind":
                device = driver_opts.get("device")
                if device:  # a bind-backed local volume: its device is a host path
                    driver_opts["device"] = ctx.host_path(device)
            return Volume(
                key=key,
                name=_resource_name(ctx, key, external, name),
                driver=spec.get("driver"),
                driver_opts=driver_opts,
                external=external,
                labels=convert.strict_map(spec.get("labels") or {}, (*path, "labels")),
            )

        volume = ctx.guarded(path, build)
        if volume is not None:
            out[key] = volume
    return out


def file_objects(
    raw: dict[str, Any], ctx: Context, kind: str, used: Set[str]
) -> dict[str, FileObject]:
    """Top-level ``secrets`` (kind "secrets") or ``configs``; ``used``: keys in use."""
    sources = ("file", "environment") if kind == "secrets" else ("file", "environment", "content")
    out: dict[str, FileObject] = {}
    for key, spec in raw.items():
        spec = spec or {}
        path = (kind, key)

        def build(
            key: str = key, spec: dict[str, Any] = spec, path: tuple[str, str] = path
        ) -> FileObject:
            external, name = _external(spec, key, path, ctx)
            given = [s for s in sources if spec.get(s) is not None]
            if len(given) > 1:
                invalid(
                    (*path, given[1]),
                    f"{' and '.join(given)} cannot be used together",
                    f"give exactly one of {', '.join(sources)}",
                )
            if spec.get("driver") is not None and not external:
                invalid(
                    (*path, "driver"),
                    f"{kind[:-1]} {key!r} comes from driver {spec['driver']!r}: a Swarm secret "
                    "store, which a single Docker Engine (and so compound) cannot read",
                    "give it file: or environment: instead",
                )
            for swarm_only in ("template_driver", "labels"):
                if spec.get(swarm_only) is not None:
                    ctx.warn(
                        (*path, swarm_only),
                        f"applies to Swarm {kind} objects only; a single engine has none "
                        "(compound mounts the content as is, as docker compose does); ignored",
                    )
            if not given and not external:
                invalid(
                    path,
                    f"{kind[:-1]} {key!r} needs one of {', '.join(sources)}",
                    "or mark it external: true",
                )
            content = spec.get("content")
            variable = spec.get("environment")
            if variable is not None and key in used:
                # not recorded as a used variable: it is secret. Unset, it is an error
                # only when a service is created with it (`up`), as in Compose: `config`
                # of a file whose secrets come from a CI's environment must work anywhere
                content = ctx.env.get(variable)
            return FileObject(
                key=key,
                name=_resource_name(ctx, key, external, name),
                file=ctx.host_path(spec["file"]) if spec.get("file") is not None else None,
                environment=variable,
                content=content,
                external=external,
            )

        obj = ctx.guarded(path, build)
        if obj is not None:
            out[key] = obj
    return out


def _options(value: Any) -> dict[str, str]:
    if not value:
        return {}
    return {k: convert.scalar_text(v) for k, v in value.items() if v is not None}
