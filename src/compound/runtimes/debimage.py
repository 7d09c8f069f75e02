"""Local images made from Debian packages, without a registry.

mmdebstrap installs the packages into a root filesystem, which the Engine
imports (``docker import``, ``POST /images/create?fromSrc=-``). The tag is
``<repository>:<first 12 hex of the recipe digest>`` and the image carries
the full digest as a label, so a changed recipe builds a new image and an
unchanged one costs one inspect. Builds of the same image are serialised
by a file lock in the cache directory.

With ``only``, the image holds just those paths plus the shared libraries
they load (``ldd`` inside the built tree): a single-binary image such as
HAProxy's is a few MB instead of a Debian userland.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
import docker.errors

from compound.errors import CompoundError
from compound.runtimes.hostops import digest, locked, run

LABEL_RECIPE = "io.compound.recipe"
SUITE = "bookworm"
BUILD_TIMEOUT = 1200.0
MMDEBSTRAP_HINT = "needs mmdebstrap (apt-get install mmdebstrap) and a reachable Debian mirror"
# Where Debian keeps nothing a program needs at run time.
EXCLUDED_DOCS = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


def mirrors() -> list[str]:
    """One-line apt sources for builds; COMPOUND_DEBIAN_MIRROR and
    COMPOUND_DEBIAN_SECURITY_MIRROR override the defaults."""
    main = os.environ.get("COMPOUND_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    sec = os.environ.get("COMPOUND_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    return [
        f"deb {main} {SUITE} main",
        f"deb {main} {SUITE}-updates main",
        f"deb {sec} {SUITE}-security main",
    ]


@dataclass(frozen=True)
class ImageFile:
    """A file of ours put into the image."""

    path: str  # absolute path in the image
    content: str
    mode: int = 0o644


@dataclass(frozen=True)
class DebImage:
    """How to build one image from Debian packages."""

    repository: str  # e.g. local/compound-lb
    packages: tuple[str, ...]
    what: str  # for messages: "launcher image"
    error: type[CompoundError] = CompoundError
    variant: str = "minbase"
    options: tuple[str, ...] = ()  # extra mmdebstrap options (hook dirs, ...)
    files: tuple[ImageFile, ...] = ()
    changes: tuple[str, ...] = ()  # Dockerfile instructions applied at import
    only: tuple[str, ...] = ()  # keep just these paths and the libraries they load

    def recipe(self) -> dict[str, object]:
        """Everything that determines the result; its digest is the cache key."""
        return {
            "builder": 2,
            "suite": SUITE,
            "variant": self.variant,
            "packages": self.packages,
            "mirrors": mirrors(),
            "options": self.options,
            "files": [(f.path, f.mode, f.content) for f in self.files],
            "changes": self.changes,
            "only": self.only,
        }


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    recipe: str  # full digest of the recipe
    id: str


def ensure_image(
    client: docker.DockerClient, image: DebImage, cache_dir: Path, key: str | None = None
) -> BuiltImage:
    """The image for ``image``'s recipe, built now if it is not there yet.
    ``key`` overrides the recipe digest (for images whose key predates
    :meth:`DebImage.recipe`)."""
    key = key or digest(image.recipe())
    tag = f"{image.repository}:{key[:12]}"
    with locked(cache_dir / f".{image.repository.rpartition('/')[2]}.lock"):
        try:
            img = client.images.get(tag)
            if (img.labels or {}).get(LABEL_RECIPE) == key:
                return BuiltImage(tag, key, str(img.id))
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise image.error(f"cannot inspect {tag}: {exc}") from exc
        build(client, image, tag, key, cache_dir)
        img = client.images.get(tag)
        return BuiltImage(tag, key, str(img.id))


def build(
    client: docker.DockerClient, image: DebImage, tag: str, key: str, cache_dir: Path
) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = image.repository.rpartition("/")[2]
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=cache_dir) as tmp:
        work = Path(tmp)
        hooks = []
        for i, f in enumerate(image.files):
            # copy-in keeps the file name: stage each file under its own dir
            staged = work / "files" / str(i) / posixpath.basename(f.path)
            staged.parent.mkdir(parents=True)
            staged.write_text(f.content)
            staged.chmod(f.mode)
            hooks.append(f"--customize-hook=copy-in {staged} {posixpath.dirname(f.path)}")
        # a directory when we pick files from it, else mmdebstrap writes the tar
        target = work / ("rootfs" if image.only else "rootfs.tar")
        run(
            [
                "mmdebstrap",
                "--quiet",
                f"--variant={image.variant}",
                "--mode=root",
                "--include=" + ",".join(image.packages),
                "--aptopt=APT::Install-Recommends false",
                *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDED_DOCS),
                *image.options,
                *hooks,
                '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
                SUITE,
                str(target),
                *mirrors(),
            ],
            timeout=BUILD_TIMEOUT,
            what=f"mmdebstrap ({image.what})",
            hint=MMDEBSTRAP_HINT,
            error=image.error,
        )
        if image.only:
            tar = work / "rootfs.tar"
            keep = [*image.only, *(f.path for f in image.files)]
            write_minimal_tar(target, keep, tar, image)
            target = tar
        repository, _, version = tag.partition(":")
        try:
            # POST /images/create?fromSrc=- : `docker import` without the CLI.
            client.api.import_image_from_file(
                str(target),
                repository=repository,
                tag=version,
                changes=[*image.changes, f"LABEL {LABEL_RECIPE}={key}"],
            )
        except docker.errors.APIError as exc:
            raise image.error(f"importing the {image.what} failed: {exc}") from exc


def loaded_libraries(root: Path, program: str, image: DebImage) -> list[str]:
    """Absolute paths (inside ``root``) of the shared libraries ``program``
    loads, as the tree's own dynamic loader resolves them."""
    proc = run(
        ["chroot", str(root), "ldd", program],
        timeout=60,
        what=f"ldd {program} ({image.what})",
        error=image.error,
    )
    libs = []
    for line in proc.stdout.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        words = line.split()
        path = words[2] if len(words) > 2 and words[1] == "=>" else words[0] if words else ""
        if path.startswith("/"):
            libs.append(path)
    return libs


def write_minimal_tar(root: Path, keep: list[str], out: Path, image: DebImage) -> None:
    """A tar of ``keep`` and the libraries of its executables, symlinks on the
    way (/lib -> usr/lib under merged /usr) included as symlinks."""
    paths = list(keep)
    for p in keep:
        host = root / p.lstrip("/")
        if host.is_file() and os.access(host, os.X_OK):
            paths += loaded_libraries(root, p, image)
    added: set[str] = set()
    with tarfile.open(out, "w") as tar:
        for p in paths:
            _add_path(tar, root, PurePosixPath(p), added, image, depth=0)


def _add_path(
    tar: tarfile.TarFile,
    root: Path,
    path: PurePosixPath,
    added: set[str],
    image: DebImage,
    depth: int,
) -> None:
    if depth > 16:
        raise image.error(f"{image.what}: too many symlinks resolving {path}")
    parts = path.parts[1:]
    cur = PurePosixPath("/")
    for i, part in enumerate(parts):
        cur = cur / part
        host = root / str(cur).lstrip("/")
        if not host.exists() and not host.is_symlink():
            raise image.error(f"{image.what}: {cur} is not in the built tree")
        if str(cur) not in added:
            added.add(str(cur))
            tar.add(host, arcname="." + str(cur), recursive=False)
        if host.is_symlink():
            link = os.readlink(host)
            base = PurePosixPath(link) if link.startswith("/") else cur.parent / link
            rest = PurePosixPath(posixpath.normpath(str(base.joinpath(*parts[i + 1 :]))))
            _add_path(tar, root, rest, added, image, depth + 1)
            return
