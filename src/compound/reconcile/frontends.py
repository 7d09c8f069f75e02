"""The load balancer in front of each replicated service, for `up` and `rollback`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from compound.planner.diff import ServicePlan
from compound.reconcile.project_engine import ProjectEngine
from compound.reconcile.rolling import Frontend
from compound.runtimes.base import Instance
from compound.spec.model import Project


class Frontends:
    def __init__(
        self,
        project: Project,
        engine: ProjectEngine,
        inspect: Callable[[Instance], Instance],
    ) -> None:
        self.project = project
        self.engine = engine
        self.inspect = inspect
        self._lock = threading.Lock()
        self._balanced: set[str] | None = None  # services that have a load balancer

    def frontend_for(self, plan: ServicePlan) -> Frontend | None:
        """The load balancer in front of a replicated service with published
        ports (made on first use); removes one a service no longer needs, so
        its single instance can publish the ports itself."""
        service = self.project.services[plan.service]
        if not plan.load_balanced:
            with self._lock:
                if self._balanced is None:  # one engine query per up, not one per service
                    self._balanced = self.engine.balanced_services()
            if plan.service in self._balanced:
                self.engine.remove_load_balancer(plan.service)
            return None

        def serving() -> list[Instance]:
            found = self.engine.instances(include_stopped=False)
            return [i for i in found if i.service == plan.service and i.health in (None, "healthy")]

        return self.engine.frontend(self.project, service, inspect=self.inspect, serving=serving)
