"""The load balancer as a rolling update sees it (reconcile.rolling.Frontend).

Instances come in as the engine described them when created (no address
yet), so each is inspected afresh for its IP. The LB itself is made on the
first add or sync, not before: a service moving behind a balancer still has
a predecessor holding the published port until the update retires it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from compound.engine import Client
from compound.runtimes.base import Instance
from compound.spec.model import Project, Service

from . import balancer, container
from .balancer import LoadBalancer
from .config import Backend


class BalancedFrontend:
    def __init__(
        self,
        client: Client,
        project: Project,
        service: Service,
        *,
        inspect: Callable[[Instance], Instance],
        serving: Callable[[], Sequence[Instance]],
        timeout: float = balancer.ADD_TIMEOUT,
    ) -> None:
        self.client = client
        self.project = project
        self.service = service
        self._inspect = inspect  # fresh facts (the address) of one instance
        self._serving = serving  # the service's instances that may take traffic now
        self.timeout = timeout
        self._lb: LoadBalancer | None = None

    def _existing(self) -> LoadBalancer | None:
        if self._lb is None:
            self._lb = balancer.get(self.client, self.project, self.service)
        return self._lb

    def _ensured(self) -> LoadBalancer:
        if self._lb is None:
            # created, or adopted and converged to what runs now
            network = container.spec_for(self.project, self.service, "").networks[0]
            backends = []
            for inst in self._serving():
                ip = container.ip_on(self._inspect(inst), network)
                if ip is not None:
                    backends.append(Backend(server_name(inst), ip))
            self._lb = balancer.ensure(
                self.client, self.project, self.service, backends, timeout=self.timeout
            )
        return self._lb

    def _backend(self, lb: LoadBalancer, instance: Instance) -> Backend:
        return Backend(server_name(instance), lb.backend_for(self._inspect(instance)).address)

    def add(self, instance: Instance) -> None:
        lb = self._ensured()
        lb.add(self._backend(lb, instance), timeout=self.timeout)

    def drain(self, instance: Instance) -> None:
        lb = self._existing()
        if lb is not None:
            lb.drain(server_name(instance))

    def remove(self, instance: Instance) -> None:
        lb = self._existing()
        if lb is not None:
            lb.remove(server_name(instance))

    def sync(self, instances: Sequence[Instance]) -> None:
        lb = self._ensured()
        lb.sync([self._backend(lb, i) for i in instances], timeout=self.timeout)


def server_name(instance: Instance) -> str:
    """The instance's server in HAProxy: stable when a successor takes its
    predecessor's name (a start-first update renames it after it joined)."""
    return f"{instance.service}-{instance.number}-{instance.id[:12]}"
