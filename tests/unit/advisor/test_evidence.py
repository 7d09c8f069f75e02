from __future__ import annotations

from compound.advisor import Hints, HostFacts, ImageFacts
from compound.advisor.evidence import (
    DEFAULT_CPUS,
    DEFAULT_MEMORY,
    instance_demand,
    normalise_arch,
    service_evidence,
)
from compound.spec.model import Deploy, DeployResources, Resources, VolumeMount
from tests.unit.advisor.helpers import GiB, MiB, svc


def ev(service, hints=None, host=None, image=None):
    return service_evidence(service, hints or Hints(), host, image)


def test_capabilities_are_normalised():
    e = ev(svc("x", cap_add=("cap_sys_admin", "NET_ADMIN")))
    assert e.caps == frozenset({"SYS_ADMIN", "NET_ADMIN"})


def test_host_namespaces():
    e = ev(svc("x", network_mode="host", pid="host", ipc="shareable"))
    assert e.host_namespaces == ("network", "pid")


def test_system_mounts_and_other_binds_and_volumes():
    s = svc("x", binds=("/proc", "/var/run/docker.sock", "/srv/data", "/sys/fs/cgroup"))
    s = s.model_copy(
        update={
            "volumes": (
                *s.volumes,
                VolumeMount(type="volume", source="cache", target="/c", read_only=True),
                VolumeMount(type="volume", source="db", target="/d"),
            )
        }
    )
    e = ev(s)
    assert e.system_mounts == ("/proc", "/var/run/docker.sock", "/sys/fs/cgroup")
    assert e.host_binds == ("/srv/data",)
    assert e.stateful_volumes == ("db",)  # read-only volumes hold no state of this service


def test_os_comes_from_hint_then_image_then_platform():
    s = svc("x", platform="windows/amd64")
    assert (ev(s).os, ev(s).os_from) == ("windows", "platform")
    e = ev(s, image=ImageFacts(os="linux", arch="arm64"))
    assert (e.os, e.os_from, e.arch) == ("linux", "image", "arm64")
    assert ev(s, Hints(os="linux")).os_from == "hint"
    assert ev(svc("y")).os_from == "default"


def test_architectures_are_compared_normalised():
    assert normalise_arch("x86_64") == normalise_arch("amd64") == "amd64"
    assert normalise_arch("aarch64") == "arm64"
    e = ev(svc("x", platform="linux/arm64"), host=HostFacts(arch="x86_64"))
    assert e.foreign_arch
    assert not ev(svc("x", platform="linux/amd64"), host=HostFacts(arch="x86_64")).foreign_arch
    assert not ev(svc("x", platform="linux/arm64")).foreign_arch  # host arch unknown


def test_demand_prefers_reservations_then_limits_then_legacy_keys_then_defaults():
    base = svc("x")
    d = instance_demand(base)
    assert (d.cpus, d.memory, d.cpus_from) == (DEFAULT_CPUS, DEFAULT_MEMORY, "default")
    limits = base.model_copy(
        update={"deploy": Deploy(resources=DeployResources(limits=Resources(cpus=2, memory=GiB)))}
    )
    d = instance_demand(limits)
    assert (d.cpus, d.memory, d.cpus_from, d.memory_from) == (2, GiB, "limits", "limits")
    assert not d.declared_reservation
    legacy = base.model_copy(update={"cpus": 1.5, "mem_limit": 300 * MiB})
    d = instance_demand(legacy)
    assert (d.cpus_from, d.memory_from) == ("cpus", "mem_limit")
    both = limits.model_copy(
        update={
            "deploy": Deploy(
                resources=DeployResources(
                    limits=Resources(cpus=2, memory=GiB),
                    reservations=Resources(cpus=0.5, memory=256 * MiB),
                )
            )
        }
    )
    d = instance_demand(both)
    assert (d.cpus, d.memory, d.declared_reservation) == (0.5, 256 * MiB, True)


def test_box_share_uses_all_replicas_and_the_dominant_resource():
    e = ev(svc("x", replicas=4, cpus=1, memory=16 * GiB))
    assert e.box_share == 4 * 16 / 128  # memory dominates: 64 GiB of the 128 GiB box
