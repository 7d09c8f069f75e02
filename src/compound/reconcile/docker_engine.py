"""The project engine of a real Docker Engine (see project_engine.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from compound.engine import Client, resources
from compound.errors import EngineError
from compound.runtimes import instances

if TYPE_CHECKING:
    from compound.reconcile.rolling import Frontend
    from compound.runtimes.base import Instance
    from compound.spec.model import Network, Project, Service, Volume

# The load balancer, images and the rolling update are imported by the methods
# `up` and `down` call: `ps` and `logs` list instances and need none of them.


class DockerProjectEngine:
    def __init__(self, client: Client, project_name: str) -> None:
        self.client = client
        self.project_name = project_name

    def instances(self, *, include_stopped: bool = True, oneoff: bool = False) -> list[Instance]:
        return instances.list_instances(
            self.client, self.project_name, include_stopped=include_stopped, oneoff=oneoff
        )

    def resources(self) -> tuple[Sequence[str], Sequence[str]]:
        nets, vols = resources.project_resources(self.client, self.project_name)
        return nets, vols

    def image_id(self, ref: str) -> str | None:
        # a bad reference is not the plan's to report: prepare() says it clearly
        from compound.runtimes import images

        try:
            return images.local_image_id(self.client, ref)
        except EngineError:
            return None

    def exposed_ports(self, image_id: str) -> frozenset[str]:
        from compound.engine import images as engine_images

        try:
            config = engine_images.config(self.client, image_id)
        except EngineError:
            return frozenset()
        return frozenset(config.get("ExposedPorts") or {})

    def ensure_network(self, project: Project, network: Network) -> bool:
        return resources.ensure_network(self.client, project, network)

    def ensure_volume(self, project: Project, volume: Volume) -> bool:
        return resources.ensure_volume(self.client, project, volume)

    def remove_networks(self) -> list[str]:
        return resources.remove_networks(self.client, self.project_name)

    def remove_volumes(self) -> list[str]:
        return resources.remove_volumes(self.client, self.project_name)

    def balanced_services(self) -> set[str]:
        return {i.service for i in instances.list_load_balancers(self.client, self.project_name)}

    def remove_load_balancer(self, service: str) -> None:
        from compound import lb

        lb.remove(self.client, self.project_name, service)

    def remove_load_balancers(self, services: Iterable[str] | None) -> list[str]:
        from compound import lb

        return lb.remove_load_balancers(self.client, self.project_name, services)

    def frontend(
        self,
        project: Project,
        service: Service,
        *,
        inspect: Callable[[Instance], Instance],
        serving: Callable[[], Sequence[Instance]],
    ) -> Frontend:
        from compound.lb.frontend import BalancedFrontend

        return BalancedFrontend(self.client, project, service, inspect=inspect, serving=serving)
