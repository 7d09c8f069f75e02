"""The launcher's seccomp profile: Docker's own default profile plus one
rule, ``unshare(CLONE_FS)``, which QEMU 7.2's virtiofsd calls in every
thread (a private cwd and umask per thread) and exits without.

Docker's default profile allows ``unshare`` only to a process holding
CAP_SYS_ADMIN, whatever the flags; ``unshare(CLONE_FS)`` itself needs no
privilege in the kernel (it only stops sharing the caller's cwd, root and
umask with its other threads), so allowing exactly that flag value widens
nothing a process could reach. The launcher keeps every other rule of the
default profile: this is not ``seccomp=unconfined``.

Docker 20.10 has no way to extend its built-in profile, so the base is the
same profile as Debian packages it: ``profiles/seccomp/default.json`` from
``golang-github-docker-docker-dev`` (the source package of ``docker.io``),
fetched with ``apt-get download`` like the guest's packages, never
committed here. The result is cached per package version.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from compound.errors import VMError

from . import debs
from ._util import atomic_write, default_cache_dir, locked

PACKAGE = "golang-github-docker-docker-dev"
PROFILE_IN_PACKAGE = "usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"
CLONE_FS = 0x200
RULE = {
    "names": ["unshare"],
    "action": "SCMP_ACT_ALLOW",
    "args": [{"index": 0, "value": CLONE_FS, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
    "comment": "compound: virtiofsd's per-thread unshare(CLONE_FS), which needs no privilege",
    "includes": {},
    "excludes": {},
}
# Bump when what is derived from the base changes.
RECIPE = 1


def with_clone_fs(profile: dict[str, Any]) -> dict[str, Any]:
    """``profile`` plus the one rule (idempotent); refuses a profile whose
    shape is not the one Docker reads, rather than weakening it by accident."""
    if profile.get("defaultAction") not in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL") or not isinstance(
        profile.get("syscalls"), list
    ):
        raise VMError(
            "Docker's default seccomp profile from "
            f"{PACKAGE} does not look like one (no deny-by-default action or no syscall list)",
            hint="report this; the launcher cannot be confined without it",
        )
    rules = [r for r in profile["syscalls"] if r != RULE]
    return {**profile, "syscalls": [*rules, RULE]}


def launcher_profile(cache_dir: Path | None = None) -> str:
    """The profile as the JSON text Docker's ``SecurityOpt: seccomp=...`` takes."""
    cache = cache_dir or default_cache_dir()
    version = debs.remembered_candidate(cache, PACKAGE)
    if version is None:
        raise VMError(
            f"the Debian package {PACKAGE} (Docker's default seccomp profile) is not known to apt",
            hint="run apt-get update",
        )
    out = cache / "seccomp" / f"launcher-{version.replace(':', '_')}.v{RECIPE}.json"
    with locked(cache / "seccomp" / ".lock"):
        if not out.exists():
            deb = debs.download(PACKAGE, cache / "debs", version)
            with tempfile.TemporaryDirectory(dir=cache) as tmp:
                root = debs.extract(deb, Path(tmp) / "root")
                try:
                    base = json.loads((root / PROFILE_IN_PACKAGE).read_text())
                except (OSError, ValueError) as exc:
                    raise VMError(
                        f"{deb.path.name} holds no readable {PROFILE_IN_PACKAGE}: {exc}"
                    ) from exc
            atomic_write(out, json.dumps(with_clone_fs(base), separators=(",", ":")).encode())
        return out.read_text()
