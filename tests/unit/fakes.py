"""Test doubles for unit tests only: a project builder and an in-memory driver."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from compound.reconcile.rolling import Frontend
from compound.runtimes.base import Capabilities, Driver, Instance, LogLine, ProgressFn
from compound.spec.model import Dependency, Healthcheck, Network, Project, Service, Volume


def service(name: str, **kw: Any) -> Service:
    kw.setdefault("image", "local/busybox:latest")
    kw.setdefault("networks", {"default": {}})
    deps = kw.pop("depends", None)
    if deps:
        kw["depends_on"] = {
            d: Dependency(condition=c)
            for d, c in (x if isinstance(x, tuple) else (x, "service_started") for x in deps)
        }
    return Service(name=name, **kw)


def project(*services: Service, name: str = "demo") -> Project:
    return Project(
        name=name,
        working_dir="/tmp",
        files=("/tmp/compose.yaml",),
        services={s.name: s for s in services},
        networks={"default": Network(key="default", name=f"{name}_default")},
    )


def instance(
    svc: str, number: int = 1, *, hash_: str = "h", status: str = "running", **kw: Any
) -> Instance:
    return Instance(
        id=kw.pop("id", f"{svc}-{number}-id"),
        name=f"demo-{svc}-{number}",
        project="demo",
        service=svc,
        number=number,
        runtime=kw.pop("runtime", "container"),
        status=status,
        health=kw.pop("health", None),
        exit_code=kw.pop("exit_code", None),
        config_hash=hash_,
        image="local/busybox:latest",
        image_id="sha256:x",
        **kw,
    )


HEALTHY = Healthcheck(test=("CMD", "true"), interval=1.0)


class FakeDriver(Driver):
    """Records calls; services listed in ``fail`` fail at start, ``unhealthy``
    never become healthy, ``exit_codes`` exit at once with that code."""

    name = "container"
    capabilities = Capabilities()

    def __init__(
        self,
        fail: Sequence[str] = (),
        unhealthy: Sequence[str] = (),
        exit_codes: dict[str, int] | None = None,
    ) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = set(fail)
        self.unhealthy = set(unhealthy)
        self.exit_codes = exit_codes or {}
        self.missing_image = False
        self.unhealthy_hashes: set[str] = set()  # a bad update: its instances never get healthy
        self.instances: dict[str, Instance] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _log(self, verb: str, what: str) -> None:
        with self._lock:
            self.calls.append((verb, what))

    def prepare(
        self, project: Project, service: Service, progress: ProgressFn = lambda s, m: None
    ) -> str:
        self._log("prepare", service.name)
        return "sha256:img"

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
        self._log("create", f"{service.name}-{number}")
        inst = instance(
            service.name, number, hash_=config_hash, status="created", id=f"id{next(self._ids)}"
        )
        if name:
            inst = Instance(**{**inst.__dict__, "name": name})
        if self.missing_image:
            from compound.errors import ImageNotFoundError

            self.instances.pop(inst.id, None)
            raise ImageNotFoundError(f"image of {service.name} not found")
        self.instances[inst.id] = inst
        return inst

    def _set(self, inst: Instance, **kw: Any) -> None:
        cur = self.instances.get(inst.id, inst)
        self.instances[inst.id] = Instance(**{**cur.__dict__, **kw})

    def start(self, instance: Instance) -> None:
        self._log("start", instance.name)
        if instance.service in self.fail:
            from compound.errors import ServiceError

            raise ServiceError(instance.service, "port 8080 is already in use")
        if instance.service in self.exit_codes:
            self._set(instance, status="exited", exit_code=self.exit_codes[instance.service])
            return
        bad = instance.service in self.unhealthy or instance.config_hash in self.unhealthy_hashes
        health = "unhealthy" if bad else "healthy"
        self._set(instance, status="running", health=health)

    def rename(self, instance: Instance, name: str) -> None:
        self._log("rename", f"{instance.name}->{name}")
        self._set(instance, name=name)

    def stop(self, instance: Instance, grace: float | None = None) -> None:
        self._log("stop", instance.name)
        self._set(instance, status="exited", exit_code=0)

    def kill(self, instance: Instance, signal: str = "SIGKILL") -> None:
        self._log("kill", instance.name)

    def remove(self, instance: Instance, volumes: bool = False) -> None:
        self._log("remove", instance.name)
        self.instances.pop(instance.id, None)

    def inspect(self, instance_id: str) -> Instance:
        return self.instances[instance_id]

    def adopt(self, *instances: Instance) -> None:
        """Instances that exist before the test (an earlier `up`)."""
        for inst in instances:
            self.instances[inst.id] = inst

    def logs(
        self,
        instance: Instance,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[LogLine]:
        return iter(())

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
        return 0

    def stats(self, instance: Instance) -> dict[str, Any]:
        return {}

    def wait(self, instance: Instance, timeout: float | None = None) -> int:
        return 0


class FakeEngine:
    """The engine the verbs see (reconcile/project_engine.py), in memory: the
    instances are the fake drivers' own; networks and volumes are names."""

    def __init__(self, *drivers: FakeDriver, images: dict[str, str] | None = None) -> None:
        self.drivers = drivers
        self.networks: set[str] = set()
        self.volumes: set[str] = set()
        self.images = images or {}  # reference -> image id
        self.balanced: set[str] = set()

    def instances(self, *, include_stopped: bool = True, oneoff: bool = False) -> list[Instance]:
        found = [i for d in self.drivers for i in d.instances.values()]
        return sorted(
            (i for i in found if i.oneoff == oneoff and (include_stopped or i.running)),
            key=lambda i: (i.service, i.number, i.name),
        )

    def resources(self) -> tuple[Sequence[str], Sequence[str]]:
        return sorted(self.networks), sorted(self.volumes)

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    def exposed_ports(self, image_id: str) -> frozenset[str]:
        return frozenset()

    def ensure_network(self, project: Project, network: Network) -> bool:
        created = network.name not in self.networks
        self.networks.add(network.name)
        return created

    def ensure_volume(self, project: Project, volume: Volume) -> bool:
        created = volume.name not in self.volumes
        self.volumes.add(volume.name)
        return created

    def remove_networks(self) -> list[str]:
        gone, self.networks = sorted(self.networks), set()
        return gone

    def remove_volumes(self) -> list[str]:
        gone, self.volumes = sorted(self.volumes), set()
        return gone

    def balanced_services(self) -> set[str]:
        return set(self.balanced)

    def remove_load_balancer(self, service: str) -> None:
        self.balanced.discard(service)

    def remove_load_balancers(self, services: Iterable[str] | None) -> list[str]:
        only = set(services) if services is not None else set(self.balanced)
        gone = sorted(self.balanced & only)
        self.balanced -= only
        return [f"demo-{s}-lb" for s in gone]

    def frontend(
        self,
        project: Project,
        service: Service,
        *,
        inspect: Callable[[Instance], Instance],
        serving: Callable[[], Sequence[Instance]],
    ) -> Frontend:
        raise AssertionError("no unit test deploys a load-balanced service")
