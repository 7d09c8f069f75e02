"""``/metrics``: per-instance CPU, memory, network and block I/O for
containers and VMs alike, and project gauges and history counters.

Each scrape reads what runs now (the engine's list, each instance's cgroup,
a VM's QMP monitor); nothing is cached between scrapes. A VM's figures
come from its launcher's cgroup (QEMU's RAM, vCPU time, disk and NIC
traffic) and, from QMP, the guest's RAM size and its virtual disks' bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from compound.engine import containers
from compound.errors import CompoundError
from compound.reconcile.session import Session
from compound.runtimes.base import Instance
from compound.runtimes.vm.driver import LABEL_VM_RUN_DIR
from compound.runtimes.vm.qemu import qmp
from compound.server import cgroups

_LABELS = ["project", "service", "instance", "runtime"]


def vm_qmp_figures(inst: Instance) -> dict[str, int] | None:
    """The guest's RAM size and its disks' bytes read and written, from QMP."""
    run_dir = inst.labels.get(LABEL_VM_RUN_DIR)
    if not run_dir or not inst.running:
        return None
    sock = Path(run_dir) / "qmp.sock"
    try:
        memory = qmp(sock, "query-memory-size-summary", timeout=3) or {}
        blocks = qmp(sock, "query-blockstats", timeout=3) or []
    except CompoundError:
        return None
    read = sum(int((b.get("stats") or {}).get("rd_bytes", 0)) for b in blocks)
    written = sum(int((b.get("stats") or {}).get("wr_bytes", 0)) for b in blocks)
    return {"memory": int(memory.get("base-memory", 0)), "read": read, "written": written}


class ProjectCollector(Collector):
    """Collects for every project the server knows, at scrape time."""

    def __init__(self, sessions: Callable[[], Iterable[Session]]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        fam = _Families()
        for session in self._sessions():
            try:
                self._project(session, fam)
            except CompoundError as exc:
                fam.scrape_errors.add_metric([session.project.name, exc.message[:200]], 1)
        yield from fam.all()

    def _project(self, session: Session, fam: _Families) -> None:
        project = session.project.name
        counts: dict[tuple[str, str], int] = {}
        for inst in session.instances():
            if inst.oneoff:
                continue
            health = inst.health or ("running" if inst.running else inst.status)
            counts[(inst.runtime, health)] = counts.get((inst.runtime, health), 0) + 1
            if not inst.running:
                continue
            labels = [project, inst.service, inst.name, inst.runtime]
            pid = _pid(session, inst)
            use = cgroups.usage(inst.id, pid)
            if use is not None:
                fam.cpu.add_metric(labels, use.cpu_seconds)
                fam.mem.add_metric(labels, use.memory_bytes)
                if use.memory_limit_bytes:
                    fam.mem_limit.add_metric(labels, use.memory_limit_bytes)
                fam.rx.add_metric(labels, use.rx_bytes)
                fam.tx.add_metric(labels, use.tx_bytes)
                fam.blk_read.add_metric(labels, use.read_bytes)
                fam.blk_write.add_metric(labels, use.write_bytes)
            # an instance with a VM runtime dir has a QMP monitor; others have none
            figures = vm_qmp_figures(inst)
            if figures:
                fam.guest_mem.add_metric(labels, figures["memory"])
                fam.guest_read.add_metric(labels, figures["read"])
                fam.guest_write.add_metric(labels, figures["written"])
        for (runtime, health), n in sorted(counts.items()):
            fam.instances.add_metric([project, runtime, health], n)
        tally: dict[tuple[str, str], int] = {}
        for rev in session.store.history(project):
            kind = rev.command.split(" ", 1)[0]
            tally[(kind, rev.outcome)] = tally.get((kind, rev.outcome), 0) + 1
        for (kind, outcome), n in sorted(tally.items()):
            fam.revisions.add_metric([project, kind, outcome], n)


def _pid(session: Session, inst: Instance) -> int | None:
    try:
        info = containers.inspect(session.client, inst.id)
    except CompoundError:  # the engine did not answer: no network figures this time
        return None
    if info is None:  # gone between the listing and now
        return None
    state = info.get("State") or {}
    pid = state.get("Pid")
    return int(pid) if pid else None


class _Families:
    def __init__(self) -> None:
        def g(name: str, doc: str, labels: list[str] = _LABELS) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        def c(name: str, doc: str, labels: list[str] = _LABELS) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=labels)

        self.cpu = c("compound_instance_cpu_seconds", "CPU time of the instance's cgroup")
        self.mem = g(
            "compound_instance_memory_bytes",
            "Memory of the instance's cgroup without reclaimable page cache (a VM: its launcher)",
        )
        self.mem_limit = g("compound_instance_memory_limit_bytes", "The cgroup's memory limit")
        self.rx = c("compound_instance_network_receive_bytes", "Bytes received (not loopback)")
        self.tx = c("compound_instance_network_transmit_bytes", "Bytes sent (not loopback)")
        self.blk_read = c("compound_instance_blkio_read_bytes", "Block I/O read by the cgroup")
        self.blk_write = c("compound_instance_blkio_write_bytes", "Block I/O written by the cgroup")
        self.guest_mem = g("compound_vm_guest_memory_bytes", "A VM's RAM size (QMP)")
        self.guest_read = c("compound_vm_disk_read_bytes", "A VM's virtual disks, read (QMP)")
        self.guest_write = c("compound_vm_disk_write_bytes", "A VM's virtual disks, written (QMP)")
        self.instances = g(
            "compound_instances",
            "Instances by runtime and health",
            labels=["project", "runtime", "health"],
        )
        self.revisions = c(
            "compound_revisions",
            "Recorded revisions by command (up, rollback) and outcome",
            labels=["project", "command", "outcome"],
        )
        self.scrape_errors = g(
            "compound_scrape_error",
            "A project that could not be read in this scrape",
            labels=["project", "error"],
        )

    def all(self) -> Iterator[Any]:
        yield from vars(self).values()
