"""Runtime and host-class advice: ``compound advise`` and ``runtime: auto``.

Public surface::

    advise(project, host_facts=None, services=None, *, image_facts=None) -> list[Advice]
    decide(evidence, rules=RULES) -> Advice
    HostFacts, ImageFacts, Advice, Factor, Hints, RULES

The rules live in one table, :mod:`compound.advisor.rules`; read it to know
why compound chose what it chose.
"""

from compound.advisor.decide import Advice, Factor, advise, decide
from compound.advisor.evidence import Evidence, HostFacts, ImageFacts
from compound.advisor.hints import HINTS, Hints, KernelNeed
from compound.advisor.rules import RULES, Rule

__all__ = [
    "HINTS",
    "RULES",
    "Advice",
    "Evidence",
    "Factor",
    "Hints",
    "HostFacts",
    "ImageFacts",
    "KernelNeed",
    "Rule",
    "advise",
    "decide",
]
