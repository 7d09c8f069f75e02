"""The container runtime: services as Docker Engine containers.

:class:`ContainerDriver` implements the :class:`~compound.runtimes.base.Driver`
interface through the Docker SDK and the engine layer (:mod:`compound.engine`:
errors, streams, networks and volumes); actual state is read by
:mod:`compound.runtimes.instances`, images by :mod:`compound.runtimes.images`.

What a Compose option means for the engine is decided in
:mod:`compound.runtimes.container_config` (pure); this module only talks.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import IO, Any, cast

import docker
import docker.errors
import docker.utils.build
import requests.exceptions
import urllib3.exceptions

from compound.engine import containers
from compound.engine.client import connect, engine_errors, translate
from compound.engine.errors import IMAGE_HINT, gone, not_running, service_error
from compound.engine.streams import Pump, frames, raw_chunks, split_lines, write_flush
from compound.errors import (
    CompoundError,
    EngineError,
    ImageNotFoundError,
    NoSuchInstanceError,
    NotSupportedError,
    ServiceError,
)
from compound.runtimes.base import (
    Capabilities,
    Change,
    ChangeKind,
    Driver,
    Instance,
    LogLine,
    Processes,
    ProgressFn,
    RootChanges,
    no_progress,
)
from compound.runtimes.container_config import (
    CreateArgs,
    build_create_args,
    image_ref,
)
from compound.runtimes.hostcheck import CheckDef
from compound.runtimes.imagemounts import with_image_volumes
from compound.runtimes.images import build_image, local_image_id, not_pullable, pull_image
from compound.runtimes.instances import (
    inspect_instance,
    list_instances,
)
from compound.runtimes.pulltimes import pull_is_due, record_pull
from compound.spec.model import Project, Service

DEFAULT_STOP_GRACE = 10  # seconds, the engine's own default


# --- the driver ------------------------------------------------------------------------


# GET /containers/{id}/changes: Kind 0 modified, 1 added, 2 deleted.
_CHANGE_KINDS: dict[int, ChangeKind] = {0: "C", 1: "A", 2: "D"}


class ContainerDriver(Driver):
    """Services as plain Docker containers."""

    name = "container"
    capabilities = Capabilities(
        exec=True,
        logs=True,
        stats=True,
        pause=True,
        native_healthcheck=True,
        console=False,
        changes=True,
        terminal=True,
        top=True,
        copy_in=True,
    )

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
    ) -> None:
        self._client = client
        # None: the process's own stdio at call time (pytest swaps them).
        self._stdin, self._stdout, self._stderr = stdin, stdout, stderr
        self._prepared: dict[str, str] = {}  # image ref -> id, from this process's prepare()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    @classmethod
    def host_checks(cls) -> tuple[CheckDef, ...]:
        from compound.runtimes.container_checks import CONTAINER_CHECKS

        return CONTAINER_CHECKS

    # -- prepare ------------------------------------------------------------------

    def prepare(
        self, project: Project, service: Service, progress: ProgressFn = no_progress
    ) -> str:
        image_id = self._prepare(project, service, progress)
        # create() follows at once: remember the answer instead of asking again
        self._prepared[image_ref(project, service)] = image_id
        return image_id

    def _prepare(self, project: Project, service: Service, progress: ProgressFn) -> str:
        ref = image_ref(project, service)
        policy = service.pull_policy or "missing"
        local = local_image_id(self.client, ref)
        if service.build is not None:
            return self._prepare_build(project, service, ref, policy, local, progress)
        if policy == "build":
            raise ServiceError(service.name, "pull_policy: build needs a `build` section")
        if policy == "never":
            if local is None:
                raise ImageNotFoundError(
                    f"image {ref!r} is not available locally (pull_policy: never)",
                    hint=IMAGE_HINT,
                )
            return local
        if policy == "always":
            try:
                image_id = pull_image(self.client, ref, progress, service.name)
                record_pull(ref)
                return image_id
            except ImageNotFoundError as exc:
                if local is None:
                    raise
                raise EngineError(
                    f"could not pull image {ref!r} (pull_policy: always)",
                    hint="use pull_policy: missing to run the local copy, or check the registry",
                ) from exc.__cause__
        interval = service.pull_interval
        due = policy == "refresh" or (interval is not None and pull_is_due(ref, interval))
        if local is not None and due:
            # refresh / daily / weekly / every_<d>: pull when due; a registry that does
            # not answer leaves the local copy in use (Compose does the same)
            try:
                image_id = pull_image(self.client, ref, progress, service.name)
            except ImageNotFoundError:
                progress(service.name, f"could not refresh {ref} (pull_policy: {policy}); local")
                return local
            record_pull(ref)
            return image_id
        if local is not None:
            return local
        progress(service.name, f"image {ref} is not present locally; pulling")
        image_id = pull_image(self.client, ref, progress, service.name)
        record_pull(ref)
        return image_id

    def _prepare_build(
        self,
        project: Project,
        service: Service,
        ref: str,
        policy: str,
        local: str | None,
        progress: ProgressFn,
    ) -> str:
        if policy == "build":
            return build_image(self.client, project, service, progress)
        if policy == "always":
            with contextlib.suppress(ImageNotFoundError):
                return pull_image(self.client, ref, progress, service.name)
        if local is not None:
            return local
        return build_image(self.client, project, service, progress)

    # -- create ----------------------------------------------------------------------

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
        project, service = with_image_volumes(self.client, project, service)
        ref = image_ref(project, service)
        pinned = image_id
        tagged = self._prepared.get(ref)
        if tagged is None:
            tagged = self._prepared[ref] = local_image_id(self.client, ref) or ""
        image_id = image_id or tagged or None
        if image_id is None:
            raise (
                not_pullable(ref)
                if service.build is None
                else ImageNotFoundError(
                    f"image {ref!r} of service {service.name!r} has not been built",
                    hint="run `compound build` or `compound up`",
                )
            )
        args = self.request(
            project, service, number, config_hash, image_id, oneoff=oneoff, name=name
        )
        if pinned and pinned != tagged:
            # the tag has moved on (a rollback to an earlier image): run the
            # exact image the instance is meant to, by id
            args.config["Image"] = pinned
        container_id = containers.create(self.client, args.request(), service=service.name)
        # built from what we sent rather than a second round trip to the engine
        return Instance(
            id=container_id,
            name=args.name,
            project=project.name,
            service=service.name,
            number=number,
            runtime="container",
            status="created",
            health=None,
            exit_code=None,
            config_hash=config_hash,
            image=ref,
            image_id=image_id,
            oneoff=oneoff,
            labels=dict(args.labels),
            details={
                "stop_timeout": args.config.get("StopTimeout"),
                "stop_signal": args.config.get("StopSignal"),
                "tty": bool(args.config.get("Tty")),
            },
        )

    def request(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        image_id: str,
        *,
        oneoff: bool = False,
        name: str | None = None,
        resolve: bool = True,
    ) -> CreateArgs:
        """The container request of instance ``number``, as this engine takes
        it; the VM driver rewrites it into its launcher's. ``resolve``: look
        up the containers that ``service:x`` references name."""
        return build_create_args(
            project,
            service,
            number,
            config_hash,
            image_id,
            (lambda target: self._resolve(project.name, service.name, target)) if resolve else None,
            api_version=self.client.api.api_version,
            oneoff_suffix=uuid.uuid4().hex[:12] if oneoff else None,
            name=name,
        )

    def _resolve(self, project_name: str, service: str, target: str) -> str:
        """service:x → the id of x's first instance."""
        found = list_instances(self.client, project_name, target)
        if not found:
            raise ServiceError(
                service,
                f"refers to service {target!r} (network_mode/ipc/pid: service:{target}), "
                "which has no container",
                hint=f"create {target!r} first (`compound up` orders it as a dependency)",
            )
        return found[0].id

    # -- lifecycle --------------------------------------------------------------------

    def start(self, instance: Instance) -> None:
        try:
            self.client.api.start(instance.id)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise service_error(instance.service, f"start {instance.name}", exc) from exc

    def rename(self, instance: Instance, name: str) -> None:
        with engine_errors(f"rename {instance.name} to {name}"):
            self.client.api.rename(instance.id, name)

    def stop(self, instance: Instance, grace: float | None = None) -> None:
        if grace is None:
            grace = instance.details.get("stop_timeout")
        seconds = DEFAULT_STOP_GRACE if grace is None else max(0, math.ceil(grace))
        try:
            self.client.api.stop(instance.id, timeout=seconds)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if not gone(exc):
                raise service_error(instance.service, f"stop {instance.name}", exc) from exc

    def kill(self, instance: Instance, signal: str = "SIGKILL") -> None:
        try:
            self.client.api.kill(instance.id, signal=signal)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if not (gone(exc) or not_running(exc)):
                raise service_error(instance.service, f"kill {instance.name}", exc) from exc

    def remove(self, instance: Instance, volumes: bool = False) -> None:
        try:
            # force: a container under a restart policy may be restarting.
            self.client.api.remove_container(instance.id, v=volumes, force=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if gone(exc) or "already in progress" in str(exc):
                return
            raise service_error(instance.service, f"remove {instance.name}", exc) from exc

    def pause(self, instance: Instance) -> bool:
        # the engine's freezer cgroup: every process stops between two syscalls
        if inspect_instance(self.client, instance.id).status != "running":
            return False
        with engine_errors(f"pause {instance.name}"):
            self.client.api.pause(instance.id)
        return True

    def unpause(self, instance: Instance) -> None:
        with engine_errors(f"unpause {instance.name}"):
            self.client.api.unpause(instance.id)

    def inspect(self, instance_id: str) -> Instance:
        return inspect_instance(self.client, instance_id)

    def changes(self, instance: Instance) -> RootChanges:
        """The engine's diff of the container's writable layer (running or
        stopped), and the mount points it keeps apart from that layer."""
        with engine_errors(f"list the changed files of {instance.name}"):
            rows = self.client.api.diff(instance.id) or []
            attrs = self.client.api.inspect_container(instance.id)
        managed = [str(m["Destination"]) for m in attrs.get("Mounts") or [] if m.get("Destination")]
        if (attrs.get("HostConfig") or {}).get("Init"):
            # `init: true` bind-mounts the engine's init here (/sbin is /usr/sbin
            # in merged-/usr images); it is not in Mounts
            managed += ["/sbin/docker-init", "/usr/sbin/docker-init"]
        return RootChanges(
            changes=tuple(
                Change(_CHANGE_KINDS[int(r["Kind"])], str(r["Path"]))
                for r in rows
                if int(r.get("Kind", -1)) in _CHANGE_KINDS
            ),
            managed=tuple(managed),
        )

    def wait(self, instance: Instance, timeout: float | None = None) -> int:
        try:
            result = self.client.api.wait(instance.id, timeout=cast(int, timeout))
        except requests.exceptions.RequestException as exc:
            timed_out = isinstance(exc, requests.exceptions.ReadTimeout) or "timed out" in str(exc)
            if timeout is not None and timed_out:
                raise ServiceError(
                    instance.service, f"{instance.name} did not exit within {timeout:g}s"
                ) from exc
            raise service_error(instance.service, f"wait for {instance.name}", exc) from exc
        except docker.errors.DockerException as exc:
            if gone(exc):
                raise NoSuchInstanceError(f"container {instance.name} does not exist") from exc
            raise service_error(instance.service, f"wait for {instance.name}", exc) from exc
        return int(result.get("StatusCode", -1))

    # -- logs ----------------------------------------------------------------------------

    def logs(
        self,
        instance: Instance,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[LogLine]:
        tty = instance.details.get("tty")
        if tty is None:
            tty = self.inspect(instance.id).details["tty"]
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(timestamps),
            "tail": "all" if tail is None else str(max(0, tail)),
        }
        if since:
            params["since"] = f"{parse_since(since):.9f}"
        api = cast(Any, self.client.api)  # the raw response keeps stdout/stderr apart
        with engine_errors(f"read the logs of {instance.name}"):
            response = api._get(
                api._url("/containers/{0}/logs", instance.id), params=params, stream=True
            )
            api._raise_for_status(response)
            if follow:
                api._disable_socket_timeout(api._get_raw_response_socket(response))
        return self._log_lines(instance, response, bool(tty), timestamps)

    def _log_lines(
        self, instance: Instance, response: Any, tty: bool, timestamps: bool
    ) -> Iterator[LogLine]:
        try:
            chunks = raw_chunks(response.raw) if tty else frames(response.raw)
            for stream, line in split_lines(chunks):
                ts = None
                if timestamps:
                    ts, _, line = line.partition(" ")
                yield LogLine(instance.service, instance.name, line, stream, ts)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise translate(exc, f"read the logs of {instance.name}") from exc
        finally:
            response.close()

    # -- exec ------------------------------------------------------------------------------

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
        exec_id = self._exec_create(instance, command, user, workdir, env, tty, interactive)
        with engine_errors(f"exec in {instance.name}"):
            if interactive:
                sock = self.client.api.exec_start(exec_id, tty=tty, socket=True)

                def resize(height: int, width: int) -> None:
                    self.client.api.exec_resize(exec_id, height=height, width=width)

                Pump(resize, sock, tty, self._in(), self._out(), self._err()).run()
            else:
                for out, err in self.client.api.exec_start(
                    exec_id, tty=tty, stream=True, demux=True
                ):
                    write_flush(self._out(), out)
                    write_flush(self._err(), err)
        return self._exec_exit_code(exec_id)

    def start_attached(self, instance: Instance, *, tty: bool) -> int:
        """Start a created instance wired to our terminal (`compound run` at a
        prompt): attach before start so no output is lost; its exit code."""
        with engine_errors(f"attach to {instance.name}"):
            sock = self.client.api.attach_socket(
                instance.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
        self.start(instance)

        def resize(height: int, width: int) -> None:
            self.client.api.resize(instance.id, height=height, width=width)

        with engine_errors(f"attached to {instance.name}"):
            Pump(resize, sock, tty, self._in(), self._out(), self._err()).run()
        return self.wait(instance)

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
        """Run a command without our stdio; (exit code, stdout, stderr).
        ``timeout`` is not enforced: the engine's exec API has none, and the
        engine runs healthchecks itself (native_healthcheck)."""
        exec_id = self._exec_create(
            instance, command, user, workdir, env, False, False, privileged=privileged
        )
        with engine_errors(f"exec in {instance.name}"):
            out, err = self.client.api.exec_start(exec_id, demux=True)
        code = self._exec_exit_code(exec_id)
        return code, out or b"", err or b""

    def console(self, instance: Instance) -> str:
        raise NotSupportedError(f"{instance.name}: a container has no separate kernel console")

    def top(self, instance: Instance) -> Processes:
        with engine_errors(f"list the processes of {instance.name}"):
            data = self.client.api.top(instance.id)
        return Processes(
            titles=tuple(data.get("Titles", [])),
            rows=tuple(tuple(str(x) for x in proc) for proc in data.get("Processes", []) or []),
        )

    def _exec_create(
        self,
        instance: Instance,
        command: Sequence[str],
        user: str | None,
        workdir: str | None,
        env: dict[str, str] | None,
        tty: bool,
        interactive: bool,
        *,
        privileged: bool = False,
    ) -> str:
        try:
            result = self.client.api.exec_create(
                instance.id,
                list(command),
                stdout=True,
                stderr=True,
                stdin=interactive,
                tty=tty,
                environment=env,
                workdir=workdir,
                user=user or "",
                privileged=privileged,
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise service_error(instance.service, f"exec in {instance.name}", exc) from exc
        return str(result["Id"])

    def copy_in(self, instance: Instance, archive: bytes, dest: str) -> None:
        # the engine's archive API: no tar or shell needed in the image
        with engine_errors(f"copy files into {instance.name}:{dest}"):
            ok = self.client.api.put_archive(instance.id, dest, archive)
        if not ok:
            raise ServiceError(instance.service, f"the engine refused files for {instance.name}")

    def _exec_exit_code(self, exec_id: str) -> int:
        # The stream can end a moment before the engine records the exit.
        deadline = time.monotonic() + 5
        while True:
            with engine_errors("inspect exec"):
                info = self.client.api.exec_inspect(exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return -1 if code is None else int(code)
            time.sleep(0.05)

    def _in(self) -> IO[bytes]:
        return self._stdin or sys.stdin.buffer

    def _out(self) -> IO[bytes]:
        return self._stdout or sys.stdout.buffer

    def _err(self) -> IO[bytes]:
        return self._stderr or sys.stderr.buffer

    # -- stats --------------------------------------------------------------------------

    def stats(self, instance: Instance) -> dict[str, Any]:
        try:
            # Not one-shot: the engine then samples twice, which a CPU % needs.
            raw = self.client.api.stats(instance.id, stream=False)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if gone(exc):
                raise NoSuchInstanceError(f"container {instance.name} does not exist") from exc
            raise service_error(instance.service, f"stats of {instance.name}", exc) from exc
        return summarize_stats(raw)


# --- helpers without an engine -------------------------------------------------------------


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_since(since: str, now: float | None = None) -> float:
    """Like ``docker logs --since``: a Unix time, an RFC 3339 time, or a
    duration ago ("10m", "1h30m")."""
    text = since.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if _DURATION.fullmatch(text) or re.fullmatch(rf"(?:{_DURATION.pattern})+", text):
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text))
        return (time.time() if now is None else now) - seconds
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise CompoundError(
            f"since {since!r} is neither a time (2024-01-31T12:00:00Z, Unix seconds) "
            "nor a duration (10m, 1h30m)"
        ) from exc


def summarize_stats(raw: Mapping[str, Any]) -> dict[str, Any]:
    """`docker stats` numbers from one stats sample (cgroup v1 and v2)."""
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = (
        cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1
    )
    cpu_percent = (
        cpu_delta / system_delta * online * 100 if cpu_delta > 0 and system_delta > 0 else 0.0
    )

    mem = raw.get("memory_stats") or {}
    mem_stats = mem.get("stats") or {}
    # As the docker CLI: page cache that can be reclaimed is not "used".
    inactive = mem_stats.get("total_inactive_file", mem_stats.get("inactive_file", 0))
    usage = mem.get("usage", 0)
    usage = usage - inactive if inactive < usage else usage
    limit = mem.get("limit", 0)

    rx = tx = 0
    for net in (raw.get("networks") or {}).values():
        rx += net.get("rx_bytes", 0)
        tx += net.get("tx_bytes", 0)
    read = write = 0
    for entry in (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ():
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value", 0)
        elif op == "write":
            write += entry.get("value", 0)
    return {
        "cpu_percent": round(cpu_percent, 2),
        "memory_usage": usage,
        "memory_limit": limit,
        "memory_percent": round(usage / limit * 100, 2) if limit else 0.0,
        "net_rx": rx,
        "net_tx": tx,
        "block_read": read,
        "block_write": write,
        "pids": (raw.get("pids_stats") or {}).get("current", 0),
    }
