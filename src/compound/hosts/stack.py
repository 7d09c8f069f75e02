"""A compound project as a Swarm stack file (``docker stack deploy -c``).

Why a stack file rather than the services API: ``docker stack deploy`` is
Docker's own, maintained translation of Compose to services (networks,
update and rollback configs, labels that ``docker stack ps/services/rm``
understand), so a user can inspect and repair what compound deployed with
the plain docker CLI, and the benchmark compares like with like. compound
adds what the CLI does not know: placement from the advisor and planner,
what this kernel can do (no IPVS: ``endpoint_mode: dnsrr`` and host-mode
ports), volume pinning, and image delivery to the nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compound.placement.demand import ServiceDemand
from compound.placement.node_constraints import LABEL_PREFIX, node_constraints
from compound.spec.compose_dict import to_compose_dict
from compound.spec.model import Project

STACK_VERSION = "3.8"
# keys a 3.8 stack file accepts for a service, beside those rewritten below
_KEEP = (
    "image",
    "command",
    "entrypoint",
    "environment",
    "healthcheck",
    "labels",
    "user",
    "working_dir",
    "hostname",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tmpfs",
    "ulimits",
    "dns",
    "dns_search",
    "extra_hosts",
    "cap_add",
    "cap_drop",
    "logging",
    "init",
    "read_only",
    "tty",
    "stdin_open",
)
_IGNORED = {
    "container_name": "Swarm names tasks itself",
    "depends_on": "Swarm starts services together; a service must retry until its "
    "dependencies answer",
    "build": "build the image first (`compound build`); nodes receive built images",
    "restart": None,  # becomes deploy.restart_policy
    "networks": None,
    "ports": None,
    "volumes": None,
    "deploy": None,
    "x-compound": None,
}
DEFAULT_UPDATE = {
    "parallelism": 1,
    "delay": "0s",
    "failure_action": "rollback",
    "monitor": "5s",
    "max_failure_ratio": 0,
}
DEFAULT_ROLLBACK = {"parallelism": 1, "delay": "0s", "failure_action": "pause", "monitor": "5s"}


@dataclass
class Stack:
    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)  # service -> host (local volumes)
    images: set[str] = field(default_factory=set)


def _restart_policy(restart: str | None) -> dict[str, Any] | None:
    if restart in (None, "always", "unless-stopped"):
        return None  # Swarm's default: condition any
    if restart == "no":
        return {"condition": "none"}
    return {"condition": "on-failure"}


def translate(
    project: Project,
    demands: dict[str, ServiceDemand],
    *,
    volume_hosts: dict[str, str],
    ipvs: bool = False,
) -> Stack:
    """``volume_hosts``: project volume key -> the host its local volume lives
    (or will live) on; services mounting it are pinned there."""
    src = to_compose_dict(project)
    stack = Stack(data={"version": STACK_VERSION, "services": {}})
    out_services: dict[str, Any] = stack.data["services"]
    for name, svc in sorted(src["services"].items()):
        for key, why in _IGNORED.items():
            if key in svc and why:
                stack.warnings.append(f"service {name}: {key} ignored on Swarm ({why})")
        other = sorted(k for k in svc if k not in _KEEP and k not in _IGNORED)
        if other:
            stack.warnings.append(
                f"service {name}: not supported by Swarm, ignored: {', '.join(other)}"
            )
        out: dict[str, Any] = {k: svc[k] for k in _KEEP if k in svc}
        if "image" in out:
            stack.images.add(str(out["image"]))
        deploy: dict[str, Any] = dict(svc.get("deploy") or {})
        deploy.pop("resources", None) if not deploy.get("resources") else None
        # no IPVS in this kernel: no virtual IP, no routing mesh
        deploy["endpoint_mode"] = deploy.get("endpoint_mode") or ("vip" if ipvs else "dnsrr")
        deploy["update_config"] = {**DEFAULT_UPDATE, **_nonzero(deploy.get("update_config"))}
        deploy["rollback_config"] = {**DEFAULT_ROLLBACK, **_nonzero(deploy.get("rollback_config"))}
        policy = _restart_policy(svc.get("restart"))
        if policy and "restart_policy" not in deploy:
            deploy["restart_policy"] = policy
        placement: dict[str, Any] = dict(deploy.get("placement") or {})
        constraints = list(placement.get("constraints") or [])
        constraints += [c for c in node_constraints(demands.get(name)) if c not in constraints]
        ports = []
        for p in svc.get("ports") or []:
            port = {k: v for k, v in p.items() if k in ("target", "published", "protocol")}
            if "published" in port:
                port["published"] = int(port["published"])
            if not ipvs or p.get("mode") == "host":
                port["mode"] = "host"  # published on the node that runs the task
            ports.append(port)
        if ports:
            out["ports"] = ports
            if any(p.get("mode") == "host" and "published" in p for p in ports):
                # two tasks cannot publish one host port on the same node
                placement.setdefault("max_replicas_per_node", 1)
                deploy["update_config"].setdefault("order", "stop-first")
        vols = []
        for m in svc.get("volumes") or []:
            vols.append(m)
            if m.get("type") == "volume" and m.get("source") in volume_hosts:
                host = volume_hosts[m["source"]]
                pin = f"node.labels.{LABEL_PREFIX}host == {host}"
                if pin not in constraints:
                    constraints.append(pin)
                    stack.pinned[name] = host
                    stack.warnings.append(
                        f"service {name}: pinned to host {host} because local volume "
                        f"{m['source']!r} lives there; if that host is lost the service stays "
                        "down rather than start on an empty volume (use a shared volume driver, "
                        "e.g. NFS via driver_opts, to let it move)"
                    )
        if vols:
            out["volumes"] = vols
        if constraints:
            placement["constraints"] = constraints
        if placement:
            deploy["placement"] = placement
        out["deploy"] = deploy
        nets = svc.get("networks") or {"default": None}
        out["networks"] = (
            {k: (v or {}) for k, v in nets.items()} if any(nets.values()) else list(nets)
        )
        labels = dict(out.get("labels") or {})
        labels["io.compound.project"] = project.name
        labels["io.compound.service"] = name
        out["labels"] = labels
        out_services[name] = out
    networks: dict[str, Any] = {}
    for key, net in (src.get("networks") or {}).items():
        if net.get("external"):
            networks[key] = {"external": True, "name": net.get("name", key)}
        else:
            networks[key] = {"driver": "overlay", "attachable": True}
            if net.get("name"):
                networks[key]["name"] = net["name"]
    if not networks or "default" not in networks:
        networks["default"] = {"driver": "overlay", "attachable": True}
    stack.data["networks"] = networks
    volumes: dict[str, Any] = {}
    for key, vol in (src.get("volumes") or {}).items():
        volumes[key] = {
            k: v
            for k, v in vol.items()
            if k in ("name", "driver", "driver_opts", "external", "labels")
        }
    if volumes:
        stack.data["volumes"] = volumes
    return stack


def _nonzero(d: Any) -> dict[str, Any]:
    """The user's update/rollback settings minus the model's filled-in defaults."""
    if not isinstance(d, dict):
        return {}
    out = dict(d)
    if out.get("failure_action") == "pause" and out.get("monitor") in ("0s", None):
        out.pop("failure_action")  # the model's default, not the user's choice
    for k in ("monitor", "delay"):
        if out.get(k) == "0s":
            out.pop(k)
    if out.get("max_failure_ratio") in (0, 0.0):
        out.pop("max_failure_ratio")
    return out
