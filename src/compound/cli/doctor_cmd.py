"""``compound doctor``: what this host offers compound, and what to do about it.

    compound doctor [--quick] [--prepare] [--json]

One row per check, each ``ok``, ``warn``, ``fail`` or ``skip`` (not probed),
with a detail and, on problems, a hint. Checks: the Docker Engine (version,
API, storage driver, cgroup version), QEMU, qemu-img, mkfs.ext4 (``-d``
support, tried for real on a 1 MiB image), the guest kernel and initramfs
(prepared if missing: may download and build), KVM (``/dev/kvm`` and a real
boot probe, cached per host boot), the launcher image (built only with
``--prepare``), the VM caches, whether the host is itself a VM, CPUs and
memory.

``--quick`` skips everything that may take more than a second (kernel and
initramfs preparation, the KVM boot probe) and reports it as ``skip``
("not probed"), with what the cache already holds. ``--prepare`` also builds
the launcher image (mmdebstrap: minutes on first use).

Exit code 0 when no check failed, 1 otherwise. A check that raises is that
check's failure; no traceback reaches the user.

JSON (``--json``, on stdout)::

    {"checks": [{"name", "status", "detail", "hint"}],
     "host_facts": {"kvm_usable", "host_is_vm", "os", "arch", "cpus", "memory"}}
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import docker
import docker.errors
import typer
from docker.models.images import Image
from rich.console import Console
from rich.table import Table
from rich.text import Text

from compound.advisor import HostFacts
from compound.engine import connect, engine_errors, engine_version
from compound.errors import CompoundError, UsageError
from compound.hostfacts import host_facts
from compound.runtimes.vm import launcher_image as launcher_image_mod
from compound.runtimes.vm._util import default_cache_dir, digest
from compound.runtimes.vm.accel import AccelProbe, probe_accel
from compound.runtimes.vm.driver import kernel_has_virtiofs
from compound.runtimes.vm.initramfs import Initramfs, ensure_initramfs
from compound.runtimes.vm.kernel import KernelArtifacts, ensure_kernel
from compound.runtimes.vm.launcher import TUN_DEVICE
from compound.runtimes.vm.qemu import QEMU_BINARY

Status = Literal["ok", "warn", "fail", "skip"]

# How long a `--version` of a host tool may take before it counts as broken.
TOOL_TIMEOUT = 10.0
# e2fsprogs gained `mkfs.ext4 -d <dir>` in 1.43.
MKFS_MIN_VERSION = (1, 43)
MiB = 1 << 20
GiB = 1 << 30
# Below this much free space in the cache's filesystem, a new base disk or
# kernel may not fit.
LOW_SPACE = 2 * GiB
# What one idle VM costs the host (launcher + QEMU, NOTES.md: 262 MiB RSS).
VM_MEMORY_MIB = 260


@dataclass(frozen=True)
class Verdict:
    status: Status
    detail: str
    hint: str | None = None


def ok(detail: str) -> Verdict:
    return Verdict("ok", detail)


def warn(detail: str, hint: str | None = None) -> Verdict:
    return Verdict("warn", detail, hint)


def fail(detail: str, hint: str | None = None) -> Verdict:
    return Verdict("fail", detail, hint)


def skip(detail: str, hint: str | None = None) -> Verdict:
    return Verdict("skip", detail, hint)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass
class DoctorEnv:
    """What the checks share: options, and what earlier checks found."""

    quick: bool = False
    prepare: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    progress: Callable[[str], contextlib.AbstractContextManager[object]] = lambda _text: (
        contextlib.nullcontext()
    )
    client: docker.DockerClient | None = None
    kernel: KernelArtifacts | None = None
    initramfs: Initramfs | None = None
    accel: AccelProbe | None = None


@dataclass(frozen=True)
class CheckDef:
    name: str
    run: Callable[[DoctorEnv], Verdict]


def run_check(check: CheckDef, env: DoctorEnv) -> Check:
    """One check; anything it raises becomes its failure, never a traceback."""
    try:
        v = check.run(env)
    except CompoundError as exc:
        v = fail(exc.message, exc.hint)
    except subprocess.TimeoutExpired as exc:
        v = fail(f"{_argv0(exc.cmd)} did not finish within {exc.timeout:.0f}s")
    except (OSError, subprocess.SubprocessError) as exc:
        v = fail(f"{type(exc).__name__}: {exc}")
    except docker.errors.DockerException as exc:
        v = fail(f"Docker Engine: {exc}")
    except Exception as exc:  # doctor must report, not crash
        v = fail(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in compound doctor; please report it",
        )
    return Check(check.name, v.status, v.detail, v.hint)


def run_checks(env: DoctorEnv, checks: Sequence[CheckDef] | None = None) -> list[Check]:
    return [run_check(c, env) for c in (CHECKS if checks is None else checks)]


def _argv0(cmd: object) -> str:
    if isinstance(cmd, (list, tuple)) and cmd:
        return str(cmd[0])
    return str(cmd)


def _tool(argv: Sequence[str]) -> str:
    """stdout+stderr of a quick tool invocation; raises on failure/timeout."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        tail = " | ".join(out.splitlines()[-3:])
        raise subprocess.SubprocessError(f"{' '.join(argv)} exited {proc.returncode}: {tail}")
    return out


def _size(n: int) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} B"


# -- the checks -------------------------------------------------------------------------


def check_engine(env: DoctorEnv) -> Verdict:
    client = connect()  # EngineUnavailableError: the check's failure, with its hint
    env.client = client
    v = engine_version(client)
    with engine_errors("read the engine info"):
        info: dict[str, Any] = client.info()
    storage = str(info.get("Driver") or "?")
    cgroup = str(info.get("CgroupVersion") or "1")
    cgroup_driver = str(info.get("CgroupDriver") or "?")
    detail = (
        f"Docker Engine {v.version} (API {v.api_version}, min {v.min_api_version}), "
        f"{v.os}/{v.arch}, storage {storage}, cgroup v{cgroup} ({cgroup_driver})"
    )
    if storage == "vfs":
        return warn(
            detail,
            "the vfs storage driver copies every layer: slow and large; configure overlay2",
        )
    return ok(detail)


def check_qemu(env: DoctorEnv) -> Verdict:
    path = shutil.which(QEMU_BINARY)
    if path is None:
        return fail(f"{QEMU_BINARY} is not installed", "apt-get install qemu-system-x86")
    first = _tool([path, "--version"]).splitlines()[0]
    return ok(f"{first} ({path}; the KVM probe runs it, VMs use the launcher's own QEMU)")


def check_qemu_img(env: DoctorEnv) -> Verdict:
    path = shutil.which("qemu-img")
    if path is None:
        return warn(
            "qemu-img is not installed (launchers bring their own; bare VMs in tests need it)",
            "apt-get install qemu-utils",
        )
    first = _tool([path, "--version"]).splitlines()[0]
    return ok(f"{first} ({path})")


def _mkfs_version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"mke2fs (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def check_mkfs(env: DoctorEnv) -> Verdict:
    path = shutil.which("mkfs.ext4")
    if path is None:
        elsewhere = next(
            (p for p in ("/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4") if os.path.exists(p)), None
        )
        if elsewhere:
            return fail(
                f"mkfs.ext4 is at {elsewhere} but not on PATH",
                f"add {os.path.dirname(elsewhere)} to PATH",
            )
        return fail("mkfs.ext4 is not installed", "apt-get install e2fsprogs")
    text = _tool([path, "-V"])
    version = _mkfs_version(text)
    if version is None:
        return warn(f"cannot read the e2fsprogs version from: {text.splitlines()[0]!r}")
    shown = ".".join(map(str, version))
    if version < MKFS_MIN_VERSION:
        return fail(
            f"e2fsprogs {shown} has no `mkfs.ext4 -d` (needs >= 1.43)",
            "upgrade e2fsprogs (apt-get install e2fsprogs from a newer release)",
        )
    # Try `-d` for real on a 1 MiB image: cheap, and proves what base disks need.
    with tempfile.TemporaryDirectory(prefix="compound-doctor-") as tmp:
        src = Path(tmp) / "root"
        src.mkdir()
        (src / "hello").write_text("hi\n")
        img = Path(tmp) / "t.ext4"
        _tool([path, "-q", "-F", "-d", str(src), str(img), "1024k"])
    return ok(f"e2fsprogs {shown} ({path}); mkfs.ext4 -d works")


def _cached_entries(directory: Path, pattern: str) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(pattern) if not p.name.startswith("."))


def check_kernel(env: DoctorEnv) -> Verdict:
    kdir = env.cache_dir / "kernel"
    if env.quick:
        cached = [p.parent.name for p in _cached_entries(kdir, "*/manifest.json")]
        have = f"cached: {', '.join(cached)}" if cached else "nothing cached yet"
        return skip(f"not probed (--quick); {have}")
    with env.progress("guest kernel: checking, downloading and unpacking if missing"):
        env.kernel = ensure_kernel(env.cache_dir)
    k = env.kernel
    return ok(f"{k.version}, {len(k.modules)} modules, {k.vmlinux}")


def check_initramfs(env: DoctorEnv) -> Verdict:
    idir = env.cache_dir / "initramfs"
    if env.quick:
        cached = _cached_entries(idir, "initramfs-*")
        have = (
            "cached: " + ", ".join(f"{p.name} ({_size(p.stat().st_size)})" for p in cached)
            if cached
            else "nothing cached yet"
        )
        return skip(f"not probed (--quick); {have}")
    if env.kernel is None:
        return skip("not probed: the guest kernel is not available (see above)")
    with env.progress("initramfs: checking, building if missing"):
        env.initramfs = ensure_initramfs(env.kernel, env.cache_dir)
    i = env.initramfs
    return ok(f"{_size(i.size)}, key {i.key[:16]}, {i.path}")


def _last_probe(cache_dir: Path) -> str | None:
    """The accelerator probe's last answer as cached (not re-validated)."""
    try:
        known = json.loads((cache_dir / "accel.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(known, dict) or not known:
        return None
    entry = next(iter(known.values()))
    if not isinstance(entry, dict):
        return None
    return f"{entry.get('accel')}: {entry.get('reason')}"


def check_kvm(env: DoctorEnv) -> Verdict:
    dev = Path("/dev/kvm")
    present = dev.exists()
    usable = present and os.access(dev, os.R_OK | os.W_OK)
    facts = host_facts()
    nested = " (this host is itself a VM: KVM here is nested)" if facts.host_is_vm else ""
    if not present:
        dev_text = "/dev/kvm is missing"
    elif not usable:
        dev_text = "/dev/kvm exists but is not read/writable for this user"
    else:
        dev_text = "/dev/kvm present"
    no_kvm_hint = (
        "VMs run under TCG (emulation): enable virtualization (VT-x/AMD-V) in the firmware, "
        "load kvm_intel or kvm_amd"
        + (", and enable nested virtualization on the outer hypervisor" if facts.host_is_vm else "")
    )
    if env.quick or env.kernel is None or env.initramfs is None:
        why = "--quick" if env.quick else "no guest kernel/initramfs"
        last = _last_probe(env.cache_dir)
        detail = f"{dev_text}{nested}; accelerator not probed ({why})"
        if last:
            detail += f"; last probe said {last}"
        if not present or not usable:
            return warn(detail, no_kvm_hint)
        return skip(detail)
    with env.progress("KVM: booting a tiny guest to see whether KVM really works (≤ 20 s)"):
        env.accel = probe_accel(env.kernel, env.initramfs, env.cache_dir)
    a = env.accel
    detail = f"{dev_text}{nested}; accelerator {a.accel}: {a.reason}"
    if a.accel == "kvm":
        return ok(detail)
    if present and usable:
        return warn(
            detail,
            "KVM is there but a guest did not boot with it, so VMs run under TCG "
            "(slower); on a nested host this is the outer hypervisor's nested-KVM support",
        )
    return warn(detail, no_kvm_hint)


def _launcher_tag() -> tuple[str, str]:
    # the same tag ensure_launcher_image() looks for
    key = digest(launcher_image_mod.recipe())
    return f"{launcher_image_mod.REPOSITORY}:{key[:12]}", key


def check_launcher(env: DoctorEnv) -> Verdict:
    tag, key = _launcher_tag()
    return _check_local_image(
        env,
        tag,
        key,
        launcher_image_mod.REPOSITORY,
        lambda client: launcher_image_mod.ensure_launcher_image(client, env.cache_dir).tag,
        first_use="the first VM `up` builds it (mmdebstrap, a few minutes)",
    )


def check_vm_dataplane(env: DoctorEnv) -> Verdict:
    """How VMs reach their networks and volumes on this host (issue 10)."""
    # QEMU 7.2's virtiofsd needs unshare(CLONE_FS), which Docker's default
    # seccomp profile refuses without CAP_SYS_ADMIN (NOTES.md)
    share = "virtio-fs where virtiofsd starts, else 9p (always under Docker's default seccomp)"
    if env.kernel is not None and not kernel_has_virtiofs(env.kernel):
        share = "9p (the guest kernel has no virtio-fs)"
    if not Path(TUN_DEVICE).exists():
        return warn(
            f"no {TUN_DEVICE}: VMs fall back to QEMU user networking (declared ports only);"
            f" volumes: {share}",
            "load the tun module (modprobe tun) so a VM can own its launcher's address",
        )
    return ok(f"network: tap (the guest owns the launcher's address); volumes: {share}")


def check_lb_image(env: DoctorEnv) -> Verdict:
    from compound.lb import image as lb_image

    key = digest(lb_image.image().recipe())
    return _check_local_image(
        env,
        f"{lb_image.REPOSITORY}:{key[:12]}",
        key,
        lb_image.REPOSITORY,
        lambda client: lb_image.ensure_lb_image(client).tag,
        first_use="the first `up` of a replicated service with published ports builds it"
        " (mmdebstrap, about 20 s)",
    )


def _check_local_image(
    env: DoctorEnv,
    tag: str,
    key: str,
    repository: str,
    build: Callable[[docker.DockerClient], str],
    *,
    first_use: str,
) -> Verdict:
    """An image compound builds from Debian packages: built for the current
    recipe, or when it will be (``--prepare``: now)."""
    if env.client is None:
        return skip("not checked: no Docker Engine (see above)")
    client = env.client
    if env.prepare:
        with env.progress(f"{tag}: building if missing (mmdebstrap)"):
            built = build(client)
        img = client.images.get(built)
        return ok(f"{built} built ({str(img.id)[7:19]}, {_size(int(img.attrs.get('Size', 0)))})")
    found: Image | None = None
    with engine_errors(f"inspect {tag}"), contextlib.suppress(docker.errors.ImageNotFound):
        found = client.images.get(tag)
    if found is not None and (found.labels or {}).get(launcher_image_mod.LABEL_RECIPE) == key:
        size = _size(int(found.attrs.get("Size", 0)))
        return ok(f"{tag} built ({str(found.id)[7:19]}, {size})")
    with engine_errors(f"list {repository} images"):
        others = [t for i in client.images.list(repository) for t in i.tags]
    detail = f"{tag} is not built; {first_use}"
    if others:
        detail += f"; older recipes present: {', '.join(sorted(others))}"
    hint = "compound doctor --prepare builds it now"
    if shutil.which("mmdebstrap") is None:
        hint += " (needs mmdebstrap: apt-get install mmdebstrap)"
    return warn(detail, hint)


def _usage(path: Path) -> tuple[int, int, int]:
    """(bytes on disk, apparent bytes, files) under ``path``."""
    on_disk = apparent = files = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, n))
                on_disk += st.st_blocks * 512
                apparent += st.st_size
                files += 1
    return on_disk, apparent, files


def check_caches(env: DoctorEnv) -> Verdict:
    root = env.cache_dir
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), Path("/"))
        if not os.access(parent, os.W_OK):
            return fail(f"{root} does not exist and {parent} is not writable", _CACHE_HINT)
        return ok(f"{root}: empty (nothing prepared yet)")
    if not os.access(root, os.W_OK):
        return fail(f"{root} is not writable", _CACHE_HINT)
    parts = []
    counts = {
        "kernel": len(_cached_entries(root / "kernel", "*/manifest.json")),
        "initramfs": len(_cached_entries(root / "initramfs", "initramfs-*")),
        "disks": len(_cached_entries(root / "disks", "*.ext4")),
        "run": len([p for p in _cached_entries(root / "run", "*") if p.is_dir()]),
    }
    for name, count in counts.items():
        on_disk, apparent, _files = _usage(root / name)
        size = _size(on_disk)
        if apparent > on_disk * 2 and apparent > MiB:
            size += f" ({_size(apparent)} sparse)"
        if name == "run":
            what = "instance" if count == 1 else "instances"
        else:
            what = "entry" if count == 1 else "entries"
        parts.append(f"{name}/ {size}, {count} {what}")
    free = shutil.disk_usage(root).free
    detail = f"{root}: " + "; ".join(parts) + f"; {_size(free)} free"
    if free < LOW_SPACE:
        return warn(detail, "free space there, or set COMPOUND_CACHE_DIR to a larger disk")
    return ok(detail)


_CACHE_HINT = "set COMPOUND_CACHE_DIR to a writable directory"


def check_host(env: DoctorEnv) -> Verdict:
    facts = host_facts()
    if facts.host_is_vm is None:
        return warn("cannot tell whether this host is a VM (/proc/cpuinfo unreadable)")
    if facts.host_is_vm:
        return ok("a virtual machine (CPUID hypervisor flag): KVM needs nested virtualization")
    return ok("bare metal (no CPUID hypervisor flag)")


def check_resources(env: DoctorEnv) -> Verdict:
    facts = host_facts()
    cpus = f"{facts.cpus:g}" if facts.cpus is not None else "?"
    mem = _size(facts.memory) if facts.memory is not None else "?"
    detail = f"{cpus} CPUs, {mem} memory, {facts.arch or '?'}"
    if facts.arch not in (None, "x86_64", "amd64"):
        return warn(detail, "VM guests are x86-64: on this architecture QEMU emulates them")
    if facts.memory is not None and facts.memory < 2 * GiB:
        return warn(
            detail, f"each VM costs about {VM_MEMORY_MIB} MiB on top of its guest; add memory"
        )
    return ok(detail)


CHECKS: tuple[CheckDef, ...] = (
    CheckDef("docker engine", check_engine),
    CheckDef("qemu", check_qemu),
    CheckDef("qemu-img", check_qemu_img),
    CheckDef("mkfs.ext4", check_mkfs),
    CheckDef("guest kernel", check_kernel),
    CheckDef("initramfs", check_initramfs),
    CheckDef("kvm", check_kvm),
    CheckDef("launcher image", check_launcher),
    CheckDef("vm data plane", check_vm_dataplane),
    CheckDef("load balancer image", check_lb_image),
    CheckDef("caches", check_caches),
    CheckDef("host", check_host),
    CheckDef("cpus/memory", check_resources),
)


# -- output ----------------------------------------------------------------------------

_STYLE: dict[str, str] = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def facts_json(env: DoctorEnv) -> dict[str, object]:
    facts: HostFacts = host_facts()
    if env.accel is not None:
        facts = dataclasses.replace(facts, kvm_usable=env.accel.accel == "kvm")
    return facts.to_json()


def report_json(checks: Sequence[Check], env: DoctorEnv) -> dict[str, object]:
    return {"checks": [c.to_json() for c in checks], "host_facts": facts_json(env)}


def render_table(console: Console, checks: Sequence[Check]) -> None:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("CHECK", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("DETAIL")
    for c in checks:
        detail = Text(c.detail)
        if c.hint:
            detail.append(f"\n→ {c.hint}", style="cyan")
        table.add_row(c.name, Text(c.status, style=_STYLE.get(c.status, "")), detail)
    console.print(table)
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("fail", "warn", "skip")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "all ok"
    console.print(Text(summary, style="bold red" if counts["fail"] else "bold"))


def _progress_for(
    console: Console, mode: str
) -> Callable[[str], contextlib.AbstractContextManager[object]]:
    @contextlib.contextmanager
    def step(text: str) -> Iterator[object]:
        if mode == "quiet":
            yield None
            return
        t0 = time.monotonic()
        if console.is_terminal and mode != "plain":
            with console.status(text) as status:
                yield status
            return
        console.print(Text(f"… {text}"))
        yield None
        console.print(Text(f"  done in {time.monotonic() - t0:.1f}s"))

    return step


def doctor(
    *,
    quick: bool,
    prepare: bool,
    json_out: bool,
    out: Console,
    err: Console,
    progress_mode: str = "auto",
    checks: Sequence[CheckDef] | None = None,
) -> int:
    """Run the checks, print the report, return the exit code."""
    if quick and prepare:
        raise UsageError("--quick and --prepare cannot be combined")
    env = DoctorEnv(quick=quick, prepare=prepare, progress=_progress_for(err, progress_mode))
    results = run_checks(env, checks)
    if json_out:
        sys.stdout.write(json.dumps(report_json(results, env), indent=2) + "\n")
    else:
        render_table(out, results)
    return 1 if any(c.status == "fail" for c in results) else 0


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_command(
        ctx: typer.Context,
        quick: Annotated[
            bool,
            typer.Option(
                "--quick",
                help="Skip what may take more than a second (kernel/initramfs, KVM probe).",
            ),
        ] = False,
        prepare: Annotated[
            bool,
            typer.Option(
                "--prepare", help="Also build the launcher and load balancer images if missing."
            ),
        ] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Check what this host offers compound (engine, QEMU, KVM, caches) and what to fix."""
        obj: Any = ctx.obj
        out: Console = getattr(obj, "out", None) or Console(highlight=False)
        err: Console = getattr(obj, "err", None) or Console(stderr=True, highlight=False)
        opts = getattr(obj, "opts", None)
        mode = str(getattr(opts, "progress", "auto"))
        code = doctor(
            quick=quick, prepare=prepare, json_out=json_out, out=out, err=err, progress_mode=mode
        )
        if code:
            raise typer.Exit(code)
