"""Fetch Debian packages with the ordinary client (``apt-get download``, no
install) and unpack them with ``dpkg-deb -x``. Kernel, initramfs contents
and the launcher image all come from pinned Debian packages this way, so a
cache key can be the list of (package, version) that went in."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compound.errors import VMError

from ._util import atomic_write, locked, run

APT_TIMEOUT = 300.0
_HINT = "check the apt sources (apt-get update) and that a Debian mirror is reachable"


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    path: Path


def candidate_version(package: str) -> str | None:
    """The version ``apt-get download`` would fetch, or None if unknown."""
    proc = run(["apt-cache", "policy", package], timeout=60, what="apt-cache policy", hint=_HINT)
    m = re.search(r"^\s*Candidate:\s*(\S+)", proc.stdout, re.M)
    if not m or m.group(1) == "(none)":
        return None
    return m.group(1)


# What apt answered before, per question, in the VM cache: `apt-cache policy`
# costs 1.4-1.7 s per call, so the `up` path asks apt nothing once an
# answer is known. Asked again by `compound doctor` (refresh) and when an
# artefact keyed by a remembered answer is missing from the cache.
RESOLVED_FILE = "resolved.json"


def remembered(
    cache_dir: Path, question: str, ask: Callable[[], str | None], *, refresh: bool = False
) -> str | None:
    """The remembered answer to ``question`` (e.g. "candidate:busybox-static"),
    or ``ask()``'s answer, remembered when it is not None."""
    path = cache_dir / RESOLVED_FILE
    with locked(cache_dir / f".{RESOLVED_FILE}.lock"):
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        if not isinstance(known, dict):
            known = {}
        value = known.get(question)
        if isinstance(value, str) and not refresh:
            return value
        answer = ask()
        if answer is not None and answer != value:
            known[question] = answer
            atomic_write(path, (json.dumps(known, indent=1, sort_keys=True) + "\n").encode())
        return answer


def remembered_candidate(cache_dir: Path, package: str, *, refresh: bool = False) -> str | None:
    """:func:`candidate_version`, remembered in the cache."""
    return remembered(
        cache_dir, f"candidate:{package}", lambda: candidate_version(package), refresh=refresh
    )


def has_version(package: str, version: str) -> bool:
    """Whether apt can fetch exactly ``version`` of ``package``."""
    proc = run(["apt-cache", "policy", package], timeout=60, what="apt-cache policy", hint=_HINT)
    # Version table rows: "     6.1.176-1 500" or " *** 6.1.176-1 500".
    return version in re.findall(r"^\s+(?:\*\*\*\s+)?(\S+)\s+-?\d+\s*$", proc.stdout, re.M)


def depends(package: str) -> list[str]:
    """Direct Depends/PreDepends of ``package`` (first alternative of each)."""
    proc = run(
        [
            "apt-cache",
            "depends",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            package,
        ],
        timeout=60,
        what="apt-cache depends",
        hint=_HINT,
    )
    out: list[str] = []
    alternative = False
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\|)?(Pre)?Depends:\s*(\S+)", line)
        if not m:
            continue
        if not alternative:  # keep the first of "a | b" alternatives
            name = m.group(3)
            if not name.startswith("<"):  # virtual packages have no .deb
                out.append(name.split(":")[0])
        alternative = m.group(1) is not None
    return out


def download(package: str, dest: Path, version: str | None = None) -> Deb:
    """Download ``package`` (the candidate, or ``version``) into ``dest``;
    reuse a previous download of the same version."""
    version = version or candidate_version(package)
    if version is None:
        raise VMError(f"Debian package {package!r} is not known to apt", hint=_HINT)
    dest.mkdir(parents=True, exist_ok=True)
    quoted = version.replace(":", "%3a")
    pattern = f"{package}_{quoted}_*.deb"
    with locked(dest / ".lock"):
        found = sorted(dest.glob(pattern))
        if not found:
            run(
                [
                    "apt-get",
                    "download",
                    "-q",
                    "-o",
                    "APT::Sandbox::User=root",
                    f"{package}={version}",
                ],
                cwd=dest,
                timeout=APT_TIMEOUT,
                what=f"apt-get download {package}",
                hint=_HINT,
            )
            found = sorted(dest.glob(pattern))
        if not found:
            raise VMError(f"apt-get download {package}={version} produced no .deb", hint=_HINT)
    return Deb(package, version, found[0])


def extract(deb: Deb, dest: Path) -> Path:
    """Unpack a .deb's data into ``dest`` (created fresh)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run(["dpkg-deb", "-x", str(deb.path), str(dest)], timeout=300, what=f"dpkg-deb -x {deb.name}")
    return dest
