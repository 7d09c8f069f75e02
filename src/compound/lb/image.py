"""The load balancer image ``local/compound-lb:<recipe hash>``: HAProxy from
Debian 12's ``haproxy`` package, reduced to the binary and the libraries it
loads, built locally by :mod:`compound.runtimes.debimage` (no registry)."""

from __future__ import annotations

from pathlib import Path

from compound.engine import Client
from compound.errors import EngineError
from compound.runtimes import debimage, hostops

from .config import CONFIG_NAME, RUN_DIR

REPOSITORY = "local/compound-lb"
HAPROXY = "/usr/sbin/haproxy"


def image() -> debimage.DebImage:
    return debimage.DebImage(
        repository=REPOSITORY,
        packages=("haproxy",),
        what="load balancer image",
        error=EngineError,
        # essential (no apt) is enough to unpack haproxy; only its files stay
        variant="essential",
        # merged /usr by the hook, as Debian 12 has it, so no usrmerge (and perl) is pulled in
        options=("--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",),
        only=(HAPROXY,),
        # -db: foreground, no daemon; the config lives in the bind-mounted run dir
        changes=(f'ENTRYPOINT ["{HAPROXY}", "-db", "-f", "{RUN_DIR}/{CONFIG_NAME}"]',),
    )


def cache_dir() -> Path:
    return hostops.cache_root() / "lb"


def ensure_lb_image(client: Client) -> debimage.BuiltImage:
    return debimage.ensure_image(client, image(), cache_dir())
