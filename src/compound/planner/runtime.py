"""The runtime decision, the planner's first step.

Each selected service gets a :class:`RuntimeDecision`: its declared runtime,
or for ``runtime: auto`` the advisor's answer (the same one `compound advise`
shows). The decision is part of the :class:`~compound.planner.diff.Plan`, so
`up`, `up --dry-run`, `pull`, `build` and `run` all act on the same runtime,
and the history records why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from compound.advisor import Advice, HostFacts, advise
from compound.runtimes.kind import Runtime
from compound.spec.model import Project, Service


@dataclass(frozen=True)
class RuntimeDecision:
    runtime: Runtime
    declared: str  # container | vm | auto, as written
    why: tuple[str, ...] = ("declared",)
    confidence: float | None = None  # the advisor's, for auto
    tie: bool = False

    @classmethod
    def as_declared(cls, service: Service) -> RuntimeDecision:
        """A service that names its runtime; ``auto`` needs :func:`decide_runtimes`."""
        if service.runtime == "auto":
            raise ValueError(f"{service.name}: runtime auto is decided by decide_runtimes()")
        return cls(Runtime(service.runtime), service.runtime)

    @classmethod
    def from_advice(cls, advice: Advice) -> RuntimeDecision:
        return cls(
            runtime=Runtime(advice.runtime),
            declared="auto",
            why=tuple(
                f"{f.factor}: {f.why} (toward {f.toward}, weight {f.weight})"
                for f in advice.factors
                if f.axis == "runtime"
            ),
            confidence=advice.confidence,
            tie=advice.tie,
        )

    def to_json(self) -> dict[str, Any]:
        """As the history records it (`compound history --json`)."""
        if self.declared != "auto":
            return {"runtime": str(self.runtime), "declared": self.declared, "why": list(self.why)}
        return {
            "runtime": str(self.runtime),
            "declared": self.declared,
            "confidence": self.confidence,
            "tie": self.tie,
            "why": list(self.why),
        }


def decide_runtimes(
    project: Project, services: Iterable[str], host: HostFacts | None
) -> dict[str, RuntimeDecision]:
    """The runtime of each service: declared, or advised for ``runtime: auto``."""
    names = list(services)
    auto = [n for n in names if project.services[n].runtime == "auto"]
    advice = {a.service: a for a in advise(project, host, auto)} if auto else {}
    return {
        n: RuntimeDecision.from_advice(advice[n])
        if n in advice
        else RuntimeDecision.as_declared(project.services[n])
        for n in names
    }


def decisions_json(decisions: Mapping[str, RuntimeDecision]) -> dict[str, dict[str, Any]]:
    return {n: d.to_json() for n, d in decisions.items()}
