"""Parsers for the string forms of Compose fields.

* ports: ``[IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTO]`` as Docker's
  ``nat.ParsePortSpec`` reads them (IPv6 addresses in brackets);
* volumes: ``[SOURCE:]TARGET[:OPTIONS]`` as compose-go's ``ParseVolume``;
* ``KEY=VALUE`` lists and ``host:ip`` / ``host=ip`` extra hosts.

Each raises ``SyntaxProblem`` with a message meant for the user.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

PROTOCOLS = ("tcp", "udp", "sctp")
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
SELINUX = ("z", "Z")


class SyntaxProblem(ValueError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# --- ports ---------------------------------------------------------------


@dataclass(frozen=True)
class PortMapping:
    target: int
    published: str | None
    host_ip: str | None
    protocol: str


PORT_HINT = "use [IP:][HOST:]CONTAINER[/PROTOCOL], e.g. '8080:80' or '127.0.0.1:53:53/udp'"


def split_port_spec(spec: str) -> tuple[str, str, str, str]:
    """(ip, host part, container part, protocol) without validating the numbers."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if rest.startswith("["):  # [IPv6]:host:container
        close = rest.find("]")
        ip = rest[1:close] if close > 0 else rest
        tail = rest[close + 2 :] if close > 0 else ""
        host, _, container = tail.rpartition(":")
        return ip, host, container, proto
    parts = rest.split(":")
    container = parts[-1]
    if len(parts) == 1:
        return "", "", container, proto
    if len(parts) == 2:
        return "", parts[0], container, proto
    return ":".join(parts[:-2]), parts[-2], container, proto


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    start_s, dash, end_s = text.partition("-")
    try:
        start = int(start_s)
        end = int(end_s) if dash else start
    except ValueError:
        raise SyntaxProblem(
            f"{spec!r} is not a valid port mapping: invalid {what} port {text!r}", PORT_HINT
        ) from None
    if not (0 <= start <= 65535 and 0 <= end <= 65535):
        raise SyntaxProblem(
            f"{spec!r} is not a valid port mapping: {what} port {text!r} is out of range 0-65535"
        )
    if end < start:
        raise SyntaxProblem(
            f"{spec!r} is not a valid port mapping: {what} port range {text!r} is reversed"
        )
    return start, end


def parse_port(spec: str) -> list[PortMapping]:
    """One mapping per container port (ranges expanded)."""
    text = spec.strip()
    if text.count("/") > 1:
        raise SyntaxProblem(f"{spec!r} is not a valid port mapping", PORT_HINT)
    ip, host, container, proto = split_port_spec(text)
    if proto.lower() not in PROTOCOLS:
        raise SyntaxProblem(
            f"{spec!r} is not a valid port mapping: unknown protocol {proto!r}",
            hint="use tcp, udp or sctp",
        )
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise SyntaxProblem(
                f"{spec!r} is not a valid port mapping: {ip!r} is not an IP address", PORT_HINT
            ) from None
    if not container:
        raise SyntaxProblem(f"{spec!r} is not a valid port mapping: no container port", PORT_HINT)
    start, end = _port_range(container, "container", spec)
    if host:
        host_start, host_end = _port_range(host, "host", spec)
        if end != start and (host_end - host_start) != (end - start):
            raise SyntaxProblem(
                f"{spec!r} is not a valid port mapping: host and container port ranges "
                "have different sizes"
            )
    out: list[PortMapping] = []
    for i in range(end - start + 1):
        published: str | None = None
        if host:
            if start == end and host_start != host_end:
                published = f"{host_start}-{host_end}"  # the engine picks one
            else:
                published = str(host_start + i)
        out.append(PortMapping(start + i, published, ip or None, proto.lower()))
    return out


def port_identity(value: object) -> str:
    """A key under which two port entries are "the same port" when merging files."""
    if isinstance(value, dict):
        ip = str(value.get("host_ip") or "")
        published = str(value.get("published") or "")
        target = str(value.get("target"))
        proto = str(value.get("protocol") or "tcp")
        return f"{ip}|{published}|{target}|{proto}"
    if isinstance(value, int | str) and not isinstance(value, bool):
        ip, host, container, proto = split_port_spec(str(value))
        return f"{ip}|{host}|{container}|{proto}"
    return repr(value)


# --- volumes -------------------------------------------------------------


@dataclass
class ShortVolume:
    type: str  # "bind" or "volume"
    source: str | None
    target: str
    read_only: bool = False
    nocopy: bool = False
    propagation: str | None = None
    selinux: str | None = None
    unknown_options: list[str] = field(default_factory=list)


VOLUME_HINT = "use [SOURCE:]TARGET[:OPTIONS], e.g. 'data:/var/lib/data' or './src:/app:ro'"


def is_path_source(source: str) -> bool:
    """Compose's rule: a source starting with ``.``, ``/`` or ``~`` is a host path."""
    return source[:1] in (".", "/", "~")


def parse_volume(spec: str) -> ShortVolume:
    if not spec:
        raise SyntaxProblem("empty volume specification", VOLUME_HINT)
    parts = spec.split(":")
    if len(parts) > 3:
        raise SyntaxProblem(f"{spec!r} is not a valid volume: too many colons", VOLUME_HINT)
    if any(p == "" for p in parts):
        raise SyntaxProblem(
            f"{spec!r} is not a valid volume: empty section between colons", VOLUME_HINT
        )
    if len(parts) == 1:
        return ShortVolume("volume", None, parts[0])
    source, target = parts[0], parts[1]
    vol = ShortVolume("bind" if is_path_source(source) else "volume", source, target)
    if len(parts) == 3:
        for option in parts[2].split(","):
            if option == "ro":
                vol.read_only = True
            elif option == "rw":
                vol.read_only = False
            elif option == "nocopy":
                vol.nocopy = True
            elif option in PROPAGATIONS:
                vol.propagation = option
            elif option in SELINUX:
                vol.selinux = option
            else:
                vol.unknown_options.append(option)
    return vol


def volume_target(value: object) -> str | None:
    """The container path of a short or long volume entry, if it has one."""
    if isinstance(value, dict):
        target = value.get("target")
        return target if isinstance(target, str) else None
    if isinstance(value, str):
        try:
            return parse_volume(value).target
        except SyntaxProblem:
            return None
    return None


# --- key=value lists ------------------------------------------------------


def split_key_value(item: str) -> tuple[str, str | None]:
    """``K=V`` → (K, V); ``K`` → (K, None)."""
    key, eq, value = item.partition("=")
    return (key, value) if eq else (key, None)


def split_extra_host(item: str) -> tuple[str, str]:
    """``host=ip`` or ``host:ip`` (the first separator wins; IPv6 keeps its colons)."""
    if "=" in item:
        host, _, ip = item.partition("=")
    else:
        host, sep, ip = item.partition(":")
        if not sep:
            raise SyntaxProblem(
                f"{item!r} is not a valid extra host", hint="use 'HOST:IP' or 'HOST=IP'"
            )
    ip = ip.strip()
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    return host.strip(), ip
