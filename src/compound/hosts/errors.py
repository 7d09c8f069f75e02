"""Errors of Docker hosts and the Swarm target; each names the host."""

from __future__ import annotations

from compound.errors import CompoundError


class HostError(CompoundError):
    """Something about one host: unreachable, refused our key, not there."""

    def __init__(self, host: str, message: str, *, hint: str | None = None) -> None:
        self.host = host
        super().__init__(f"host {host!r}: {message}", hint=hint)


class SwarmError(CompoundError):
    """Forming the Swarm or deploying to it failed."""
