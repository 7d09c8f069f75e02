"""The io.compound.* labels every instance, network and volume carries: the
actual state of a project is one label query against the engine."""

from __future__ import annotations

LABEL_PREFIX = "io.compound"
LABEL_PROJECT = f"{LABEL_PREFIX}.project"
LABEL_SERVICE = f"{LABEL_PREFIX}.service"
LABEL_NUMBER = f"{LABEL_PREFIX}.number"  # replica index, 1-based
LABEL_CONFIG_HASH = f"{LABEL_PREFIX}.config-hash"
LABEL_RUNTIME = f"{LABEL_PREFIX}.runtime"  # container | vm
LABEL_ONEOFF = f"{LABEL_PREFIX}.oneoff"  # "true" for `compound run`
LABEL_VERSION = f"{LABEL_PREFIX}.version"
LABEL_NETWORK = f"{LABEL_PREFIX}.network"  # key of a project network
LABEL_VOLUME = f"{LABEL_PREFIX}.volume"  # key of a project volume
LABEL_IMAGE_ID = f"{LABEL_PREFIX}.image-id"  # resolved image id the instance was made from
LABEL_ROLE = f"{LABEL_PREFIX}.role"  # "lb": a service's load balancer, not an instance
ROLE_LB = "lb"
