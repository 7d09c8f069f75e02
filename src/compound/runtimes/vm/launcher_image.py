"""The launcher image ``local/compound-launcher:<recipe-hash>``: Debian
minbase + QEMU + our launcher script, built locally with mmdebstrap from
Debian packages (no registry), imported through the Engine API (``docker import``). The tag is
the hash of the recipe, so a changed recipe builds a new image and an
unchanged one is found by one inspect."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import docker
import docker.errors

from compound.errors import VMError

from ._util import default_cache_dir, digest, locked, run

REPOSITORY = "local/compound-launcher"
LABEL_RECIPE = "io.compound.recipe"
SUITE = "bookworm"
# qemu-system-x86 brings seabios (bios-microvm.bin) and libslirp; no
# Recommends (GUI, OVMF, block-extra). qemu-utils for qemu-img.
PACKAGES = ("qemu-system-x86", "qemu-utils")
BUILD_TIMEOUT = 1200.0


@dataclass(frozen=True)
class LauncherImage:
    tag: str
    recipe: str
    id: str


def launcher_script() -> str:
    return resources.files(__package__).joinpath("launcher.sh").read_text()


def mirrors() -> list[str]:
    """One-line apt sources for the build; COMPOUND_DEBIAN_MIRROR and
    COMPOUND_DEBIAN_SECURITY_MIRROR override the defaults."""
    main = os.environ.get("COMPOUND_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    sec = os.environ.get("COMPOUND_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    return [
        f"deb {main} {SUITE} main",
        f"deb {main} {SUITE}-updates main",
        f"deb {sec} {SUITE}-security main",
    ]


def recipe() -> dict[str, object]:
    return {
        "builder": 1,
        "suite": SUITE,
        "packages": PACKAGES,
        "mirrors": mirrors(),
        "script": launcher_script(),
    }


def ensure_launcher_image(
    client: docker.DockerClient, cache_dir: Path | None = None
) -> LauncherImage:
    key = digest(recipe())
    tag = f"{REPOSITORY}:{key[:12]}"
    cache = cache_dir or default_cache_dir()
    with locked(cache / ".launcher.lock"):
        try:
            img = client.images.get(tag)
            if (img.labels or {}).get(LABEL_RECIPE) == key:
                return LauncherImage(tag, key, str(img.id))
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise VMError(f"cannot inspect {tag}: {exc}") from exc
        build(client, tag, key, cache)
        img = client.images.get(tag)
        return LauncherImage(tag, key, str(img.id))


def build(client: docker.DockerClient, tag: str, key: str, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".launcher-", dir=cache) as tmp:
        script = Path(tmp) / "compound-launcher"
        script.write_text(launcher_script())
        script.chmod(0o755)
        out = Path(tmp) / "rootfs.tar"
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                "--mode=root",
                "--include=" + ",".join(PACKAGES),
                "--aptopt=APT::Install-Recommends false",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                "--dpkgopt=path-exclude=/usr/share/info/*",
                f"--customize-hook=copy-in {script} /usr/local/bin",
                '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
                SUITE,
                str(out),
                *mirrors(),
            ],
            timeout=BUILD_TIMEOUT,
            what="mmdebstrap (launcher image)",
            hint="needs mmdebstrap (apt-get install mmdebstrap) and a reachable Debian mirror",
        )
        repository, _, version = tag.partition(":")
        changes = [
            'ENTRYPOINT ["/usr/local/bin/compound-launcher"]',
            f"LABEL {LABEL_RECIPE}={key}",
            "ENV LANG=C.UTF-8",
        ]
        try:
            # POST /images/create?fromSrc=- : `docker import` without the CLI.
            client.api.import_image_from_file(
                str(out), repository=repository, tag=version, changes=changes
            )
        except docker.errors.APIError as exc:
            raise VMError(f"importing the launcher image failed: {exc}") from exc
