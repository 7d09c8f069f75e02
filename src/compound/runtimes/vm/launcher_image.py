"""The launcher image ``local/compound-launcher:<recipe-hash>``: Debian
minbase + QEMU + our launcher script, built locally with mmdebstrap from
Debian packages (no registry) by :mod:`compound.runtimes.debimage`. The tag
is the hash of the recipe, so a changed recipe builds a new image and an
unchanged one is found by one inspect."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import docker

from compound.errors import VMError
from compound.runtimes import debimage
from compound.runtimes.debimage import LABEL_RECIPE, SUITE, mirrors

from ._util import default_cache_dir, digest

__all__ = ["LABEL_RECIPE", "LauncherImage", "ensure_launcher_image", "image", "mirrors", "recipe"]

REPOSITORY = "local/compound-launcher"
# qemu-system-x86 brings seabios (bios-microvm.bin), libslirp and the C
# virtiofsd (qemu-system-common); no Recommends (GUI, OVMF, block-extra).
# qemu-utils for qemu-img; iproute2 (ip, tc) to hand the launcher's
# interfaces to the guest; dnsmasq-base to forward the guest's DNS to
# Docker's 127.0.0.11, which only the launcher's namespace reaches.
# busybox for udhcpd (a legacy disk's guest takes its address by DHCP) and
# ovmf (UEFI firmware for legacy disks with an EFI system partition).
# socat: on a Swarm node compound reaches the guest agent's socket in the
# task through `docker exec -i <launcher> socat - UNIX-CONNECT:...`.
PACKAGES = (
    "qemu-system-x86",
    "qemu-utils",
    "iproute2",
    "dnsmasq-base",
    "busybox",
    "ovmf",
    "socat",
)
SCRIPT_PATH = "/usr/local/bin/compound-launcher"


@dataclass(frozen=True)
class LauncherImage:
    tag: str
    recipe: str
    id: str


def launcher_script() -> str:
    return resources.files(__package__).joinpath("launcher.sh").read_text()


def image() -> debimage.DebImage:
    return debimage.DebImage(
        repository=REPOSITORY,
        packages=PACKAGES,
        what="launcher image",
        error=VMError,
        files=(debimage.ImageFile(SCRIPT_PATH, launcher_script(), 0o755),),
        changes=(f'ENTRYPOINT ["{SCRIPT_PATH}"]', "ENV LANG=C.UTF-8"),
    )


def recipe() -> dict[str, object]:
    # The launcher's key predates DebImage.recipe(); kept so that images
    # already built stay valid.
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
    built = debimage.ensure_image(
        client, image(), cache_dir or default_cache_dir(), key=digest(recipe())
    )
    return LauncherImage(built.tag, built.recipe, built.id)
