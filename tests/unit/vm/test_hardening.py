"""A VM service's security keys, computed as Docker computes a container's."""

from __future__ import annotations

import pytest

from compound.errors import NotSupportedError, ServiceError
from compound.runtimes.vm.hardening import (
    CAP_NUMBERS,
    DOCKER_DEFAULT_CAPS,
    capability_set,
    guest_hardening,
)
from compound.spec.model import Service, Ulimit


def test_default_is_dockers_set_and_adds_drops_follow_docker() -> None:
    assert capability_set(Service(name="a")) == DOCKER_DEFAULT_CAPS
    assert capability_set(Service(name="a", cap_drop=("ALL",), cap_add=("cap_net_admin",))) == {
        "NET_ADMIN"
    }
    dropped = capability_set(Service(name="a", cap_drop=("NET_RAW", "CAP_MKNOD")))
    assert dropped == DOCKER_DEFAULT_CAPS - {"NET_RAW", "MKNOD"}
    assert capability_set(Service(name="a", cap_add=("ALL",), cap_drop=("SYS_ADMIN",))) == (
        frozenset(CAP_NUMBERS) - {"SYS_ADMIN"}
    )
    assert guest_hardening(Service(name="a", privileged=True)).caps == "all"


def test_guest_hardening_encodes_every_key() -> None:
    h = guest_hardening(
        Service(
            name="a",
            cap_drop=("ALL",),
            cap_add=("NET_BIND_SERVICE",),
            security_opt=("no-new-privileges", "seccomp=unconfined"),
            pids_limit=64,
            ulimits={"nofile": Ulimit(soft=10, hard=20), "nproc": Ulimit(soft=5, hard=5)},
        )
    )
    assert h.caps == "400" and h.no_new_privileges and h.pids_max == 64
    assert h.rlimits == "7:10:20,6:5:5"
    assert guest_hardening(Service(name="a", pids_limit=-1)).pids_max is None


def test_what_a_guest_cannot_apply_is_refused() -> None:
    with pytest.raises(NotSupportedError, match=r"seccomp=/x\.json.*not applied inside a VM"):
        guest_hardening(Service(name="a", security_opt=("seccomp=/x.json",)))
    with pytest.raises(ServiceError, match="unknown capability 'FLY'"):
        guest_hardening(Service(name="a", cap_add=("FLY",)))
    with pytest.raises(ServiceError, match="unknown ulimit 'wings'"):
        guest_hardening(Service(name="a", ulimits={"wings": Ulimit(soft=1, hard=1)}))
