"""``compound lift DISK -t NAME:TAG``: a VM disk into an OCI image and a
Compose service, offline (the disk is never booted nor written).

1. diskread.open_disk: the disk read-only, its one Linux OS found, its root
   mounted read-only (errors for what cannot be lifted: not a disk, an
   unknown format, encrypted, Windows, several OSes);
2. liftscan.scan: services, ports, users, data dirs, what cannot be carried;
3. the image: GNU tar of the root without what a container does not need
   (kernel, modules, firmware, bootloader, fstab, swap, udev rules, gettys)
   plus a small init running the services, streamed into ``docker import``
   under a temporary tag, retagged NAME:TAG only when complete;
4. a compose.yaml fragment (temp file + rename) and a report.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from compound.errors import CompoundError

from .diskread import DiskError, open_disk
from .legacy import LABEL_VM_DISK
from .liftscan import Scan, Unit, scan

INIT_PATH = "/usr/local/sbin/compound-lift-init"
LABEL_LIFT_SOURCE = "org.compound.lift.source"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Paths of the guest a container does not need (relative, as tar sees them).
EXCLUDES = (
    "./boot/*",
    "./lib/modules/*",
    "./usr/lib/modules/*",
    "./lib/firmware/*",
    "./usr/lib/firmware/*",
    "./dev/*",
    "./proc/*",
    "./sys/*",
    "./run/*",
    "./tmp/*",
    "./var/tmp/*",
    "./lost+found",
    "./vmlinuz",
    "./vmlinuz.old",
    "./initrd.img",
    "./initrd.img.old",
    "./etc/fstab",
    "./etc/crypttab",
    "./etc/udev/rules.d/*",
    "./etc/systemd/system/getty.target.wants",
    "./etc/systemd/system/serial-getty@*",
    "./var/cache/apt/*",
    "./var/lib/apt/lists/*",
)


class LiftError(CompoundError):
    """A disk that cannot be lifted, or an image the engine would not take."""


@dataclass
class LiftResult:
    disk: str
    image: str
    image_id: str
    os: str
    service: str
    command: list[str]
    units: list[str]
    skipped_units: list[str]
    ports: list[int]
    users: list[str]
    volumes: dict[str, str]  # volume name -> path
    not_carried: list[str]
    compose_file: str
    seconds: float
    oneshots: list[str] = field(default_factory=list)  # run first, in order, by the init
    sockets: list[str] = field(default_factory=list)  # socket-activated, started at once
    schedules: list[dict[str, Any]] = field(default_factory=list)  # cron lines and timers
    size_bytes: int = 0
    removed: list[str] = field(default_factory=lambda: [e.lstrip("./") for e in EXCLUDES])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def disk_in_use(client: docker.DockerClient, disk: Path) -> list[str]:
    """Names of running instances booted from ``disk``."""
    try:
        rows = client.api.containers(filters={"label": f"{LABEL_VM_DISK}={disk}"})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return []
    return [str((r.get("Names") or ["?"])[0]).lstrip("/") for r in rows]


def _sh(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def init_script(units: list[Unit]) -> str:
    """A small init (sh) that starts every lifted service the way its unit
    said (user, environment, working dir, pre-start commands): first the
    oneshot units, one after the other to their end (as systemd orders a
    oneshot before what comes after it), then the long-running ones in the
    background. It forwards SIGTERM to them, and exits when one of them
    exits (so the engine's restart policy takes over, as systemd's
    Restart= would)."""
    lines = [
        "#!/bin/sh",
        "# compound lift: runs the services the VM started at boot (one per unit)",
        "pids=",
        "trap 'kill -TERM $pids 2>/dev/null; wait; exit 0' TERM INT",
    ]
    ordered = [u for u in units if u.type == "oneshot"] + [u for u in units if u.type != "oneshot"]
    for u in ordered:
        lines.append(f"# {u.kind} {u.name}")
        for d in u.runtime_dirs:
            lines.append(f"mkdir -p /run/{shlex.quote(d)}")
            if u.user:
                lines.append(f"chown {shlex.quote(u.user)} /run/{shlex.quote(d)}")
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in u.env.items())
        cd = f"cd {shlex.quote(u.working_dir)} && " if u.working_dir else ""
        for pre in u.exec_start_pre:
            lines.append(
                f"{cd}env {env} {_sh(pre)} || echo 'lift-init: {u.name}: pre-start failed' >&2"
            )
        cmd = f"env {env} {_sh(u.exec_start)}" if env else _sh(u.exec_start)
        if u.user:
            cmd = (
                f"setpriv --reuid={shlex.quote(u.user)} --regid={shlex.quote(u.group or u.user)}"
                f" --init-groups {cmd}"
            )
        if u.type == "oneshot":
            lines.append(f"({cd}exec {cmd}) || echo 'lift-init: {u.name} failed' >&2")
        elif u.type == "forking":
            # it daemonises: follow its PID file (or its first child) instead
            lines.append(f"({cd}{cmd}) || echo 'lift-init: {u.name} failed to start' >&2")
            if u.pid_file:
                lines.append(
                    f"( while [ ! -s {shlex.quote(u.pid_file)} ]; do sleep 0.2; done; "
                    f'p=$(cat {shlex.quote(u.pid_file)}); while kill -0 "$p" 2>/dev/null; '
                    "do sleep 1; done ) &"
                )
                lines.append('pids="$pids $!"')
        else:
            lines.append(f"( {cd}exec {cmd} ) &")
            lines.append('pids="$pids $!"')
    lines += [
        "# the first service to end ends the container",
        "wait -n 2>/dev/null || while :; do for p in $pids; do kill -0 $p 2>/dev/null || exit 1;"
        " done; sleep 1; done",
        "exit 1",
    ]
    return "\n".join(lines) + "\n"


def command_for(units: list[Unit]) -> tuple[list[str], str, bool]:
    """(CMD, user, needs_init): one simple service runs as itself."""
    if len(units) == 1 and units[0].type != "forking":
        u = units[0]
        return list(u.exec_start), u.user, False
    return [INIT_PATH], "", True


def _volume_name(service: str, path: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", path.strip("/").split("/")[-1].lower()).strip("-")
    return f"{service}-{base or 'data'}"


def fragment(res: LiftResult, scanned: Scan, restart: str) -> str:
    lines = [
        f"# compound lift of {res.disk} ({res.os})",
        f"# image {res.image}: services {', '.join(res.units) or '-'}",
    ]
    if res.not_carried:
        lines.append("# Not carried over (see the lift report):")
        lines += [f"#   - {n}" for n in res.not_carried]
    lines += ["services:", f"  {res.service}:", f"    image: {res.image}"]
    if res.ports:
        lines.append("    expose:")
        lines += [f'      - "{p}"' for p in res.ports]
        lines.append('    # publish with ports: - "HOST:PORT"')
    if res.volumes:
        lines.append("    volumes:")
        lines += [f"      - {name}:{path}" for name, path in res.volumes.items()]
    if restart:
        lines.append(f"    restart: {restart}")
    if res.volumes:
        lines.append("volumes:")
        lines += [
            f"  {name}: {{}}  # seeded from the disk's {path} on first use"
            for name, path in res.volumes.items()
        ]
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def lift(
    client: docker.DockerClient,
    disk: Path,
    tag: str,
    compose_out: Path,
    progress: Callable[[str], None] = lambda _m: None,
) -> LiftResult:
    t0 = time.monotonic()
    disk = disk.resolve()
    repo, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    if not repo or not re.match(r"^[a-z0-9][a-z0-9._/-]*$", repo):
        raise LiftError(f"{tag!r} is not an image name", hint="use -t name:tag, e.g. erp:lifted")
    users = disk_in_use(client, disk)
    if users:
        raise LiftError(
            f"{disk} is in use by a running instance ({', '.join(users)}): its state is in that"
            " instance's overlay and the disk may change under the lift",
            hint="stop the service first (`compound stop SERVICE`), then lift",
        )
    service = re.sub(r"[^a-z0-9-]+", "-", repo.split("/")[-1]).strip("-") or "lifted"
    progress(f"reading {disk.name} offline")
    with open_disk(disk) as od:
        assert od.os is not None and od.root is not None
        root = od.root
        if not (root / "bin/sh").exists() and not (root / "usr/bin/sh").exists():
            raise LiftError(
                f"{disk}: the OS on it has no /bin/sh: not a Linux root compound can run"
            )
        found = scan(root)
        progress(
            f"{od.os.short}: services {', '.join(u.name for u in found.units) or 'none'};"
            f" ports {', '.join(map(str, found.ports)) or 'none'}"
        )
        command, user, needs_init = command_for(found.units)
        if not found.units:
            command, needs_init = ["/bin/sh"], False
        not_carried = [
            f"{j.source} {j.name} ({j.schedule}): no scheduler in a container;"
            f" {j.suggestion(service)}"
            for j in found.schedules
        ]
        not_carried += found.notes
        not_carried += [f"kernel module {m}: load it on the host" for m in found.kernel_modules]
        for u in found.units:
            not_carried += [f"{u.name}: {k} (systemd-only)" for k in u.not_carried]
        not_carried += [f"{n}: not started (the OS's own)" for n in found.skipped_units]
        restarts = {u.restart for u in found.units if u.restart}
        restart = "always" if "always" in restarts else ("on-failure" if restarts else "")
        volumes = {_volume_name(service, d): d for d in found.data_dirs}
        changes = [
            f"CMD {json.dumps(command)}",
            f"ENV PATH={DEFAULT_PATH}",
            "ENV LANG=C.UTF-8",
            f"LABEL {LABEL_LIFT_SOURCE}={json.dumps(str(disk))}",
        ]
        if user:
            changes.append(f"USER {user}")
        changes += [f"EXPOSE {p}/tcp" for p in found.ports]
        changes += [f"VOLUME {json.dumps(d)}" for d in found.data_dirs]
        with tempfile.TemporaryDirectory(prefix="compound-lift-") as extra:
            tar_args = ["tar", "-c", "--numeric-owner", "--xattrs", "--acls", "-C", str(root)]
            tar_args += [f"--exclude={e}" for e in EXCLUDES]
            tar_args.append(".")
            if needs_init:
                init = Path(extra) / INIT_PATH.lstrip("/")
                init.parent.mkdir(parents=True)
                init.write_text(init_script(found.units))
                init.chmod(0o755)
                tar_args += ["-C", extra, "." + INIT_PATH]
            temp_tag = f"lift-{uuid.uuid4().hex[:12]}"
            progress(f"importing the root filesystem into the engine as {tag}")
            image_id = _import(client, tar_args, repo, temp_tag, changes)
    try:
        image = client.images.get(image_id)
        image.tag(repo, version)
        client.images.remove(f"{repo}:{temp_tag}")
        res = LiftResult(
            disk=str(disk),
            image=f"{repo}:{version}",
            image_id=image_id,
            os=od.os.name,
            service=service,
            command=command,
            units=[u.name for u in found.units],
            skipped_units=found.skipped_units,
            ports=found.ports,
            users=found.users,
            volumes=volumes,
            not_carried=not_carried,
            compose_file=str(compose_out),
            seconds=round(time.monotonic() - t0, 1),
            size_bytes=int(image.attrs.get("Size") or 0),
            oneshots=found.oneshots,
            sockets=found.sockets,
            schedules=[{**asdict(j), "suggestion": j.suggestion(service)} for j in found.schedules],
        )
        _write_atomic(compose_out, fragment(res, found, restart))
    except BaseException as exc:
        # a lift that did not finish (an engine error, Ctrl-C, SIGTERM)
        # leaves no image behind, not even under a temporary tag
        with contextlib.suppress(Exception):
            client.images.remove(image_id, force=True)
        if isinstance(exc, docker.errors.DockerException | requests.exceptions.RequestException):
            raise LiftError(f"the engine refused the lifted image: {exc}") from exc
        raise
    return res


def _import(
    client: docker.DockerClient, tar_args: list[str], repo: str, temp_tag: str, changes: list[str]
) -> str:
    """Stream tar into ``docker import`` under a temporary tag; the image id."""
    proc = subprocess.Popen(tar_args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        out = client.api.import_image_from_stream(
            proc.stdout, repository=repo, tag=temp_tag, changes=changes
        )
    except BaseException as exc:
        # an engine error or an interruption (Ctrl-C, SIGTERM): tar must end
        # before the disk is unmounted, and a half import must not stay
        proc.kill()
        proc.wait()
        with contextlib.suppress(Exception):
            client.images.remove(f"{repo}:{temp_tag}", force=True)
        if isinstance(exc, docker.errors.DockerException | requests.exceptions.RequestException):
            raise LiftError(f"docker import of the lifted root failed: {exc}") from exc
        raise
    rc = proc.wait()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    text = out if isinstance(out, str) else str(out)
    ids = re.findall(r"sha256:[0-9a-f]{64}", text)
    if rc not in (0, 1) or not ids:  # tar 1: a file changed while read (not here: read-only)
        with contextlib.suppress(docker.errors.DockerException):
            client.images.remove(f"{repo}:{temp_tag}")
        raise LiftError(f"reading the disk's files failed (tar exit {rc}): {err.strip()[-300:]}")
    return str(ids[-1])


__all__ = ["DiskError", "LiftError", "LiftResult", "lift"]
