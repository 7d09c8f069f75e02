"""Host checks: what a runtime needs from this host, probed.

Each driver declares its checks (:meth:`Driver.host_checks`) and runs them
in :meth:`Driver.fingerprint`; `compound doctor` runs every driver's checks
with one shared :class:`CheckEnv` and prints them. A check returns a
:class:`Verdict`; anything it raises becomes that check's failure, never a
traceback.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
from docker.models.images import Image

from compound.engine import engine_errors
from compound.errors import CompoundError
from compound.runtimes.base import CheckStatus, HostCheck
from compound.runtimes.debimage import LABEL_RECIPE

if TYPE_CHECKING:  # the VM checks' artifacts; nothing here imports the VM runtime
    from compound.runtimes.vm.accel import AccelProbe
    from compound.runtimes.vm.initramfs import Initramfs
    from compound.runtimes.vm.kernel import KernelArtifacts

# How long a `--version` of a host tool may take before it counts as broken.
TOOL_TIMEOUT = 10.0
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Verdict:
    status: CheckStatus
    detail: str
    hint: str | None = None


def ok(detail: str) -> Verdict:
    return Verdict("ok", detail)


def warn(detail: str, hint: str | None = None) -> Verdict:
    return Verdict("warn", detail, hint)


def fail(detail: str, hint: str | None = None) -> Verdict:
    return Verdict("fail", detail, hint)


def skip(detail: str, hint: str | None = None) -> Verdict:
    return Verdict("skip", detail, hint)


def _default_cache_dir() -> Path:
    from compound.runtimes.vm import default_cache_dir

    return default_cache_dir()


@dataclass
class CheckEnv:
    """What the checks share: options, and what earlier checks found."""

    quick: bool = False  # nothing that may take more than a second
    prepare: bool = False  # build what is missing (images)
    cache_dir: Path = field(default_factory=_default_cache_dir)
    progress: Callable[[str], contextlib.AbstractContextManager[object]] = lambda _text: (
        contextlib.nullcontext()
    )
    client: docker.DockerClient | None = None  # set by the engine check
    kernel: KernelArtifacts | None = None
    initramfs: Initramfs | None = None
    accel: AccelProbe | None = None


@dataclass(frozen=True)
class CheckDef:
    name: str
    run: Callable[[CheckEnv], Verdict]


def run_check(check: CheckDef, env: CheckEnv) -> HostCheck:
    """One check; anything it raises becomes its failure, never a traceback."""
    try:
        v = check.run(env)
    except CompoundError as exc:
        v = fail(exc.message, exc.hint)
    except subprocess.TimeoutExpired as exc:
        v = fail(f"{_argv0(exc.cmd)} did not finish within {exc.timeout:.0f}s")
    except (OSError, subprocess.SubprocessError) as exc:
        v = fail(f"{type(exc).__name__}: {exc}")
    except docker.errors.DockerException as exc:
        v = fail(f"Docker Engine: {exc}")
    except Exception as exc:  # doctor must report, not crash: any bug is this check's failure
        v = fail(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in compound doctor; please report it",
        )
    return HostCheck(check.name, v.status, v.detail, v.hint)


def run_checks(env: CheckEnv, checks: Sequence[CheckDef]) -> list[HostCheck]:
    return [run_check(c, env) for c in checks]


def _argv0(cmd: object) -> str:
    if isinstance(cmd, (list, tuple)) and cmd:
        return str(cmd[0])
    return str(cmd)


def tool(argv: Sequence[str]) -> str:
    """stdout+stderr of a quick tool invocation; raises on failure/timeout."""
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        tail = " | ".join(out.splitlines()[-3:])
        raise subprocess.SubprocessError(f"{' '.join(argv)} exited {proc.returncode}: {tail}")
    return out


def human_size(n: int) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} B"


def check_local_image(
    env: CheckEnv,
    tag: str,
    key: str,
    repository: str,
    build: Callable[[docker.DockerClient], str],
    *,
    first_use: str,
) -> Verdict:
    """An image compound builds from Debian packages: built for the current
    recipe, or when it will be (``--prepare``: now)."""
    if env.client is None:
        return skip("not checked: no Docker Engine (see above)")
    client = env.client
    if env.prepare:
        with env.progress(f"{tag}: building if missing (mmdebstrap)"):
            built = build(client)
        img = client.images.get(built)
        return ok(
            f"{built} built ({str(img.id)[7:19]}, {human_size(int(img.attrs.get('Size', 0)))})"
        )
    found: Image | None = None
    with engine_errors(f"inspect {tag}"), contextlib.suppress(docker.errors.ImageNotFound):
        found = client.images.get(tag)
    if found is not None and (found.labels or {}).get(LABEL_RECIPE) == key:
        size = human_size(int(found.attrs.get("Size", 0)))
        return ok(f"{tag} built ({str(found.id)[7:19]}, {size})")
    with engine_errors(f"list {repository} images"):
        others = [t for i in client.images.list(repository) for t in i.tags]
    detail = f"{tag} is not built; {first_use}"
    if others:
        detail += f"; older recipes present: {', '.join(sorted(others))}"
    hint = "compound doctor --prepare builds it now"
    if shutil.which("mmdebstrap") is None:
        hint += " (needs mmdebstrap: apt-get install mmdebstrap)"
    return warn(detail, hint)
