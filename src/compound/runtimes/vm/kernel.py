"""The guest kernel: Debian's ``linux-image`` package, downloaded (never
installed) into compound's cache and cut down to the vmlinuz plus the few
modules the guest needs, in load order.

Flavour: the ``cloud-amd64`` kernel is smaller but is built without 9p
(``# CONFIG_NET_9P is not set``), and volumes reach the guest over
virtio-9p, so compound uses the generic ``amd64`` flavour. Everything the
guest needs except the 8250 serial console, devtmpfs and PVH boot is a
module there (see NOTES.md for the table).
"""

from __future__ import annotations

import json
import lzma
import os
from dataclasses import dataclass
from pathlib import Path

from compound.errors import VMError

from . import debs
from ._util import atomic_write, default_cache_dir, locked, run, staging_dir
from .elf import modinfo

# The pinned kernel. When the mirror has moved on (security updates replace
# the ABI package), fall back to what the metapackage points at and record
# that version in the cache entry.
PINNED_PACKAGE = "linux-image-6.1.0-56-amd64"
METAPACKAGE = "linux-image-amd64"

# What the guest loads, in an order that satisfies the "depends=" of each
# module (dependencies are added and sorted in front automatically).
# crc32c_generic is listed because ext4/jbd2 ask for it by crypto alias
# ("softdep pre: crc32c"), which only modprobe with an alias table resolves.
GUEST_MODULES: tuple[str, ...] = (
    "virtio_mmio",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "qemu_fw_cfg",
    "crc32c_generic",
    "ext4",
    "9pnet_virtio",
    "9p",
    "virtiofs",  # volumes over virtio-fs (depends on fuse)
    "overlay",
)


@dataclass(frozen=True)
class KernelArtifacts:
    version: str  # e.g. "6.1.0-56-amd64 (6.1.192-2)"
    release: str  # uname -r, e.g. "6.1.0-56-amd64"
    vmlinuz: Path  # bzImage
    vmlinux: Path  # the same kernel decompressed (ELF with a PVH entry)
    modules_dir: Path  # flat dir of .ko files
    modules: tuple[str, ...]  # file names in modules_dir, in load order
    config: Path
    flavour: str = "debian"  # or "compound" (guestkernel.py: no modules)


# Bump when what an entry holds changes (the entry name carries it).
LAYOUT = 5  # 5: + virtiofs/fuse
_SIG_MAGIC = b"~Module signature appended~\n"


def strip_module_signature(data: bytes) -> bytes:
    """A module without its appended signature. The kernel does not enforce
    signatures (MODULE_SIG_FORCE is off) and checking one means hashing the
    whole module and an RSA verify, in emulated code under TCG: 0.5 s of
    the boot for our 14 modules. The cost is a taint flag in the guest."""
    if not data.endswith(_SIG_MAGIC):
        return data
    # struct module_signature: 12 bytes before the magic, sig_len big-endian last.
    info = data[-len(_SIG_MAGIC) - 12 : -len(_SIG_MAGIC)]
    sig_len = int.from_bytes(info[8:12], "big")
    return data[: -len(_SIG_MAGIC) - 12 - sig_len]


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _ask_package() -> str | None:
    if debs.candidate_version(PINNED_PACKAGE) is not None:
        return PINNED_PACKAGE
    deps = [d for d in debs.depends(METAPACKAGE) if d.startswith("linux-image-")]
    return deps[0] if deps else None


def _resolve_package(package: str | None, cache: Path, refresh: bool) -> str:
    if package:
        return package
    env = os.environ.get("COMPOUND_VM_KERNEL_PACKAGE")
    if env:
        return env
    found = debs.remembered(cache, "debian-kernel-package", _ask_package, refresh=refresh)
    if found is None:
        raise VMError(
            f"neither {PINNED_PACKAGE} nor {METAPACKAGE} is available from apt",
            hint="run apt-get update, or set COMPOUND_VM_KERNEL_PACKAGE to an available "
            "linux-image-*-amd64 package",
        )
    return found


def module_load_order(
    available: dict[str, Path], wanted: tuple[str, ...], info: dict[str, list[str]] | None = None
) -> list[str]:
    """Module names (normalised) in dependency order: every module after the
    modules listed in its ``depends=``. ``available`` maps names to .ko paths."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        name = _norm(name)
        if name in order:
            return
        if name in visiting:
            raise VMError(f"kernel module dependency cycle at {name}")
        if name not in available:
            raise VMError(f"kernel module {name} is not in the kernel package")
        visiting.add(name)
        deps = (info or {}).get(name) if info is not None else None
        if deps is None:
            deps = [d for v in modinfo(available[name]).get("depends", []) for d in v.split(",")]
        for dep in deps:
            if dep:
                visit(dep)
        visiting.discard(name)
        order.append(name)

    for w in wanted:
        visit(w)
    return order


def _decompress_bzimage(vmlinuz: Path) -> bytes:
    """The ELF vmlinux inside an xz-compressed bzImage (like the kernel's
    scripts/extract-vmlinux); booting it through PVH skips the in-guest
    decompressor, which is slow under TCG."""
    data = vmlinuz.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    while start != -1:
        try:
            out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
        except lzma.LZMAError:
            out = b""
        if out[:4] == b"\x7fELF":
            return out
        start = data.find(b"\xfd7zXZ\x00", start + 1)
    raise VMError(f"{vmlinuz}: no xz-compressed ELF kernel inside")


def ensure_kernel(
    cache_dir: Path | None = None, package: str | None = None, *, refresh: bool = False
) -> KernelArtifacts:
    """Download and unpack Debian's kernel once; return its artifacts. The
    package and version apt offers are remembered in the cache (no apt call
    on a warm path); ``refresh`` asks apt again (doctor), as does a
    remembered version whose entry is missing."""
    vm_cache = cache_dir or default_cache_dir()
    cache = vm_cache / "kernel"
    pkg = _resolve_package(package, vm_cache, refresh)
    version = debs.remembered_candidate(vm_cache, pkg, refresh=refresh)
    if version is None:
        raise VMError(f"kernel package {pkg!r} is not known to apt", hint="run apt-get update")
    entry = cache / f"{pkg}_{version}.v{LAYOUT}"
    if not refresh and not (entry / "manifest.json").exists():
        return ensure_kernel(cache_dir, package, refresh=True)
    with locked(cache / ".lock"):
        manifest = entry / "manifest.json"
        if not manifest.exists():
            deb = debs.download(pkg, cache / "debs", version)
            with staging_dir(entry) as tmp:
                root = debs.extract(deb, tmp / "root")
                boot = root / "boot"
                vmlinuz = next(boot.glob("vmlinuz-*"), None)
                config = next(boot.glob("config-*"), None)
                if vmlinuz is None or config is None:
                    raise VMError(f"{deb.path.name}: no /boot/vmlinuz-* or config-* inside")
                release = vmlinuz.name.removeprefix("vmlinuz-")
                mod_root = next(
                    (
                        root / p
                        for p in ("lib", "usr/lib")
                        if (root / p / "modules" / release).is_dir()
                    ),
                    None,
                )
                if mod_root is None:
                    raise VMError(f"{deb.path.name}: no modules for {release}")
                available = {
                    _norm(p.name.removesuffix(".ko")): p
                    for p in (mod_root / "modules" / release).rglob("*.ko")
                }
                order = module_load_order(available, GUEST_MODULES)
                (tmp / "modules").mkdir()
                files = []
                for name in order:
                    src = available[name]
                    atomic_write(
                        tmp / "modules" / src.name, strip_module_signature(src.read_bytes())
                    )
                    files.append(src.name)
                os.replace(vmlinuz, tmp / "vmlinuz")
                os.replace(config, tmp / "config")
                atomic_write(tmp / "vmlinux", _decompress_bzimage(tmp / "vmlinuz"))
                run(["rm", "-rf", str(root)], timeout=120)
                atomic_write(
                    tmp / "manifest.json",
                    json.dumps(
                        {"package": pkg, "version": version, "release": release, "modules": files},
                        indent=1,
                    ).encode(),
                )
        meta = json.loads(manifest.read_text())
    return KernelArtifacts(
        version=f"{meta['release']} ({meta['version']})",
        release=meta["release"],
        vmlinuz=entry / "vmlinuz",
        vmlinux=entry / "vmlinux",
        modules_dir=entry / "modules",
        modules=tuple(meta["modules"]),
        config=entry / "config",
    )
