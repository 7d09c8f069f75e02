"""THE rule table of the advisor: every reason compound has for choosing a
runtime (container or vm) and a host class (bare-metal or virtual).

Read it top to bottom; extend it by adding a row. Each rule names the factor
it encodes (``factor``), tests one thing about the :class:`Evidence`, and
pushes one decision one way with a weight. The decision is the sum of
weights on each side; :mod:`compound.advisor.decide` does the adding.

Weights (one scale for both axes)::

    10  decisive   the other choice cannot work at all (a Linux kernel cannot
                   run a Windows container; a VM cannot join the host's namespaces)
     8  requirement  a security boundary (code of another tenant, untrusted
                   code) or a hard performance need (latency on bare metal)
     4  strong     a technical need: its own kernel, modules, kernel settings,
                   host-level agents
     3  significant  a cost or a platform capability (licences, DR, automation,
                   privileged, hypervisor in the latency path, KVM missing,
                   physical devices)
     2  moderate   agility and capacity (scaling, density, device passthrough, box share)
     1  preference all else equal (healthchecks, binds, volumes, nested virt)

Documented conflicts (each is a test in tests/unit/advisor/test_conflicts.py):

* windows image + host namespace: 10 vs 10 → a tie, resolved to container and
  reported as a tie; the service cannot run as written either way.
* isolation vs agility: multitenant or untrusted (8) beats replicas + density
  + healthcheck + volumes + binds (2+2+1+1+1 = 7) → vm.
* isolation vs latency: untrusted (8) beats no-hypervisor latency (3) → vm;
  the host class stays bare-metal (latency 8), so one hypervisor layer only.
* privileged vs host namespaces: a privileged host agent (10 vs 3) → container.
* privileged and ``trust: trusted``: the privileged rule does not fire.
* legacy full OS (4) vs replicas (2) → vm.
* no KVM (3) vs legacy or isolation (4, 8) → still vm, slower under TCG.
* licensing (3) vs automation (3) → a host-class tie → either, reported.
* latency (8) vs disaster recovery + a small app (3+2) → bare-metal; add
  automation (3) and it is a host-class tie → either, reported.

Ties: a runtime tie → ``container`` (what plain Docker Compose would do); a
host-class tie or no host factor → ``either``. Both are reported as ties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from compound.advisor.evidence import LARGE_SHARE, SMALL_SHARE, Evidence

Toward = Literal["container", "vm", "bare-metal", "virtual"]
Axis = Literal["runtime", "host"]

DECISIVE = 10
REQUIREMENT = 8
STRONG = 4
SIGNIFICANT = 3
MODERATE = 2
PREFERENCE = 1


@dataclass(frozen=True)
class Rule:
    id: str
    factor: str  # the factor of the design it encodes (the citation)
    toward: Toward
    weight: int
    test: Callable[[Evidence], bool]
    why: str  # shown when it fires; ``{fields}`` of Evidence.facts()
    when: str  # "becomes <toward> if <when>": the rule would fire
    unless: str  # "becomes <other> if <unless>": the rule would stop firing
    excludes: tuple[str, ...] = ()  # rules that cannot fire together with this one

    @property
    def axis(self) -> Axis:
        return "runtime" if self.toward in ("container", "vm") else "host"


RULES: tuple[Rule, ...] = (
    # --- runtime: what only one runtime can do ------------------------------
    Rule(
        "vm-disk",
        "legacy VMs: a whole VM disk with its own OS and bootloader",
        "vm",
        DECISIVE,
        lambda e: e.vm_disk,
        "it is a VM disk (x-compound.vm.disk): it boots its own kernel, only a VM runs it",
        "it is a VM disk (x-compound.vm.disk)",
        "it were lifted into an image (`compound lift`) and ran from that image",
    ),
    Rule(
        "windows-guest",
        "another OS: Windows and Linux workloads on one host",
        "vm",
        DECISIVE,
        lambda e: e.os == "windows" and e.host_os != "windows",
        "a {os} workload ({os_from}) on a {host_os} host needs its own kernel",
        "its image or os hint is windows",
        "it ran on a Windows host or were a Linux image",
    ),
    Rule(
        "host-namespace",
        "host integration: shares the host's namespaces",
        "container",
        DECISIVE,
        lambda e: bool(e.host_namespaces),
        "it shares the host's {namespaces} namespace; a VM has its own kernel and cannot",
        "it used network_mode/pid/ipc: host",
        "it did not use the host's network, pid or ipc namespace",
    ),
    # --- runtime: isolation --------------------------------------------------
    Rule(
        "multitenant",
        "multitenancy: tenants that must not share a kernel need a VM boundary",
        "vm",
        REQUIREMENT,
        lambda e: e.multitenant,
        "tenant {tenant} shares the project with tenant(s) {other_tenants}",
        "its tenant differs from its neighbours'",
        "every service had the same tenant",
    ),
    Rule(
        "untrusted",
        "multitenancy: untrusted code must not share the host kernel",
        "vm",
        REQUIREMENT,
        lambda e: e.untrusted,
        "trust: untrusted; a kernel exploit in a container reaches the host",
        "it were marked trust: untrusted",
        "it were trusted",
    ),
    # --- runtime: legacy, kernel, OS configuration --------------------------
    Rule(
        "legacy-full-os",
        "legacy: a monolith that needs a full operating system or systemd",
        "vm",
        STRONG,
        lambda e: e.hints.legacy,
        "legacy: true; it expects a full OS (init, systemd, its own services)",
        "it were a legacy monolith (legacy: true)",
        "it did not need a full OS",
    ),
    Rule(
        "kernel-specific",
        "legacy: needs a specific kernel",
        "vm",
        STRONG,
        lambda e: e.hints.kernel is not None,
        "it needs {kernel}; containers share whatever kernel the host runs",
        "it needed a specific kernel or modules",
        "it ran on any kernel",
    ),
    Rule(
        "kernel-modules",
        "legacy: loads kernel modules (cap_add SYS_MODULE)",
        "vm",
        STRONG,
        lambda e: "SYS_MODULE" in e.caps or "ALL" in e.caps,
        "cap_add {caps}: modules loaded from a container change the host kernel for all",
        "it added the SYS_MODULE capability",
        "it did not load kernel modules",
    ),
    Rule(
        "kernel-sysctls",
        "OS configuration: kernel settings a container may not change",
        "vm",
        STRONG,
        lambda e: bool(e.kernel_sysctls),
        "sysctls {sysctls} are host-wide; Docker refuses them in a container",
        "it set host-wide sysctls (vm.*, kernel.*)",
        "it set only namespaced sysctls",
    ),
    Rule(
        "host-agent",
        "host integration: a host-level agent must see this host's kernel",
        "container",
        STRONG,
        lambda e: bool(e.system_mounts),
        "it bind-mounts {system_mounts}; in a VM it would see the guest, not the host",
        "it bind-mounted /proc, /sys, /dev or the Docker socket",
        "it did not mount host system paths",
    ),
    Rule(
        "privileged",
        "multitenancy: full privileges in a container are root on the host",
        "vm",
        SIGNIFICANT,
        lambda e: e.privileged and not e.trusted,
        "privileged: true without trust: trusted; a VM confines what it can reach",
        "it ran privileged (and were not marked trusted)",
        "it were not privileged, or marked trust: trusted",
    ),
    Rule(
        "latency-no-hypervisor",
        "latency: critical work runs without a hypervisor in the path",
        "container",
        SIGNIFICANT,
        lambda e: e.latency_critical,
        "latency: critical; a container adds no hypervisor exit to the hot path",
        "it were latency: critical",
        "it were not latency-critical",
    ),
    Rule(
        "kvm-unavailable",
        "host facts: no usable KVM means VMs run under TCG emulation",
        "container",
        SIGNIFICANT,
        lambda e: e.host.kvm_usable is False,
        "KVM is not usable on this host; a VM would be emulated (TCG), many times slower",
        "KVM were not usable on the host",
        "KVM were usable on the host",
    ),
    Rule(
        "sys-admin",
        "multitenancy: SYS_ADMIN is most of root on the host kernel",
        "vm",
        MODERATE,
        lambda e: bool(e.caps & {"SYS_ADMIN", "ALL"}) and not e.privileged and not e.trusted,
        "cap_add {caps} without trust: trusted",
        "it added SYS_ADMIN (and were not marked trusted)",
        "it dropped SYS_ADMIN or were marked trusted",
    ),
    Rule(
        "foreign-arch",
        "another OS: an image for another CPU architecture",
        "vm",
        MODERATE,
        lambda e: e.foreign_arch,
        "the image is {arch} and the host {host_arch}; a VM emulates the whole machine",
        "its image were built for another architecture",
        "its image matched the host architecture",
    ),
    Rule(
        "replicas",
        "microservices: rapid scaling and fast start",
        "container",
        MODERATE,
        lambda e: e.replicas > 1,
        "{replicas} replicas; containers start in milliseconds and scale cheaply",
        "it ran more than one replica",
        "it ran a single replica",
    ),
    Rule(
        "density",
        "microservices: dense packing",
        "container",
        MODERATE,
        lambda e: e.hints.density,
        "density: true; containers carry no guest kernel or reserved guest memory",
        "density were asked for (density: true)",
        "density were not asked for",
    ),
    Rule(
        "devices",
        "hardware access: host devices",
        "container",
        MODERATE,
        lambda e: bool(e.devices),
        "devices {devices} pass straight into a container; a VM needs passthrough",
        "it used host devices",
        "it used no host devices",
    ),
    Rule(
        "net-admin",
        "OS configuration: owns a whole network stack",
        "vm",
        PREFERENCE,
        lambda e: "NET_ADMIN" in e.caps and not e.host_namespaces and not e.privileged,
        "cap_add NET_ADMIN; a VM gives it a network stack and firewall of its own",
        "it added NET_ADMIN",
        "it did not add NET_ADMIN",
    ),
    Rule(
        "host-binds",
        "portability: host paths are shared natively with a container",
        "container",
        PREFERENCE,
        lambda e: bool(e.host_binds),
        "it bind-mounts {binds}; a VM reaches host paths only through virtio-9p",
        "it bind-mounted host paths",
        "it did not bind-mount host paths",
    ),
    Rule(
        "stateful-volumes",
        "storage: stateful volumes at native speed",
        "container",
        PREFERENCE,
        lambda e: bool(e.stateful_volumes),
        "it writes volume(s) {volumes}; a container writes them at native speed",
        "it wrote to named volumes",
        "it wrote to no named volume",
    ),
    Rule(
        "healthcheck",
        "microservices: built to be orchestrated",
        "container",
        PREFERENCE,
        lambda e: e.healthcheck,
        "it declares a healthcheck: a service built to be started, probed and replaced",
        "it declared a healthcheck",
        "it declared no healthcheck",
    ),
    Rule(
        "nested-virt",
        "host facts: a VM on a VM host is nested virtualisation",
        "container",
        PREFERENCE,
        lambda e: e.host.host_is_vm is True and e.host.kvm_usable is not False,
        "this host is itself a VM; a VM here would be nested",
        "the host were itself a VM",
        "the host were bare metal",
    ),
    # --- host class ----------------------------------------------------------
    Rule(
        "latency-bare-metal",
        "latency: critical work does better on bare metal (trading systems)",
        "bare-metal",
        REQUIREMENT,
        lambda e: e.latency_critical,
        "latency: critical; no hypervisor scheduling or noisy neighbours below it",
        "it were latency: critical",
        "it were not latency-critical",
    ),
    Rule(
        "licensing",
        "licensing: bare metal avoids hypervisor licence costs",
        "bare-metal",
        SIGNIFICANT,
        lambda e: e.hints.licensing,
        "licensing: true; every hypervisor host is a licence to pay for",
        "hypervisor licences were a cost to avoid (licensing: true)",
        "hypervisor licences were not a concern",
    ),
    Rule(
        "disaster-recovery",
        "disaster recovery: site recovery and high availability on a VM platform",
        "virtual",
        SIGNIFICANT,
        lambda e: e.hints.disaster_recovery,
        "disaster_recovery: true; a VM host can be replicated and live-migrated",
        "it needed site recovery or live migration",
        "it did not need site recovery",
    ),
    Rule(
        "automation",
        "existing investment: provisioning and automation built around VMs and APIs",
        "virtual",
        SIGNIFICANT,
        lambda e: e.hints.automation,
        "automation: true; virtual hosts are created and resized through an API",
        "hosts had to be provisioned through an API",
        "hosts needed no API provisioning",
    ),
    Rule(
        "mixed-os",
        "mixed workloads: Windows and Linux sharing hardware",
        "virtual",
        MODERATE,
        lambda e: e.mixed_os,
        "the project mixes {project_os}; a VM host runs both on one machine",
        "the project mixed Windows and Linux services",
        "the project used one operating system",
    ),
    Rule(
        "capacity-small",
        "capacity: an application that does not fill a physical box",
        "virtual",
        MODERATE,
        lambda e: e.box_share < SMALL_SHARE,
        "all replicas need {share} of a physical box; a VM host shares the rest",
        f"it needed less than {SMALL_SHARE:.0%} of a physical box",
        f"it needed at least {SMALL_SHARE:.0%} of a physical box",
        excludes=("capacity-full",),
    ),
    Rule(
        "capacity-full",
        "capacity: an application that fills a physical box gains nothing from slicing it",
        "bare-metal",
        MODERATE,
        lambda e: e.box_share >= LARGE_SHARE,
        "all replicas need {share} of a physical box; a hypervisor would only add overhead",
        f"it needed at least {LARGE_SHARE:.0%} of a physical box",
        f"it needed less than {LARGE_SHARE:.0%} of a physical box",
        excludes=("capacity-small",),
    ),
    Rule(
        "devices-hardware",
        "hardware access: physical devices exist on bare metal",
        "bare-metal",
        SIGNIFICANT,
        lambda e: bool(e.devices),
        "devices {devices} are physical; a virtual host has only emulated ones",
        "it used host devices",
        "it used no host devices",
    ),
    Rule(
        "containers-in-vm",
        "containers inside a VM: VM isolation with container agility",
        "virtual",
        MODERATE,
        lambda e: e.isolation_needed and e.agile,
        "it needs isolation and agility: its containers can run on a per-tenant VM host",
        "it needed isolation (tenant/untrusted) and scaled or packed densely",
        "it needed no isolation, or no scaling and density",
    ),
    Rule(
        "resource-pools",
        "resource pools and quotas beyond container limits",
        "virtual",
        PREFERENCE,
        lambda e: e.demand.declared_reservation,
        "it reserves resources; a VM platform's pools guarantee them, container limits only cap",
        "it declared resource reservations",
        "it declared no reservations",
    ),
)

RULES_BY_ID: dict[str, Rule] = {r.id: r for r in RULES}
