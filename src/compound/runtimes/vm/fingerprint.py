"""The VM runtime's host checks (its fingerprint, shown by `compound doctor`):
QEMU, qemu-img, mkfs.ext4 (``-d`` tried for real on a 1 MiB image), the
guest kernel and initramfs (prepared if missing: may download and build),
KVM (``/dev/kvm`` and a real boot probe, cached per host boot), the
launcher image (built only with ``--prepare``) and the VM caches.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from compound.runtimes.hostcheck import (
    CheckDef,
    CheckEnv,
    GiB,
    MiB,
    Verdict,
    check_local_image,
    fail,
    human_size,
    ok,
    skip,
    tool,
    warn,
)
from compound.runtimes.hostops import digest, host_is_vm
from compound.runtimes.vm import launcher_image as launcher_image_mod
from compound.runtimes.vm.accel import probe_accel
from compound.runtimes.vm.driver import kernel_has_virtiofs
from compound.runtimes.vm.guestkernel import cached_kernels, ensure_guest_kernel
from compound.runtimes.vm.initramfs import ensure_initramfs
from compound.runtimes.vm.launcher import TUN_DEVICE
from compound.runtimes.vm.qemu import QEMU_BINARY

# e2fsprogs gained `mkfs.ext4 -d <dir>` in 1.43.
MKFS_MIN_VERSION = (1, 43)
# Below this much free space in the cache's filesystem, a new base disk or
# kernel may not fit.
LOW_SPACE = 2 * GiB


def check_qemu(env: CheckEnv) -> Verdict:
    path = shutil.which(QEMU_BINARY)
    if path is None:
        return fail(f"{QEMU_BINARY} is not installed", "apt-get install qemu-system-x86")
    first = tool([path, "--version"]).splitlines()[0]
    return ok(f"{first} ({path}; the KVM probe runs it, VMs use the launcher's own QEMU)")


def check_qemu_img(env: CheckEnv) -> Verdict:
    path = shutil.which("qemu-img")
    if path is None:
        return warn(
            "qemu-img is not installed (launchers bring their own; bare VMs in tests need it)",
            "apt-get install qemu-utils",
        )
    first = tool([path, "--version"]).splitlines()[0]
    return ok(f"{first} ({path})")


def _mkfs_version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"mke2fs (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def check_mkfs(env: CheckEnv) -> Verdict:
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
    text = tool([path, "-V"])
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
        tool([path, "-q", "-F", "-d", str(src), str(img), "1024k"])
    return ok(f"e2fsprogs {shown} ({path}); mkfs.ext4 -d works")


def _cached_entries(directory: Path, pattern: str) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(pattern) if not p.name.startswith("."))


def _kernels_present(cache_dir: Path) -> str:
    """The guest kernels in the cache: compound's (built, or a build in
    progress/interrupted) and Debian's, with version and size."""
    shown = [
        f"compound {k.version} ({human_size(k.size)})"
        if k.built
        else f"compound build unfinished ({k.path})"
        for k in cached_kernels(cache_dir)
    ]
    for manifest in _cached_entries(cache_dir / "kernel", "linux-image-*/manifest.json"):
        try:
            meta = json.loads(manifest.read_text())
            size = (manifest.parent / "vmlinux").stat().st_size
        except (OSError, ValueError):
            continue
        shown.append(f"debian {meta.get('release')} ({meta.get('version')}, {human_size(size)})")
    return "; ".join(shown) if shown else "none"


def check_kernel(env: CheckEnv) -> Verdict:
    if env.quick:
        return skip(f"not probed (--quick); in the cache: {_kernels_present(env.cache_dir)}")
    with env.progress("guest kernel: checking apt's version, building if missing (minutes)"):
        env.kernel = ensure_guest_kernel(env.cache_dir, refresh=True)
    k = env.kernel
    return ok(f"{k.version}, {k.vmlinux}; in the cache: {_kernels_present(env.cache_dir)}")


def check_initramfs(env: CheckEnv) -> Verdict:
    idir = env.cache_dir / "initramfs"
    if env.quick:
        cached = _cached_entries(idir, "initramfs-*")
        have = (
            "cached: " + ", ".join(f"{p.name} ({human_size(p.stat().st_size)})" for p in cached)
            if cached
            else "nothing cached yet"
        )
        return skip(f"not probed (--quick); {have}")
    if env.kernel is None:
        return skip("not probed: the guest kernel is not available (see above)")
    with env.progress("initramfs: checking, building if missing"):
        env.initramfs = ensure_initramfs(env.kernel, env.cache_dir, refresh=True)
    i = env.initramfs
    return ok(f"{human_size(i.size)}, key {i.key[:16]}, {i.path}")


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


def check_kvm(env: CheckEnv) -> Verdict:
    dev = Path("/dev/kvm")
    present = dev.exists()
    usable = present and os.access(dev, os.R_OK | os.W_OK)
    on_vm = host_is_vm()
    nested = " (this host is itself a VM: KVM here is nested)" if on_vm else ""
    if not present:
        dev_text = "/dev/kvm is missing"
    elif not usable:
        dev_text = "/dev/kvm exists but is not read/writable for this user"
    else:
        dev_text = "/dev/kvm present"
    no_kvm_hint = (
        "VMs run under TCG (emulation): enable virtualization (VT-x/AMD-V) in the firmware, "
        "load kvm_intel or kvm_amd"
        + (", and enable nested virtualization on the outer hypervisor" if on_vm else "")
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


def check_launcher(env: CheckEnv) -> Verdict:
    tag, key = _launcher_tag()
    return check_local_image(
        env,
        tag,
        key,
        launcher_image_mod.REPOSITORY,
        lambda client: launcher_image_mod.ensure_launcher_image(client, env.cache_dir).tag,
        first_use="the first VM `up` builds it (mmdebstrap, a few minutes)",
    )


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


def check_vm_dataplane(env: CheckEnv) -> Verdict:
    """How VMs reach their networks and volumes on this host."""
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


def check_caches(env: CheckEnv) -> Verdict:
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
        size = human_size(on_disk)
        if apparent > on_disk * 2 and apparent > MiB:
            size += f" ({human_size(apparent)} sparse)"
        if name == "run":
            what = "instance" if count == 1 else "instances"
        else:
            what = "entry" if count == 1 else "entries"
        parts.append(f"{name}/ {size}, {count} {what}")
    free = shutil.disk_usage(root).free
    detail = f"{root}: " + "; ".join(parts) + f"; {human_size(free)} free"
    if free < LOW_SPACE:
        return warn(detail, "free space there, or set COMPOUND_CACHE_DIR to a larger disk")
    return ok(detail)


_CACHE_HINT = "set COMPOUND_CACHE_DIR to a writable directory"


VM_CHECKS: tuple[CheckDef, ...] = (
    CheckDef("qemu", check_qemu),
    CheckDef("qemu-img", check_qemu_img),
    CheckDef("mkfs.ext4", check_mkfs),
    CheckDef("guest kernel", check_kernel),
    CheckDef("initramfs", check_initramfs),
    CheckDef("kvm", check_kvm),
    CheckDef("launcher image", check_launcher),
    CheckDef("vm data plane", check_vm_dataplane),
    CheckDef("caches", check_caches),
)
