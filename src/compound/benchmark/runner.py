"""Run the bench: start the image both ways, measure round by round, remove
everything.

Every engine object the bench creates belongs to a compose project named
``<prefix>-<run id>-…`` and is brought up through the same
:class:`~compound.reconcile.session.Session` ``compound up`` uses, with a
store of its own in a temporary directory (a bench leaves no history in the
user's). Whatever happens (a failed measurement, Ctrl-C), ``finally`` brings
every project down with its volumes and sweeps anything still labelled with
the run's prefix.

Order: a preflight (can the image run both ways, which tools does it hold),
one long-lived project for network, volume and CPU work (rounds interleaved
target by target, the order rotating each round), then short-lived projects
for startup, idle memory and disk (one instance per round and variant,
interleaved the same way), then density (instances added one at a time up
to the user's bound or memory budget).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from compound.benchmark import hostprobe, loadgen, workload
from compound.benchmark.errors import BenchError
from compound.benchmark.figures import CONTAINER, Figure, Report, is_vm, vm_variant
from compound.benchmark.options import PROBE_IMAGE, BenchOptions
from compound.benchmark.stats import NOISY_SPREAD, noisy_load
from compound.benchmark.workload import HTTP_PORT, MARKER, Target
from compound.engine import Client, containers, engine_version, images, resources
from compound.engine.request import plain_config
from compound.errors import CompoundError, EngineError
from compound.hostfacts import host_facts
from compound.planner.diff import UpOptions
from compound.reconcile.session import Session
from compound.runtimes.base import LABEL_PROJECT, Instance
from compound.runtimes.registry import RuntimeDrivers
from compound.runtimes.vm.basedisk import ensure_base_disk
from compound.spec import LoadOptions, load_project
from compound.spec.model import Project
from compound.state.store import Store

BOOT_TIMEOUT = 180.0  # a VM under TCG on a loaded host
EXEC_TIMEOUT = 600.0
MEMORY_RESERVE_MIB = 1024  # density stops before the host has less than this available


class Progress(Protocol):
    def step(self, text: str) -> None:
        """A new stage of the run (one line)."""

    def note(self, text: str) -> None:
        """Something the user should know (a skipped figure, a failed round)."""


class Bench:
    def __init__(self, opts: BenchOptions, client: Client, progress: Progress) -> None:
        self.opts = opts
        self.client = client
        self.progress = progress
        self.run_id = uuid.uuid4().hex[:6]
        self.prefix = f"{opts.prefix}-{self.run_id}"
        self.workdir = Path(tempfile.mkdtemp(prefix=f"compound-{self.prefix}-"))
        self.store = Store(self.workdir / "state.db", warn=progress.note)
        self.sessions: dict[str, Session] = {}
        self.errors: list[str] = []
        self.load_samples: list[float] = [hostprobe.load1()]
        self.tools: set[str] = set()
        self.figures: dict[str, Figure] = {}
        # one set of drivers for every project: the VM driver finds its kernel,
        # launcher image and accelerator once, not once per project
        self.drivers = RuntimeDrivers(client)
        self.interrupted = False

    # --- projects -----------------------------------------------------------------

    def open_project(self, suffix: str, compose: str) -> Session:
        name = f"{self.prefix}-{suffix}"
        d = self.workdir / name
        d.mkdir()
        (d / "compose.yaml").write_text(compose)
        project = load_project(
            LoadOptions(files=(str(d / "compose.yaml"),), project_name=name, environ={})
        ).project
        session = Session(project, self.client, store=self.store, drivers=self.drivers)
        self.sessions[name] = session
        return session

    def close_project(self, session: Session) -> None:
        with contextlib.suppress(CompoundError):
            session.down(volumes=True, remove_orphans=True, timeout=2)
        self.sessions.pop(session.project.name, None)

    def cleanup(self) -> None:
        """Everything this run started goes, whatever state it is in."""
        for session in list(self.sessions.values()):
            self.close_project(session)
        self.sweep()
        self.store.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def sweep(self) -> None:
        """Engine objects labelled with this run's projects that a down missed
        (a Ctrl-C in the middle of a create, the preflight's container)."""

        def mine(labels: dict[str, str] | None) -> bool:
            return (labels or {}).get(LABEL_PROJECT, "").startswith(self.prefix)

        # the low-level lists carry labels without inspecting each object, so
        # objects other programs remove meanwhile cannot break the sweep
        client = self.client
        with contextlib.suppress(CompoundError):
            for c in containers.list_containers(client):
                if mine(c.get("Labels")):
                    with contextlib.suppress(CompoundError):
                        containers.remove(client, c["Id"])
        with contextlib.suppress(CompoundError):
            for n in resources.all_networks(client):
                if mine(n.get("Labels")):
                    with contextlib.suppress(CompoundError):
                        resources.remove_network(client, n["Id"])
        with contextlib.suppress(CompoundError):
            for v in resources.all_volumes(client):
                if mine(v.get("Labels")):
                    with contextlib.suppress(CompoundError):
                        resources.remove_volume(client, v["Name"], force=True)

    def up(self, session: Session, opts: UpOptions) -> None:
        """`compound up` of a bench project; a Ctrl-C during it (which the
        applier turns into an unfinished up) stops the whole run."""
        try:
            session.up(opts)
        finally:
            self.stop_if_interrupted()

    def stop_if_interrupted(self) -> None:
        if self.interrupted:
            raise KeyboardInterrupt

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.interrupted = True
        raise KeyboardInterrupt

    def instance(self, session: Session, service: str) -> Instance:
        found = [i for i in session.instances([service]) if i.running]
        if not found:
            raise RuntimeError(f"{service} has no running instance")
        return found[0]

    def exec(self, session: Session, service: str, argv: Sequence[str]) -> str:
        inst = self.instance(session, service)
        code, out, err = session.driver_for(inst).exec_capture(inst, argv, timeout=EXEC_TIMEOUT)
        if code != 0:
            text = (err or out).decode(errors="replace").strip()[-300:]
            raise RuntimeError(f"{service}: {argv[0]} exited {code}: {text}")
        return out.decode(errors="replace")

    # --- figures ---------------------------------------------------------------------

    def fig(self, fid: str, group: str, title: str, unit: str, better: str = "lower") -> Figure:
        if fid not in self.figures:
            self.figures[fid] = Figure(
                fid, group, title, unit, "higher" if better == "higher" else "lower"
            )
        return self.figures[fid]

    def skip(self, fid: str, reason: str) -> None:
        f = self.figures[fid]
        if f.skipped is None:
            f.skipped = reason
            self.progress.note(f"{f.title}: skipped: {reason}")

    def measure(
        self,
        label: str,
        targets: Sequence[tuple[Figure, str]],
        fn: Callable[[], Sequence[float | None]],
    ) -> None:
        """Run one measurement; a failure records None for its round and an
        error line, never a made-up number."""
        try:
            values = list(fn())
        except (RuntimeError, ValueError, OSError, CompoundError) as exc:
            self.stop_if_interrupted()
            msg = exc.render() if isinstance(exc, CompoundError) else str(exc)
            self.errors.append(f"{label}: {msg}")
            self.progress.note(f"{label}: failed: {msg}")
            values = [None] * len(targets)
        for (f, variant), v in zip(targets, values, strict=True):
            f.add(variant, v)

    # --- preflight -----------------------------------------------------------------------

    def preflight(self) -> None:
        image = self.opts.image
        info = images.inspect(self.client, image)
        if info is None:
            raise BenchError(
                f"image {image!r} is not on this host",
                hint="build or load it first (no registry is asked), or pass --image",
            )
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        if info.get("Architecture") and info["Architecture"] != arch:
            raise BenchError(
                f"image {image!r} is built for {info['Architecture']}, this host is {arch}:"
                " it cannot run both ways here",
                hint="pick an image of this host's architecture",
            )
        config = plain_config(
            image,
            ["-c", workload.TOOLS_SCRIPT],
            entrypoint=["/bin/sh"],
            network_mode="none",
            labels={LABEL_PROJECT: f"{self.prefix}-preflight"},
        )
        try:
            ran = containers.run(self.client, config, what="the bench's preflight container")
        except EngineError as exc:
            raise BenchError(
                f"image {image!r} cannot run as a container: {exc.message}",
                hint="the bench needs a POSIX shell (/bin/sh) in the image",
            ) from exc
        if ran.exit_code != 0:
            err = ran.stderr.decode(errors="replace").strip()
            raise BenchError(
                f"image {image!r} cannot run the bench's workloads: /bin/sh -c failed"
                f" (exit {ran.exit_code}: {err})",
                hint="the bench needs a POSIX shell in the image",
            )
        out = ran.stdout
        self.tools = set(bytes(out).decode().split())

    def refuse_unless_vm(self, session: Session, service: str) -> None:
        """The VM side's prepare (base disk, kernel, launcher) must succeed."""
        svc = session.project.services[service]
        decisions = session.decide([service])
        try:
            session.drivers[decisions[service].runtime].prepare(session.project, svc)
        except CompoundError as exc:
            raise BenchError(
                f"image {self.opts.image!r} cannot run as a compound VM: {exc.message}",
                hint=exc.hint,
            ) from exc

    def vm_accels(self) -> tuple[list[str], str]:
        """Accelerators to measure (TCG always; KVM when the probe boots a
        guest with it), and what the probe said."""
        kvm, reason = False, "no VM driver"
        if "vm" in self.drivers:
            fp = self.drivers["vm"].fingerprint()
            kvm = bool(fp.facts.get("kvm_usable"))
            checks = [c for c in fp.checks if "kvm" in c.name.lower() or "accel" in c.name.lower()]
            reason = "; ".join(f"{c.name}: {_first_line(c.detail)}" for c in checks) or (
                "KVM works" if kvm else "KVM does not work here"
            )
        accels = ["tcg"] + (["kvm"] if kvm and self.opts.try_kvm else [])
        return accels, reason

    # --- waiting ---------------------------------------------------------------------------

    def wait_marker(self, session: Session, inst: Instance, t0: float) -> float:
        """Seconds from t0 (wall clock) to the engine's timestamp of the marker
        line the entrypoint prints first."""
        driver = session.driver_for(inst)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            for line in driver.logs(inst, timestamps=True):
                if MARKER in line.text and line.timestamp:
                    return max(0.0, parse_ts(line.timestamp) - t0)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst.name} printed no {MARKER} within {BOOT_TIMEOUT:.0f} s")
            current = driver.inspect(inst.id)
            if current.status not in ("running", "created", "restarting"):
                raise RuntimeError(f"{inst.name} is {current.status} before its entrypoint ran")
            time.sleep(0.05)

    def published_port(self, session: Session, service: str) -> int:
        inst = session.driver_for(i := self.instance(session, service)).inspect(i.id)
        for p in inst.ports:
            if p.target == HTTP_PORT and p.host_port:
                return p.host_port
        raise RuntimeError(f"{service}: port {HTTP_PORT} is not published")

    @staticmethod
    def wait_http(port: int, t0: float, path: str = "/index.html") -> float:
        """Seconds from t0 until the first HTTP 200 on 127.0.0.1:port."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    conn.request("GET", path)
                    if conn.getresponse().status == 200:
                        return time.time() - t0
                finally:
                    conn.close()
            time.sleep(0.05)
        raise RuntimeError(f"nothing answered HTTP on port {port} within {BOOT_TIMEOUT:.0f} s")

    # --- the run ----------------------------------------------------------------------------

    def run(self, load_user_project: Callable[[], Project] | None = None) -> Report:
        from compound.benchmark import advice, claims

        started = time.monotonic()
        o = self.opts
        isolation: dict[str, Any] = {}
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, self._on_sigint) if main else None
        try:
            self.progress.step(f"run {self.prefix}: can {o.image} run as a container and as a VM?")
            self.preflight()
            accels, accel_reason = self.vm_accels()
            targets = [Target(CONTAINER)] + [Target(vm_variant(a), a) for a in accels]
            self.progress.step(
                "variants: " + ", ".join(t.variant for t in targets) + f" ({accel_reason})"
            )
            self.declare_figures()
            isolation = self.steady_rounds(targets)
            self.startup_rounds(targets)
            self.density(targets)
        finally:
            self.progress.step("removing everything the bench started")
            with _interrupts_deferred(self.progress):
                self.cleanup()
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        self.load_samples.append(hostprobe.load1())
        report = Report(
            date=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            image=o.image,
            mode=o.mode,
            host=self.host_info(accels, accel_reason),
            variants=workload.variant_labels({t.variant: t.accel for t in targets if t.accel}),
            figures=list(self.figures.values()),
            isolation=isolation,
            errors=self.errors,
            options={**vars(o), "project_prefix": self.prefix},
            duration_s=round(time.monotonic() - started, 1),
        )
        report.noise = self.noise(report)
        report.claims = claims.check_claims(report)
        report.advice = advice.advise_in_light(report, load_user_project)
        return report

    def declare_figures(self) -> None:
        f = self.fig
        f("startup.entrypoint", "startup", "create → entrypoint", "s")
        f("startup.healthy", "startup", "create → healthy (first HTTP answer)", "s")
        f("memory.rss", "memory", "idle memory, RSS", "MiB")
        f("memory.pss", "memory", "idle memory, PSS", "MiB")
        f("density.instances", "density", "idle instances within the memory budget", "", "higher")
        f("disk.footprint", "disk", "disk of the first instance", "MiB")
        f("disk.per_instance", "disk", "disk of each further instance", "MiB")
        f("network.c2t.latency_p50", "network", "container → target: HTTP latency p50", "ms")
        f("network.c2t.latency_p99", "network", "container → target: HTTP latency p99", "ms")
        f(
            "network.c2t.throughput",
            "network",
            "container → target: HTTP throughput",
            "MiB/s",
            "higher",
        )
        f("network.host.latency_p50", "network", "host → published port: HTTP latency p50", "ms")
        f("network.host.latency_p99", "network", "host → published port: HTTP latency p99", "ms")
        f(
            "network.host.throughput",
            "network",
            "host → published port: HTTP throughput",
            "MiB/s",
            "higher",
        )
        f("volume.seq_write", "volume", f"shared volume: write {self.opts.seq_mib} MiB + sync", "s")
        f("volume.seq_read", "volume", f"shared volume: read {self.opts.seq_mib} MiB", "s")
        f(
            "volume.small_create",
            "volume",
            f"shared volume: create {self.opts.small_files} files",
            "s",
        )
        f("volume.small_read", "volume", f"shared volume: read {self.opts.small_files} files", "s")
        f(
            "volume.small_delete",
            "volume",
            f"shared volume: delete {self.opts.small_files} files",
            "s",
        )
        f("cpu.sha256", "cpu", f"CPU: sha256 of {self.opts.cpu_mib} MiB", "s")
        for fid, reason in skipped_for_tools(self.figures, self.tools).items():
            self.skip(fid, reason)

    def steady_rounds(self, targets: Sequence[Target]) -> dict[str, Any]:
        """One project holding every target, the client and a shared volume:
        network, volume and CPU figures, round by round."""
        o = self.opts
        client_image = self.client_image()
        session = self.open_project(
            "steady",
            workload.compose_text(
                o.image,
                targets,
                vm_memory=o.vm_memory,
                big_mib=16,
                volume=True,
                client_image=client_image,
            ),
        )
        for t in targets:
            if t.accel:
                self.refuse_unless_vm(session, t.service)
        self.progress.step(f"starting {', '.join(t.variant for t in targets)} (warm-up, not timed)")
        self.up(session, UpOptions())
        t0 = time.time()
        for t in targets:
            self.wait_marker(session, self.instance(session, t.service), t0)
            if "httpd" in self.tools:
                self.wait_http(self.published_port(session, t.service), t0)
        isolation = self.isolation(session, targets)
        for r in range(o.rounds):
            self.load_samples.append(hostprobe.load1())
            for t in rotate(targets, r):
                self.progress.step(f"round {r + 1}/{o.rounds}: network, volume, CPU of {t.variant}")
                self.network_round(session, t, client_image is not None)
                self.volume_round(session, t, r)
                self.cpu_round(session, t)
        self.close_project(session)
        return isolation

    def client_image(self) -> str | None:
        if images.inspect(self.client, PROBE_IMAGE) is not None:
            return PROBE_IMAGE
        reason = (
            f"compound's probe image {PROBE_IMAGE} (it runs the load generator) is not"
            " on this host: `make images` builds it"
        )
        for fid in self.figures:
            if fid.startswith("network.c2t."):
                self.skip(fid, reason)
        return None

    def network_round(self, session: Session, t: Target, have_client: bool) -> None:
        """HTTP latency and throughput to the target, from the client
        container (by service name) and from the host (its published port),
        by the same load generator."""
        F = self.figures
        secs = self.opts.net_seconds
        paths: list[tuple[str, Callable[[str], dict[str, float]]]] = []
        if have_client and not F["network.c2t.latency_p50"].skipped:
            paths.append(("c2t", lambda mode: self.client_loadgen(session, mode, t.service, secs)))
        if not F["network.host.latency_p50"].skipped:
            port = self.published_port(session, t.service)
            paths.append(
                (
                    "host",
                    lambda mode: (loadgen.latency if mode == "latency" else loadgen.throughput)(
                        "127.0.0.1", port, secs
                    ),
                )
            )
        for path, run in paths:
            self.measure(
                f"{t.variant}: {path} latency",
                [
                    (F[f"network.{path}.latency_p50"], t.variant),
                    (F[f"network.{path}.latency_p99"], t.variant),
                ],
                lambda run=run: _pick(run("latency"), "p50_ms", "p99_ms"),  # type: ignore[misc]
            )
            self.measure(
                f"{t.variant}: {path} throughput",
                [(F[f"network.{path}.throughput"], t.variant)],
                lambda run=run: _pick(run("throughput"), "mib_s"),  # type: ignore[misc]
            )

    def client_loadgen(
        self, session: Session, mode: str, target: str, seconds: float
    ) -> dict[str, float]:
        source = Path(loadgen.__file__).read_text()
        out = self.exec(
            session,
            workload.CLIENT,
            ["python3", "-c", source, mode, target, str(HTTP_PORT), str(seconds)],
        )
        return dict(json.loads(out))

    def volume_round(self, session: Session, t: Target, r: int) -> None:
        names = ("seq_write", "seq_read", "small_create", "small_read", "small_delete")
        figs = [self.figures[f"volume.{n}"] for n in names]
        if figs[0].skipped:
            return
        script = workload.volume_script(
            f"{t.variant}-{r}", self.opts.seq_mib, self.opts.small_files
        )

        def run() -> list[float | None]:
            got = workload.parse_timings(self.exec(session, t.service, ["/bin/sh", "-c", script]))
            return [got[n] for n in names]

        self.measure(f"{t.variant}: shared-volume I/O", [(f, t.variant) for f in figs], run)

    def cpu_round(self, session: Session, t: Target) -> None:
        f = self.figures["cpu.sha256"]
        if f.skipped:
            return
        script = workload.cpu_script(self.opts.cpu_mib)
        self.measure(
            f"{t.variant}: CPU-bound work",
            [(f, t.variant)],
            lambda: [
                workload.parse_timings(self.exec(session, t.service, ["/bin/sh", "-c", script]))[
                    "cpu"
                ]
            ],
        )

    def isolation(self, session: Session, targets: Sequence[Target]) -> dict[str, Any]:
        facts: dict[str, Any] = {"host_kernel": platform.release()}
        for t in targets[:2]:  # the container and the first VM
            key = "vm" if t.accel else "container"
            try:
                inst = self.instance(session, t.service)
                kernel = self.exec(session, t.service, ["uname", "-r"]).strip()
                facts[key] = {
                    "variant": t.variant,
                    "kernel": kernel,
                    "confinement": hostprobe.confinement(self.client, inst.id),
                }
            except (RuntimeError, CompoundError) as exc:
                self.errors.append(f"isolation facts of {t.variant}: {exc}")
        ct = (facts.get("container") or {}).get("confinement") or {}
        vm = (facts.get("vm") or {}).get("confinement") or {}
        if (
            ct.get("effective_capabilities") is not None
            and vm.get("effective_capabilities") is not None
        ):
            vm["extra_capabilities"] = sorted(
                set(vm["effective_capabilities"]) - set(ct["effective_capabilities"])
            )
        return facts

    def startup_rounds(self, targets: Sequence[Target]) -> None:
        """A fresh project per round and variant: startup, then idle memory
        and disk of that instance."""
        o = self.opts
        for r in range(o.rounds):
            self.load_samples.append(hostprobe.load1())
            for t in rotate(targets, r):
                self.progress.step(
                    f"round {r + 1}/{o.rounds}: startup, memory, disk of {t.variant}"
                )
                session = self.open_project(
                    f"s{r}{t.variant}",
                    workload.compose_text(o.image, [t], vm_memory=o.vm_memory),
                )
                try:
                    self.one_startup(session, t)
                finally:
                    self.close_project(session)

    def one_startup(self, session: Session, t: Target) -> None:
        F = self.figures
        t0 = time.time()
        box: dict[str, Instance] = {}

        def up_and_entrypoint() -> list[float | None]:
            self.up(session, UpOptions())
            box["inst"] = self.instance(session, t.service)
            return [self.wait_marker(session, box["inst"], t0)]

        self.measure(
            f"{t.variant}: startup", [(F["startup.entrypoint"], t.variant)], up_and_entrypoint
        )
        if "inst" not in box:
            for fid in (
                "startup.healthy",
                "memory.rss",
                "memory.pss",
                "disk.footprint",
                "disk.per_instance",
            ):
                F[fid].add(t.variant, None)
            return
        inst = box["inst"]
        if not F["startup.healthy"].skipped:
            self.measure(
                f"{t.variant}: to healthy",
                [(F["startup.healthy"], t.variant)],
                lambda: [self.wait_http(self.published_port(session, t.service), t0)],
            )
        time.sleep(self.opts.settle_seconds)
        self.measure(
            f"{t.variant}: idle memory",
            [(F["memory.rss"], t.variant), (F["memory.pss"], t.variant)],
            lambda: _pick(hostprobe.memory_of(self.client, [inst.id]), "rss_mib", "pss_mib"),
        )
        self.measure(
            f"{t.variant}: disk",
            [(F["disk.footprint"], t.variant), (F["disk.per_instance"], t.variant)],
            lambda: self.disk(session, inst, t),
        )

    def disk(self, session: Session, inst: Instance, t: Target) -> list[float | None]:
        image = hostprobe.image_size_mib(self.client, self.opts.image)
        rw = hostprobe.writable_layer_mib(self.client, inst.id)
        f = self.figures["disk.footprint"]
        if not t.accel:
            f.details.setdefault("container", {"image_mib": image, "writable_layer_mib": rw})
            return [image + rw, rw]
        # the cache the VM driver uses (compound's default): the disk is already built
        disk = ensure_base_disk(self.client, self.opts.image)
        base = hostprobe.allocated_mib(disk.path)
        launcher_ref = (containers.inspect(self.client, inst.id) or {})["Config"]["Image"]
        launcher = hostprobe.image_size_mib(self.client, launcher_ref)
        f.details.setdefault(
            t.variant,
            {
                "image_mib": image,
                "base_disk_mib": base,
                "launcher_image_mib": launcher,
                "overlay_and_launcher_layer_mib": rw,
            },
        )
        f.details["shared_note"] = (
            f"of a VM's footprint, the launcher image ({launcher:.0f} MiB) is shared by every VM"
            f" and the base disk ({base:.1f} MiB) by every VM of the image; each further VM adds"
            f" {rw:.1f} MiB"
        )
        return [image + base + launcher + rw, rw]

    def density(self, targets: Sequence[Target]) -> None:
        """Idle instances added one at a time, up to the bound, the memory
        budget, or the host's reserve: each one really started."""
        o = self.opts
        f = self.figures["density.instances"]
        f.details.update(bound=o.density_bound, budget_mib=o.density_budget_mib, steps={})
        for t in targets:
            self.progress.step(f"density: up to {o.density_bound} idle {t.variant} instances")
            session = self.open_project(
                f"d{t.variant}", workload.compose_text(o.image, [t], vm_memory=o.vm_memory)
            )
            steps: list[dict[str, Any]] = []
            fits: float | None = None
            stopped = f"the bound ({o.density_bound}) was reached"
            try:
                for n in range(1, o.density_bound + 1):
                    avail = hostprobe.mem_available_mib()
                    if avail is not None and avail < MEMORY_RESERVE_MIB:
                        stopped = (
                            f"the host had {avail:.0f} MiB available (reserve {MEMORY_RESERVE_MIB})"
                        )
                        break
                    t0 = time.time()
                    self.up(session, UpOptions(scale={t.service: n}))
                    insts = [i for i in session.instances([t.service]) if i.running]
                    if len(insts) < n:
                        raise RuntimeError(f"{len(insts)} of {n} instances run")
                    for inst in insts:
                        self.wait_marker(session, inst, t0)
                    time.sleep(o.settle_seconds)
                    m = hostprobe.memory_of(self.client, [i.id for i in insts])
                    steps.append({"instances": n, "rss_mib": m["rss_mib"], "pss_mib": m["pss_mib"]})
                    self.progress.step(
                        f"density: {n} {t.variant} instances, {m['pss_mib']:.0f} MiB PSS"
                    )
                    if m["pss_mib"] > o.density_budget_mib:
                        stopped = (
                            f"{n} instance{'s' if n > 1 else ''} used more than the"
                            f" budget ({o.density_budget_mib} MiB)"
                        )
                        break
                fits = float(sum(1 for s in steps if s["pss_mib"] <= o.density_budget_mib))
            except (RuntimeError, CompoundError) as exc:
                self.stop_if_interrupted()
                msg = exc.render() if isinstance(exc, CompoundError) else str(exc)
                self.errors.append(f"density of {t.variant}: {msg}")
                self.progress.note(f"density of {t.variant}: {msg}")
                stopped = f"failed: {msg}"
            finally:
                self.close_project(session)
            f.add(t.variant, fits)
            f.details["steps"][t.variant] = {"steps": steps, "stopped_because": stopped}

    # --- the report's context -------------------------------------------------------------

    def host_info(self, accels: Sequence[str], accel_reason: str) -> dict[str, Any]:
        facts = host_facts()
        try:
            docker_version: str | None = engine_version(self.client).version
        except CompoundError:
            docker_version = None
        try:
            from compound.runtimes.vm.qemu import qemu_version

            qemu: str | None = qemu_version()
        except (CompoundError, OSError):
            qemu = None
        return {
            "hostname": platform.node(),
            "cpus": os.cpu_count(),
            "memory_mib": round(facts.memory / 1024**2) if facts.memory else None,
            "kernel": platform.release(),
            "host_is_vm": facts.host_is_vm,
            "kvm_usable": "kvm" in accels,
            "accel_probe": accel_reason,
            "docker": docker_version,
            "qemu": qemu,
        }

    def noise(self, report: Report) -> dict[str, Any]:
        cpus = int(report.host.get("cpus") or 1)
        reasons = []
        by_load = noisy_load(self.load_samples, cpus)
        if by_load:
            reasons.append(by_load)
        spread = {
            f.id: f.noisy_variants() for f in report.figures if f.noisy_variants() and not f.skipped
        }
        if spread:
            reasons.append(
                f"{len(spread)} figure(s) varied by more than {NOISY_SPREAD:.0%} of their median"
                " between rounds"
            )
        return {
            "noisy": bool(reasons),
            "reasons": reasons,
            "load1_samples": [round(x, 2) for x in self.load_samples],
            "cpus": cpus,
            "spread": spread,
        }


@contextlib.contextmanager
def _interrupts_deferred(progress: Progress) -> Iterator[None]:
    """A second Ctrl-C during the clean-up must not leave instances behind:
    it is noted, and the clean-up finishes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(
        signal.SIGINT, lambda *_: progress.note("still removing what the bench started…")
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# what each group of figures needs inside the image under test
NEEDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("network.", frozenset({"httpd"})),
    ("startup.healthy", frozenset({"httpd"})),
    ("volume.", frozenset({"dd", "cat", "rm", "mkdir"})),
    ("cpu.", frozenset({"dd", "sha256sum"})),
)


def skipped_for_tools(figure_ids: Iterable[str], tools: set[str]) -> dict[str, str]:
    """Figures the image cannot produce, each with the reason (the tools it lacks)."""
    out: dict[str, str] = {}
    for fid in figure_ids:
        for prefix, need in NEEDS:
            lacking = sorted(need - tools)
            if fid.startswith(prefix) and lacking:
                out[fid] = f"the image has no {', '.join(lacking)}"
    return out


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def rotate(targets: Sequence[Target], r: int) -> list[Target]:
    """Round r starts with a different target, so no variant always runs
    first (on a fresh cache) or last (after the others warmed the host)."""
    k = r % len(targets)
    return [*targets[k:], *targets[:k]]


def _pick(d: dict[str, float], *keys: str) -> list[float | None]:
    return [d[k] for k in keys]


def parse_ts(ts: str) -> float:
    """The engine's RFC 3339 timestamp (nanoseconds) as epoch seconds."""
    head, _, frac = ts.rstrip("Z").partition(".")
    base = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def run_bench(
    opts: BenchOptions,
    client: Client,
    progress: Progress,
    load_user_project: Callable[[], Project] | None = None,
) -> Report:
    return Bench(opts, client, progress).run(load_user_project)


__all__ = ["Bench", "Progress", "is_vm", "run_bench"]
