"""Provider services: Compose's provider protocol (docs/extension.md of Compose).

A service with ``provider: {type: T, options: {...}}`` has no instance: the
binary T (a docker CLI plugin ``docker-T`` first, else ``T`` on PATH)
delivers it. ``up`` runs, before planning the rest::

    T compose --project-name=P up --OPTION=VALUE... SERVICE

and ``down`` the same with ``down``. The binary speaks JSON lines on
stdout, ``{"type": ..., "message": ...}``: ``info`` (progress), ``error``
(the reason it failed), ``debug`` (not shown), ``setenv`` ``KEY=VALUE``
(``<SERVICE>_KEY`` is set in every service that depends on this one),
``rawsetenv`` (``KEY`` as is), ``get-service-config`` (answered on its
stdin with the service's resolved definition as one JSON line). The
variables change the dependents' environment, so they are injected into
the model before the plan is made: a provider that answers the same as
last time (its ``up`` must be idempotent) recreates nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from compound.errors import ServiceError
from compound.reconcile.progress import NullProgress, Progress
from compound.spec.model import Project, Service

ProviderCommand = Literal["up", "down"]

# where the docker CLI looks for plugins (its own list, user's first)
PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
STDERR_TAIL = 8


class ProviderError(ServiceError):
    """A provider binary that is missing, failed, or broke the protocol."""


@dataclass
class ProviderVariables:
    prefixed: dict[str, str] = field(default_factory=dict)  # setenv: <SERVICE>_KEY
    raw: dict[str, str] = field(default_factory=dict)  # rawsetenv: KEY


def find_binary(service: Service, environ: Mapping[str, str]) -> str:
    """The provider's executable: the docker CLI plugin docker-<type>, else <type> on PATH."""
    assert service.provider is not None
    ptype = service.provider.type
    config_dir = environ.get("DOCKER_CONFIG")
    dirs = [f"{config_dir}/cli-plugins"] if config_dir else []
    dirs += [os.path.expanduser(d) for d in PLUGIN_DIRS]
    for d in dirs:
        candidate = Path(d) / f"docker-{ptype}"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(ptype, path=environ.get("PATH"))
    if found:
        return found
    raise ProviderError(
        service.name,
        f"services.{service.name}.provider.type: the provider binary {ptype!r} was not found:"
        f" it is neither an executable on PATH nor a docker CLI plugin docker-{ptype}",
        hint=f"install the {ptype!r} provider (on PATH, or as ~/.docker/cli-plugins/"
        f"docker-{ptype}), or replace the service with one that has an image",
    )


def command_line(
    binary: str, project: str, service: Service, command: ProviderCommand
) -> list[str]:
    assert service.provider is not None
    argv = [binary, "compose", f"--project-name={project}", command]
    for key, values in service.provider.options.items():
        argv += [f"--{key}={value}" for value in values]
    return [*argv, service.name]


def run(
    project: Project,
    service: Service,
    command: ProviderCommand,
    *,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    service_config: str = "{}",
) -> ProviderVariables:
    """Run the provider's ``compose up|down`` for ``service``; the variables it set."""
    progress = progress or NullProgress()
    assert service.provider is not None
    env = {**os.environ, **project.environment, **(environ or {})}
    binary = find_binary(service, env)
    argv = command_line(binary, project.name, service, command)
    verb = "Creating" if command == "up" else "Removing"
    progress.update(
        service.name, verb, f"provider {service.provider.type if service.provider else ''}"
    )
    variables = ProviderVariables()
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=project.working_dir,
            text=True,
        )
        assert proc.stdout is not None and proc.stdin is not None
        try:
            for line in proc.stdout:
                if line.strip():
                    _handle(service, command, line, variables, progress, proc, service_config)
        except ProviderError:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()
        code = proc.wait()
        if code != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-STDERR_TAIL:]
            raise ProviderError(
                service.name,
                f"the provider {' '.join(argv[:1])} failed to {command} the service"
                f" (exit code {code})" + (": " + "\n".join(tail) if tail else ""),
                hint="see what the provider printed; its `compose "
                f"{command}` must succeed for `compound {command}` to go on",
            )
    progress.update(service.name, "Created" if command == "up" else "Removed", done=True)
    return variables


def _handle(
    service: Service,
    command: ProviderCommand,
    line: str,
    variables: ProviderVariables,
    progress: Progress,
    proc: subprocess.Popen[str],
    service_config: str,
) -> None:
    try:
        msg = json.loads(line)
    except json.JSONDecodeError:
        msg = None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProviderError(
            service.name,
            f"the provider printed a line that is not a JSON message: {line.strip()[:200]!r}",
            hint='a provider prints {"type": "info|error|setenv|debug", "message": "..."} lines',
        )
    kind, text = msg["type"], str(msg.get("message") or "")
    if kind == "info":
        progress.update(service.name, "Working", text.strip().splitlines()[0] if text else "")
    elif kind == "debug":
        return
    elif kind == "error":
        raise ProviderError(service.name, f"the provider reported: {text.strip()}")
    elif kind in ("setenv", "rawsetenv"):
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ProviderError(
                service.name, f"the provider sent {kind} without KEY=VALUE: {text[:200]!r}"
            )
        if command == "up":
            (variables.prefixed if kind == "setenv" else variables.raw)[key] = value
    elif kind == "get-service-config":
        assert proc.stdin is not None
        proc.stdin.write(service_config + "\n")
        proc.stdin.flush()
    else:
        raise ProviderError(
            service.name,
            f"the provider sent a message of unknown type {kind!r}",
            hint="types are info, error, setenv, rawsetenv, debug and get-service-config",
        )


def inject(project: Project, provider: str, variables: ProviderVariables) -> Project:
    """The project with the provider's variables in each service that depends on it."""
    prefix = provider.upper() + "_"
    added = {prefix + k: v for k, v in variables.prefixed.items()} | variables.raw
    if not added:
        return project
    services = dict(project.services)
    for name, svc in project.services.items():
        if provider in svc.depends_on:
            services[name] = svc.model_copy(update={"environment": {**svc.environment, **added}})
    return project.model_copy(update={"services": services})


def up_all(project: Project, names: Sequence[str], progress: Progress | None = None) -> Project:
    """Run ``up`` of each provider service (in start order); the project with
    their variables injected into their dependents."""
    from compound.spec.compose_dict import to_compose_dict

    resolved = to_compose_dict(project)["services"]
    for name in names:
        svc = project.services[name]
        config = json.dumps(resolved.get(name, {}), sort_keys=True)
        variables = run(project, svc, "up", progress=progress, service_config=config)
        project = inject(project, name, variables)
    return project


def down_all(project: Project, progress: Progress | None = None) -> list[str]:
    """Run ``down`` of every provider service (reverse order); their names."""
    names = [n for n, s in project.services.items() if s.provider is not None]
    for name in reversed(names):
        run(project, project.services[name], "down", progress=progress)
    return names
