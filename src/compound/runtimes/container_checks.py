"""The container runtime's host checks (its fingerprint): the Docker Engine."""

from __future__ import annotations

from typing import Any

from compound.engine import connect, engine_errors, engine_version
from compound.runtimes.hostcheck import CheckDef, CheckEnv, Verdict, ok, warn


def check_engine(env: CheckEnv) -> Verdict:
    client = connect()  # EngineUnavailableError: the check's failure, with its hint
    env.client = client
    v = engine_version(client)
    with engine_errors("read the engine info"):
        info: dict[str, Any] = client.info()
    storage = str(info.get("Driver") or "?")
    cgroup = str(info.get("CgroupVersion") or "1")
    cgroup_driver = str(info.get("CgroupDriver") or "?")
    detail = (
        f"Docker Engine {v.version} (API {v.api_version}, min {v.min_api_version}), "
        f"{v.os}/{v.arch}, storage {storage}, cgroup v{cgroup} ({cgroup_driver})"
    )
    if storage == "vfs":
        return warn(
            detail,
            "the vfs storage driver copies every layer: slow and large; configure overlay2",
        )
    return ok(detail)


CONTAINER_CHECKS: tuple[CheckDef, ...] = (CheckDef("docker engine", check_engine),)
