"""The images services run from: resolved, pulled (failing fast when no
registry answers), built.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.utils.build
import requests.exceptions

from compound.engine import images as engine_images
from compound.engine.client import engine_errors, translate
from compound.engine.errors import IMAGE_HINT
from compound.errors import (
    EngineError,
    ImageNotFoundError,
    ServiceError,
)
from compound.runtimes.base import (
    ProgressFn,
    no_progress,
)
from compound.runtimes.container_config import (
    image_ref,
)
from compound.spec.model import Project, Service

# A pull that has not said anything within this time is not going to work:
# the registry is unreachable (DNS or TCP black hole). Once bytes flow, a slow
# pull may take as long as it needs between two progress messages.
PULL_FIRST_EVENT_TIMEOUT = 8.0
PULL_IDLE_TIMEOUT = 120.0


# --- images ------------------------------------------------------------------------


def local_image_id(client: docker.DockerClient, ref: str) -> str | None:
    return engine_images.image_id(client, ref)


def pull_image(
    client: docker.DockerClient,
    ref: str,
    progress: ProgressFn = no_progress,
    service: str = "",
    first_event_timeout: float = PULL_FIRST_EVENT_TIMEOUT,
) -> str:
    """Pull ``ref``; its image id. Fails within ``first_event_timeout`` seconds
    when no registry answers, with the engine's reason as ``__cause__``."""
    events: queue.Queue[Any] = queue.Queue()
    done = object()

    def reader() -> None:
        # A thread, because docker-py pulls without any read timeout.
        try:
            repo, tag = docker.utils.parse_repository_tag(ref)
            for event in client.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                events.put(event)
        except BaseException as exc:
            events.put(exc)
        events.put(done)

    threading.Thread(target=reader, name=f"pull {ref}", daemon=True).start()
    timeout, last = first_event_timeout, ""
    while True:
        try:
            event = events.get(timeout=timeout)
        except queue.Empty:
            raise not_pullable(ref) from TimeoutError(f"no answer within {timeout:g}s")
        if event is done:
            break
        if isinstance(event, requests.exceptions.ConnectionError):
            raise translate(event, f"pull {ref}") from event
        if isinstance(event, BaseException):
            raise not_pullable(ref) from event
        if event.get("error"):
            raise not_pullable(ref) from EngineError(str(event["error"]))
        timeout = PULL_IDLE_TIMEOUT
        status = str(event.get("status", ""))
        if status and "progress" not in event and status != last:
            last = status
            progress(service, f"pull {ref}: {status} {event.get('id', '')}".rstrip())
    image_id = local_image_id(client, ref)
    if image_id is None:
        raise not_pullable(ref)
    return image_id


def not_pullable(ref: str) -> ImageNotFoundError:
    return ImageNotFoundError(
        f"image {ref!r} is not available locally and could not be pulled (registry unreachable?)",
        hint=IMAGE_HINT,
    )


def build_image(
    client: docker.DockerClient,
    project: Project,
    service: Service,
    progress: ProgressFn = no_progress,
) -> str:
    """Build the service's image (legacy builder; the engine API has no
    BuildKit session), tagged ``image`` or ``{project}-{service}``; its id."""
    spec = service.build
    if spec is None:
        raise ServiceError(service.name, "has no `build` section to build from")
    if spec.buildkit_only:
        keys = ", ".join(f"build.{k}" for k in spec.buildkit_only)
        raise ServiceError(
            service.name,
            f"{keys} need BuildKit (docker buildx), which compound's builder, the engine's "
            "classic /build API, lacks",
            hint="build the image with `docker buildx build -t IMAGE` and give the service "
            "that image (pull_policy: missing uses it), or drop these keys",
        )
    platforms = set(spec.platforms)
    if len(platforms) > 1 or (platforms and service.platform and platforms != {service.platform}):
        raise ServiceError(
            service.name,
            f"build.platforms {sorted(platforms)}: a multi-platform build needs BuildKit "
            "(docker buildx); compound's classic builder builds one platform",
            hint="keep one platform (the service's), or build with docker buildx",
        )
    tag = image_ref(project, service)
    kwargs: dict[str, Any] = {
        "tag": tag,
        "buildargs": dict(spec.args) or None,
        "target": spec.target,
        "labels": dict(spec.labels) or None,
        "network_mode": spec.network,
        "nocache": spec.no_cache,
        "pull": spec.pull,
        "shmsize": spec.shm_size,
        "extra_hosts": [f"{h}:{ip}" for h, ips in spec.extra_hosts.items() for ip in ips.split(",")]
        or None,
        "platform": service.platform or next(iter(platforms), None),
        "cache_from": list(spec.cache_from) or None,
        "isolation": spec.isolation,
        "rm": True,
        "forcerm": True,
        "decode": True,
    }
    if not os.path.isdir(spec.context):
        raise ServiceError(
            service.name,
            f"build context {spec.context} is not a directory",
            hint="fix build.context (remote contexts are not supported)",
        )
    if spec.dockerfile_inline is not None:
        name = f".dockerfile.inline.{uuid.uuid4().hex[:12]}"
        kwargs.update(
            fileobj=docker.utils.build.tar(
                Path(spec.context),
                exclude=_dockerignore(spec.context),
                dockerfile=(name, spec.dockerfile_inline),
            ),
            custom_context=True,
            dockerfile=name,
        )
    else:
        kwargs.update(path=spec.context, dockerfile=spec.dockerfile)
    progress(service.name, f"building {tag}")
    image_id = None
    try:
        with engine_errors(f"build image {tag!r}"):
            for event in client.api.build(**kwargs):
                image_id = _build_event(service.name, event, progress) or image_id
    except EngineError as exc:
        raise ServiceError(service.name, f"build failed: {exc.message}") from exc
    image_id = image_id or local_image_id(client, tag) or _missing_after_build(service, tag)
    for extra in spec.tags:  # build.tags: more names for the same image
        repo, name_tag = docker.utils.parse_repository_tag(extra)
        with engine_errors(f"tag image {tag!r} as {extra!r}"):
            client.api.tag(image_id, repo, tag=name_tag or "latest")
    return image_id


def _build_event(service: str, event: Mapping[str, Any], progress: ProgressFn) -> str | None:
    if event.get("error"):
        detail = event.get("errorDetail") or {}
        raise ServiceError(service, f"build failed: {detail.get('message') or event['error']}")
    text = str(event.get("stream", "")).rstrip()
    if text:
        progress(service, text)
    aux = event.get("aux") or {}
    return str(aux["ID"]) if aux.get("ID") else None


def _missing_after_build(service: Service, tag: str) -> str:
    raise ServiceError(service.name, f"the build finished but image {tag!r} does not exist")


def _dockerignore(context: str) -> list[str] | None:
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        lines = (line.strip() for line in f.read().splitlines())
        return [line for line in lines if line and not line.startswith("#")]
