"""``VMDriver``: services as VMs, each a QEMU process inside a launcher container.

The launcher is an ordinary Docker container carrying the same labels,
name, networks (with the service aliases), published ports, restart policy,
log config and resource limits a container of the service would get: the
create request is the container driver's, rewritten. So start, stop, kill,
remove, inspect, wait, logs and stats are the container driver's own calls
on the launcher; only ``prepare`` (kernel, initramfs, base disk, launcher
image), ``create`` and ``exec`` (through qemu-guest-agent) differ.

Not (yet) for VMs: secrets/configs files, interactive/tty exec, volume
subpaths; each raises NotSupportedError.

Guest kernel: compound's own (``guestkernel.py``) unless the service asks
for Debian's (``x-compound.vm.kernel: debian``); each with its initramfs.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import docker

from compound.engine import connect, containers
from compound.engine.resources import ensure_volume, remove_volume
from compound.errors import CompoundError, EngineError, NotSupportedError, ServiceError, VMError
from compound.runtimes.base import (
    LABEL_IMAGE_ID,
    LABEL_RUNTIME,
    Capabilities,
    Driver,
    Fingerprint,
    Instance,
    LogLine,
    Processes,
    ProgressFn,
    RootChanges,
    no_progress,
)
from compound.runtimes.container import ContainerDriver
from compound.runtimes.container_config import CreateArgs, image_ref
from compound.runtimes.hostcheck import CheckDef, CheckEnv, run_checks
from compound.runtimes.imagemounts import with_image_volumes
from compound.spec.model import Project, Service, VolumeMount

from . import cloudseed, guestexec, legacy
from ._util import default_cache_dir
from .accel import probe_accel
from .basedisk import BaseDisk, ensure_base_disk
from .guestconfig import GuestConfig, GuestMount
from .guestkernel import ensure_guest_kernel
from .hardening import guest_hardening
from .imageconfig import merge_service
from .initramfs import Initramfs, ensure_initramfs
from .kernel import KernelArtifacts, ensure_kernel
from .launcher import (
    BASE_CAPS,
    IN_BASE,
    IN_INITRAMFS,
    IN_KERNEL,
    IN_RUN,
    IN_VOLUMES,
    NET_CAPS,
    PIDS_BASE,
    QEMU_OVERHEAD_MIB,
    TUN_DEVICE,
    LauncherSpec,
    LauncherVolume,
    ShareKind,
    confinement,
    effective_setup,
    guest_healthcheck,
    hardened,
    launcher_healthcheck,
    qemu_spec,
    remove_run_dir,
    run_dir_for,
    write_run_dir,
)
from .launcher_image import LauncherImage, ensure_launcher_image
from .qemu import Accel, GuestAgent, build_command, host_tsc_khz, qmp
from .rootdiff import LIST_SCRIPT, compare, image_manifest, parse_listing
from .seccomp import launcher_profile
from .vm import read_markers, slirp_network

LABEL_VM_ACCEL = "io.compound.vm.accel"
LABEL_VM_KERNEL = "io.compound.vm.kernel"
LABEL_VM_RUN_DIR = "io.compound.vm.run-dir"
LABEL_VM_NET = "io.compound.vm.net"  # tap | user, as asked (ps shows what ran)
LABEL_VM_SHARE = "io.compound.vm.share"  # virtiofs | 9p | none, as planned
RUN_DIR_GRACE = 300.0  # seconds before an unreferenced run dir counts as abandoned
# From `docker start` to the guest's entrypoint: ~1-3 s under TCG, far more on
# a host loaded with other VMs' emulation; past this the boot counts as hung.
BOOT_TIMEOUT = 180.0
DEFAULT_MEMORY_MIB = 256
# A legacy disk's QEMU (a PC machine with a 256 MiB TCG cache, firmware,
# emulated devices) beyond its guest's RAM.
LEGACY_OVERHEAD_MIB = 512
MiB = 1 << 20

# HostConfig fields the launcher keeps from the container request; the rest
# (capabilities, devices, ulimits, ipc/pid modes...) describe a container's
# process, which in a VM is the guest's business.
_KEEP_HOST = (
    "RestartPolicy",
    "PortBindings",
    "NetworkMode",
    "ExtraHosts",
    "Dns",
    "DnsSearch",
    "DnsOptions",
    "LogConfig",
    "NanoCpus",
    "CpuShares",
    "CpusetCpus",
    "MemoryReservation",
    "OomScoreAdj",
    "BlkioWeight",
)


@dataclass(frozen=True)
class LauncherRequest:
    """The launcher of one image VM instance, as a request not yet made."""

    args: CreateArgs  # the container request compound would make for the service
    config: dict[str, Any]  # that request rewritten for the launcher (Engine API)
    spec: LauncherSpec
    run_dir: Path
    image_id: str
    details: dict[str, Any]


@dataclass(frozen=True)
class DiskLauncherRequest:
    """The launcher of one disk service instance, as a request not yet made."""

    args: CreateArgs
    config: dict[str, Any]  # the launcher's Engine create request
    plan: legacy.LegacyPlan
    run_dir: Path
    run_files: dict[str, str]  # what the run dir starts with (relative path -> text)
    image_id: str
    details: dict[str, Any]


class VMDriver(Driver):
    """Services as VMs (see the module docstring)."""

    name = "vm"
    capabilities = Capabilities(
        exec=True,
        logs=True,
        stats=True,
        pause=True,
        # the launcher's Docker healthcheck runs the service's check in the guest
        native_healthcheck=True,
        console=True,
        changes=True,
        terminal=False,  # the guest agent runs commands without a terminal
        top=False,  # the processes are the guest's
        copy_in=True,  # through the guest agent (image VMs; a disk service says why not)
    )

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        cache_dir: Path | None = None,
        containers: ContainerDriver | None = None,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
    ) -> None:
        self._client = client
        self.cache_dir = cache_dir or default_cache_dir()
        self._containers = containers or ContainerDriver(client)
        self._stdout, self._stderr = stdout, stderr
        self._kernel: KernelArtifacts | None = None
        self._initramfs: Initramfs | None = None
        self._accel: Accel | None = None
        self._seccomp: str | None = None
        self._launcher: LauncherImage | None = None
        self._boot: dict[str, tuple[KernelArtifacts, Initramfs]] = {}  # by kernel choice
        self._disks: dict[str, BaseDisk] = {}  # image id -> its base disk
        self._prepared: dict[str, str] = {}  # image ref -> id, from prepare()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def open_network(self, service: Service) -> bool:
        # on a tap the guest owns the launcher's address: every port is
        # reachable; QEMU's user networking forwards only declared ports
        return service.x_compound.vm.net != "user"

    # -- prepare ---------------------------------------------------------------------

    def _shared(
        self, progress: Callable[[str], None] | None = None
    ) -> tuple[KernelArtifacts, Initramfs, Accel, LauncherImage]:
        """compound's kernel and initramfs (also what the accelerator probe
        boots), the accelerator, the launcher image."""
        if self._kernel is None or self._initramfs is None:
            self._kernel, self._initramfs = self._boot_files("compound", progress)
        if self._accel is None:
            self._accel = probe_accel(self._kernel, self._initramfs, self.cache_dir).accel
        if self._launcher is None:
            self._launcher = ensure_launcher_image(self.client, self.cache_dir)
        return self._kernel, self._initramfs, self._accel, self._launcher

    def _seccomp_profile(self) -> str:
        if self._seccomp is None:
            self._seccomp = launcher_profile(self.cache_dir)
        return self._seccomp

    def _boot_files(
        self, choice: str, progress: Callable[[str], None] | None = None
    ) -> tuple[KernelArtifacts, Initramfs]:
        """The guest kernel ``choice`` ("compound" or "debian") and its initramfs."""
        if choice not in self._boot:
            if choice == "debian":
                kernel = ensure_kernel(self.cache_dir)
            else:
                kernel = ensure_guest_kernel(self.cache_dir, progress or (lambda _m: None))
            self._boot[choice] = (kernel, ensure_initramfs(kernel, self.cache_dir))
        return self._boot[choice]

    def prepare(
        self, project: Project, service: Service, progress: ProgressFn = no_progress
    ) -> str:
        if service.x_compound.vm.disk:
            return self._prepare_disk(project, service, progress)
        image_id = self._containers.prepare(project, service, progress)
        progress(service.name, "preparing the VM: kernel, initramfs, launcher image")

        def say(msg: str) -> None:
            progress(service.name, msg)

        self._shared(say)
        self._boot_files(service.x_compound.vm.kernel, say)
        if image_id not in self._disks:
            progress(service.name, "exporting the image to a VM disk (once per image)")
            self._disks[image_id] = ensure_base_disk(self.client, image_id, self.cache_dir)
        self._prepared[image_ref(project, service)] = image_id
        return image_id

    def _prepare_disk(self, project: Project, service: Service, progress: ProgressFn) -> str:
        """A legacy disk service: the launcher image, and the disk read once
        offline (format, firmware, OS, guest agent)."""
        disk = Path(service.x_compound.vm.disk or "")

        def say(msg: str) -> None:
            progress(service.name, msg)

        say("reading the disk offline")
        facts = legacy.facts_for(disk)
        say(f"disk {disk.name}: {facts.format}, {facts.os}, {facts.firmware.upper()}")
        hc = service.healthcheck
        if (
            hc
            and not hc.disable
            and hc.test
            and tuple(hc.test[:1]) != ("NONE",)
            and not facts.guest_agent
        ):
            # compound runs CMD checks in the guest through the agent
            raise NotSupportedError(
                f"service {service.name!r}: its healthcheck runs in the guest, but the disk"
                f" {disk.name} ({facts.os}) has no qemu-guest-agent",
                hint="install qemu-guest-agent in the guest, or drop the healthcheck and"
                " check the service over TCP/HTTP from another service",
            )
        say("preparing the VM: launcher image")
        self._shared(say)
        image_id = legacy.disk_id(disk)
        self._prepared[image_ref(project, service)] = image_id
        return image_id

    # -- create ----------------------------------------------------------------------

    def _accel_for(self, service: Service, probed: Accel) -> Accel:
        wanted = service.x_compound.vm.accel
        if wanted == "kvm" and probed != "kvm":
            raise VMError(
                f"service {service.name!r} asks for accel: kvm, but KVM does not work here",
                hint="use accel: auto (falls back to TCG) or fix /dev/kvm on this host",
            )
        return probed if wanted == "auto" else wanted

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
        if service.x_compound.vm.disk:
            return self._create_disk(
                project, service, number, config_hash, oneoff=oneoff, name=name
            )
        req = self.launcher_request(
            project, service, number, config_hash, oneoff=oneoff, image_id=image_id, name=name
        )
        write_run_dir(req.spec)
        return self._launch(project, service, number, config_hash, req, oneoff=oneoff)

    def _launch(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        req: LauncherRequest | DiskLauncherRequest,
        *,
        oneoff: bool,
    ) -> Instance:
        """The launcher container of an image VM's or a disk's request."""
        return self._create_launcher(
            project,
            service,
            number,
            config_hash,
            req.args,
            req.config,
            req.run_dir,
            image_id=req.image_id,
            oneoff=oneoff,
            details=req.details,
        )

    def launcher_request(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        *,
        oneoff: bool = False,
        image_id: str | None = None,
        name: str | None = None,
        accel: Accel | None = None,
    ) -> LauncherRequest:
        """Everything the launcher of one instance of an image VM is made
        from (the Engine create request, the launcher spec, its run dir),
        without creating anything: ``create`` makes it a container here,
        the Swarm target rewrites it into a service (hosts/vm_services.py).
        ``accel`` overrides the accelerator probed on this machine."""
        _, _, probed, launcher = self._shared()
        kernel, initramfs = self._boot_files(service.x_compound.vm.kernel)
        image_id = (
            image_id
            or self._prepared.get(image_ref(project, service))
            or self.prepare(project, service)
        )
        disk = self._disks.get(image_id)
        if disk is None:  # planned elsewhere: export the pinned image now
            disk = self._disks[image_id] = ensure_base_disk(self.client, image_id, self.cache_dir)
        if service.secrets or service.configs:
            raise NotSupportedError(
                f"service {service.name!r}: secrets and configs are not passed into VMs yet",
                hint="mount them as a volume, or run the service as a container",
            )
        accel = accel or self._accel_for(service, probed)
        args, run_dir = self._request(
            project, service, number, config_hash, image_id, oneoff=oneoff, name=name
        )
        process = merge_service(disk.config, service)
        shares, mounts, tmpfs = self._volumes(project, service)
        memory_mib, container_limit = _memory(service)
        hc = service.healthcheck
        hardening = guest_hardening(service)  # refuses what a guest cannot apply
        guest = GuestConfig(
            argv=process.argv,
            env=process.env,
            working_dir=process.working_dir,
            user=process.user,
            hostname="",  # the launcher fills in its own hostname
            network=slirp_network(tuple(service.dns_search)),
            mounts=mounts,
            tmpfs=tmpfs,
            sysctls=service.sysctls,
            read_only=service.read_only,
            stop_signal=process.stop_signal,
            health=guest_healthcheck(hc.test if hc and not hc.disable else None),
            health_timeout=math.ceil(hc.timeout) if hc and hc.timeout else 30,
            caps=hardening.caps,
            no_new_privileges=hardening.no_new_privileges,
            rlimits=hardening.rlimits,
            pids_max=hardening.pids_max,
        )
        exposed = dict(args.config.get("ExposedPorts") or {})
        for key in disk.config.exposed_ports:
            exposed.setdefault(key, {})
        guest_ports = _guest_ports(exposed)
        spec = LauncherSpec(
            name=args.name,
            image=launcher.tag,
            kernel=kernel,
            initramfs=initramfs,
            base=disk,
            guest=guest,
            run_dir=run_dir,
            accel=accel,
            memory_mib=memory_mib,
            vcpus=_vcpus(service),
            tsc_khz=host_tsc_khz(),
            guest_ports=guest_ports,
            volumes=shares,
            net=service.x_compound.vm.net,
            share=_share_kind(service, kernel),
            boot_timeout=BOOT_TIMEOUT,
        )
        qspec = qemu_spec(spec)
        if service.x_compound.vm.kernel_args:
            qspec = replace(qspec, cmdline_extra=service.x_compound.vm.kernel_args)
        config = self._launcher_config(args.config, spec, build_command(qspec), container_limit)
        labels = dict(args.labels)
        labels.update(
            {
                LABEL_RUNTIME: "vm",
                LABEL_VM_ACCEL: accel,
                LABEL_VM_KERNEL: kernel.version,
                LABEL_VM_RUN_DIR: str(run_dir),
                LABEL_VM_NET: spec.net,
                LABEL_VM_SHARE: spec.share if spec.volumes else "none",
            }
        )
        config["Labels"] = labels
        return LauncherRequest(
            args=args,
            config=config,
            spec=spec,
            run_dir=run_dir,
            image_id=image_id,
            details={"accel": accel, "kernel": kernel.version, "memory_mib": memory_mib},
        )

    def _create_disk(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        *,
        oneoff: bool,
        name: str | None,
    ) -> Instance:
        """The launcher of a legacy disk service (legacy.py): the disk
        bind-mounted read-only, its own QEMU command, DHCP from launcher.sh."""
        req = self.disk_launcher_request(
            project, service, number, config_hash, oneoff=oneoff, name=name
        )
        req.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for rel, text in req.run_files.items():
            path = req.run_dir / rel
            path.parent.mkdir(mode=0o700, exist_ok=True)
            path.write_text(text)
        if req.plan.persist_volume:
            ensure_volume(self.client, project, legacy.overlay_volume(project.name, service.name))
        return self._launch(project, service, number, config_hash, req, oneoff=oneoff)

    def disk_launcher_request(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        *,
        oneoff: bool = False,
        name: str | None = None,
        accel: Accel | None = None,
        disk_format: str | None = None,
    ) -> DiskLauncherRequest:
        """Everything the launcher of a disk service's instance is made from,
        without creating or writing anything: ``_create_disk`` makes it a
        container here, the Swarm target a service whose image carries the
        disk (hosts/vm_services.py). ``accel`` overrides the accelerator
        probed here; ``disk_format`` is the format of the disk as the
        launcher will find it at /compound/disk, if not the original's."""
        _, _, probed, launcher = self._shared()
        vm = service.x_compound.vm
        lp = legacy.plan(project.name, service.name, vm.disk or "", vm.persistent, vm.firmware)
        image_id = legacy.disk_id(lp.disk)
        accel = accel or self._accel_for(service, probed)
        args, run_dir = self._request(
            project, service, number, config_hash, image_id, oneoff=oneoff, name=name
        )
        run_files = {"config.base": "# a legacy disk: configured by DHCP\n"}
        if lp.facts.cloud_init:
            # the NoCloud seed (cloudseed.py): hostname, SSH key; the
            # launcher adds network-config once it knows the guest's MAC
            run_files.update(
                {
                    f"{cloudseed.SEED_DIR}/{k}": v
                    for k, v in cloudseed.seed_files(
                        project.name,
                        f"compound-{project.name}-{service.name}-{number}",
                        legacy.guest_hostname(service.name, number, service.hostname),
                    ).items()
                }
            )
        as_found = replace(lp, facts=replace(lp.facts, format=disk_format)) if disk_format else lp
        conf = {
            "COMPOUND_NET": vm.net,
            "COMPOUND_SLIRP_NETDEV": "user,id=net0",
            **legacy.launcher_conf_extra(as_found),
        }
        run_files["launcher.conf"] = "".join(f"{k}={shlex.quote(v)}\n" for k, v in conf.items())
        memory_mib, container_limit = _memory(service, legacy.DEFAULT_LEGACY_MEMORY_MIB)
        argv = legacy.qemu_argv(args.name, accel, memory_mib, _vcpus(service), lp)
        host_in = args.config.get("HostConfig") or {}
        host: dict[str, Any] = {k: v for k, v in host_in.items() if k in _KEEP_HOST}
        host["Binds"] = [f"{lp.disk}:{legacy.IN_DISK}:ro", f"{run_dir}:{IN_RUN}"]
        if lp.persist_volume:
            host["Mounts"] = [
                {"Type": "volume", "Source": lp.persist_volume, "Target": str(legacy.IN_PERSIST)}
            ]
        # Confined like an image VM's launcher (launcher.py), but QEMU stays
        # root: its overlay may live on a volume, and the launcher signals it
        # to stop. udhcpd answers an unconfigured guest with raw packets.
        host.update(
            hardened(
                [*BASE_CAPS, *((*NET_CAPS, "NET_RAW") if vm.net == "tap" else ())],
                PIDS_BASE,
                max(container_limit or 0, (memory_mib + LEGACY_OVERHEAD_MIB) * MiB),
            )
        )
        _default_cpu_limit(host, _vcpus(service))
        devices = ["/dev/kvm"] if accel == "kvm" else []
        if vm.net == "tap":
            devices.append(TUN_DEVICE)
        if devices:
            host["Devices"] = [
                {"PathOnHost": d, "PathInContainer": d, "CgroupPermissions": "rwm"} for d in devices
            ]
        config = {
            k: v
            for k, v in args.config.items()
            if k in ("Hostname", "Domainname", "ExposedPorts", "StopTimeout", "NetworkingConfig")
        }
        config.update(Image=launcher.tag, Cmd=argv, StopSignal="SIGTERM", HostConfig=host)
        labels = dict(args.labels)
        labels.update(
            {
                LABEL_RUNTIME: "vm",
                LABEL_VM_ACCEL: accel,
                LABEL_VM_KERNEL: f"{lp.facts.os} ({lp.facts.firmware.upper()})",
                LABEL_VM_RUN_DIR: str(run_dir),
                LABEL_VM_NET: vm.net,
                LABEL_VM_SHARE: "none",
                **legacy.labels(lp),
            }
        )
        config["Labels"] = labels
        return DiskLauncherRequest(
            args=args,
            config=config,
            plan=lp,
            run_dir=run_dir,
            run_files=run_files,
            image_id=image_id,
            details={
                "accel": accel,
                "kernel": labels[LABEL_VM_KERNEL],
                "memory_mib": memory_mib,
                "os": lp.facts.os,
                "firmware": lp.facts.firmware,
                "cloud_init": lp.facts.cloud_init,
            },
        )

    def _request(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        image_id: str,
        *,
        oneoff: bool,
        name: str | None,
    ) -> tuple[CreateArgs, Path]:
        """The container request compound would make for the service, and the
        instance's run dir: one per instance, not per name, since a successor
        runs beside its predecessor and later takes its name."""
        # the container driver's own request (no service:x lookups: a VM
        # cannot share another container's namespaces)
        args = self._containers.request(
            project, service, number, config_hash, image_id, oneoff=oneoff, name=name, resolve=False
        )
        self._sweep_run_dirs(project.name)
        return args, run_dir_for(f"{args.name}.{uuid.uuid4().hex[:8]}", self.cache_dir)

    def _create_launcher(
        self,
        project: Project,
        service: Service,
        number: int,
        config_hash: str,
        args: CreateArgs,
        config: dict[str, Any],
        run_dir: Path,
        *,
        image_id: str,
        oneoff: bool,
        details: dict[str, Any],
    ) -> Instance:
        """Create the launcher: the container request ``args``, rewritten to
        run ``config`` (the launcher image, QEMU's command, its confinement)
        from the host's platform, with no files written into it; on the
        same networks under the same aliases. On any failure nothing is
        left (container, run dir)."""
        request = replace(args.request(), config=config, platform=None, archive=None)
        try:
            container_id = containers.create(
                self.client, request, kind="VM launcher", service=service.name
            )
        except BaseException:
            remove_run_dir(run_dir)
            raise
        return Instance(
            id=container_id,
            name=args.name,
            project=project.name,
            service=service.name,
            number=number,
            runtime="vm",
            status="created",
            health=None,
            exit_code=None,
            config_hash=config_hash,
            image=image_ref(project, service),
            image_id=image_id,
            oneoff=oneoff,
            labels=dict(config["Labels"]),
            details={
                "stop_timeout": config.get("StopTimeout"),
                "stop_signal": "SIGTERM",
                "tty": False,
                **details,
                "run_dir": str(run_dir),
            },
        )

    def _sweep_run_dirs(self, project_name: str, grace: float = RUN_DIR_GRACE) -> list[str]:
        """Remove this project's run dirs that no launcher refers to: left by a
        compound killed between making the dir and creating the launcher, or
        by a launcher removed behind compound's back (they hold the guest's
        config). Young ones may belong to a create in flight, so `up` leaves
        them (``grace``); `down` holds the project lock and passes 0."""
        root = run_dir_for("x", self.cache_dir).parent
        candidates = [
            d
            for d in root.glob(f"{project_name}-*")
            if d.is_dir() and time.time() - d.stat().st_mtime >= grace
        ]
        if not candidates:
            return []
        # every launcher's, not this project's only: "shop-*" also matches
        # the dirs of a project named "shop-dev"
        rows = self.client.api.containers(all=True, filters={"label": [LABEL_VM_RUN_DIR]})
        used = {(r.get("Labels") or {}).get(LABEL_VM_RUN_DIR) for r in rows}
        removed = []
        for d in candidates:
            if str(d) not in used:
                remove_run_dir(d)
                removed.append(str(d))
        return removed

    def engine_runs_healthcheck(self, service: Service) -> bool:
        # an image VM's launcher carries the guest's check as its Docker
        # healthcheck; a legacy disk has no compound /init to run it, so
        # compound probes it through the guest agent
        return not service.x_compound.vm.disk

    def sweep(self, project_name: str) -> list[str]:
        return self._sweep_run_dirs(project_name, grace=0)

    def _volumes(
        self, project: Project, service: Service
    ) -> tuple[tuple[LauncherVolume, ...], tuple[GuestMount, ...], tuple[tuple[str, str], ...]]:
        shares: list[LauncherVolume] = []
        mounts: list[GuestMount] = []
        tmpfs: list[tuple[str, str]] = [
            (p, o) for p, _, o in (t.partition(":") for t in service.tmpfs)
        ]
        for vol in service.volumes:
            if vol.type == "tmpfs":
                opts = [f"size={vol.tmpfs_size}"] if vol.tmpfs_size else []
                if vol.tmpfs_mode is not None:
                    opts.append(f"mode={vol.tmpfs_mode:o}")
                tmpfs.append((vol.target, ",".join(opts)))
                continue
            shares.append(self._share(project, service, vol))
            mounts.append(GuestMount(f"vol{len(mounts)}", vol.target, vol.read_only))
        return tuple(shares), tuple(mounts), tuple(tmpfs)

    def _share(self, project: Project, service: Service, vol: VolumeMount) -> LauncherVolume:
        if vol.subpath:
            raise NotSupportedError(f"service {service.name!r}: volume subpath in a VM")
        if vol.type == "bind":
            return LauncherVolume(vol.source or "", vol.target, vol.read_only, bind=True)
        if vol.type != "volume":
            raise NotSupportedError(
                f"service {service.name!r}: volume type {vol.type!r} is not supported for VMs"
            )
        if not vol.source:
            return LauncherVolume("", vol.target, vol.read_only)  # anonymous
        decl = project.volumes.get(vol.source)
        if decl is None:
            raise ServiceError(service.name, f"mounts undeclared volume {vol.source!r}")
        return LauncherVolume(decl.name, vol.target, vol.read_only)

    def _launcher_config(
        self,
        config: dict[str, Any],
        spec: LauncherSpec,
        argv: list[str],
        container_limit: int | None,
    ) -> dict[str, Any]:
        """The container request, rewritten for the launcher."""
        host_in = config.get("HostConfig") or {}
        host = {k: v for k, v in host_in.items() if k in _KEEP_HOST}
        binds = [
            f"{spec.kernel.vmlinux.parent}:{IN_KERNEL}:ro",
            f"{spec.initramfs.path}:{IN_INITRAMFS}:ro",
            f"{spec.base.path}:{IN_BASE}:ro",
            f"{spec.run_dir}:{IN_RUN}",
        ]
        mounts: list[dict[str, Any]] = []
        for i, v in enumerate(spec.volumes):
            target = f"{IN_VOLUMES}/{i}"
            if v.bind:
                binds.append(f"{v.source}:{target}{':ro' if v.read_only else ''}")
            else:
                m: dict[str, Any] = {"Type": "volume", "Target": target}
                if v.source:
                    m["Source"] = v.source
                if v.read_only:
                    m["ReadOnly"] = True
                mounts.append(m)
        host["Binds"] = binds
        if mounts:
            host["Mounts"] = mounts
        # Confined (launcher.py, confinement): only the capabilities this
        # VM's network and volumes need, no-new-privileges, read-only root,
        # pids and memory limits; a CPU limit unless the service set one.
        host.update(confinement(spec))
        if container_limit:
            host["Memory"] = max(container_limit, host["Memory"])
        _default_cpu_limit(host, spec.vcpus)
        devices = ["/dev/kvm"] if spec.accel == "kvm" else []
        if spec.net == "tap":
            # The guest takes over the launcher's interfaces: taps, addresses
            # and tc filters in the launcher's own namespace. Nothing broader.
            devices.append(TUN_DEVICE)
        if spec.share == "virtiofs" and spec.volumes:
            # Docker's default seccomp profile plus unshare(CLONE_FS) alone,
            # which virtiofsd needs and which grants nothing (seccomp.py).
            # Without it (apt cannot fetch the base profile) virtiofsd cannot
            # start and launcher.sh serves the volumes over 9p, saying so.
            with contextlib.suppress(VMError):
                host["SecurityOpt"] = [
                    *host["SecurityOpt"],
                    f"seccomp={self._seccomp_profile()}",
                ]
        if devices:
            host["Devices"] = [
                {"PathOnHost": d, "PathInContainer": d, "CgroupPermissions": "rwm"} for d in devices
            ]
        out = {
            k: v
            for k, v in config.items()
            if k
            in (
                "Hostname",
                "Domainname",
                "ExposedPorts",
                "StopTimeout",
                "NetworkingConfig",
                "MacAddress",
            )
        }
        out.update(Image=spec.image, Cmd=argv, StopSignal="SIGTERM", HostConfig=host)
        health = launcher_healthcheck(config.get("Healthcheck"), spec)
        if health:
            out["Healthcheck"] = health
        return out

    # -- what the launcher container does for us -------------------------------------

    def start(self, instance: Instance) -> None:
        """Start the launcher and return once the guest's entrypoint runs, as
        a container's start returns once its process runs: ``depends_on:
        service_started``, ``up --wait`` and a rolling update's monitor window
        then mean the same for both runtimes. A guest that cannot get there
        (QEMU refuses its settings, the kernel panics, /init fails, the boot
        outlasts ``BOOT_TIMEOUT``) is an error carrying the console tail."""
        console = self._run_dir(instance) / "console.log"
        if legacy.is_legacy(dict(instance.labels)):
            console.unlink(missing_ok=True)
            self._containers.start(instance)
            legacy.wait_ready(
                self._run_dir(instance),
                instance.labels.get(legacy.LABEL_VM_AGENT) == "yes",
                lambda: self._containers.inspect(instance.id).running,
                lambda what: self._boot_failure(instance, console, what),
            )
            return
        # the launcher truncates it too, but a stale START from the previous
        # run must not be read before the launcher got that far
        console.unlink(missing_ok=True)
        self._containers.start(instance)
        self._wait_entrypoint(instance, console)

    def _wait_entrypoint(self, instance: Instance, console: Path) -> None:
        timeout = BOOT_TIMEOUT
        started = time.monotonic()
        checked = started
        while True:
            for kind, value in read_markers(console):
                if kind == "START":
                    return
                if kind == "ERROR":
                    raise self._boot_failure(instance, console, f"the guest failed: {value}")
            now = time.monotonic()
            if now - checked >= 0.5:  # an engine call; the console is read every 20 ms
                checked = now
                cur = self._containers.inspect(instance.id)
                if not cur.running:
                    raise self._boot_failure(
                        instance,
                        console,
                        f"the launcher {cur.status} (exit {cur.exit_code}) before the guest "
                        "started its entrypoint",
                    )
            if now - started > timeout:
                raise self._boot_failure(
                    instance, console, f"the guest did not start its entrypoint in {timeout:.0f}s"
                )
            time.sleep(0.02)

    def _boot_failure(self, instance: Instance, console: Path, what: str) -> ServiceError:
        try:
            lines = console.read_text(errors="replace").replace("\r", "").splitlines()
        except FileNotFoundError:
            lines = []
        launcher: list[str] = []
        with contextlib.suppress(CompoundError):
            launcher = [
                line.text.rstrip("\n")
                for line in self._containers.logs(instance, tail=10)
                if line.stream == "stderr"
            ]
        tail = "\n".join(
            [*(f"  console: {x}" for x in lines[-15:]), *(f"  launcher: {x}" for x in launcher)]
        )
        return ServiceError(
            instance.service,
            f"{instance.name}: {what}" + (f"\n{tail}" if tail else ""),
            hint=f"`compound logs --console {instance.service}` shows the whole guest console; "
            "check x-compound.vm (memory, kernel) and the image's entrypoint",
        )

    def rename(self, instance: Instance, name: str) -> None:
        # the run dir is found through a label, so the launcher may change name
        self._containers.rename(instance, name)

    def stop(self, instance: Instance, grace: float | None = None) -> None:
        if legacy.is_legacy(dict(instance.labels)):
            # ACPI power-down, the grace period, then the launcher ends QEMU
            wait = float(grace if grace is not None else instance.details.get("stop_timeout") or 10)
            agent = instance.labels.get(legacy.LABEL_VM_AGENT) == "yes"
            if legacy.power_down(self._run_dir(instance), agent):
                with contextlib.suppress(CompoundError):
                    self._containers.wait(instance, wait)
            self._containers.stop(instance, 2)
            return
        self._containers.stop(instance, grace)

    def kill(self, instance: Instance, signal: str = "SIGKILL") -> None:
        self._containers.kill(instance, signal)

    def remove(self, instance: Instance, volumes: bool = False) -> None:
        # The overlay lives in the launcher's writable layer: gone with it.
        self._containers.remove(instance, volumes)
        persist = instance.labels.get(legacy.LABEL_VM_PERSIST)
        if persist and volumes:
            with contextlib.suppress(EngineError):  # in use, or gone already: kept
                remove_volume(self.client, persist)
        run_dir = instance.labels.get(LABEL_VM_RUN_DIR)
        if run_dir:
            remove_run_dir(Path(run_dir))

    def inspect(self, instance_id: str) -> Instance:
        inst = self._containers.inspect(instance_id)
        details = dict(inst.details)
        details.update(
            accel=inst.labels.get(LABEL_VM_ACCEL),
            kernel=inst.labels.get(LABEL_VM_KERNEL),
            run_dir=inst.labels.get(LABEL_VM_RUN_DIR),
            boot_time=self._boot_seconds(inst),
            network=inst.labels.get(LABEL_VM_NET),
            share=inst.labels.get(LABEL_VM_SHARE),
        )
        if legacy.is_legacy(dict(inst.labels)):
            details.update(
                os=inst.labels.get(legacy.LABEL_VM_OS),
                firmware=inst.labels.get(legacy.LABEL_VM_FIRMWARE),
                disk=inst.labels.get(legacy.LABEL_VM_DISK),
            )
        run_dir = inst.labels.get(LABEL_VM_RUN_DIR)
        if run_dir and inst.status in ("running", "paused", "restarting"):
            # what the launcher really set up (fallbacks included)
            details.update(effective_setup(Path(run_dir)))
        return replace(inst, details=details)

    def _boot_seconds(self, inst: Instance) -> float | None:
        """Guest uptime when the entrypoint started (the COMPOUND-START marker)."""
        run_dir = inst.labels.get(LABEL_VM_RUN_DIR)
        if not run_dir:
            return None
        for kind, value in reversed(read_markers(Path(run_dir) / "console.log")):
            if kind == "START":
                with contextlib.suppress(ValueError):
                    return float(value.split()[0])
        return None

    def wait(self, instance: Instance, timeout: float | None = None) -> int:
        return self._containers.wait(instance, timeout)

    def logs(
        self,
        instance: Instance,
        *,
        follow: bool = False,
        tail: int | None = None,
        timestamps: bool = False,
        since: str | None = None,
    ) -> Iterator[LogLine]:
        # The guest's stdout/stderr ports are the launcher's stdout/stderr.
        return self._containers.logs(
            instance, follow=follow, tail=tail, timestamps=timestamps, since=since
        )

    def console(self, instance: Instance) -> str:
        """The guest kernel's console (ttyS0) so far."""
        run_dir = self._run_dir(instance)
        try:
            return (run_dir / "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stats(self, instance: Instance) -> dict[str, Any]:
        return self._containers.stats(instance)

    @classmethod
    def host_checks(cls) -> tuple[CheckDef, ...]:
        from compound.runtimes.vm.fingerprint import VM_CHECKS

        return VM_CHECKS

    def _check_env(self, quick: bool) -> CheckEnv:
        try:
            client: docker.DockerClient | None = self.client
        except CompoundError:  # no engine: the launcher check says so
            client = None
        return CheckEnv(quick=quick, client=client, cache_dir=self.cache_dir)

    def fingerprint(self, *, quick: bool = False) -> Fingerprint:
        """The VM checks, and whether KVM really works when the probe ran."""
        env = self._check_env(quick)
        checks = tuple(run_checks(env, self.host_checks()))
        facts = {"kvm_usable": env.accel.accel == "kvm"} if env.accel is not None else {}
        return Fingerprint(self.name, checks, facts)

    def top(self, instance: Instance) -> Processes:
        raise NotSupportedError(
            f"{instance.name} (vm): processes are inside the guest; use `compound exec` with ps"
        )

    def describe(self, instance: Instance) -> Instance:
        """With the kernel version, accelerator and boot time (inspect adds them)."""
        return self.inspect(instance.id)

    def shown_image(self, instance: Instance, project: Project) -> str:
        # the container runs the launcher image; the service's image is what boots
        svc = project.services.get(instance.service)
        if svc and svc.x_compound.vm.disk:
            return "disk:" + Path(svc.x_compound.vm.disk).name
        return (svc.image if svc and svc.image else None) or f"{project.name}-{instance.service}"

    def changes(self, instance: Instance) -> RootChanges:
        """The guest's root filesystem against its image (rootdiff.py); only
        while the guest runs, since the overlay cannot name files by itself."""
        if instance.status != "running":
            raise VMError(
                f"{instance.name} is {instance.status}: a VM's changed files are listed"
                " through its guest agent, so only while it runs",
                hint=f"start it (`compound start {instance.service}`) and run diff again",
            )
        image_id = instance.labels.get(LABEL_IMAGE_ID)
        if not image_id:
            raise VMError(f"{instance.name} has no {LABEL_IMAGE_ID} label")
        base = image_manifest(self.client, image_id, self.cache_dir)
        with GuestAgent(self._run_dir(instance) / "qga.sock", timeout=10) as agent:
            res = agent.exec("/bin/busybox", ["sh", "-c", LIST_SCRIPT], timeout=300)
        if res.exit_code != 0:
            raise VMError(
                f"listing the files of {instance.name} failed (exit {res.exit_code}): "
                + res.stderr.decode(errors="replace")[-300:]
            )
        entries, mounts = parse_listing(res.stdout.decode(errors="surrogateescape"))
        return compare(base, entries, mounts)

    # -- pause: guest sync, then QMP stop ------------------------------------------------

    def pause(self, instance: Instance) -> bool:
        """Flush the guest's dirty pages to its shares (``sync`` through the
        guest agent, from the initramfs's busybox: any image works), then stop
        its vCPUs (QMP ``stop``). The launcher container keeps running."""
        qmp_sock = self._run_dir(instance) / "qmp.sock"
        if (qmp(qmp_sock, "query-status") or {}).get("status") != "running":
            return False
        with GuestAgent(self._run_dir(instance) / "qga.sock", timeout=10) as agent:
            res = agent.exec("/bin/sync", timeout=120)
        if res.exit_code != 0:
            raise VMError(
                f"{instance.name}: sync in the guest exited {res.exit_code}: "
                + res.stderr.decode(errors="replace").strip()
            )
        qmp(qmp_sock, "stop")
        return True

    def unpause(self, instance: Instance) -> None:
        qmp(self._run_dir(instance) / "qmp.sock", "cont")

    # -- exec through the guest agent --------------------------------------------------

    def _run_dir(self, instance: Instance) -> Path:
        run_dir = instance.labels.get(LABEL_VM_RUN_DIR) or instance.details.get("run_dir")
        if not run_dir:
            raise VMError(f"{instance.name} has no VM runtime dir label")
        return Path(run_dir)

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
        if tty or interactive:
            raise guestexec.no_terminal(instance.service)
        code, out, err = self.exec_capture(instance, command, user=user, workdir=workdir, env=env)
        stdout = self._stdout or sys.stdout.buffer
        stderr = self._stderr or sys.stderr.buffer
        stdout.write(out)
        stdout.flush()
        stderr.write(err)
        stderr.flush()
        return code

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
        """Run a command in the guest as the service would (chrooted into its
        root, its env, user and working dir by default); (code, out, err)."""
        if privileged:
            # compound-exec applies the service's capability set to every
            # process it starts; widening it would need a new guest contract
            raise NotSupportedError(
                f"{instance.name}: a privileged command is not supported in a VM: the guest "
                "runs it with the service's own capabilities",
                hint="drop privileged:, or add the capabilities it needs to the service (cap_add)",
            )
        return guestexec.run_in_guest(
            GuestAgent(self._run_dir(instance) / "qga.sock", timeout=10),
            instance.labels,
            instance.service,
            command,
            user=user,
            workdir=workdir,
            env=env,
            timeout=timeout,
        )

    def copy_in(self, instance: Instance, archive: bytes, dest: str) -> None:
        """Unpack the tar into the service's root in the guest (``/newroot``)
        with the initramfs's busybox, fed through guest-exec's input: the image
        needs no tar, and a path on a volume lands in the volume's share."""
        if legacy.is_legacy(dict(instance.labels)):
            raise NotSupportedError(
                f"{instance.name}: copying files into a VM disk service: its guest is its "
                "own OS, with no compound root to unpack into",
                hint="share the directory as a bind mount instead of develop.watch sync",
            )
        if len(archive) > COPY_IN_MAX:
            raise VMError(
                f"{instance.name}: {len(archive)} bytes at once is more than the guest "
                f"agent takes ({COPY_IN_MAX}); send them in several archives"
            )
        root = "/newroot" + ("" if dest == "/" else dest)
        script = 'mkdir -p "$1" && exec tar -x -C "$1"'
        with GuestAgent(self._run_dir(instance) / "qga.sock", timeout=10) as agent:
            res = agent.exec(
                "/bin/busybox", ["sh", "-c", script, "sh", root], timeout=120, input_data=archive
            )
        if res.exit_code != 0:
            raise ServiceError(
                instance.service,
                f"copy files into {instance.name}:{dest}: "
                + (res.stderr.decode(errors="replace").strip() or f"exit {res.exit_code}"),
            )


# guest-exec's input travels base64 in one JSON message; QEMU's parser takes at
# most 64 MiB a token, so an archive is kept well below that
COPY_IN_MAX = 16 << 20


def _guest_ports(keys: Iterable[str]) -> tuple[tuple[int, str], ...]:
    """ "80/tcp"-style keys -> (port, protocol) forwarded into the guest (slirp
    forwards tcp and udp; sctp is left out)."""
    out = set()
    for key in keys:
        port, _, proto = key.partition("/")
        proto = proto or "tcp"
        if port.isdigit() and proto in ("tcp", "udp"):
            out.add((int(port), proto))
    return tuple(sorted(out))


def kernel_has_virtiofs(kernel: KernelArtifacts) -> bool:
    """Whether the guest kernel can mount virtio-fs: built in, or a module
    that the kernel entry carries."""
    try:
        config = kernel.config.read_text()
    except OSError:
        return False
    if "CONFIG_VIRTIO_FS=y" in config:
        return True
    return "CONFIG_VIRTIO_FS=m" in config and any(
        m.removesuffix(".ko") == "virtiofs" for m in kernel.modules
    )


def _share_kind(service: Service, kernel: KernelArtifacts) -> ShareKind:
    """virtio-fs unless asked for 9p or the kernel has no virtio-fs; a
    virtiofsd that does not start makes launcher.sh fall back to 9p."""
    wanted = service.x_compound.vm.share
    if wanted == "9p":
        return "9p"
    if kernel_has_virtiofs(kernel):
        return "virtiofs"
    if wanted == "virtiofs" and service.volumes:
        raise VMError(
            f"service {service.name!r} asks for share: virtiofs, but the guest kernel "
            f"{kernel.version} has no virtio-fs",
            hint="use share: auto (falls back to 9p) or a kernel with CONFIG_VIRTIO_FS",
        )
    return "9p"


def _memory(service: Service, default: int = DEFAULT_MEMORY_MIB) -> tuple[int, int | None]:
    """Guest RAM (MiB) and the launcher's cgroup limit (bytes, or None)."""
    limit = service.deploy.resources.limits.memory or service.mem_limit
    if service.x_compound.vm.memory:
        guest = service.x_compound.vm.memory // MiB
    elif limit:
        guest = limit // MiB
    else:
        guest = default
    guest = max(guest, 64)
    container = (guest + QEMU_OVERHEAD_MIB) * MiB if limit else None
    return guest, container


def _default_cpu_limit(host: dict[str, Any], vcpus: int) -> None:
    """A CPU limit from the vCPUs (plus one for QEMU's own threads), unless
    the service set one of its own."""
    if not any(host.get(k) for k in ("NanoCpus", "CpuQuota", "CpuShares", "CpusetCpus")):
        host["NanoCpus"] = min(os.cpu_count() or 1, vcpus + 1) * 10**9


def _vcpus(service: Service) -> int:
    if service.x_compound.vm.vcpus:
        return service.x_compound.vm.vcpus
    cpus = service.deploy.resources.limits.cpus or service.cpus
    return max(1, math.ceil(cpus)) if cpus else 1
