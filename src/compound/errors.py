"""The one exception tree of compound.

Every error a user can provoke is a ``CompoundError``; the CLI prints its
``render()`` and exits with ``exit_code``, never with a traceback. ::

    CompoundError                  exit 1: something the user can fix
     +-- UsageError                exit 2: bad command line (flags, service names)
     +-- SpecError                 one problem in a Compose file: file, line, key path
     +-- SpecErrors                several SpecErrors found in one pass
     +-- NotSupportedError         valid input that compound does not run (yet)
     +-- EngineError               the Docker Engine refused or failed a call
     |    +-- EngineUnavailableError   no engine answers on the socket
     |    +-- ImageNotFoundError       image missing locally and not pullable
     |    +-- NoSuchInstanceError      the container behind an instance is gone
     +-- ServiceError              one service failed to start, stop, become healthy
     +-- ApplyError                an ``up`` that left some services not running
     +-- StateError                the SQLite store is unreadable or locked
     +-- VMError                   a guest did not boot, answer or stop
     +-- ArchiveError              a volume backup that is damaged or does not match
     +-- LoadBalancerError         a load balancer's admin socket did not answer
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class CompoundError(Exception):
    """Root of every error compound raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text shown to the user: what is wrong, then what to do."""
        text = self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class UsageError(CompoundError):
    exit_code = 2


@dataclass(frozen=True)
class Location:
    """Where a value came from: file, 1-based line and column, key path."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str = ""

    def render(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


class SpecError(CompoundError):
    """One problem in a Compose file, located as precisely as we know."""

    def __init__(
        self, message: str, *, location: Location | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.location = location or Location()

    def render(self) -> str:
        loc = self.location
        head = loc.render()
        if loc.path:
            head += f": {loc.path}"
        text = f"{head}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "error": "SpecError",
            "message": self.message,
            "hint": self.hint,
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "path": loc.path,
        }


class SpecErrors(CompoundError):
    """Several problems found in one validation pass, reported together."""

    def __init__(self, errors: Sequence[SpecError]) -> None:
        self.errors = list(errors)
        super().__init__(f"{len(self.errors)} problem(s) in the Compose file")

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)

    def to_json(self) -> dict[str, object]:
        return {"error": "SpecErrors", "errors": [e.to_json() for e in self.errors]}


class NotSupportedError(CompoundError):
    pass


class EngineError(CompoundError):
    pass


class EngineUnavailableError(EngineError):
    pass


class ImageNotFoundError(EngineError):
    pass


class ServiceError(CompoundError):
    """A failure tied to one service (and maybe one of its instances)."""

    def __init__(self, service: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"service {service!r}: {message}", hint=hint)
        self.service = service


class ApplyError(CompoundError):
    """An ``up`` that did not reach the desired state; says what did and did not."""

    def __init__(
        self,
        message: str,
        *,
        done: Iterable[str] = (),
        failed: dict[str, str] | None = None,
        not_started: Iterable[str] = (),
        hint: str | None = None,
        interrupted: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        if interrupted:
            self.exit_code = 130  # as for any command stopped with Ctrl-C
        self.done = list(done)
        self.failed = dict(failed or {})
        self.not_started = list(not_started)

    def render(self) -> str:
        lines = [self.message]
        if self.done:
            lines.append("  done:        " + ", ".join(self.done))
        for svc, why in self.failed.items():
            lines.append(f"  failed:      {svc}: {why}")
        if self.not_started:
            lines.append("  not started: " + ", ".join(self.not_started))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        return {
            "error": "ApplyError",
            "message": self.message,
            "done": self.done,
            "failed": self.failed,
            "not_started": self.not_started,
            "hint": self.hint,
        }


class StateError(CompoundError):
    pass


class ProjectBusyError(StateError):
    """Another compound is changing the same project (and we were told not to wait)."""


class VMError(CompoundError):
    pass


class NoSuchInstanceError(EngineError):
    """The container behind an Instance no longer exists."""


class ArchiveError(CompoundError):
    """A backup archive that is not one, is damaged, or does not match its manifest."""

    def __init__(self, archive: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{archive}: {problem}",
            hint=hint or "nothing was changed; use another backup (`compound volume backup`)",
        )
        self.problem = problem


class LoadBalancerError(CompoundError):
    """A load balancer's admin socket (HAProxy's runtime API) did not answer,
    or refused a command."""
