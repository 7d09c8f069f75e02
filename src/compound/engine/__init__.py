"""The engine layer: everything that talks to the Docker Engine for more
than one runtime, docker-py style, in small modules.

client.py     the connection (one per process and DOCKER_HOST), error translation, version
errors.py     what an engine error means for one service
labels.py     the io.compound.* labels
resources.py  a project's networks and volumes
streams.py    multiplexed frames, whole lines, an attached terminal
"""

from __future__ import annotations

from .client import (
    EngineVersion,
    connect,
    engine_address,
    engine_errors,
    engine_version,
    explain,
    reset_connection,
    translate,
)

__all__ = [
    "EngineVersion",
    "connect",
    "engine_address",
    "engine_errors",
    "engine_version",
    "explain",
    "reset_connection",
    "translate",
]
