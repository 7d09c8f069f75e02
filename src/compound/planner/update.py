"""How a service's instances are replaced: the update policy and the load
balancer decision. Pure; the planner hashes what it returns and the
reconciler executes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from compound.spec.model import Service, UpdateConfig


def load_balanced(service: Service, replicas: int) -> bool:
    """Several replicas behind published ports share them through a load
    balancer (HAProxy) that compound runs; one replica publishes directly."""
    return (
        replicas > 1
        and any(p.published for p in service.ports)
        and service.network_mode in (None, "bridge")
    )


def backend_service(service: Service, replicas: int) -> Service:
    """The service as each replica runs it: behind a load balancer the replicas
    publish nothing (the balancer does) and only expose the ports to it."""
    if not load_balanced(service, replicas):
        return service
    exposed = list(service.expose)
    for p in service.ports:
        key = f"{p.target}/{p.protocol}" if p.protocol != "tcp" else str(p.target)
        if key not in exposed:
            exposed.append(key)
    return service.model_copy(update={"ports": (), "expose": tuple(exposed)})


@dataclass(frozen=True)
class UpdatePolicy:
    config: UpdateConfig
    note: str | None = None  # why the declared order could not be honoured

    @property
    def start_first(self) -> bool:
        return self.config.order == "start-first"

    def describe(self, balanced: bool = False) -> str:
        c = self.config
        batch = "all at once" if c.parallelism <= 0 else f"{c.parallelism} at a time"
        parts = [f"rolling {c.order}", batch]
        if c.delay:
            parts.append(f"{c.delay:g}s apart")
        parts.append(f"on failure {c.failure_action}")
        if balanced:
            parts.append("behind compound's load balancer")
        return ", ".join(parts)


def start_first_blocker(service: Service, replicas: int) -> str | None:
    """Why a new instance cannot run beside the one it replaces, or None."""
    runs = backend_service(service, replicas)
    if runs.fixed_host_ports:
        return "it publishes fixed host ports"
    if service.network_mode == "host":
        return "it uses the host's network"
    if service.x_compound.vm.disk and service.x_compound.vm.persistent:
        return "its persistent VM disk overlay can be open in one VM at a time"
    if service.network_mode and service.network_mode.startswith(("service:", "container:")):
        return "it shares another instance's network namespace"
    for net in service.networks.values():
        if net.ipv4_address or net.ipv6_address:
            return "it has a fixed IP address"
        if net.mac_address:
            return "it has a fixed MAC address"
    return None


def shared_writes(service: Service) -> str | None:
    """Why an instance and its successor must not run at once by default:
    both would write the same volume (a database's files: two postmasters,
    each in its own VM, cannot see each other's lock)."""
    for vol in service.volumes:
        if vol.type in ("volume", "bind") and vol.source and not vol.read_only:
            return f"it writes the shared {vol.type} {vol.source!r}"
    return None


def update_policy(service: Service, replicas: int, *, rollback: bool = False) -> UpdatePolicy:
    """deploy.update_config (or rollback_config when rolling back); without
    one, a single replica gets start-first where its ports allow and it
    writes no shared volume, so an update never takes the only instance
    down before its successor is healthy, nor runs two writers at once."""
    declared = (service.deploy.rollback_config if rollback else None) or (
        service.deploy.update_config
    )
    blocker = start_first_blocker(service, replicas)
    if declared is None:
        safe = blocker is None and shared_writes(service) is None
        order = "start-first" if replicas == 1 and safe else "stop-first"
        return UpdatePolicy(UpdateConfig(order=order))
    if declared.order == "start-first" and blocker is not None:
        return UpdatePolicy(
            declared.model_copy(update={"order": "stop-first"}),
            note=f"{service.name}: update order start-first is not possible ({blocker});"
            " using stop-first",
        )
    return UpdatePolicy(declared)
