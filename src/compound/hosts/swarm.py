"""Forming a Swarm from recorded hosts, and finding it again.

The first host of ``swarm init`` becomes the manager; the others join as
workers. Every node is labelled with its host's measured facts, so
placement constraints can name them::

    compound.host    the host's record name (stable; node hostnames may differ)
    compound.class   bare-metal | virtual
    compound.kvm     yes | no | unknown (probed KVM only)
    compound.vm      yes when a VM can run there (KVM, or TCG with /dev/net/tun)
    compound.tenant  the tenant the host is dedicated to, or "none"
    compound.os      linux | windows
    plus the host's own labels, unchanged.

``<hosts dir>/swarm.json`` remembers which host is the manager and which
node each host is; whether a node is up is always asked of the manager.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from compound.engine import Client
from compound.engine.errors import APIError
from compound.placement.node_constraints import LABEL_PREFIX as LABEL_PREFIX
from compound.runtimes.hostops import atomic_write

from . import records
from .engine import client
from .errors import HostError, SwarmError
from .records import HostRecord

Progress = Callable[[str], None]
SWARM_PORT = 2377


def _quiet(_: str) -> None:
    pass


@dataclass
class SwarmRecord:
    manager: str
    nodes: dict[str, str]  # host name -> node id

    def to_json(self) -> dict[str, Any]:
        return {"manager": self.manager, "nodes": dict(self.nodes)}


def _path() -> Any:
    return records.hosts_dir() / "swarm.json"


def load() -> SwarmRecord:
    try:
        data = json.loads(_path().read_text())
    except FileNotFoundError:
        raise SwarmError(
            "no Swarm formed yet", hint="form one with `compound swarm init --hosts a,b,c`"
        ) from None
    return SwarmRecord(manager=data["manager"], nodes=dict(data["nodes"]))


def save(rec: SwarmRecord) -> None:
    records.hosts_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(_path(), json.dumps(rec.to_json(), indent=2).encode(), 0o600)


def forget() -> None:
    """Drop the Swarm's record and the stacks deployed to it."""
    import shutil

    _path().unlink(missing_ok=True)
    shutil.rmtree(records.hosts_dir() / "stacks", ignore_errors=True)


def node_labels(record: HostRecord) -> dict[str, str]:
    f = record.facts
    kvm = f.get("kvm")
    vm_ok = kvm is True or bool(f.get("tun"))
    return {
        **record.labels,
        f"{LABEL_PREFIX}host": record.name,
        f"{LABEL_PREFIX}class": str(f.get("class", "virtual")),
        f"{LABEL_PREFIX}kvm": "yes" if kvm is True else "no" if kvm is False else "unknown",
        f"{LABEL_PREFIX}vm": "yes" if vm_ok else "no",
        f"{LABEL_PREFIX}tenant": record.tenant or "none",
        f"{LABEL_PREFIX}os": str(f.get("os", "linux")),
    }


def _swarm_state(cli: Client) -> dict[str, Any]:
    return dict(cli.info().get("Swarm") or {})


def init(names: list[str], *, progress: Progress = _quiet) -> SwarmRecord:
    if not names:
        raise SwarmError("swarm init needs at least one host", hint="--hosts a,b,c")
    hosts = [records.load(n) for n in names]
    manager = hosts[0]
    if manager.address is None:
        raise SwarmError(
            f"host {manager.name!r} is this machine: compound does not turn the local "
            "engine into a Swarm manager",
            hint="put a remote, nested or qemu host first in --hosts",
        )
    mc = client(manager)
    state = _swarm_state(mc)
    if state.get("LocalNodeState") == "active":
        if not state.get("ControlAvailable"):
            raise HostError(
                manager.name,
                "is already a worker of another Swarm",
                hint="`docker swarm leave` there first",
            )
        progress(f"{manager.name}: already a Swarm manager")
    else:
        progress(f"{manager.name}: swarm init")
        try:
            mc.swarm.init(advertise_addr=manager.address, listen_addr=f"0.0.0.0:{SWARM_PORT}")
        except APIError as exc:
            raise HostError(manager.name, f"swarm init failed: {exc.explanation or exc}") from exc
    rec = SwarmRecord(manager=manager.name, nodes={})
    if _path().exists() and load().manager == manager.name:
        rec = load()  # init again: the Swarm keeps its nodes
    rec.nodes[manager.name] = _swarm_state(mc)["NodeID"]
    save(rec)
    label(mc, manager, rec.nodes[manager.name])
    for host in hosts[1:]:
        join(host.name, progress=progress)
    return load()


def join(name: str, *, manager_role: bool = False, progress: Progress = _quiet) -> str:
    rec = load()
    host = records.load(name)
    mgr = records.load(rec.manager)
    mc = client(mgr)
    tokens = mc.swarm.attrs["JoinTokens"]
    hc = client(host)
    state = _swarm_state(hc)
    if state.get("LocalNodeState") == "active":
        # a worker knows no cluster id, only its managers
        managers = {m.get("NodeID") for m in state.get("RemoteManagers") or []}
        if rec.nodes.get(mgr.name) in managers:
            progress(f"{name}: already a node of this Swarm")
            node_id = str(state["NodeID"])
        else:
            raise HostError(
                name, "is already part of another Swarm", hint="`docker swarm leave` there first"
            )
    else:
        progress(f"{name}: swarm join")
        if host.address is None:
            raise HostError(name, "is this machine: compound leaves the local engine out of Swarms")
        try:
            hc.swarm.join(
                remote_addrs=[f"{mgr.address}:{SWARM_PORT}"],
                join_token=tokens["Manager" if manager_role else "Worker"],
                advertise_addr=host.address,
                listen_addr=f"0.0.0.0:{SWARM_PORT}",
            )
        except APIError as exc:
            raise HostError(name, f"swarm join failed: {exc.explanation or exc}") from exc
        node_id = str(_swarm_state(hc)["NodeID"])
    rec.nodes[name] = node_id
    save(rec)
    label(mc, host, node_id)
    return node_id


def label(mc: Client, host: HostRecord, node_id: str) -> None:
    set_labels(mc, host.name, node_id, node_labels(host))


def set_labels(mc: Client, host: str, node_id: str, labels: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            node = mc.nodes.get(node_id)
            spec = dict(node.attrs["Spec"])
            current = spec.get("Labels") or {}
            if all(current.get(k) == v for k, v in labels.items()):
                return
            spec["Labels"] = {**current, **labels}
            node.update(spec)
            return
        except APIError as exc:
            # a fresh node may not be known to the manager yet; a concurrent
            # update bumps the version: read again and retry
            if time.monotonic() > deadline:
                raise HostError(
                    host, f"cannot label its Swarm node: {exc.explanation or exc}"
                ) from exc
            time.sleep(0.5)


def manager_client() -> tuple[SwarmRecord, Client]:
    rec = load()
    return rec, client(records.load(rec.manager))


def nodes() -> list[dict[str, Any]]:
    """Every node as the manager sees it now."""
    rec, mc = manager_client()
    by_id = {v: k for k, v in rec.nodes.items()}
    out = []
    for n in mc.nodes.list():
        a = n.attrs
        labels = a["Spec"].get("Labels") or {}
        out.append(
            {
                "id": a["ID"],
                "host": by_id.get(a["ID"]) or labels.get(f"{LABEL_PREFIX}host") or "-",
                "hostname": a["Description"]["Hostname"],
                "role": a["Spec"]["Role"],
                "availability": a["Spec"]["Availability"],
                "state": a["Status"]["State"],
                "address": a["Status"].get("Addr", ""),
                "engine": a["Description"]["Engine"]["EngineVersion"],
                "labels": labels,
            }
        )
    out.sort(key=lambda r: (r["role"] != "manager", r["host"]))
    return out


def member_hosts() -> list[HostRecord]:
    rec = load()
    return [records.load(n) for n in rec.nodes]


def pinned_services(mc: Client, host: str) -> list[str]:
    """The services a local volume pins to ``host`` (their placement names it)."""
    pin = f"node.labels.{LABEL_PREFIX}host == {host}"
    out = []
    for svc in mc.services.list():
        placement = svc.attrs["Spec"].get("TaskTemplate", {}).get("Placement") or {}
        if pin in (placement.get("Constraints") or []):
            out.append(str(svc.attrs["Spec"]["Name"]))
    return sorted(out)


def leave(
    name: str, *, force: bool = False, timeout: float = 180, progress: Progress = _quiet
) -> None:
    """Take a host out of the Swarm without surprises: its tasks are drained
    to the other nodes first, then it leaves and its node is removed. The
    manager leaves last (``force``: the Swarm is dissolved)."""
    rec = load()
    if name not in rec.nodes:
        raise SwarmError(
            f"host {name!r} is not a node of the Swarm",
            hint="`compound swarm ls` shows the nodes",
        )
    if name == rec.manager:
        _dissolve(rec, force=force, progress=progress)
        return
    mc = client(records.load(rec.manager))
    node_id = rec.nodes[name]
    pinned = pinned_services(mc, name)
    if pinned and not force:
        raise SwarmError(
            f"host {name!r} keeps the local volumes of {', '.join(pinned)}: without it "
            "they stop (their data stays on the host)",
            hint="move their data to a shared volume driver, or pass --force",
        )
    try:
        node = mc.nodes.get(node_id)
        spec = dict(node.attrs["Spec"])
        spec["Availability"] = "drain"
        progress(f"{name}: draining (its tasks start on the other nodes)")
        node.update(spec)
        _wait_drained(mc, name, node_id, timeout=timeout, progress=progress)
    except APIError as exc:
        raise HostError(name, f"cannot drain its node: {exc.explanation or exc}") from exc
    progress(f"{name}: swarm leave")
    try:
        client(records.load(name)).swarm.leave()
    except (HostError, APIError) as exc:
        if not force:
            raise HostError(
                name,
                f"drained, but could not leave the Swarm: {exc}",
                hint="pass --force to remove its node anyway (e.g. the host is gone)",
            ) from exc
        progress(f"{name}: unreachable, removing its node anyway")
    mc.nodes.get(node_id).remove(force=True)
    del rec.nodes[name]
    save(rec)


def _wait_drained(
    mc: Client, name: str, node_id: str, *, timeout: float, progress: Progress
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = [
            t
            for t in mc.api.tasks(filters={"node": node_id})  # type: ignore[no-untyped-call]
            if t["Status"]["State"] in ("running", "starting", "preparing", "assigned")
        ]
        if not left:
            return
        if time.monotonic() > deadline:
            raise HostError(
                name,
                f"{len(left)} task(s) still run there after {timeout:.0f} s of draining",
                hint="`compound swarm ps` shows them; pass --force to leave anyway",
            )
        time.sleep(0.5)


def _dissolve(rec: SwarmRecord, *, force: bool, progress: Progress) -> None:
    others = [n for n in rec.nodes if n != rec.manager]
    if others and not force:
        raise SwarmError(
            f"host {rec.manager!r} is the Swarm's manager and {len(others)} other node(s) "
            f"depend on it ({', '.join(sorted(others))})",
            hint="take them out first with `compound swarm leave HOST`, or pass --force "
            "to dissolve the Swarm (every service on it stops)",
        )
    for other in others:
        progress(f"{other}: swarm leave")
        try:
            client(records.load(other)).swarm.leave(force=True)
        except (HostError, APIError) as exc:
            progress(f"{other}: could not leave ({exc}); it keeps its own Swarm state")
    progress(f"{rec.manager}: swarm leave (the Swarm is dissolved)")
    try:
        client(records.load(rec.manager)).swarm.leave(force=True)
    except APIError as exc:
        raise HostError(rec.manager, f"cannot leave the Swarm: {exc.explanation or exc}") from exc
    forget()


def role_of(host: str) -> str | None:
    """``manager``, ``worker``, or None when ``host`` is no node of the Swarm."""
    try:
        rec = load()
    except SwarmError:
        return None
    if host not in rec.nodes:
        return None
    return "manager" if host == rec.manager else "worker"


def drop_host(host: str) -> None:
    """Forget ``host`` as a node (its record is going); without its manager
    the record describes no reachable Swarm, so it goes too."""
    rec = load()
    if host == rec.manager:
        forget()
        return
    rec.nodes.pop(host, None)
    save(rec)
