"""compound's own guest kernel: Debian's ``linux-source-6.1`` at a pinned
version (fetched with ``apt-get download``, which verifies it; never
installed), configured as ``allnoconfig`` + ``guest-kernel.config`` (every
option commented there), built without modules into an uncompressed ELF
``vmlinux`` that QEMU boots through its PVH entry.

Cache (``<vm cache>/kernel``):

- ``compound-<version>-<key16>/``: the published entry (vmlinux, config,
  System.map, build.log, manifest.json), renamed into place complete or
  not at all;
- ``.build-<key16>/``: the work dir of a build (the .deb, the unpacked
  source, the object tree, ``build.log``). It survives a failed or
  interrupted build so that the next run resumes where ``make`` stopped,
  and is removed once the entry is published.

The key is a hash of (source package, version, fragment text, recipe
version, compiler version). Run ``python -m compound.runtimes.vm.guestkernel``
to build it ahead of time (``make guest-kernel``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from compound.errors import VMError

from . import debs
from ._util import atomic_write, default_cache_dir, digest, locked, staging_dir
from .kernel import KernelArtifacts

SOURCE_PACKAGE = "linux-source-6.1"
# The pinned source. When the mirror has moved on (point releases replace
# it), the build falls back to apt's candidate and says so.
PINNED_VERSION = "6.1.176-1"
# Bump when the build steps change in a way the key's other inputs don't show.
RECIPE_VERSION = 1
FRAGMENT_NAME = "guest-kernel.config"
ARCH = "x86_64"
# Objects (CC/AS lines of make, host tools included) of a full build with
# this fragment, for the percentage: 1,240 measured; a different count only
# makes the percentage approximate.
EXPECTED_OBJECTS = 1240
_HINT_DEPS = "install the build dependencies: apt-get install gcc make bc flex bison libelf-dev"

Progress = Callable[[str], None]


def _no_progress(_msg: str) -> None:
    pass


# -- the configuration ----------------------------------------------------------


def fragment_text() -> str:
    return resources.files(__package__).joinpath(FRAGMENT_NAME).read_text()


_NOT_SET = re.compile(r"#\s*(CONFIG_\w+) is not set\s*$")
_SETTING = re.compile(r"(CONFIG_\w+)=(.*)$")


def parse_config(text: str, *, source: str = "config") -> dict[str, str]:
    """``CONFIG_X`` -> value ("y", "n" for "is not set", a number or a
    quoted string) of a .config or fragment; other comments are skipped."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        m = _NOT_SET.match(line)
        if m:
            out[m.group(1)] = "n"
            continue
        if line.startswith("#"):
            continue
        m = _SETTING.match(line)
        if not m:
            raise VMError(f"{source}:{n}: not a kernel config line: {raw!r}")
        out[m.group(1)] = m.group(2)
    return out


def unmet_options(fragment: dict[str, str], config: dict[str, str]) -> list[str]:
    """Each fragment option the resolved config does not have, as
    "CONFIG_X=wanted (got: actual)"; an absent option counts as "n"."""
    return [
        f"{name}={want} (got: {config.get(name, 'n')})"
        for name, want in fragment.items()
        if config.get(name, "n") != want
    ]


# -- the cache key ------------------------------------------------------------------


def compiler_version() -> str:
    """``gcc --version``'s first line (a few ms), or "none" when gcc is
    missing; a build then fails with a hint."""
    try:
        proc = subprocess.run(
            ["gcc", "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "none"
    return proc.stdout.splitlines()[0].strip() if proc.returncode == 0 and proc.stdout else "none"


def cache_key(package: str, version: str, fragment: str, compiler: str) -> str:
    return digest(
        {
            "package": package,
            "version": version,
            "fragment": fragment,
            "recipe": RECIPE_VERSION,
            "compiler": compiler,
        }
    )


def upstream_version(debian_version: str) -> str:
    """ "6.1.176-1" -> "6.1.176"."""
    return debian_version.split(":")[-1].rsplit("-", 1)[0]


def entry_name(version: str, key: str) -> str:
    return f"compound-{upstream_version(version)}-{key[:16]}"


def kernel_label(version: str, key: str) -> str:
    """What ``ps`` shows: "6.1.176 compound-<hash8>"."""
    return f"{upstream_version(version)} compound-{key[:8]}"


# -- progress -------------------------------------------------------------------------

# kbuild's quiet output: "  CC      kernel/fork.o", "  AS      arch/...o".
_OBJECT_LINE = re.compile(r"^\s+(CC|AS)\s+\S+\.o\s*$")


def is_object_line(line: str) -> bool:
    return _OBJECT_LINE.match(line) is not None


def percent(done: int, expected: int) -> int:
    """Done objects as a percentage, never 100 before make has finished."""
    if expected <= 0:
        return 0
    return min(99, done * 100 // expected)


def count_objects(tree: Path) -> int:
    """Objects an interrupted build already made (they are not rebuilt)."""
    if not tree.is_dir():
        return 0
    return sum(1 for _ in tree.rglob("*.o"))


# -- the PVH note ---------------------------------------------------------------------

_PT_NOTE = 4
_XEN_ELFNOTE_PHYS32_ENTRY = 18


def has_pvh_note(path: Path) -> bool:
    """Whether the ELF ``path`` carries the Xen PHYS32_ENTRY note that QEMU
    needs to boot it through the PVH entry."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        (phoff,) = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        for i in range(phnum):
            p_type, _fl, p_offset, _va, _pa, p_filesz = struct.unpack_from(
                "<IIQQQQ", table, i * phentsize
            )
            if p_type != _PT_NOTE:
                continue
            f.seek(p_offset)
            notes = f.read(p_filesz)
            pos = 0
            while pos + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                name = notes[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
                if name == b"Xen" and ntype == _XEN_ELFNOTE_PHYS32_ENTRY:
                    return True
                pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    return False


# -- resolving the source -------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    note: str  # why not the pinned version, or ""


def resolve_source(cache_dir: Path, *, refresh: bool = False) -> Source:
    """The pinned source if apt still offers it, else apt's candidate (with
    a note). Remembered in the cache: the `up` path asks apt nothing."""

    def ask() -> str | None:
        if debs.has_version(SOURCE_PACKAGE, PINNED_VERSION):
            return PINNED_VERSION
        return debs.candidate_version(SOURCE_PACKAGE)

    version = debs.remembered(cache_dir, f"version:{SOURCE_PACKAGE}", ask, refresh=refresh)
    if version is None:
        raise VMError(
            f"Debian package {SOURCE_PACKAGE} is not known to apt "
            "(compound builds its guest kernel from it)",
            hint="run apt-get update (bookworm main), or use `x-compound: {vm: {kernel: debian}}`",
        )
    note = (
        ""
        if version == PINNED_VERSION
        else f"{SOURCE_PACKAGE} {PINNED_VERSION} is no longer offered by apt; built {version}"
    )
    return Source(SOURCE_PACKAGE, version, note)


# -- the build ------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    root: Path  # <vm cache>/kernel
    entry: Path
    work: Path

    @property
    def log(self) -> Path:
        return self.work / "build.log"


def paths_for(cache_dir: Path, version: str, key: str) -> Paths:
    root = cache_dir / "kernel"
    return Paths(root, root / entry_name(version, key), root / f".build-{key[:16]}")


def artifacts(entry: Path, version: str, key: str) -> KernelArtifacts:
    return KernelArtifacts(
        version=kernel_label(version, key),
        release=f"{upstream_version(version)}-compound",
        vmlinuz=entry / "vmlinux",
        vmlinux=entry / "vmlinux",
        modules_dir=entry,
        modules=(),
        config=entry / "config",
        flavour="compound",
    )


def ensure_guest_kernel(
    cache_dir: Path | None = None,
    progress: Progress = _no_progress,
    *,
    refresh: bool = False,
    jobs: int | None = None,
) -> KernelArtifacts:
    """compound's guest kernel, built now if it is not in the cache."""
    cache = cache_dir or default_cache_dir()
    fragment = fragment_text()
    compiler = compiler_version()
    source = resolve_source(cache, refresh=refresh)
    key = cache_key(source.package, source.version, fragment, compiler)
    p = paths_for(cache, source.version, key)
    if (p.entry / "manifest.json").exists():
        return artifacts(p.entry, source.version, key)
    if not refresh:  # a remembered version whose kernel is missing: ask apt again
        fresh = resolve_source(cache, refresh=True)
        if fresh != source:
            return ensure_guest_kernel(cache, progress, refresh=True, jobs=jobs)
    with locked(p.root / ".compound.lock"):
        if not (p.entry / "manifest.json").exists():
            if source.note:
                progress(f"note: {source.note}")
            build(p, source, fragment, compiler, key, progress, jobs=jobs)
    return artifacts(p.entry, source.version, key)


def _fail(p: Paths, what: str, hint: str | None = None) -> VMError:
    return VMError(
        f"building the guest kernel failed: {what}; build log: {p.log}",
        hint=hint
        or "fix the cause and run again: the build resumes where it stopped "
        "(or use `x-compound: {vm: {kernel: debian}}`)",
    )


def _log_tail(p: Paths, lines: int = 8) -> str:
    try:
        text = p.log.read_text(errors="replace").splitlines()
        tail = [t for t in text if t.strip() and not t.startswith("$ ")][-lines:]
    except OSError:
        return ""
    return " | ".join(t.strip() for t in tail)


def _step(p: Paths, argv: list[str], what: str, *, cwd: Path, timeout: float = 600) -> None:
    """One command of the build, its output appended to the log."""
    with p.log.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            rc = subprocess.run(
                argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            ).returncode
        except FileNotFoundError as exc:
            raise _fail(p, f"{what}: {argv[0]} is not installed", _HINT_DEPS) from exc
        except subprocess.TimeoutExpired as exc:
            raise _fail(p, f"{what} timed out after {timeout:.0f}s") from exc
    if rc != 0:
        raise _fail(p, f"{what} exited with {rc}: {_log_tail(p)}")


def _unpack(p: Paths, source: Source, progress: Progress) -> Path:
    """The unpacked source tree in the work dir (kept across runs)."""
    src = p.work / "src"
    if (src / ".compound-unpacked").exists():
        return src
    progress(f"downloading {source.package} {source.version} (apt-get download)")
    try:
        deb = debs.download(source.package, p.work / "deb", source.version)
    except VMError as exc:
        raise _fail(p, f"apt-get download {source.package}={source.version}: {exc}") from exc
    progress(f"unpacking {deb.path.name}")
    tmp = p.work / "src.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tarball = f"./usr/src/{source.package}.tar.xz"
    # dpkg-deb gives the data tar; the kernel tarball inside is unpacked
    # straight from the pipe (no 140 MB temporary file).
    script = 'dpkg-deb --fsys-tarfile "$1" | tar -xO "$2" | tar -xJ --strip-components=1 -C "$3"'
    _step(
        p,
        ["bash", "-c", f"set -o pipefail; {script}", "unpack", str(deb.path), tarball, str(tmp)],
        f"unpacking {deb.path.name}",
        cwd=p.work,
        timeout=1800,
    )
    if not (tmp / "Makefile").exists():
        raise _fail(p, f"{deb.path.name}: no kernel tree inside {tarball}")
    (tmp / ".compound-unpacked").write_text(f"{source.package} {source.version}\n")
    if src.exists():
        shutil.rmtree(src)
    tmp.rename(src)
    shutil.rmtree(p.work / "deb", ignore_errors=True)  # 140 MB, no longer needed
    return src


def _make(src: Path, out: Path, *args: str) -> list[str]:
    return ["make", "-C", str(src), f"O={out}", f"ARCH={ARCH}", *args]


def configure(p: Paths, src: Path, fragment: str, progress: Progress) -> None:
    """allnoconfig with the fragment's values, olddefconfig, then check that
    every option of the fragment kept the value asked for."""
    progress("configuring the guest kernel (allnoconfig + guest-kernel.config)")
    out = p.work / "out"
    out.mkdir(exist_ok=True)
    frag = p.work / FRAGMENT_NAME
    atomic_write(frag, fragment.encode())
    _step(
        p,
        _make(src, out, f"KCONFIG_ALLCONFIG={frag}", "allnoconfig"),
        "make allnoconfig",
        cwd=p.work,
    )
    _step(p, _make(src, out, "olddefconfig"), "make olddefconfig", cwd=p.work)
    wanted = parse_config(fragment, source=FRAGMENT_NAME)
    unmet = unmet_options(wanted, parse_config((out / ".config").read_text()))
    if unmet:
        raise VMError(
            "the guest kernel configuration does not take these options of "
            f"{FRAGMENT_NAME} (a dependency is missing or the name is wrong): " + ", ".join(unmet),
            hint=f"fix {FRAGMENT_NAME}; the resolved config is {out / '.config'}",
        )


def compile_vmlinux(
    p: Paths,
    src: Path,
    progress: Progress,
    jobs: int,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """``make vmlinux``, its output to the log, the count of compiled objects
    to ``progress`` (at most every 2 s). Ctrl-C stops make's whole process
    group; the object tree stays for the next run."""
    out = p.work / "out"
    already = count_objects(out)
    argv = _make(src, out, f"-j{jobs}", "vmlinux")
    with p.log.open("ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=p.work,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C: we stop make's group ourselves
            )
        except FileNotFoundError as exc:
            raise _fail(p, "make is not installed", _HINT_DEPS) from exc
        try:
            follow_build(proc.stdout or iter(()), log, progress, already, p.log, clock=clock)
            rc = proc.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
    if rc != 0:
        raise _fail(p, f"make vmlinux exited with {rc}: {_log_tail(p)}")


def follow_build(
    lines: Iterable[bytes],
    log: IO[bytes],
    progress: Progress,
    already: int,
    log_path: Path,
    *,
    clock: Callable[[], float] = time.monotonic,
    every: float = 2.0,
) -> int:
    """Copy make's output to ``log`` and report the count of compiled
    objects (``already`` made by an earlier run); the final count."""
    done = already
    last = -every
    for raw in lines:
        log.write(raw)
        if is_object_line(raw.decode(errors="replace")):
            done += 1
            now = clock()
            if now - last >= every:
                last = now
                progress(
                    f"compiling the guest kernel: {done}/~{EXPECTED_OBJECTS} objects "
                    f"({percent(done, EXPECTED_OBJECTS)}%), log: {log_path}"
                )
    return done


def build(
    p: Paths,
    source: Source,
    fragment: str,
    compiler: str,
    key: str,
    progress: Progress,
    *,
    jobs: int | None = None,
) -> None:
    """Unpack, configure, compile, check and publish one kernel."""
    p.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress(f"building the guest kernel {kernel_label(source.version, key)}; log: {p.log}")
    if compiler == "none":
        raise _fail(p, "gcc is not installed", _HINT_DEPS)
    src = _unpack(p, source, progress)
    configure(p, src, fragment, progress)
    compile_vmlinux(p, src, progress, jobs or os.cpu_count() or 1)
    out = p.work / "out"
    vmlinux = out / "vmlinux"
    if not vmlinux.exists():
        raise _fail(p, f"make vmlinux produced no {vmlinux}")
    if not has_pvh_note(vmlinux):
        raise _fail(p, f"{vmlinux} has no PVH entry note (CONFIG_PVH); QEMU could not boot it")
    release = (out / "include/config/kernel.release").read_text().strip()
    with staging_dir(p.entry) as tmp:
        shutil.copyfile(vmlinux, tmp / "vmlinux")
        shutil.copyfile(out / ".config", tmp / "config")
        # No kallsyms in the kernel: System.map turns the addresses of an
        # oops or of initcall_debug into names.
        shutil.copyfile(out / "System.map", tmp / "System.map")
        shutil.copyfile(p.log, tmp / "build.log")
        manifest = {
            "package": source.package,
            "version": source.version,
            "release": release,
            "key": key,
            "compiler": compiler,
            "recipe": RECIPE_VERSION,
            "note": source.note,
            "build_seconds": round(time.monotonic() - started, 1),
        }
        atomic_write(tmp / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
    shutil.rmtree(p.work, ignore_errors=True)
    size = (p.entry / "vmlinux").stat().st_size
    progress(f"guest kernel ready: {p.entry / 'vmlinux'} ({size / 2**20:.1f} MiB)")


# -- what is in the cache (doctor) --------------------------------------------------------


@dataclass(frozen=True)
class CachedKernel:
    path: Path
    built: bool  # a published entry (else an unfinished build's work dir)
    version: str
    size: int


def cached_kernels(cache_dir: Path | None = None) -> list[CachedKernel]:
    """Published compound kernels and unfinished builds in the cache."""
    root = (cache_dir or default_cache_dir()) / "kernel"
    found: list[CachedKernel] = []
    if not root.is_dir():
        return found
    for d in sorted(root.glob("compound-*")):
        try:
            meta = json.loads((d / "manifest.json").read_text())
            size = (d / "vmlinux").stat().st_size
        except (OSError, ValueError):
            continue
        found.append(CachedKernel(d, True, kernel_label(meta["version"], meta["key"]), size))
    for d in sorted(root.glob(".build-*")):
        marker = d / "src" / ".compound-unpacked"
        version = marker.read_text().strip() if marker.exists() else "?"
        found.append(CachedKernel(d, False, version, 0))
    return found


def main(argv: list[str] | None = None) -> int:
    """Build (or find) the guest kernel, progress on the terminal."""
    del argv
    tty = sys.stderr.isatty()

    def show(msg: str) -> None:
        if tty and msg.startswith("compiling"):
            sys.stderr.write("\r\033[K" + msg)
        else:
            sys.stderr.write(("\r\033[K" if tty else "") + msg + "\n")
        sys.stderr.flush()

    started = time.monotonic()
    try:
        k = ensure_guest_kernel(progress=show)
    except VMError as exc:
        sys.stderr.write(f"\nerror: {exc}\n")
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted; the next run resumes the build\n")
        return 130
    print(f"guest kernel {k.version}: {k.vmlinux} ({time.monotonic() - started:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
