"""The volume operations the CLI offers: list, inspect, backup, restore."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compound import __version__
from compound.engine.resources import (
    ensure_volume,
    inspect_volume,
    project_volumes,
    remove_volume,
)
from compound.errors import CompoundError, UsageError
from compound.reconcile.session import Session
from compound.runtimes.base import Instance
from compound.runtimes.vm.legacy import LABEL_VM_OVERLAY_OF
from compound.spec.model import Volume
from compound.volumes.archive import ArchiveWriter, Meter, NullMeter
from compound.volumes.enginedir import backup_engine, restore_engine
from compound.volumes.localdir import backup_dir, local_mountpoint, restore_dir, walk
from compound.volumes.writers import instances_using, paused

VIA = ("auto", "mount", "engine")


@dataclass(frozen=True)
class VolumeRef:
    """A volume named on the command line: the project's key if it is one
    of the project's, and its engine name."""

    name: str
    key: str | None
    declared: Volume | None


def resolve(session: Session, name: str) -> VolumeRef:
    volumes = session.project.volumes
    if name in volumes:
        return VolumeRef(volumes[name].name, name, volumes[name])
    for vol in volumes.values():
        if vol.name == name:
            return VolumeRef(vol.name, vol.key, vol)
    return VolumeRef(name, None, None)


def services_using(session: Session, key: str | None) -> list[str]:
    if key is None:
        return []
    return sorted(
        name
        for name, svc in session.project.services.items()
        if any(m.type == "volume" and m.source == key for m in svc.volumes)
    )


def missing_error(session: Session, ref: VolumeRef) -> CompoundError:
    known = ", ".join(sorted(session.project.volumes)) or "none"
    if ref.declared is not None:
        return CompoundError(
            f"volume {ref.key!r} ({ref.name}) does not exist yet",
            hint="`compound up` creates it; `compound volume restore` fills it from a backup",
        )
    return CompoundError(
        f"no volume {ref.name!r}: neither a volume of project {session.project.name!r}"
        " nor an existing engine volume",
        hint=f"this project's volumes: {known}; `compound volume ls` lists them",
    )


# --- ls / inspect ---------------------------------------------------------------------


def _size(attrs: dict[str, Any]) -> int | None:
    root = local_mountpoint(attrs)
    if root is None:
        return None
    return sum(info.size for info, _, _ in walk(root) if info.isreg())


def volume_rows(session: Session, *, size: bool = False) -> list[dict[str, Any]]:
    """Declared volumes first (existing or not), then the project's leftovers."""
    client = session.client
    labelled = project_volumes(client, session.project.name)
    names = [v.name for v in session.project.volumes.values()]
    names += [name for name in labelled if name not in names]
    return [volume_info(session, resolve(session, n), size=size) for n in names]


def volume_info(session: Session, ref: VolumeRef, *, size: bool = False) -> dict[str, Any]:
    attrs = inspect_volume(session.client, ref.name)
    users = instances_using(session.client, ref.name) if attrs else []
    return {
        "key": ref.key,
        "name": ref.name,
        "exists": attrs is not None,
        "external": bool(ref.declared and ref.declared.external),
        "driver": (attrs or {}).get("Driver") or (ref.declared.driver if ref.declared else None),
        "size": _size(attrs) if attrs and size else None,
        "services": services_using(session, ref.key),
        "instances": [{"name": i.name, "service": i.service, "status": i.status} for i in users],
        "running": [i.name for i in users if i.running],
        "engine": attrs,
    }


# --- backup ----------------------------------------------------------------------------


@dataclass
class Result:
    volume: str
    key: str | None
    archive: str
    via: str
    files: int = 0
    bytes: int = 0
    archive_bytes: int = 0
    seconds: float = 0.0
    paused: list[str] = field(default_factory=list)
    created: bool = False
    origin: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["mb_per_s"] = round(self.bytes / self.seconds / 1e6, 1) if self.seconds else None
        return data


def _choose(attrs: dict[str, Any], via: str, *, write: bool) -> Path | None:
    if via not in VIA:
        raise UsageError(f"--via {via!r}: expected one of {', '.join(VIA)}")
    if via == "engine":
        return None
    mountpoint = local_mountpoint(attrs, write=write)
    if mountpoint is None and via == "mount":
        raise UsageError(
            f"volume {attrs.get('Name')!r}: its directory is not usable from here"
            f" (driver {attrs.get('Driver')}, options {attrs.get('Options') or {}},"
            " or a remote engine, or not root)",
            hint="use --via engine (or auto)",
        )
    return mountpoint


def _partial_file(output: Path) -> Path:
    """A new temp file beside ``output`` (renamed over it when complete)."""
    tmp = output.parent / f".{output.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise CompoundError(
            f"cannot write the backup to {output}: {exc.strerror or exc}",
            hint="choose a writable file with -o; nothing was paused or written",
        ) from None
    if output.is_dir():
        tmp.unlink()
        raise CompoundError(f"{output} is a directory", hint="give a file name with -o")
    return tmp


def refuse_open_disk_overlay(session: Session, name: str, attrs: dict[str, Any]) -> None:
    """A persistent disk service's overlay is a qcow2 file QEMU holds open:
    the guest's page cache and QEMU's qcow2 metadata cache are not on it
    yet, and pausing the launcher (--consistent) stops QEMU without
    flushing either, so a copy may not even be a valid qcow2. A stopped
    service (an ACPI power-down: the guest and QEMU flushed everything) is
    the consistent point: refuse until then, and say so."""
    service = (attrs.get("Labels") or {}).get(LABEL_VM_OVERLAY_OF)
    if not service:
        return
    running = [i.name for i in instances_using(session.client, name, running_only=True)]
    if running:
        raise CompoundError(
            f"volume {name!r} holds the disk overlay of VM disk service {service!r}, which is"
            f" running ({', '.join(running)}): a copy taken while QEMU has it open is not"
            " consistent (the guest's and QEMU's caches are not on it yet)",
            hint=f"stop it first (`compound stop {service}` powers the guest down cleanly),"
            " back it up, then `compound start` it",
        )


def backup(
    session: Session,
    name: str,
    output: Path,
    *,
    consistent: bool = False,
    via: str = "auto",
    meter: Meter | None = None,
    on_paused: Callable[[list[Instance]], None] | None = None,
) -> Result:
    """Write volume ``name`` to ``output`` (see compound.volumes.archive);
    with ``consistent``, its running users are paused while it is read.
    ``on_paused`` is called with them once paused (tests look then)."""
    meter = meter or NullMeter()
    ref = resolve(session, name)
    attrs = inspect_volume(session.client, ref.name)
    if attrs is None:
        raise missing_error(session, ref)
    mountpoint = _choose(attrs, via, write=False)
    refuse_open_disk_overlay(session, ref.name, attrs)
    services = services_using(session, ref.key)
    users = (
        instances_using(session.client, ref.name, running_only=True, writers_only=True)
        if consistent
        else []
    )
    output = output.absolute()
    tmp = _partial_file(output)
    result = Result(ref.name, ref.key, str(output), "mount" if mountpoint else "engine")
    meta = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "compound_version": __version__,
        "project": session.project.name,
        "volume": {"key": ref.key, "name": ref.name, "driver": attrs.get("Driver")},
        "services": services,
        "consistent": consistent,
        "compression": "zstd",
    }
    t0 = time.monotonic()
    try:
        with paused(session, users) as stopped:
            result.paused = [i.name for i in stopped]
            meta["paused"] = result.paused
            if on_paused is not None:
                on_paused(stopped)
            with ArchiveWriter(tmp, meta, meter) as writer:
                if mountpoint is not None:
                    backup_dir(mountpoint, writer, meter)
                else:
                    backup_engine(session.client, ref.name, writer, meter)
                manifest = writer.close()
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    result.seconds = time.monotonic() - t0
    result.files, result.bytes = manifest.file_count, manifest.total_size
    result.archive_bytes = output.stat().st_size
    result.warnings = list(manifest.warnings)
    return result


# --- restore ---------------------------------------------------------------------------


def restore(
    session: Session,
    name: str,
    archive: Path,
    *,
    via: str = "auto",
    meter: Meter | None = None,
) -> Result:
    """Replace volume ``name``'s contents by ``archive``'s, which is verified
    completely before the volume is touched. A declared volume that does not
    exist is created with the project's labels (``up`` adopts it) and removed
    again if the restore fails."""
    meter = meter or NullMeter()
    ref = resolve(session, name)
    if not archive.is_file():
        raise CompoundError(f"no backup file {archive}", hint="give the path of a backup archive")
    attrs = inspect_volume(session.client, ref.name)
    created = False
    if attrs is None:
        if ref.declared is None:
            raise missing_error(session, ref)
        ensure_volume(session.client, session.project, ref.declared)
        attrs = inspect_volume(session.client, ref.name) or {}
        created = True
    try:
        busy = [i for i in instances_using(session.client, ref.name) if i.running]
        if busy:
            names = ", ".join(i.name for i in busy)
            services = sorted({i.service for i in busy if i.service})
            raise CompoundError(
                f"volume {ref.name!r} is in use by running instance(s): {names}",
                hint=f"stop them first: `compound stop {' '.join(services) or '<service>'}`;"
                " a restore replaces files under a running program's feet",
            )
        mountpoint = _choose(attrs, via, write=True)
        result = Result(ref.name, ref.key, str(archive), "mount" if mountpoint else "engine")
        t0 = time.monotonic()
        if mountpoint is not None:
            manifest = restore_dir(archive, mountpoint, meter)
        else:
            manifest = restore_engine(session.client, ref.name, archive, meter)
    except BaseException:
        if created:
            remove_volume(session.client, ref.name)
        raise
    result.seconds = time.monotonic() - t0
    result.created = created
    result.files, result.bytes = manifest.file_count, manifest.total_size
    result.archive_bytes = archive.stat().st_size
    result.origin = {k: manifest.meta.get(k) for k in ("project", "volume", "created", "services")}
    result.warnings = list(manifest.warnings)
    return result
