"""The Swarm's own image registry: Debian's ``docker-registry`` as a service
of the Swarm, so images built here (VM containerDisks) reach any node
without an outside registry.

The service runs on the manager (its storage is a local volume there) and
publishes port 5000 in host mode (no routing mesh without IPVS), so its
address is the manager node's own. It speaks TLS with a certificate from a
CA compound generates (kept 0600 beside the host records); each node trusts
that CA through ``/etc/docker/certs.d/<address>:5000/ca.crt``. Why TLS and
not an insecure registry: Docker reads certs.d at every pull, so trusting
the registry is one file per node, with no daemon.json edit and no dockerd
restart on hosts compound merely adopted, and pulls are authenticated.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from compound.runtimes import debimage
from compound.runtimes.hostops import atomic_write

from . import records, ssh
from .errors import HostError, SwarmError
from .records import HostRecord

Progress = Callable[[str], None]
SERVICE = "compound-registry"
PORT = 5000
VOLUME = "compound-registry"
REGISTRY_BIN = "/usr/bin/docker-registry"
CONFIG_PATH = "/etc/compound-registry.yml"
SECRET_CERT, SECRET_KEY = "compound-registry.crt", "compound-registry.key"
_CONFIG = f"""version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :{PORT}
  tls:
    certificate: /run/secrets/{SECRET_CERT}
    key: /run/secrets/{SECRET_KEY}
"""
READY_TIMEOUT = 90.0
LABEL_CERT = "io.compound.registry.cert"  # which certificate the service serves


def image() -> debimage.DebImage:
    return debimage.DebImage(
        repository="local/compound-registry",
        packages=("docker-registry",),
        what="registry image",
        error=SwarmError,
        variant="essential",
        options=("--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",),
        only=(REGISTRY_BIN,),
        files=(debimage.ImageFile(CONFIG_PATH, _CONFIG),),
        changes=(f'ENTRYPOINT ["{REGISTRY_BIN}", "serve", "{CONFIG_PATH}"]',),
    )


def _dir() -> Path:
    d = records.hosts_dir() / "registry"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SwarmError(
            f"cannot make the registry's certificate: {proc.stderr.strip()[-300:]}",
            hint="compound needs the openssl command",
        )


def certificates(address: str) -> Path:
    """The CA and the registry's certificate for ``address`` (made once; the
    certificate again when the manager's address changes)."""
    d = _dir()
    ca_key, ca, key, cert = d / "ca.key", d / "ca.crt", d / "registry.key", d / "registry.crt"
    if not ca.exists():
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "3650",
            "-subj", "/CN=compound Swarm registry CA",
        )  # fmt: skip
        ca_key.chmod(0o600)
    stamp = d / "address"
    if not cert.exists() or not stamp.exists() or stamp.read_text() != address:
        csr = d / "registry.csr"
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={address}",
        )  # fmt: skip
        key.chmod(0o600)
        ext = d / "san.cnf"
        ext.write_text(f"subjectAltName=IP:{address}\n")
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "825", "-extfile", str(ext),
        )  # fmt: skip
        csr.unlink()
        atomic_write(stamp, address.encode(), 0o600)
    return d


def trust(members: list[HostRecord], address: str, ca: str) -> None:
    """Every node's engine trusts the registry's CA (certs.d, no restart)."""
    where = f"/etc/docker/certs.d/{address}:{PORT}"
    script = f"mkdir -p {where} && cat > {where}/ca.crt.tmp && mv {where}/ca.crt.tmp {where}/ca.crt"
    with ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
        list(pool.map(lambda r: ssh.run(r, script, timeout=60, input_text=ca), members))


def _answers(address: str, ca: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(f"https://{address}:{PORT}/v2/", timeout=3, context=ctx):
            return True
    except (urllib.error.URLError, OSError):
        return False


def ensure(
    manager: HostRecord,
    address: str,
    members: list[HostRecord],
    docker_cli: Callable[[HostRecord, list[str]], str],
    deliver: Callable[[set[str], list[HostRecord]], object],
    *,
    progress: Progress,
) -> str:
    """The registry's ``address:port``, the service created if it is not
    there yet and every node made to trust it."""
    d = certificates(address)
    trust(members, address, (d / "ca.crt").read_text())
    if _answers(address, d / "ca.crt"):
        return f"{address}:{PORT}"
    # the certificate the service must serve (a new one when the manager's
    # address changed): secrets are immutable, so they are named by it
    cert_id = hashlib.sha256((d / "registry.crt").read_bytes()).hexdigest()[:12]
    running = docker_cli(
        manager,
        ["service", "ls", "--filter", f"name={SERVICE}", "--format", "{{.ID}}"],
    ).split()
    if running:
        label = docker_cli(
            manager,
            [
                "service",
                "inspect",
                "--format",
                '{{index .Spec.Labels "' + LABEL_CERT + '"}}',
                SERVICE,
            ],
        ).strip()
        if label != cert_id:
            progress(
                f"{SERVICE}: the manager's address changed; restarting it with a new certificate"
            )
            docker_cli(manager, ["service", "rm", SERVICE])
            running = []
    if not running:
        progress(f"starting the Swarm's registry ({SERVICE}) on {manager.name}")
        from compound.engine import connect

        from .nested_image import cache_dir

        built = debimage.ensure_image(connect(), image(), cache_dir())
        deliver({built.tag}, [manager])
        secrets = docker_cli(manager, ["secret", "ls", "--format", "{{.Name}}"]).split()
        names = {SECRET_CERT: f"{SERVICE}-{cert_id}.crt", SECRET_KEY: f"{SERVICE}-{cert_id}.key"}
        for target, path in ((SECRET_CERT, d / "registry.crt"), (SECRET_KEY, d / "registry.key")):
            if names[target] not in secrets:
                docker_cli(manager, ["secret", "create", names[target], str(path)])
        docker_cli(
            manager,
            [
                "service", "create", "--detach", "--name", SERVICE,
                "--constraint", f"node.labels.compound.host == {manager.name}",
                "--publish", f"mode=host,target={PORT},published={PORT}",
                "--mount", f"type=volume,source={VOLUME},target=/var/lib/registry",
                "--secret", f"source={names[SECRET_CERT]},target={SECRET_CERT}",
                "--secret", f"source={names[SECRET_KEY]},target={SECRET_KEY},mode=0400",
                "--label", f"{LABEL_CERT}={cert_id}",
                built.tag,
            ],
        )  # fmt: skip
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(address, d / "ca.crt"):
            return f"{address}:{PORT}"
        time.sleep(0.5)
    raise HostError(
        manager.name,
        f"the Swarm's registry does not answer at https://{address}:{PORT}",
        hint=f"`docker --context {manager.context} service ps {SERVICE}` shows why",
    )


def push(
    manager: HostRecord, tag: str, registry: str, docker_cli: Callable[[HostRecord, list[str]], str]
) -> str:
    """Push ``tag`` (already on the manager) to the registry; its reference by digest."""
    repo = f"{registry}/{tag.partition('/')[2].partition(':')[0]}"
    remote = f"{repo}:{tag.partition(':')[2]}"
    docker_cli(manager, ["tag", tag, remote])
    out = docker_cli(manager, ["push", remote])
    m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
    if not m:
        raise HostError(manager.name, f"pushed {remote} but the registry named no digest")
    return f"{repo}@{m.group(1)}"
