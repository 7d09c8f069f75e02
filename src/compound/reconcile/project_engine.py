"""What the verbs ask of the engine beyond one instance (drivers do those):
list a project's instances, its networks and volumes, resolve images, and
keep load balancers. A protocol, so `up`, `down` and `rollback` run in unit
tests against an in-memory engine (tests/unit/fakes.py) without monkeypatching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the readers (`ps`, `logs`) use this protocol without the rolling update
    from compound.reconcile.rolling import Frontend
    from compound.runtimes.base import Instance
    from compound.spec.model import Network, Project, Service, Volume


class ProjectEngine(Protocol):
    def instances(self, *, include_stopped: bool = True, oneoff: bool = False) -> list[Instance]:
        """The project's instances (one-off `run` instances only with ``oneoff``)."""

    def resources(self) -> tuple[Sequence[str], Sequence[str]]:
        """Names of the project's own networks and volumes that exist."""

    def image_id(self, ref: str) -> str | None:
        """The local image id ``ref`` names, or None (not here, or not a valid reference)."""

    def exposed_ports(self, image_id: str) -> frozenset[str]:
        """The ports the image declares (EXPOSE); empty when it cannot be read."""

    def ensure_network(self, project: Project, network: Network) -> bool:
        """Create it unless it exists; True if created."""

    def ensure_volume(self, project: Project, volume: Volume) -> bool:
        """Create it unless it exists; True if created."""

    def remove_networks(self) -> list[str]: ...

    def remove_volumes(self) -> list[str]: ...

    def balanced_services(self) -> set[str]:
        """Services that have a load balancer now."""

    def remove_load_balancer(self, service: str) -> None: ...

    def remove_load_balancers(self, services: Iterable[str] | None) -> list[str]:
        """Remove the load balancers (of ``services`` only, if given); their names."""

    def frontend(
        self,
        project: Project,
        service: Service,
        *,
        inspect: Callable[[Instance], Instance],
        serving: Callable[[], Sequence[Instance]],
    ) -> Frontend:
        """The load balancer in front of a replicated service (made on first use)."""
