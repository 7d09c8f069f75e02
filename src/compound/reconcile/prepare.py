"""`pull` and `build`: make what each service runs from exist, through the
driver of the runtime the planner decided for it (a `runtime: auto`
service that resolves to vm is prepared as a VM, exactly as `up` runs it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from compound.errors import CompoundError
from compound.planner.runtime import RuntimeDecision
from compound.reconcile.progress import Progress
from compound.runtimes.base import Driver
from compound.spec.model import Project


def prepare_services(
    project: Project,
    names: Sequence[str],
    decisions: Mapping[str, RuntimeDecision],
    drivers: Mapping[str, Driver],
    *,
    policy: str,
    verb: str,
    progress: Progress,
) -> dict[str, str]:
    """Prepare each service with ``pull_policy`` ``policy`` (always, build);
    returns service -> rendered error for those that failed."""
    failures: dict[str, str] = {}

    def one(name: str) -> None:
        svc = project.services[name].model_copy(update={"pull_policy": policy})
        driver = drivers[decisions[name].runtime]
        try:
            image_id = driver.prepare(
                project, svc, lambda _s, m: progress.update(name, "Working", m)
            )
            progress.update(name, verb, image_id[:19], done=True)
        except CompoundError as exc:
            progress.fail(name, exc.message)
            failures[name] = exc.render()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, names))
    return failures
