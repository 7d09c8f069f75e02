"""Lifecycle hooks (Compose's ``post_start``, ``pre_stop``, ``pre_start``).

``post_start`` and ``pre_stop`` run inside the instance through the
driver's captured exec, so a container (the engine's exec) and a VM (the
guest agent, chrooted into the service's root) behave alike. Compose's
semantics: the hook inherits the service's environment, its own
``environment`` adds to it, ``user`` and ``working_dir`` default to the
service's. A failing ``post_start`` fails the ``up`` of that service; a
failing ``pre_stop`` aborts the stop of that instance (the spec: "if any
command fails, the container stop is aborted"), and the error says how to
stop it anyway.

``pre_start`` runs before a service's new instances start, once, each hook
in a one-off instance of the service (its volumes and networks; the hook's
image, command, user, working_dir and environment), removed afterwards; a
non-zero exit fails the service's ``up``.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Sequence
from typing import Literal

from compound.errors import CompoundError, NotSupportedError, ServiceError
from compound.reconcile.progress import NullProgress, Progress
from compound.runtimes.base import Driver, Instance
from compound.spec.model import Deploy, Healthcheck, Project, Service, ServiceHook

HookKind = Literal["post_start", "pre_stop", "pre_start"]
TAIL_LINES = 8  # of a failed hook's output, in the error
HOOK_TIMEOUT = 600.0  # seconds; a hook is a command, not a service
EXEC_READY_WAIT = 60.0  # seconds a running instance may take to accept an exec
PRE_START_NUMBER = 1


class HookFailed(ServiceError):
    """A lifecycle hook exited non-zero (or could not run)."""


def _tail(out: bytes, err: bytes) -> str:
    text = (out + b"\n" + err).decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines[-TAIL_LINES:])


def _env(hook: ServiceHook) -> dict[str, str]:
    return {k: v for k, v in hook.environment.items() if v is not None}


def run_hooks(
    driver: Driver,
    inst: Instance,
    service: Service,
    kind: Literal["post_start", "pre_stop"],
    progress: Progress | None = None,
) -> None:
    """Run the service's ``kind`` hooks in ``inst``, in order; HookFailed at the first failure."""
    hooks: Sequence[ServiceHook] = getattr(service, kind)
    progress = progress or NullProgress()
    for index, hook in enumerate(hooks):
        progress.update(service.name, "Hook", f"{kind}[{index}] in {inst.name}")
        code, out, err = _exec(driver, inst, service, kind, index, hook)
        if code != 0:
            tail = _tail(out, err)
            raise HookFailed(
                service.name,
                f"{kind}[{index}] hook ({' '.join(hook.command)}) exited with code {code}"
                f" in {inst.name}" + (f"; its output ends:\n{tail}" if tail else ""),
                hint=_hint(kind),
            )


def _exec(
    driver: Driver,
    inst: Instance,
    service: Service,
    kind: HookKind,
    index: int,
    hook: ServiceHook,
) -> tuple[int, bytes, bytes]:
    """The hook's exec; retried while the instance runs but cannot take it
    yet (a VM's guest agent starts just after the entrypoint)."""
    deadline = time.monotonic() + EXEC_READY_WAIT
    while True:
        try:
            return driver.exec_capture(
                inst,
                hook.command,
                user=hook.user,
                workdir=hook.working_dir,
                env=_env(hook),
                timeout=HOOK_TIMEOUT,
                privileged=hook.privileged,
            )
        except NotSupportedError as exc:
            failure: CompoundError = exc
        except CompoundError as exc:
            failure = exc
            with contextlib.suppress(CompoundError):
                if time.monotonic() < deadline and driver.inspect(inst.id).running:
                    time.sleep(1.0)
                    continue
        raise HookFailed(
            service.name,
            f"{kind}[{index}] hook could not run in {inst.name}: {failure.message}",
            hint=failure.hint or _hint(kind),
        ) from failure


def _hint(kind: HookKind) -> str:
    if kind == "pre_stop":
        return (
            "fix the hook; to stop the instance without it, `compound kill` it first "
            "(kill runs no hook), then stop or down again"
        )
    return f"fix the {kind} hook (or the instance it runs in) and run `compound up` again"


def pre_stop(driver: Driver, inst: Instance, service: Service | None) -> None:
    """The service's pre_stop hooks, when the instance is running to receive them."""
    if service is None or not service.pre_stop or not inst.running:
        return
    run_hooks(driver, inst, service, "pre_stop")


def stop(driver: Driver, inst: Instance, service: Service | None, grace: float | None) -> None:
    """Stop an instance as Compose does: its pre_stop hooks first."""
    pre_stop(driver, inst, service)
    driver.stop(inst, grace)


# --- pre_start --------------------------------------------------------------------------


def pre_start_service(service: Service, hook: ServiceHook) -> Service:
    """The one-off that runs a pre_start hook: the service's volumes, networks
    and environment, the hook's image/command/user/working_dir on top; no
    ports, healthcheck, restart, hooks or fixed name of its own."""
    own_image = hook.image is None or hook.image == service.image
    return service.model_copy(
        update={
            "image": hook.image or service.image,
            "build": service.build if own_image else None,
            "command": hook.command or None,
            "entrypoint": service.entrypoint if own_image and not hook.command else None,
            "user": hook.user or (service.user if own_image else None),
            "working_dir": hook.working_dir or service.working_dir,
            "environment": {**service.environment, **hook.environment},
            "privileged": hook.privileged or service.privileged,
            "ports": (),
            "healthcheck": Healthcheck(test=("NONE",), disable=True),
            "restart": "no",
            "deploy": Deploy(resources=service.deploy.resources),
            "scale": None,
            "container_name": None,
            "post_start": (),
            "pre_stop": (),
            "pre_start": (),
        }
    )


def run_pre_start(
    driver: Driver,
    project: Project,
    service: Service,
    image_id: str | None,
    progress: Progress | None = None,
    timeout: float = HOOK_TIMEOUT,
) -> None:
    """Each pre_start hook in its own one-off instance, to completion, in order."""
    progress = progress or NullProgress()
    for index, hook in enumerate(service.pre_start):
        oneoff = pre_start_service(service, hook)
        progress.update(service.name, "Hook", f"pre_start[{index}]")
        hook_image = image_id if oneoff.image == service.image else None
        if hook_image is None:
            hook_image = driver.prepare(project, oneoff)
        # unique: a one-off left by a crashed run must not block this one (down removes it)
        name = f"{project.name}-{service.name}-pre_start-{index}-{secrets.token_hex(3)}"
        inst = driver.create(
            project,
            oneoff,
            PRE_START_NUMBER,
            "pre_start",
            oneoff=True,
            image_id=hook_image,
            name=name,
        )
        try:
            driver.start(inst)
            code = driver.wait(inst, timeout)
            if code != 0:
                lines = [ln.text for ln in driver.logs(inst, tail=TAIL_LINES)]
                tail = "\n".join("    " + line for line in lines if line.strip())
                raise HookFailed(
                    service.name,
                    f"pre_start[{index}] hook exited with code {code}"
                    + (f"; its output ends:\n{tail}" if tail else ""),
                    hint=_hint("pre_start"),
                )
        finally:
            with contextlib.suppress(CompoundError):
                driver.stop(inst, 0)
            with contextlib.suppress(CompoundError):
                driver.remove(inst, volumes=True)
