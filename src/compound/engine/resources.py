"""A project's networks and volumes in the engine: created, checked, removed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, cast

import docker.errors

from compound import __version__
from compound.engine.client import Client, engine_errors
from compound.engine.labels import (
    LABEL_NETWORK,
    LABEL_PROJECT,
    LABEL_VERSION,
    LABEL_VOLUME,
)
from compound.errors import (
    EngineError,
)
from compound.spec.model import Network, Project, Volume

NETWORK_RELEASE_TIMEOUT = 10.0  # seconds to wait for endpoints of removed containers


# --- networks --------------------------------------------------------------------


def network_create_args(project_name: str, network: Network) -> dict[str, Any]:
    """Keyword arguments of ``APIClient.create_network`` for a project network."""
    labels = dict(network.labels)
    labels.update(
        {LABEL_PROJECT: project_name, LABEL_NETWORK: network.key, LABEL_VERSION: __version__}
    )
    args: dict[str, Any] = {
        "name": network.name,
        "driver": network.driver or "bridge",
        "options": dict(network.driver_opts) or None,
        "internal": network.internal,
        "attachable": network.attachable or None,
        "enable_ipv6": network.enable_ipv6,
        "labels": labels,
        "check_duplicate": True,
    }
    if network.ipam:
        args["ipam"] = ipam_config(network.ipam)
    return args


def ipam_config(ipam: Mapping[str, Any]) -> dict[str, Any]:
    """Compose's ``ipam`` (driver, config[subnet, ip_range, gateway,
    aux_addresses], options) in the engine's field names."""
    pools = []
    for pool in ipam.get("config") or ():
        entry = {
            "Subnet": pool.get("subnet"),
            "IPRange": pool.get("ip_range"),
            "Gateway": pool.get("gateway"),
            "AuxiliaryAddresses": pool.get("aux_addresses"),
        }
        pools.append({k: v for k, v in entry.items() if v})
    return {
        "Driver": ipam.get("driver") or "default",
        "Config": pools,
        "Options": dict(ipam.get("options") or {}),
    }


def ensure_network(client: Client, project: Project, network: Network) -> bool:
    """Create the project network unless it exists; True if created."""
    existing = _inspect_network(client, network.name)
    if network.external:
        if existing is None:
            raise EngineError(
                f"external network {network.name!r} does not exist",
                hint=f"create it: `docker network create {network.name}`",
            )
        return False
    if existing is not None:
        _check_network(project.name, network, existing)
        return False
    args = network_create_args(project.name, network)
    try:
        with engine_errors(f"create network {network.name!r}"):
            client.api.create_network(**args)
    except EngineError as exc:
        # Another compound created it meanwhile: fine if it matches.
        existing = _inspect_network(client, network.name)
        if existing is None:
            raise exc from exc.__cause__
        _check_network(project.name, network, existing)
        return False
    return True


def _inspect_network(client: Client, name: str) -> dict[str, Any] | None:
    _dedupe_network(client, name)
    with engine_errors(f"inspect network {name!r}"):
        try:
            data = client.api.inspect_network(name)
        except docker.errors.NotFound:
            return None
    # Inspect also resolves id prefixes; only an exact name is this network.
    return cast(dict[str, Any], data) if data.get("Name") == name else None


def _dedupe_network(client: Client, name: str) -> None:
    """The engine lets two concurrent creates make two networks of one name
    (compound before its project lock did); every later lookup by name then
    fails as ambiguous. Keep the one with endpoints (else the oldest) and
    remove the other compound-made copies, which nothing uses."""
    with engine_errors(f"list networks named {name!r}"):
        rows = [n for n in client.api.networks(names=[name]) if n.get("Name") == name]
    if len(rows) < 2:
        return
    ours = [n for n in rows if (n.get("Labels") or {}).get(LABEL_PROJECT)]
    if len(ours) < len(rows):
        return  # someone else's network shares the name: theirs to sort out
    detail = []
    for n in ours:
        with engine_errors(f"inspect network {n['Id'][:12]}"):
            detail.append(client.api.inspect_network(n["Id"]))
    detail.sort(key=lambda n: (not n.get("Containers"), str(n.get("Created", ""))))
    for extra in detail[1:]:
        if extra.get("Containers"):
            continue  # in use: removing it would cut instances off; down repairs it
        with (
            contextlib.suppress(docker.errors.NotFound),
            engine_errors(f"remove duplicate network {name!r} ({extra['Id'][:12]})"),
        ):
            client.api.remove_network(extra["Id"])


def network_differences(network: Network, existing: Mapping[str, Any]) -> list[str]:
    """How an existing engine network differs from the declared one."""
    diffs = []
    want_driver = network.driver or "bridge"
    if existing.get("Driver") != want_driver:
        diffs.append(f"driver {existing.get('Driver')} (declared: {want_driver})")
    if dict(existing.get("Options") or {}) != dict(network.driver_opts):
        diffs.append(
            f"driver_opts {existing.get('Options') or {}} (declared: {network.driver_opts})"
        )
    if bool(existing.get("Internal")) != network.internal:
        diffs.append(f"internal {bool(existing.get('Internal'))} (declared: {network.internal})")
    if bool(existing.get("EnableIPv6")) != network.enable_ipv6:
        diffs.append(
            f"enable_ipv6 {bool(existing.get('EnableIPv6'))} (declared: {network.enable_ipv6})"
        )
    want_subnets = {p.get("subnet") for p in network.ipam.get("config") or () if p.get("subnet")}
    have_subnets = {p.get("Subnet") for p in (existing.get("IPAM") or {}).get("Config") or ()}
    if want_subnets and want_subnets != have_subnets:
        diffs.append(f"subnets {sorted(have_subnets)} (declared: {sorted(want_subnets)})")
    return diffs


def _check_network(project_name: str, network: Network, existing: Mapping[str, Any]) -> None:
    diffs = network_differences(network, existing)
    if not diffs:
        return
    raise _config_conflict(
        "network",
        network.name,
        diffs,
        ours=(existing.get("Labels") or {}).get(LABEL_PROJECT) == project_name,
        ours_hint="run `compound down` to remove the project's networks, then `compound up`",
    )


def _config_conflict(
    kind: str, name: str, diffs: Sequence[str], *, ours: bool, ours_hint: str
) -> EngineError:
    """A network or volume that exists but differs from the file: ours can be
    recreated by compound, anyone else's is the user's to remove or adopt."""
    hint = (
        ours_hint
        if ours
        else (f"remove it (`docker {kind} rm {name}`) or declare it `external: true`")
    )
    return EngineError(
        f"{kind} {name!r} exists with a different configuration: " + "; ".join(diffs), hint=hint
    )


def remove_networks(client: Client, project_name: str) -> list[str]:
    """Remove the project's own networks (never external ones); their names.

    In parallel: each removal waits on the engine's firewall rules (~0.2 s)."""
    nets = _labelled(client, "networks", project_name)

    def remove(net: dict[str, Any]) -> str | None:
        name = str(net["Name"])
        deadline = time.monotonic() + NETWORK_RELEASE_TIMEOUT
        while True:
            try:
                with engine_errors(f"remove network {name!r}"):
                    client.api.remove_network(net["Id"])
                return name
            except EngineError as exc:
                if isinstance(exc.__cause__, docker.errors.NotFound):
                    return None
                # the engine releases endpoints of just-removed containers
                # asynchronously; only a foreign container keeps one for long
                if "active endpoints" in str(exc.__cause__) and time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                exc.hint = exc.hint or "a container outside the project may still be attached to it"
                raise

    with ThreadPoolExecutor(max_workers=max(1, len(nets))) as pool:
        return [name for name in pool.map(remove, nets) if name is not None]


# --- volumes ----------------------------------------------------------------------


def volume_create_args(project_name: str, volume: Volume) -> dict[str, Any]:
    labels = dict(volume.labels)
    labels.update(
        {LABEL_PROJECT: project_name, LABEL_VOLUME: volume.key, LABEL_VERSION: __version__}
    )
    return {
        "name": volume.name,
        "driver": volume.driver or "local",
        "driver_opts": dict(volume.driver_opts) or None,
        "labels": labels,
    }


def ensure_volume(client: Client, project: Project, volume: Volume) -> bool:
    """Create the project volume unless it exists; True if created."""
    existing = inspect_volume(client, volume.name)
    if volume.external:
        if existing is None:
            raise EngineError(
                f"external volume {volume.name!r} does not exist",
                hint=f"create it: `docker volume create {volume.name}`",
            )
        return False
    if existing is not None:
        _check_volume(project.name, volume, existing)
        return False
    with engine_errors(f"create volume {volume.name!r}"):
        client.api.create_volume(**volume_create_args(project.name, volume))
    return True


def inspect_volume(client: Client, name: str) -> dict[str, Any] | None:
    with engine_errors(f"inspect volume {name!r}"):
        try:
            return client.api.inspect_volume(name)
        except docker.errors.NotFound:
            return None


def _check_volume(project_name: str, volume: Volume, existing: Mapping[str, Any]) -> None:
    diffs = []
    want_driver = volume.driver or "local"
    if existing.get("Driver") != want_driver:
        diffs.append(f"driver {existing.get('Driver')} (declared: {want_driver})")
    if dict(existing.get("Options") or {}) != dict(volume.driver_opts):
        diffs.append(
            f"driver_opts {existing.get('Options') or {}} (declared: {volume.driver_opts})"
        )
    if not diffs:
        return
    raise _config_conflict(
        "volume",
        volume.name,
        diffs,
        ours=(existing.get("Labels") or {}).get(LABEL_PROJECT) == project_name,
        ours_hint="its data would be lost by recreating it:"
        " `compound down --volumes`, then `compound up`",
    )


def remove_volume(client: Client, name: str, *, force: bool = False) -> bool:
    """Remove one volume; False if it was already gone."""
    try:
        with engine_errors(f"remove volume {name!r}"):
            client.api.remove_volume(name, force=force)
    except EngineError as exc:
        if isinstance(exc.__cause__, docker.errors.NotFound):
            return False
        raise
    return True


def remove_network(client: Client, network_id: str) -> bool:
    """Remove one network; False if it was already gone."""
    try:
        with engine_errors(f"remove network {network_id[:12]}"):
            client.api.remove_network(network_id)
    except EngineError as exc:
        if isinstance(exc.__cause__, docker.errors.NotFound):
            return False
        raise
    return True


def all_networks(client: Client) -> list[dict[str, Any]]:
    """Every network of the engine (list rows: Id, Name, Labels...)."""
    with engine_errors("list networks"):
        return list(client.api.networks())


def all_volumes(client: Client) -> list[dict[str, Any]]:
    """Every volume of the engine (list rows: Name, Labels...)."""
    with engine_errors("list volumes"):
        return list(client.api.volumes().get("Volumes") or [])


def project_volumes(client: Client, project_name: str) -> tuple[str, ...]:
    """The engine names of the volumes labelled as the project's."""
    return tuple(sorted(v["Name"] for v in _labelled(client, "volumes", project_name)))


def remove_volumes(client: Client, project_name: str) -> list[str]:
    """Remove the volumes labelled as this project's (named and leftover
    anonymous ones; never external ones); their names."""
    removed = []
    for vol in _labelled(client, "volumes", project_name):
        name = vol["Name"]
        try:
            with engine_errors(f"remove volume {name!r}"):
                client.api.remove_volume(name)
        except EngineError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                continue
            exc.hint = exc.hint or "a container still uses it; remove the containers first"
            raise
        removed.append(name)
    return removed


def _labelled(client: Client, kind: str, project_name: str) -> list[dict[str, Any]]:
    flt = {"label": [f"{LABEL_PROJECT}={project_name}"]}
    with engine_errors(f"list the {kind} of project {project_name!r}"):
        if kind == "networks":
            return list(client.api.networks(filters=flt))
        return list(client.api.volumes(filters=flt).get("Volumes") or [])


class ProjectResources(NamedTuple):
    """Engine names of the networks and volumes labelled as the project's
    (``nets, vols = project_resources(...)``)."""

    networks: tuple[str, ...]
    volumes: tuple[str, ...]


def project_resources(client: Client, project_name: str) -> ProjectResources:
    """The project's own networks and volumes, for `up` (what exists) and `down`."""
    return ProjectResources(
        networks=tuple(sorted(n["Name"] for n in _labelled(client, "networks", project_name))),
        volumes=tuple(sorted(v["Name"] for v in _labelled(client, "volumes", project_name))),
    )
