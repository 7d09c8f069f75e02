"""The initramfs compound boots every VM with: busybox (static), the guest
kernel modules in load order (none for compound's own kernel),
qemu-guest-agent with exactly the shared libraries it links against, and
our /init. Built in Python as a newc cpio,
content-addressed: the file name is the hash of every input, so a changed
input gives a new file and an unchanged one is never rebuilt."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from compound.errors import VMError

from . import debs
from ._util import atomic_write, default_cache_dir, digest, locked, run
from .cpio import CpioWriter
from .elf import modinfo, read_deps
from .kernel import KernelArtifacts

# Bump when the layout of the archive changes in a way the inputs don't show.
BUILDER_VERSION = 5
AGENT_PACKAGE = "qemu-guest-agent"
BUSYBOX_PACKAGE = "busybox-static"
LIB_DIR = "lib/x86_64-linux-gnu"

# Modules /init loads, by step, with one `modprobe -a` each (one process,
# dependencies from the modules.dep we write; every insmod process costs
# ~30 ms under TCG). 9p only when the service has volumes, virtio_pci only
# on q35 (compound.pci=1).
MODULES_CONFIG = ("qemu_fw_cfg",)
MODULES_BASE = (
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "crc32c_generic",
    "ext4",
)
MODULES_9P = ("9pnet_virtio", "9p")
MODULES_VIRTIOFS = ("virtiofs",)  # net/helper "net": volumes over virtio-fs (pulls in fuse)
MODULES_PCI = ("virtio_pci",)


# What Docker gives every container, mounted by /init's `mount -a` into the
# service's root once it is mounted at /newroot.
FSTAB = """\
proc /newroot/proc proc defaults 0 0
sysfs /newroot/sys sysfs ro 0 0
devtmpfs /newroot/dev devtmpfs defaults 0 0
devpts /newroot/dev/pts devpts newinstance,ptmxmode=0666,mode=0620,gid=5 0 0
shm /newroot/dev/shm tmpfs nosuid,nodev,mode=1777 0 0
mqueue /newroot/dev/mqueue mqueue defaults 0 0
"""


@dataclass(frozen=True)
class Initramfs:
    path: Path
    key: str  # sha256 of the inputs
    size: int


def _data(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def init_script() -> str:
    return _data("init.sh")


def exec_script() -> str:
    return _data("compound-exec.sh")


def enter_source() -> str:
    return _data("compound-enter.c")


def build_enter(work: Path) -> bytes:
    """compound-enter, compiled static from its source (gcc and libc6-dev
    are build dependencies, as for the guest kernel): ~0.8 MB, no library
    to find in the initramfs, and the C source is the recipe."""
    src = work / "compound-enter.c"
    out = work / "compound-enter"
    src.write_text(enter_source())
    run(
        ["gcc", "-static", "-Os", "-s", "-Wall", "-o", str(out), str(src)],
        timeout=120,
        what="compiling compound-enter (gcc, libc6-dev)",
    )
    return out.read_bytes()


def modules_env(kernel: KernelArtifacts | None = None) -> str:
    """The /compound/modules file: which modules /init loads at each step;
    all empty for a kernel without modules (compound's own: everything the
    guest needs is built in, /init loads nothing)."""
    builtin = kernel is not None and not kernel.modules
    return "".join(
        f"{var}='{'' if builtin else ' '.join(mods)}'\n"
        for var, mods in (
            ("MODULES_CONFIG", MODULES_CONFIG),
            ("MODULES_BASE", MODULES_BASE),
            ("MODULES_9P", MODULES_9P),
            ("MODULES_VIRTIOFS", MODULES_VIRTIOFS),
            ("MODULES_PCI", MODULES_PCI),
        )
    )


def modules_dep(kernel: KernelArtifacts) -> str:
    """modules.dep for busybox modprobe: "a.ko: dep1.ko dep2.ko" with the
    full dependency list of each module, nearest first, as depmod writes."""
    files = {f.removesuffix(".ko").replace("-", "_"): f for f in kernel.modules}
    direct = {
        name: [
            d.replace("-", "_")
            for v in modinfo(kernel.modules_dir / f).get("depends", [])
            for d in v.split(",")
            if d
        ]
        for name, f in files.items()
    }

    def closure(name: str) -> list[str]:
        out: list[str] = []
        for d in direct[name]:
            for x in [d, *closure(d)]:
                if x not in out:
                    out.append(x)
        return out

    return "".join(
        f"{files[n]}: {' '.join(files[d] for d in closure(n))}".rstrip() + "\n" for n in files
    )


def busybox_applets(busybox: Path) -> list[str]:
    """The applets of a static x86-64 busybox, asked from the binary."""
    proc = run([str(busybox), "--list"], timeout=30, what="busybox --list")
    return sorted(a for a in proc.stdout.split() if a and "/" not in a)


def resolve_libraries(binary: Path, roots: list[Path]) -> dict[str, Path]:
    """soname -> file for the DT_NEEDED closure of ``binary``, searched in the
    unpacked packages ``roots`` (lib/x86_64-linux-gnu, usr/lib/... of each);
    the ELF interpreter is returned under its absolute path."""
    dirs = [r / d for r in roots for d in (LIB_DIR, f"usr/{LIB_DIR}", "lib64", "usr/lib64")]
    found: dict[str, Path] = {}
    missing: list[str] = []
    todo = [binary]
    first = read_deps(binary)
    if first.interpreter:
        interp = next(
            (
                r / first.interpreter.lstrip("/")
                for r in roots
                if (r / first.interpreter.lstrip("/")).exists()
            ),
            None,
        ) or next(
            (
                d / Path(first.interpreter).name
                for d in dirs
                if (d / Path(first.interpreter).name).exists()
            ),
            None,
        )
        if interp is None:
            missing.append(first.interpreter)
        else:
            found[first.interpreter] = interp
    while todo:
        deps = read_deps(todo.pop())
        for soname in deps.needed:
            if soname in found or soname in missing:
                continue
            hit = next((d / soname for d in dirs if (d / soname).exists()), None)
            if hit is None:
                missing.append(soname)
                continue
            found[soname] = hit
            todo.append(hit.resolve())
    if missing:
        raise VMError(f"{binary.name}: libraries not found in the unpacked packages: {missing}")
    return found


def _agent_tree(work: Path, cache: Path) -> tuple[Path, dict[str, Path], list[str]]:
    """Unpack qemu-guest-agent and, breadth first, the Depends of the
    packages we unpacked until every library it needs is found."""
    deb_dir = cache / "debs"
    agent = debs.download(AGENT_PACKAGE, deb_dir)
    roots = [debs.extract(agent, work / AGENT_PACKAGE)]
    used = [f"{agent.name}={agent.version}"]
    binary = roots[0] / "usr/sbin/qemu-ga"
    queue = debs.depends(AGENT_PACKAGE)
    seen = {AGENT_PACKAGE}
    for _round in range(4):
        try:
            return binary, resolve_libraries(binary, roots), used
        except VMError:
            pass
        nxt: list[str] = []
        for pkg in queue:
            if pkg in seen or pkg in ("init-system-helpers", "perl-base", "dpkg", "usrmerge"):
                continue
            seen.add(pkg)
            deb = debs.download(pkg, deb_dir)
            roots.append(debs.extract(deb, work / pkg))
            used.append(f"{deb.name}={deb.version}")
            nxt += debs.depends(pkg)
        queue = nxt
    return binary, resolve_libraries(binary, roots), used


def archive_key(kernel: KernelArtifacts, bb_version: str, qga_version: str, compress: bool) -> str:
    """The hash of every input of the archive."""
    return digest(
        {
            "builder": BUILDER_VERSION,
            "kernel": kernel.version,
            "modules": kernel.modules,
            "busybox": bb_version,
            "agent": qga_version,
            "init": init_script(),
            "modules_env": modules_env(kernel),
            "fstab": FSTAB,
            "exec": exec_script(),
            "enter": enter_source(),
            "compress": compress,
        }
    )


def archive_path(cache: Path, key: str, compress: bool) -> Path:
    return cache / f"initramfs-{key[:16]}.cpio{'.gz' if compress else ''}"


def ensure_initramfs(
    kernel: KernelArtifacts,
    cache_dir: Path | None = None,
    *,
    compress: bool = False,
    refresh: bool = False,
) -> Initramfs:
    """Build (once) and return the initramfs for ``kernel``. Package
    versions are remembered in the cache (no apt call on a warm path);
    ``refresh`` asks apt again (doctor), as does a missing archive."""
    vm_cache = cache_dir or default_cache_dir()
    cache = vm_cache / "initramfs"
    bb_version = debs.remembered_candidate(vm_cache, BUSYBOX_PACKAGE, refresh=refresh)
    qga_version = debs.remembered_candidate(vm_cache, AGENT_PACKAGE, refresh=refresh)
    if bb_version is None or qga_version is None:
        raise VMError(
            f"{BUSYBOX_PACKAGE} or {AGENT_PACKAGE} is not known to apt",
            hint="run apt-get update",
        )
    key = archive_key(kernel, bb_version, qga_version, compress)
    path = archive_path(cache, key, compress)
    if not refresh and not path.exists():
        return ensure_initramfs(kernel, cache_dir, compress=compress, refresh=True)
    with locked(cache / ".lock"):
        if not path.exists():
            _build(kernel, cache, path, bb_version, compress)
    return Initramfs(path=path, key=key, size=path.stat().st_size)


def _build(
    kernel: KernelArtifacts, cache: Path, path: Path, bb_version: str, compress: bool
) -> None:
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        bb_deb = debs.download(BUSYBOX_PACKAGE, cache / "debs", bb_version)
        bb_root = debs.extract(bb_deb, work / BUSYBOX_PACKAGE)
        busybox = next(
            (bb_root / p for p in ("bin/busybox", "usr/bin/busybox") if (bb_root / p).exists()),
            None,
        )
        if busybox is None:
            raise VMError(f"{bb_deb.path.name}: no busybox binary inside")
        qga, libs, used = _agent_tree(work, cache)

        buf = io.BytesIO()
        w = CpioWriter(buf)
        for d in (
            "bin",
            "sbin",
            "dev",
            "proc",
            "sys",
            "run",
            "tmp",
            "newroot",
            "run/qga",
            "compound",
            "lib/modules",
            LIB_DIR,
            "lib64",
            "var",
        ):
            w.dir(d)
        w.symlink("var/run", "../run")
        w.chardev("dev/console", 5, 1)
        w.chardev("dev/null", 1, 3, 0o666)
        w.file("bin/busybox", busybox.read_bytes(), 0o755)
        # The applet links, made here instead of `busybox --install` at boot.
        for applet in busybox_applets(busybox):
            if applet not in ("busybox", "init", "linuxrc"):
                w.symlink(f"bin/{applet}", "busybox")
        w.file("init", init_script().encode(), 0o755)
        w.file("etc/fstab", FSTAB.encode())
        w.file("sbin/compound-exec", exec_script().encode(), 0o755)
        w.file("sbin/compound-enter", build_enter(work), 0o755)
        w.file("compound/modules", modules_env(kernel).encode())
        packages = sorted([*used, f"{BUSYBOX_PACKAGE}={bb_version}"])
        manifest = {"kernel": kernel.version, "packages": packages}
        w.file("compound/manifest.json", json.dumps(manifest, indent=1).encode())
        if kernel.modules:  # compound's kernel has none: nothing to load
            moddir = f"lib/modules/{kernel.release}"
            for name in kernel.modules:
                w.file(f"{moddir}/{name}", (kernel.modules_dir / name).read_bytes())
            w.file(f"{moddir}/modules.dep", modules_dep(kernel).encode())
        w.file("sbin/qemu-ga", qga.read_bytes(), 0o755)
        for soname, src in sorted(libs.items()):
            data = src.resolve().read_bytes()
            if soname.startswith("/"):  # the dynamic loader, at its absolute path
                w.file(soname, data, 0o755)
            else:
                w.file(f"{LIB_DIR}/{soname}", data, 0o755)
        w.close()
        raw = buf.getvalue()
        # Uncompressed by default: gunzip in the guest costs more under TCG
        # than copying the bigger file (see NOTES.md).
        atomic_write(path, gzip.compress(raw, 6, mtime=0) if compress else raw)
        shutil.rmtree(work, ignore_errors=True)
