"""What the engine is asked to make: a container request (its create body,
name, platform, extra network endpoints, files), as plain data. Built by
pure functions (runtimes/container_config.py), sent by engine/containers.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NetworkAttachment:
    """One network endpoint of a container."""

    network: str  # engine name
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None
    links: tuple[str, ...] = ()  # "container:alias": the alias resolves for this container only
    link_local_ips: tuple[str, ...] = ()
    driver_opts: tuple[tuple[str, str], ...] = ()
    gw_priority: int | None = None

    def endpoint_config(self) -> dict[str, Any]:
        """The EndpointSettings body the engine expects."""
        endpoint: dict[str, Any] = {}
        if self.aliases:
            endpoint["Aliases"] = list(self.aliases)
        if self.links:
            endpoint["Links"] = list(self.links)
        ipam: dict[str, Any] = {}
        if self.ipv4_address:
            ipam["IPv4Address"] = self.ipv4_address
        if self.ipv6_address:
            ipam["IPv6Address"] = self.ipv6_address
        if self.link_local_ips:
            ipam["LinkLocalIPs"] = list(self.link_local_ips)
        if self.driver_opts:
            endpoint["DriverOpts"] = dict(self.driver_opts)
        if self.gw_priority is not None:
            endpoint["GwPriority"] = self.gw_priority
        if ipam:
            endpoint["IPAMConfig"] = ipam
        if self.mac_address:
            endpoint["MacAddress"] = self.mac_address
        return endpoint


@dataclass(frozen=True)
class ContainerRequest:
    """Everything the engine needs to make one container."""

    config: dict[str, Any]  # body of POST /containers/create (Config, HostConfig, NetworkingConfig)
    name: str | None = None
    platform: str | None = None
    # API < 1.44 takes one endpoint at create: the rest are connected before
    # start, so the process sees all of its networks at once
    networks: tuple[NetworkAttachment, ...] = ()
    archive: bytes | None = None  # a tar extracted at "/" before start (secrets, configs)


def plain_config(
    image: str,
    command: Sequence[str] | None = None,
    *,
    entrypoint: Sequence[str] | None = None,
    binds: Sequence[str] = (),
    network_mode: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The create body of a helper container: an image, a command, some binds."""
    host: dict[str, Any] = {}
    if binds:
        host["Binds"] = list(binds)
    if network_mode:
        host["NetworkMode"] = network_mode
    config: dict[str, Any] = {"Image": image, "HostConfig": host, "Labels": dict(labels or {})}
    if command is not None:
        config["Cmd"] = list(command)
    if entrypoint is not None:
        config["Entrypoint"] = list(entrypoint)
    if network_mode == "none":
        config["NetworkDisabled"] = True
    return config
