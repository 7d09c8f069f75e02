"""The cloud-init NoCloud seed of a disk service whose guest has cloud-init.

The seed is a FAT volume labelled ``cidata`` holding ``meta-data``
(instance id, hostname), ``user-data`` (hostname, the project's SSH key) and
``network-config``. compound writes the first two into the instance's run
dir at create; the launcher writes ``network-config`` at start, once it
knows the guest's MAC and address, and QEMU presents the directory as the
volume (its ``vvfat`` driver, read-only). Chosen over building an image
file (mkfs.vfat + mtools, genisoimage, or a Python ISO9660 writer): the
address is only known inside the launcher, where none of those tools is
(NOTES.md, "Legacy disks": vvfat makes the 31 MiB volume in 0.07 s, with no
new package in the launcher image).

Network: the NIC, matched by the MAC the launcher gives it, is configured
by DHCP, which the launcher answers with the service's address, gateway and
DNS. Not a static config: the DNS forwarder (169.254.53.1) is off the
guest's subnet and needs an on-link route, which DHCP option 121 carries
and cloud-init's renderers (ifupdown, netplan, networkd) do not express the
same way.

SSH key: one ed25519 key per project, generated on first use with
``ssh-keygen`` under ``$COMPOUND_STATE_DIR`` (else
``$XDG_STATE_HOME/compound``) ``/ssh/<project>_ed25519``, mode 0600 in a
0700 directory; cloud-init installs its public half for the guest's default
user (``debian`` on Debian's cloud-init).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from compound.dirs import state_dir
from compound.errors import VMError

SEED_DIR = "seed"  # in the instance's run dir
LABEL = "cidata"


def project_key(project: str) -> tuple[Path, str]:
    """(private key path, public key line) of the project's SSH key, made
    on first use: written under temporary names and renamed, so a failed
    run leaves no half key."""
    d = state_dir() / "ssh"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    key = d / f"{project}_ed25519"
    pub = key.with_name(key.name + ".pub")
    if not (key.is_file() and pub.is_file()):
        with tempfile.TemporaryDirectory(dir=d, prefix=".keygen-") as tmp:
            tmp_key = Path(tmp) / "key"
            try:
                argv = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"compound-{project}"]
                res = subprocess.run(
                    [*argv, "-f", str(tmp_key)],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
            except FileNotFoundError:
                raise VMError(
                    "ssh-keygen not found: compound makes the project's SSH key for cloud-init"
                    " with it",
                    hint="install openssh-client",
                ) from None
            if res.returncode != 0:
                raise VMError(f"ssh-keygen failed: {res.stderr.strip()[-300:]}")
            os.chmod(tmp_key, 0o600)
            os.replace(tmp_key.with_name("key.pub"), pub)
            os.replace(tmp_key, key)
    return key, pub.read_text().strip()


def meta_data(instance_id: str, hostname: str) -> str:
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def user_data(hostname: str, public_key: str) -> str:
    # JSON strings are YAML strings: no quoting surprises in a key comment
    return (
        "#cloud-config\n"
        f"hostname: {json.dumps(hostname)}\n"
        "manage_etc_hosts: true\n"
        f"ssh_authorized_keys:\n  - {json.dumps(public_key)}\n"
    )


def network_config(match: str = "@MATCH@", address: str = "@ADDRESS@") -> str:
    """The NIC matched by ``match`` configured by DHCP. compound writes it
    with the placeholders as ``network-config.in``; the launcher fills them
    in (launcher.sh, legacy_seed): ``macaddress: "<the guest's MAC>"`` (or
    ``name: "e*"`` on QEMU's user network) and the address it will serve."""
    return (
        f"# compound: the launcher's DHCP gives this NIC {address}\n"
        "version: 2\n"
        "ethernets:\n"
        "  nic0:\n"
        f"    match: {{{match}}}\n"
        "    dhcp4: true\n"
    )


def seed_files(project: str, instance_id: str, hostname: str) -> dict[str, str]:
    """meta-data, user-data and network-config.in (the launcher turns the
    last into network-config), by name."""
    _, public = project_key(project)
    return {
        "meta-data": meta_data(instance_id, hostname),
        "user-data": user_data(hostname, public),
        "network-config.in": network_config(),
    }


def write_seed(run_dir: Path, project: str, instance_id: str, hostname: str) -> Path:
    """The seed's files in ``run_dir/seed``; the seed directory."""
    seed = run_dir / SEED_DIR
    seed.mkdir(mode=0o700, exist_ok=True)
    for name, text in seed_files(project, instance_id, hostname).items():
        (seed / name).write_text(text)
    (seed / "network-config").unlink(missing_ok=True)
    return seed
