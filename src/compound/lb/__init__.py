"""A real load balancer (HAProxy) in front of a service's replicas.

image.py builds ``local/compound-lb`` from Debian's haproxy package;
config.py renders its configuration (pure); runtime_api.py talks to its
admin socket; container.py makes the ``{project}-{service}-lb`` container;
balancer.py is what the orchestrator calls.
"""

from .balancer import (
    ADD_TIMEOUT,
    DRAIN_TIMEOUT,
    LoadBalancer,
    ensure,
    get,
    remove,
    remove_load_balancers,
)
from .config import Backend
from .runtime_api import ServerState

__all__ = [
    "ADD_TIMEOUT",
    "DRAIN_TIMEOUT",
    "Backend",
    "LoadBalancer",
    "ServerState",
    "ensure",
    "get",
    "remove",
    "remove_load_balancers",
]
