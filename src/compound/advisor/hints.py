"""The ``x-compound.hints`` of a project, as the advisor reads them.

The hints model and its validation live in the spec layer
(:mod:`compound.spec.hints`): the loader reports a bad hint with its
position, like any other key. Here: every service's typed hints at once.
"""

from __future__ import annotations

from compound.advisor.source import Locate
from compound.errors import SpecError, SpecErrors
from compound.spec.hints import HINTS, OS, Hints, KernelNeed, Latency, Trust, parse_hints
from compound.spec.model import Project

__all__ = [
    "HINTS",
    "OS",
    "Hints",
    "KernelNeed",
    "Latency",
    "Trust",
    "parse_hints",
    "project_hints",
]


def project_hints(project: Project, locate: Locate | None = None) -> dict[str, Hints]:
    """Hints of every service; raises all problems of the project at once."""
    out: dict[str, Hints] = {}
    errors: list[SpecError] = []
    for name, service in project.services.items():
        hints, problems = parse_hints(service.x_compound.hints, name, locate)
        out[name] = hints
        errors.extend(problems)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)
    return out
