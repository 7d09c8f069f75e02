"""The engine layer: everything that talks to the Docker Engine for more
than one runtime, docker-py style, in small modules.

client.py     the connection (one per process and DOCKER_HOST), the Client type,
              error translation, version
request.py    a container request as plain data (create body, extra networks, files)
containers.py plain containers: the one create path, inspect, list, wait, output,
              archives, remove, run
images.py     image inspect, id, config
events.py     the engine's event stream
errors.py     what an engine error means for one service
labels.py     the io.compound.* labels
resources.py  a project's networks and volumes
streams.py    whole lines of a log stream, an attached terminal

Only this package and runtimes/ import the Docker SDK (an import-linter
contract in pyproject.toml): everything else uses these modules and names
the client by the ``Client`` alias.
"""

from __future__ import annotations

from .client import (
    Client,
    EngineVersion,
    connect,
    connect_to,
    engine_address,
    engine_errors,
    engine_version,
    explain,
    reset_connection,
    translate,
)

__all__ = [
    "Client",
    "EngineVersion",
    "connect",
    "connect_to",
    "engine_address",
    "engine_errors",
    "engine_version",
    "explain",
    "reset_connection",
    "translate",
]
