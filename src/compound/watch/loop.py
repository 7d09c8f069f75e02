"""`compound watch`: apply ``develop.watch`` rules to running instances.

File events come from watchfiles (inotify through Rust's notify crate),
debounced into batches. Each batch is split per service by the first rule
that claims each path (``rules.py``); then, per service:

- ``rebuild`` anywhere in the batch: the image is rebuilt and the service
  recreated through the normal ``up`` path (a rolling update where the
  service has ``update_config``); its syncs are moot and skipped;
- otherwise the changed files are copied into every running instance
  (``Driver.copy_in``: the engine's archive API for a container, the guest
  agent for a VM) and deleted files removed (``rm -rf`` through exec, as
  Compose does), then ``sync+restart`` restarts the instances,
  ``sync+exec`` runs its command in each, ``restart`` restarts them.

Every step is reported as an event: a line for people ("synced 3 files to
web-1") or, with ``--json``, one JSON object a line.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from compound.errors import CompoundError, UsageError
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Project, WatchRule
from compound.watch.archive import pack
from compound.watch.rules import Claim, ServiceRules, files_under

Emit = Callable[[dict[str, Any]], None]
# (service) -> None: rebuild the image and recreate the service (the CLI owns the lock)
Rebuild = Callable[[str], None]
# (service) -> the service's instances and the driver of each
Instances = Callable[[str], list[tuple[Instance, Driver]]]

DEBOUNCE_MS = 500


@dataclass
class Batch:
    """What one debounced batch asks of one service."""

    copy: dict[str, str] = field(default_factory=dict)  # host path -> instance path
    delete: set[str] = field(default_factory=set)  # instance paths
    rebuild: bool = False
    restart: bool = False
    execs: list[WatchRule] = field(default_factory=list)  # sync+exec rules, in order

    def add(self, claim: Claim, host_path: str, deleted: bool) -> None:
        action = claim.rule.action
        if action == "rebuild":
            self.rebuild = True
            return
        if action == "restart":
            self.restart = True
            return
        assert claim.target is not None  # validated: every sync action has a target
        if deleted:
            self.delete.add(claim.target)
            self.copy.pop(host_path, None)
        else:
            self.copy[host_path] = claim.target
            self.delete.discard(claim.target)
        if action == "sync+restart":
            self.restart = True
        elif action == "sync+exec" and claim.rule not in self.execs:
            self.execs.append(claim.rule)


def describe(event: dict[str, Any]) -> str:
    """The line a person sees for an event."""
    kind = event["event"]
    where = event.get("instance") or event.get("service", "")
    if kind == "synced":
        n = event["files"]
        text = f"synced {n} file{'s' if n != 1 else ''} to {where}"
        if event.get("deleted"):
            text += f", deleted {event['deleted']}"
        return text + f" ({event['seconds']:.2f} s)"
    if kind == "deleted":
        n = event["deleted"]
        return f"deleted {n} file{'s' if n != 1 else ''} in {where}"
    if kind == "exec":
        return f"ran `{' '.join(event['command'])}` in {where}: exit {event['exit_code']}"
    if kind == "watching":
        return f"watching {', '.join(event['paths'])} for {', '.join(event['services'])}"
    if kind == "error":
        return f"{where}: {event['message']}"
    return f"{kind} {where}".strip()


class Watcher:
    def __init__(
        self,
        project: Project,
        services: Sequence[str],
        *,
        instances: Instances,
        rebuild: Rebuild,
        emit: Emit,
        debounce_ms: int = DEBOUNCE_MS,
    ) -> None:
        self.project = project
        self.rules = {
            n: ServiceRules(project.services[n])
            for n in services
            if project.services[n].develop and project.services[n].develop.watch  # type: ignore[union-attr]
        }
        if not self.rules:
            raise UsageError(
                "no service to watch: none of "
                + (", ".join(services) or "the services")
                + " has develop.watch rules",
                hint="add develop: {watch: [{path: ./src, action: sync, target: /app}]}",
            )
        for name, rules in self.rules.items():
            for i, rule in enumerate(rules.rules):
                if rule.action == "rebuild" and project.services[name].build is None:
                    raise UsageError(
                        f"service {name!r}: develop.watch[{i}] asks for a rebuild, but the "
                        "service has no build section to rebuild its image from",
                        hint="add build: (the image's context), or use action sync",
                    )
                if not os.path.exists(rule.path):
                    raise UsageError(
                        f"service {name!r}: develop.watch[{i}].path {rule.path} does not exist",
                        hint="create it, or correct the path (relative to the project directory)",
                    )
        self._instances = instances
        self._rebuild = rebuild
        self._emit = emit
        self.debounce_ms = debounce_ms
        self.stop_event = threading.Event()

    @property
    def paths(self) -> list[str]:
        return sorted({r.path for s in self.rules.values() for r in s.rules})

    def run(self, *, ready: Callable[[], None] | None = None) -> None:
        """Initial syncs, then batches until ``stop_event`` is set (or Ctrl-C)."""
        import logging

        import watchfiles

        # its own Ctrl-C notice would come between ours
        logging.getLogger("watchfiles").setLevel(logging.ERROR)
        self.initial_sync()
        self._emit({"event": "watching", "paths": self.paths, "services": sorted(self.rules)})
        changes = watchfiles.watch(
            *self.paths,
            watch_filter=None,  # ours are the rules' own filters
            debounce=self.debounce_ms,
            step=50,
            stop_event=self.stop_event,
            raise_interrupt=False,
        )
        if ready is not None:
            ready()
        for batch in changes:
            if batch:
                self.apply((path, change == watchfiles.Change.deleted) for change, path in batch)

    def initial_sync(self) -> None:
        for name, rules in self.rules.items():
            batch = Batch()
            for i, rule in enumerate(rules.rules):
                if not rule.initial_sync or not rule.target:
                    continue
                for path in files_under(rule.path, rules):
                    claim = rules.claim(path)
                    if claim is not None and claim.index == i:
                        batch.copy[path] = claim.target or ""
            if batch.copy:
                self._sync(name, batch)

    def apply(self, changes: Iterable[tuple[str, bool]]) -> None:
        """One debounced batch of (host path, deleted)."""
        batches: dict[str, Batch] = {}
        for path, deleted in sorted(set(changes)):
            if not deleted and os.path.isdir(path):
                continue  # its files come as their own events
            for name, rules in self.rules.items():
                claim = rules.claim(path)
                if claim is not None:
                    batches.setdefault(name, Batch()).add(claim, path, deleted)
        for name, batch in batches.items():
            try:
                self._apply_one(name, batch)
            except CompoundError as exc:
                self._emit({"event": "error", "service": name, "message": exc.message})
            except OSError as exc:  # an instance that went away mid-batch (its agent socket)
                self._emit({"event": "error", "service": name, "message": str(exc)})

    def _apply_one(self, name: str, batch: Batch) -> None:
        if batch.rebuild:
            self._emit({"event": "rebuilding", "service": name})
            started = time.monotonic()
            self._rebuild(name)
            self._emit(
                {
                    "event": "rebuilt",
                    "service": name,
                    "seconds": round(time.monotonic() - started, 3),
                }
            )
            return
        targets = self._sync(name, batch)
        for rule in batch.execs:
            assert rule.exec is not None
            for inst, driver in targets:
                code, _out, err = driver.exec_capture(
                    inst,
                    rule.exec.command,
                    user=rule.exec.user,
                    workdir=rule.exec.working_dir,
                    env=dict(rule.exec.environment) or None,
                    **({"privileged": True} if rule.exec.privileged else {}),
                )
                event: dict[str, Any] = {
                    "event": "exec",
                    "service": name,
                    "instance": inst.name,
                    "command": list(rule.exec.command),
                    "exit_code": code,
                }
                if code != 0:
                    event["stderr"] = err.decode(errors="replace")[-2000:]
                self._emit(event)
        if batch.restart:
            for inst, driver in targets or self._running(name):
                service = self.project.services[name]
                driver.stop(inst, service.stop_grace_period)
                driver.start(inst)
                self._emit({"event": "restarted", "service": name, "instance": inst.name})

    def _running(self, name: str) -> list[tuple[Instance, Driver]]:
        return [(i, d) for i, d in self._instances(name) if i.status == "running"]

    def _sync(self, name: str, batch: Batch) -> list[tuple[Instance, Driver]]:
        """Copy and delete in every running instance; the instances reached."""
        if not batch.copy and not batch.delete:
            return self._running(name)
        targets = self._running(name)
        if not targets:
            self._emit(
                {"event": "skipped", "service": name, "message": "no running instance to sync"}
            )
            return []
        packed = pack(sorted(batch.copy.items()))
        delete = sorted(batch.delete | set(packed.vanished))
        for inst, driver in targets:
            started = time.monotonic()
            for archive in packed.archives:
                driver.copy_in(inst, archive, "/")
            if delete:
                code, _, err = driver.exec_capture(inst, ["rm", "-rf", "--", *delete])
                if code != 0:
                    self._emit(
                        {
                            "event": "error",
                            "service": name,
                            "instance": inst.name,
                            "message": "rm of deleted files failed: "
                            + err.decode(errors="replace").strip(),
                        }
                    )
            self._emit(
                {
                    "event": "synced",
                    "service": name,
                    "instance": inst.name,
                    "files": len(packed.copied),
                    "deleted": len(delete),
                    "paths": packed.copied[:20],
                    "seconds": round(time.monotonic() - started, 3),
                }
            )
        return targets
