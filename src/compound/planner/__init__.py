"""The planner: desired project vs the engine's facts → a Plan. Pure.

runtime.py  the runtime decision (declared, or the advisor's for ``auto``)
graph.py    dependency order
update.py   the update policy and the load balancer decision
diff.py     the Plan: per instance create/recreate/start/restart/remove/keep
"""

from __future__ import annotations

from .diff import Plan, ServicePlan, Step, UpOptions, make_plan, selected_services
from .runtime import RuntimeDecision, decide_runtimes

__all__ = [
    "Plan",
    "RuntimeDecision",
    "ServicePlan",
    "Step",
    "UpOptions",
    "decide_runtimes",
    "make_plan",
    "selected_services",
]
