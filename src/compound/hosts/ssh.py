"""SSH to recorded hosts: generated keys, one ssh_config for all of them, and
running commands there with failures sorted into what the user can fix.

Docker's own CLI and docker-py (``use_ssh_client``) reach an ``ssh://`` host
through the system ``ssh``, which reads only ``~/.ssh/config``: that file gets
one ``Include`` line for compound's ssh_config (added once, nothing else in it
is touched). A control master per host keeps every later call to one round
trip instead of a new handshake.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from compound.runtimes.hostops import atomic_write, locked

from . import records
from .errors import HostError
from .records import HostRecord

CONNECT_TIMEOUT = 8


def generate_key(record: HostRecord) -> Path:
    """A new ed25519 key for ``record`` (private half 0600); returns its path."""
    key = record.key_path
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for p in (key, key.with_suffix(".pub")):
        p.unlink(missing_ok=True)
    proc = subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"compound@{record.name}",
            "-f",
            str(key),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise HostError(record.name, f"ssh-keygen failed: {proc.stderr.strip()}")
    key.chmod(0o600)
    return key


def adopt_key(record: HostRecord, identity: Path) -> None:
    """Copy a key the user already has into the record (0600)."""
    try:
        data = identity.read_bytes()
    except OSError as exc:
        raise HostError(record.name, f"cannot read identity file {identity}: {exc}") from exc
    record.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(record.key_path, data, 0o600)


def public_key(record: HostRecord) -> str:
    return record.key_path.with_suffix(".pub").read_text().strip()


def _config_block(r: HostRecord) -> str:
    root = records.hosts_dir()
    return (
        f"Host {records.ssh_alias(r.name)}\n"
        f"  HostName {r.address}\n"
        f"  User {r.user}\n"
        f"  Port {r.port}\n"
        f"  IdentityFile {r.key_path}\n"
        "  IdentitiesOnly yes\n"
        "  BatchMode yes\n"
        f"  ConnectTimeout {CONNECT_TIMEOUT}\n"
        f"  UserKnownHostsFile {root / 'known_hosts'}\n"
        # hosts are recreated at the same address with new keys: learn, then pin
        "  StrictHostKeyChecking accept-new\n"
        "  ControlMaster auto\n"
        # per host record, not per address: a new record must prove its own key
        f"  ControlPath {root}/.cm-%n\n"
        "  ControlPersist 120\n"
        "  ServerAliveInterval 5\n"
        "  ServerAliveCountMax 3\n"
        "  LogLevel ERROR\n"
    )


def write_config(extra: HostRecord | None = None) -> Path:
    """Rewrite compound's ssh_config from the records (plus ``extra``, not yet
    saved) and make sure ~/.ssh/config includes it."""
    root = records.hosts_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)  # keys, known_hosts and control sockets live below
    path = root / "ssh_config"
    with locked(root / ".ssh_config.lock"):
        hosts = {r.name: r for r in records.load_all()}
        if extra is not None:
            hosts[extra.name] = extra
        text = "# written by compound (compound host ...); edits are lost\n" + "\n".join(
            _config_block(r) for r in hosts.values() if r.address is not None
        )
        atomic_write(path, text.encode(), 0o600)
    _include(path)
    return path


def _include(path: Path) -> None:
    user_ssh = Path(os.path.expanduser("~")) / ".ssh"
    user_ssh.mkdir(mode=0o700, exist_ok=True)
    cfg = user_ssh / "config"
    line = f"Include {path}"
    try:
        current = cfg.read_text()
    except FileNotFoundError:
        current = ""
    if line in current.splitlines():
        return
    # Include must come before any Host block to apply to every host
    atomic_write(cfg, f"{line}\n{current}".encode(), 0o600)


def forget_host_key(record: HostRecord) -> None:
    """A recreated host at a reused address has a new key: drop the old one."""
    if record.address is None:
        return
    known = records.hosts_dir() / "known_hosts"
    if known.exists():
        subprocess.run(
            ["ssh-keygen", "-R", record.address, "-f", str(known)],
            capture_output=True,
            check=False,
        )
    stop_master(record)


def stop_master(record: HostRecord) -> None:
    subprocess.run(
        ["ssh", "-O", "exit", records.ssh_alias(record.name)],
        capture_output=True,
        check=False,
        timeout=10,
    )


def run(
    record: HostRecord, script: str, *, timeout: float = 60, input_text: str | None = None
) -> str:
    """Run ``script`` with sh on the host; stdout, or a HostError that says
    whether the host is unreachable, refused the key, or the command failed."""
    if record.address is None:
        argv = ["sh", "-c", script]
    else:
        argv = ["ssh", records.ssh_alias(record.name), script]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, input=input_text
        )
    except subprocess.TimeoutExpired:
        raise HostError(
            record.name,
            f"no answer within {timeout:.0f}s",
            hint="is the host up and its SSH server running? `compound host ls` shows its state",
        ) from None
    if proc.returncode == 255 and record.address is not None:
        raise classify_ssh_failure(record, proc.stderr)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise HostError(record.name, f"command failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def classify_ssh_failure(record: HostRecord, stderr: str) -> HostError:
    err = stderr.strip()
    low = err.lower()
    where = f"{record.user}@{record.address}:{record.port}"
    if "permission denied" in low or "too many authentication failures" in low:
        return HostError(
            record.name,
            f"{where} refused compound's SSH key (wrong credentials)",
            hint=f"authorize {record.key_path}.pub in ~{record.user}/.ssh/authorized_keys "
            "there, or recreate the host with --identity pointing at a key it accepts",
        )
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return HostError(
            record.name,
            f"{where} presented a different host key than the one recorded",
            hint="if the machine was reinstalled, `compound host rm` it and create it again",
        )
    return HostError(
        record.name,
        f"cannot reach {where}: {err.splitlines()[-1] if err else 'ssh failed'}",
        hint="check the address and that the machine is up and its SSH server listens",
    )
