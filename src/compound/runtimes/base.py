"""The one driver interface that containers and VMs both implement.

Modelled on Nomad's DriverPlugin: the reconciler and the CLI ask a driver
to create, start, stop, remove, inspect, read logs, exec (wired to our
stdio or captured), attach, describe, list processes, stats, wait and
fingerprint the host; they never know which runtime they talk to. A
runtime states what it can do in ``Capabilities``; every optional operation
has a default here that raises :class:`NotSupportedError` saying why, so
no caller probes a driver with ``getattr``.

Every instance, whatever its runtime, is a Docker container carrying the
labels below (a VM is a QEMU process inside a launcher container), so the
actual state of a project is always one label query against the engine.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

# the labels every instance carries, defined by the engine layer
from compound.engine.labels import (
    LABEL_CONFIG_HASH,
    LABEL_IMAGE_ID,
    LABEL_NETWORK,
    LABEL_NUMBER,
    LABEL_ONEOFF,
    LABEL_PREFIX,
    LABEL_PROJECT,
    LABEL_ROLE,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    LABEL_VERSION,
    LABEL_VOLUME,
    ROLE_LB,
)
from compound.errors import NotSupportedError
from compound.spec.model import Project, Service

if TYPE_CHECKING:  # the check machinery imports the engine; drivers load it on use
    from compound.runtimes.hostcheck import CheckDef, CheckEnv


# Report progress of long steps: (service, message).
ProgressFn = Callable[[str, str], None]


def no_progress(service: str, message: str) -> None:
    return None


@dataclass(frozen=True)
class Capabilities:
    exec: bool = True  # exec and exec_capture
    logs: bool = True
    stats: bool = True
    pause: bool = True
    native_healthcheck: bool = True  # the engine runs the healthcheck itself
    console: bool = False  # a separate kernel console exists (VMs)
    changes: bool = False  # can list files changed since creation (`compound diff`)
    terminal: bool = False  # exec and run can hand the user a terminal (tty, attach)
    top: bool = False  # its processes can be listed from the host
    # every port of the instance is reachable from its networks (see
    # Driver.open_network for a runtime where it depends on the service)
    open_network: bool = True
    copy_in: bool = False  # files can be copied into a running instance (`compound watch`)


@dataclass(frozen=True)
class PortBinding:
    target: int
    protocol: str
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class Instance:
    """What the engine says about one instance right now."""

    id: str
    name: str
    project: str
    service: str
    number: int
    runtime: str  # container | vm
    status: str  # created, running, paused, restarting, exited, dead, removing
    health: str | None  # None (no healthcheck), starting, healthy, unhealthy
    exit_code: int | None
    config_hash: str
    image: str
    image_id: str
    oneoff: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    ports: tuple[PortBinding, ...] = ()
    networks: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    # runtime-specific facts shown by `ps` (kernel version, accel, boot time)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status in ("running", "restarting", "paused")


@dataclass(frozen=True)
class LogLine:
    service: str
    instance: str
    text: str
    stream: str = "stdout"
    timestamp: str | None = None


ChangeKind = Literal["A", "C", "D"]  # added, changed, deleted (as `docker diff`)


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    path: str  # absolute, in the instance's root filesystem


@dataclass(frozen=True)
class RootChanges:
    """What an instance changed in its root filesystem since it was created,
    as the runtime sees it, and the paths the runtime itself manages there:
    mount points (volumes, tmpfs, binds, /proc...) and files it writes at
    every start (/etc/hosts, /etc/resolv.conf...). Those are never drift."""

    changes: tuple[Change, ...]
    managed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Processes:
    """What `compound top` shows for one instance."""

    titles: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


CheckStatus = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True)
class HostCheck:
    """One thing a runtime needs from this host, as `compound doctor` shows it."""

    name: str
    status: CheckStatus
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass(frozen=True)
class Fingerprint:
    """What a runtime found on this host (Nomad's fingerprint): its checks,
    in the order doctor prints them, and facts others read (``kvm_usable``)."""

    runtime: str
    checks: tuple[HostCheck, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


class Driver(abc.ABC):
    """A runtime that turns a Service into running instances."""

    name: str
    capabilities: Capabilities

    @abc.abstractmethod
    def prepare(
        self, project: Project, service: Service, progress: ProgressFn = no_progress
    ) -> str:
        """Make sure what the service runs from exists (image pulled or built,
        base disk exported). Returns the image id. Idempotent."""

    @abc.abstractmethod
    def create(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        *,
        oneoff: bool = False,
        image_id: str | None = None,
        name: str | None = None,
    ) -> Instance:
        """Create (not start) instance ``number`` of ``service``; ``oneoff`` for
        `compound run` (own name, no service alias, ignored by `up`);
        ``image_id`` pins the exact image the plan was made against; ``name``
        replaces the usual one (a successor started beside its predecessor)."""

    @abc.abstractmethod
    def start(self, instance: Instance) -> None: ...

    def rename(self, instance: Instance, name: str) -> None:
        """Give the instance a new name (a successor takes its predecessor's)."""
        raise NotSupportedError(f"the {self.name} runtime cannot rename {instance.name}")

    @abc.abstractmethod
    def stop(self, instance: Instance, grace: float | None = None) -> None:
        """Ask the instance to stop; kill it after ``grace`` seconds."""

    @abc.abstractmethod
    def kill(self, instance: Instance, signal: str = "SIGKILL") -> None: ...

    @abc.abstractmethod
    def remove(self, instance: Instance, volumes: bool = False) -> None:
        """Remove a stopped instance and what it alone owned (anonymous volumes
        with ``volumes``, a VM's overlay always)."""

    @abc.abstractmethod
    def inspect(self, instance_id: str) -> Instance: ...

    @abc.abstractmethod
    def logs(
        self,
        instance: Instance,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[LogLine]: ...

    @abc.abstractmethod
    def exec(
        self,
        instance: Instance,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        tty: bool = False,
        interactive: bool = False,
    ) -> int:
        """Run a command inside the instance, wired to our stdio; its exit code."""

    @abc.abstractmethod
    def stats(self, instance: Instance) -> dict[str, Any]: ...

    @abc.abstractmethod
    def wait(self, instance: Instance, timeout: float | None = None) -> int:
        """Block until the instance exits; its exit code."""

    def exec_capture(
        self,
        instance: Instance,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600.0,
        privileged: bool = False,
    ) -> tuple[int, bytes, bytes]:
        """Run a command without our stdio (a healthcheck, a probe, a lifecycle
        hook; ``privileged``: with every capability, as `docker exec
        --privileged`); (exit code, stdout, stderr). ``capabilities.exec``
        says whether it can."""
        raise NotSupportedError(f"the {self.name} runtime cannot run commands in {instance.name}")

    def copy_in(self, instance: Instance, archive: bytes, dest: str) -> None:
        """Unpack ``archive`` (an uncompressed tar) into directory ``dest`` of
        the running instance, replacing what is there (``capabilities.copy_in``)."""
        raise NotSupportedError(
            f"the {self.name} runtime cannot copy files into {instance.name}: it has no "
            "path from the host into the instance's filesystem",
            hint="use a bind mount for this path instead of develop.watch sync",
        )

    def start_attached(self, instance: Instance, *, tty: bool) -> int:
        """Start a created instance wired to our terminal (`compound run` at a
        prompt); its exit code. ``capabilities.terminal`` says whether it can."""
        raise NotSupportedError(
            f"the {self.name} runtime cannot give {instance.name} a terminal",
            hint="run it without a terminal (-T)",
        )

    def console(self, instance: Instance) -> str:
        """The instance's kernel console so far (``capabilities.console``)."""
        raise NotSupportedError(
            f"{instance.name}: the {self.name} runtime has no separate kernel console"
        )

    def top(self, instance: Instance) -> Processes:
        """The instance's processes as the host sees them (``capabilities.top``)."""
        raise NotSupportedError(f"{instance.name}: the {self.name} runtime cannot list processes")

    def describe(self, instance: Instance) -> Instance:
        """The instance as `ps` shows it: a listed instance plus what only this
        runtime knows (kernel, accelerator, boot time). Listing is enough here."""
        return instance

    def open_network(self, service: Service) -> bool:
        """Whether every port of ``service``'s instances is reachable from its
        networks, or only the ports it declares (a VM on QEMU's user
        networking, whose forwards are made per declared port)."""
        return self.capabilities.open_network

    def engine_runs_healthcheck(self, service: Service) -> bool:
        """Whether the engine runs ``service``'s healthcheck itself (its health
        is read from the engine), or compound probes it through ``exec``."""
        return self.capabilities.native_healthcheck

    def sweep(self, project_name: str) -> list[str]:
        """Remove what this runtime keeps outside the engine for instances of
        ``project_name`` that no longer exist (`down` calls it last, under
        the project lock); returns what it removed."""
        return []

    def shown_image(self, instance: Instance, project: Project) -> str:
        """The image `ps` names: what the instance runs from."""
        return instance.image

    @classmethod
    def host_checks(cls) -> tuple[CheckDef, ...]:
        """What this runtime needs from the host, as `compound doctor` checks it."""
        return ()

    def fingerprint(self, *, quick: bool = False) -> Fingerprint:
        """Run :meth:`host_checks` (``quick``: nothing that may take more than
        a second): what this runtime found on this host."""
        from compound.runtimes.hostcheck import run_checks

        env = self._check_env(quick)
        return Fingerprint(self.name, tuple(run_checks(env, self.host_checks())))

    def _check_env(self, quick: bool) -> CheckEnv:
        from compound.runtimes.hostcheck import CheckEnv

        return CheckEnv(quick=quick)

    def changes(self, instance: Instance) -> RootChanges:
        """Files the instance changed in its root filesystem since it was
        created (``capabilities.changes`` says whether this runtime can tell)."""
        raise NotSupportedError(f"the {self.name} runtime cannot list changed files")

    def pause(self, instance: Instance) -> bool:
        """Freeze the instance's writers (data flushed first where that means
        something); False if it was not running, so it is not ours to resume."""
        raise NotSupportedError(f"{instance.name}: the {self.name} runtime cannot pause")

    def unpause(self, instance: Instance) -> None:
        """Undo :meth:`pause`."""
        raise NotSupportedError(f"{instance.name}: the {self.name} runtime cannot unpause")


__all__ = [
    "LABEL_CONFIG_HASH",
    "LABEL_IMAGE_ID",
    "LABEL_NETWORK",
    "LABEL_NUMBER",
    "LABEL_ONEOFF",
    "LABEL_PREFIX",
    "LABEL_PROJECT",
    "LABEL_ROLE",
    "LABEL_RUNTIME",
    "LABEL_SERVICE",
    "LABEL_VERSION",
    "LABEL_VOLUME",
    "ROLE_LB",
    "Capabilities",
    "Change",
    "ChangeKind",
    "CheckStatus",
    "Driver",
    "Fingerprint",
    "HostCheck",
    "Instance",
    "LogLine",
    "PortBinding",
    "Processes",
    "ProgressFn",
    "RootChanges",
    "no_progress",
]
