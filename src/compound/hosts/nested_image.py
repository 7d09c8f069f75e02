"""The nested Docker host image ``local/dockerhost:<recipe hash>``: Debian 12's
docker.io and openssh-server, built locally from Debian packages (no registry).

A privileged container of this image is a whole Docker host on this machine:
its own address on its own network, its own dockerd (whose /var/lib/docker
is a volume, so overlay2 works on top of the outer overlay), and sshd, over
which the ``ssh`` driver adopts it exactly like a remote machine.
"""

from __future__ import annotations

from pathlib import Path

from compound.engine import Client
from compound.errors import CompoundError
from compound.runtimes import debimage, hostops

REPOSITORY = "local/dockerhost"
INIT = "/usr/local/sbin/dockerhost-init"

# PID 1 of a nested host: host keys, sshd, then dockerd in the foreground.
# On cgroup v2 the container's own processes move to a leaf first, else
# dockerd cannot enable controllers for its children (no internal processes).
_INIT_SCRIPT = r"""#!/bin/sh
set -eu
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers \
    > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
fi
mkdir -p /run/sshd /root/.ssh
chmod 700 /root/.ssh
ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || ssh-keygen -A >/dev/null
/usr/sbin/sshd -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid
exec dockerd --host unix:///var/run/docker.sock --storage-driver overlay2 "$@"
"""


def image() -> debimage.DebImage:
    return debimage.DebImage(
        repository=REPOSITORY,
        packages=(
            "docker.io",
            "openssh-server",
            "iptables",
            "iproute2",
            "procps",
            "ca-certificates",
            # systemd-detect-virt: the host's class is measured, not typed in
            "systemd",
            # docker-registry: the Swarm's own registry runs from this image
            "docker-registry",
        ),
        what="nested Docker host image",
        error=CompoundError,
        files=(debimage.ImageFile(INIT, _INIT_SCRIPT, 0o755),),
        changes=(f'ENTRYPOINT ["{INIT}"]', 'LABEL io.compound.dockerhost="1"'),
    )


def cache_dir() -> Path:
    return hostops.cache_root() / "swarm"


def ensure_dockerhost_image(client: Client) -> debimage.BuiltImage:
    return debimage.ensure_image(client, image(), cache_dir())
