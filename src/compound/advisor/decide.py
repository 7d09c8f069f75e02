"""Adding up the rules: evidence → :class:`Advice`, deterministically.

For each axis the weights of the rules that fire are summed per side:
``runtime_score = vm - container`` and ``host_score = virtual - bare-metal``.
A positive score picks vm / virtual, a negative one container / bare-metal.

* Ties: a runtime score of 0 → ``container`` (what plain Docker Compose would
  run); a host score of 0 → ``either``. ``tie`` / ``host_tie`` say so when
  factors fired on both sides; with no factor at all the result is the same
  default and the advice says "no factor applies" instead.
* Confidence: ``0.5 + 0.5 * |score| / (total weight + 2)``: 0.5 is a coin
  flip, 1.0 is certainty; the +2 keeps one weak factor from sounding certain.
* What would change the decision: every rule that alone flips it, either by
  ceasing to fire (``unless``: the reasons it has, listed first) or by
  starting to (``when``), strongest first, at most three per axis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from compound.advisor.evidence import Evidence, HostFacts, ImageFacts, project_evidence
from compound.advisor.hints import project_hints
from compound.advisor.rules import RULES, Axis, Rule, Toward
from compound.advisor.source import Locate
from compound.errors import UsageError
from compound.spec.model import Project

Runtime = Literal["container", "vm"]
HostClass = Literal["bare-metal", "virtual", "either"]

CONFIDENCE_PRIOR = 2  # pseudo-weight added to the total: see module docstring
MAX_WOULD_CHANGE = 3  # per axis, strongest first


@dataclass(frozen=True)
class Factor:
    """One rule that fired for a service."""

    rule: str
    factor: str
    axis: Axis
    toward: Toward
    weight: int
    why: str

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "factor": self.factor,
            "axis": self.axis,
            "toward": self.toward,
            "weight": self.weight,
            "why": self.why,
        }


@dataclass(frozen=True)
class Advice:
    """The advisor's answer for one service, with everything that decided it."""

    service: str
    declared_runtime: str  # container | vm | auto, as written
    runtime: Runtime
    confidence: float  # of the runtime choice, 0.5..1
    tie: bool  # runtime factors cancelled out; resolved to container
    host_class: HostClass
    host_confidence: float
    host_tie: bool
    factors: tuple[Factor, ...]
    would_change: tuple[str, ...]
    runtime_score: int  # vm - container
    host_score: int  # virtual - bare-metal
    evidence: Evidence = field(compare=False, repr=False)

    @property
    def effective_runtime(self) -> Runtime:
        """What ``up`` runs: the declared runtime, or this advice for ``auto``."""
        if self.declared_runtime == "vm":
            return "vm"
        if self.declared_runtime == "container":
            return "container"
        return self.runtime

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "declared_runtime": self.declared_runtime,
            "runtime": self.runtime,
            "effective_runtime": self.effective_runtime,
            "confidence": self.confidence,
            "tie": self.tie,
            "runtime_score": self.runtime_score,
            "host_class": self.host_class,
            "host_confidence": self.host_confidence,
            "host_tie": self.host_tie,
            "host_score": self.host_score,
            "factors": [f.to_json() for f in self.factors],
            "would_change": list(self.would_change),
        }


_SIDES: dict[Axis, tuple[Toward, Toward]] = {
    "runtime": ("vm", "container"),  # positive, negative
    "host": ("virtual", "bare-metal"),
}


def _score(fired: Iterable[Rule], axis: Axis) -> tuple[int, int]:
    """(signed score, total weight) of the fired rules on one axis."""
    plus = _SIDES[axis][0]
    score = total = 0
    for rule in fired:
        if rule.axis != axis:
            continue
        total += rule.weight
        score += rule.weight if rule.toward == plus else -rule.weight
    return score, total


def _pick(axis: Axis, score: int) -> str:
    plus, minus = _SIDES[axis]
    if score > 0:
        return plus
    if score < 0:
        return minus
    return "container" if axis == "runtime" else "either"


def _host_class(picked: str) -> HostClass:
    if picked == "bare-metal":
        return "bare-metal"
    return "virtual" if picked == "virtual" else "either"


def _confidence(score: int, total: int) -> float:
    return round(0.5 + 0.5 * abs(score) / (total + CONFIDENCE_PRIOR), 2)


def _format(template: str, facts: Mapping[str, str]) -> str:
    return template.format_map(facts)


def _would_change(
    rules: Sequence[Rule], fired: set[str], axis: Axis, score: int, decided: str
) -> list[tuple[int, str]]:
    plus = _SIDES[axis][0]
    label = "runtime" if axis == "runtime" else "host class"
    by_id = {r.id: r for r in rules}

    def signed(rule: Rule) -> int:
        return rule.weight if rule.toward == plus else -rule.weight

    out: list[tuple[int, str]] = []
    for rule in rules:
        if rule.axis != axis:
            continue
        if rule.id in fired:
            new, text, rank = score - signed(rule), rule.unless, 100 + rule.weight
        else:
            # firing it also silences the rules it excludes (small vs full box)
            new, text, rank = score + signed(rule), rule.when, rule.weight
            for other in rule.excludes:
                if other in fired and by_id[other].axis == axis:
                    new -= signed(by_id[other])
        result = _pick(axis, new)
        if result != decided:
            out.append((rank, f"{label} becomes {result} if {text}"))
    return out


def decide(evidence: Evidence, rules: Sequence[Rule] = RULES) -> Advice:
    """Apply the table to one service's evidence."""
    facts = evidence.facts()
    fired_rules = [r for r in rules if r.test(evidence)]
    fired = {r.id for r in fired_rules}
    order = {"runtime": 0, "host": 1}
    factors = tuple(
        Factor(r.id, r.factor, r.axis, r.toward, r.weight, _format(r.why, facts))
        for r in sorted(fired_rules, key=lambda r: (order[r.axis], -r.weight, rules.index(r)))
    )
    r_score, r_total = _score(fired_rules, "runtime")
    h_score, h_total = _score(fired_rules, "host")
    runtime = _pick("runtime", r_score)
    host = _pick("host", h_score)
    changes = _would_change(rules, fired, "runtime", r_score, runtime)
    host_changes = _would_change(rules, fired, "host", h_score, host)
    ranked = sorted(changes, key=lambda c: -c[0])[:MAX_WOULD_CHANGE]
    ranked += sorted(host_changes, key=lambda c: -c[0])[:MAX_WOULD_CHANGE]
    return Advice(
        service=evidence.service,
        declared_runtime=evidence.declared_runtime,
        runtime="vm" if runtime == "vm" else "container",
        confidence=_confidence(r_score, r_total),
        tie=r_score == 0 and r_total > 0,
        host_class=_host_class(host),
        host_confidence=_confidence(h_score, h_total),
        host_tie=h_score == 0 and h_total > 0,
        factors=factors,
        would_change=tuple(text for _, text in ranked),
        runtime_score=r_score,
        host_score=h_score,
        evidence=evidence,
    )


def advise(
    project: Project,
    host_facts: HostFacts | None = None,
    services: Sequence[str] | None = None,
    *,
    image_facts: Mapping[str, ImageFacts] | None = None,
    locate: Locate | None = None,
    rules: Sequence[Rule] = RULES,
) -> list[Advice]:
    """Advice for ``services`` (default: all, in file order).

    Hints of the whole project are validated (a :class:`SpecError` names the
    file, line and key path), because neighbours matter: a service's tenant is
    compared with every other service's. Unknown service names are a
    :class:`UsageError`.
    """
    if locate is None:
        from compound.advisor.source import project_locator

        locate = project_locator(project)
    names = list(services) if services else list(project.services)
    unknown = [n for n in names if n not in project.services]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], project.services, n=1)
        raise UsageError(
            f"no such service: {', '.join(unknown)}",
            hint=f"did you mean {close[0]!r}?" if close else "see `compound config --services`",
        )
    hints = project_hints(project, locate)
    evidence = project_evidence(project, hints, host_facts, image_facts)
    # a provider service runs nowhere compound decides: its binary delivers it
    return [decide(evidence[n], rules) for n in names if project.services[n].provider is None]
