"""What must be placed: one :class:`ServiceDemand` per service, standing for
its identical replicas.

Per instance:

* **cpus, memory**: ``deploy.resources.reservations``, else limits, else the
  legacy ``cpus``/``mem_reservation``/``mem_limit``, else 0.25 CPU and 256 MiB
  (see :func:`compound.advisor.evidence.instance_demand`).
* **runtime**: as declared; ``runtime: auto`` takes the advisor's answer.
* **VM overhead**: a vm instance also needs ``VM_OVERHEAD_CPUS`` (QEMU's vCPU
  and I/O threads beyond the guest's work) and ``VM_OVERHEAD_MEMORY`` (the QEMU
  process, ~64 MiB, plus the guest kernel, initramfs and agent, ~128 MiB).
  If ``x-compound.vm.memory`` is larger than the reservation, the guest gets
  that much RAM and all of it counts, since QEMU allocates guest RAM up front.
* **where it may go**: ``deploy.placement.constraints`` (``node.labels.K ==
  V``, ``!=``, ``node.hostname``, ``node.platform.os``), the first ``spread``
  preference on a label, ``max_replicas_per_node``, the tenant hint, its OS,
  and, for ``latency: critical`` work, the host class the advisor chose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from compound.advisor.decide import Advice, HostClass, Runtime, advise
from compound.advisor.evidence import HostFacts, ImageFacts
from compound.advisor.source import Locate, project_locator
from compound.errors import SpecError, SpecErrors
from compound.placement.inventory import Host
from compound.spec.model import Project

MiB = 1024**2
VM_OVERHEAD_CPUS = 0.1
VM_OVERHEAD_MEMORY = 192 * MiB

_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=)\s*(.*?)\s*$")
ATTRIBUTES = ("node.labels.<name>", "node.hostname", "node.platform.os")


@dataclass(frozen=True)
class Constraint:
    """``node.labels.zone == a``: an attribute of the host compared with a value."""

    attribute: str  # node.labels.<k> | node.hostname | node.platform.os
    op: Literal["==", "!="]
    value: str

    def host_value(self, host: Host) -> str | None:
        if self.attribute == "node.hostname":
            return host.name
        if self.attribute == "node.platform.os":
            return host.os
        return host.labels.get(self.attribute[len("node.labels.") :])

    def matches(self, host: Host) -> bool:
        equal = self.host_value(host) == self.value
        return equal if self.op == "==" else not equal

    def __str__(self) -> str:
        return f"{self.attribute} {self.op} {self.value}"


def parse_constraint(text: str) -> Constraint | str:
    """A constraint, or the reason it cannot be one."""
    m = _CONSTRAINT_RE.match(text)
    if not m:
        return f"cannot read constraint {text!r}; write 'node.labels.<name> == <value>' or '!='"
    attribute, op, value = m.groups()
    value = value.strip("\"'")
    ok = attribute in ("node.hostname", "node.platform.os") or (
        attribute.startswith("node.labels.") and len(attribute) > len("node.labels.")
    )
    if not ok:
        return (
            f"constraint attribute {attribute!r} is not supported; "
            f"use one of {', '.join(ATTRIBUTES)}"
        )
    return Constraint(attribute, "==" if op == "==" else "!=", value)


@dataclass(frozen=True)
class ServiceDemand:
    """The identical instances of one service and where they may go."""

    project: str
    service: str
    replicas: int
    cpus: float  # per instance, VM overhead included
    memory: int  # bytes per instance, VM overhead included
    runtime: Runtime
    os: str = "linux"
    tenant: str | None = None
    required_class: Literal["bare-metal", "virtual"] | None = None
    prefer: HostClass = "either"
    constraints: tuple[Constraint, ...] = ()
    spread: str | None = None  # a label name: replicas spread evenly over its values
    max_per_host: int | None = None
    global_: bool = False  # deploy.mode: global: one instance on every used host
    latency_critical: bool = False
    tcg_ok: bool = False  # a VM whose file accepts TCG (x-compound.vm.accel: tcg)

    @property
    def key(self) -> str:
        return f"{self.project}/{self.service}" if self.project else self.service

    def instance_name(self, number: int) -> str:
        prefix = f"{self.project}-" if self.project else ""
        return f"{prefix}{self.service}-{number}"

    def to_json(self) -> dict[str, object]:
        return {
            "project": self.project,
            "service": self.service,
            "replicas": self.replicas,
            "global": self.global_,
            "cpus": self.cpus,
            "memory": self.memory,
            "runtime": self.runtime,
            "os": self.os,
            "tenant": self.tenant,
            "required_class": self.required_class,
            "prefer": self.prefer,
            "constraints": [str(c) for c in self.constraints],
            "spread": self.spread,
            "max_per_host": self.max_per_host,
            "tcg_ok": self.tcg_ok,
        }


def service_demands(
    project: Project,
    *,
    advice: Sequence[Advice] | None = None,
    host_facts: HostFacts | None = None,
    image_facts: Mapping[str, ImageFacts] | None = None,
    locate: Locate | None = None,
) -> list[ServiceDemand]:
    """Demands of every service of ``project``; constraint errors are
    :class:`SpecError` at ``services.X.deploy.placement.constraints[i]``."""
    where = locate or project_locator(project)
    if advice is None:
        advice = advise(project, host_facts, image_facts=image_facts, locate=where)
    by_name = {a.service: a for a in advice}
    out: list[ServiceDemand] = []
    errors: list[SpecError] = []
    for name, svc in project.services.items():
        if svc.provider is not None:
            continue  # its binary delivers it elsewhere: nothing runs on a host here
        adv = by_name.get(name) or advise(project, host_facts, [name], locate=where)[0]
        ev = adv.evidence
        placement = svc.deploy.placement
        constraints: list[Constraint] = []
        for i, text in enumerate(placement.constraints):
            parsed = parse_constraint(text)
            path = ("services", name, "deploy", "placement", "constraints", i)
            if isinstance(parsed, str):
                errors.append(SpecError(parsed, location=where(path)))
            else:
                constraints.append(parsed)
        spread = None
        for i, pref in enumerate(placement.preferences):
            target = pref.get("spread")
            path = ("services", name, "deploy", "placement", "preferences", i)
            if target is None or not target.startswith("node.labels.") or len(pref) != 1:
                errors.append(
                    SpecError(
                        f"placement preference {pref!r} is not supported",
                        location=where(path),
                        hint="use {spread: node.labels.<name>}",
                    )
                )
            elif spread is None:  # like Swarm, the first preference is the main one
                spread = target[len("node.labels.") :]
        runtime = adv.effective_runtime
        cpus, memory = ev.demand.cpus, ev.demand.memory
        if runtime == "vm":
            memory = max(memory, svc.x_compound.vm.memory or 0) + VM_OVERHEAD_MEMORY
            cpus += VM_OVERHEAD_CPUS
        required: Literal["bare-metal", "virtual"] | None = None
        if ev.latency_critical and adv.host_class != "either":
            required = adv.host_class  # latency work goes only where the advice allows
        out.append(
            ServiceDemand(
                project=project.name,
                service=name,
                replicas=max(svc.replicas, 0),
                cpus=cpus,
                memory=memory,
                runtime=runtime,
                os=ev.os,
                tenant=ev.tenant,
                required_class=required,
                prefer=adv.host_class,
                constraints=tuple(constraints),
                spread=spread,
                max_per_host=placement.max_replicas_per_node,
                global_=svc.deploy.mode == "global",
                latency_critical=ev.latency_critical,
                tcg_ok=runtime == "vm" and svc.x_compound.vm.accel == "tcg",
            )
        )
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecErrors(errors)
    return out
