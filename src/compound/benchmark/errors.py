"""The bench's one error, in compound's tree."""

from __future__ import annotations

from compound.errors import CompoundError


class BenchError(CompoundError):
    """The bench cannot run (an image that cannot run both ways, a bad
    previous report); the message says why and what to do."""
