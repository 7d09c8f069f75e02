"""The Swarm stack translation, the facts parser and SSH error sorting (no engine)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compound.hosts import facts, ssh
from compound.hosts.inventory import host_of
from compound.hosts.records import HostRecord
from compound.hosts.stack import translate
from compound.placement import place
from compound.spec import LoadOptions, load_project
from compound.spec.model import Project


def _project(tmp_path: Path, body: str) -> Project:
    f = tmp_path / "compose.yaml"
    f.write_text(textwrap.dedent(body).lstrip("\n"))
    return load_project(LoadOptions(files=(str(f),), project_name="shop")).project


def _host(name: str, tenant: str | None = None) -> HostRecord:
    return HostRecord(
        name=name,
        driver="nested",
        address="10.0.0.1",
        tenant=tenant,
        facts={"class": "virtual", "cpus": 4, "memory": 8 << 30, "kvm": None, "tun": True},
    )


APP = """
services:
  web:
    image: local/busybox:latest
    ports: ["8080:80"]
    depends_on: [db]
    deploy: {replicas: 2}
  db:
    container_name: db1
    image: local/postgres:15
    volumes: [pgdata:/var/lib/postgresql/data]
    restart: on-failure
    x-compound: {hints: {tenant: acme}}
volumes:
  pgdata: {}
"""


def _translate(project: Project, hosts: list[HostRecord]) -> tuple[dict, list[str], dict]:  # type: ignore[type-arg]
    packing = place([project], [host_of(h) for h in hosts])
    assert not packing.unplaced
    stack = translate(
        project, {d.service: d for d in packing.demands}, volume_hosts={"pgdata": "h2"}
    )
    return stack.data, stack.warnings, stack.pinned


def test_containers_become_dnsrr_services_with_host_ports_and_update_configs(
    tmp_path: Path,
) -> None:
    data, warnings, _ = _translate(_project(tmp_path, APP), [_host("h1"), _host("h2"), _host("h3")])
    assert data["version"] == "3.8"
    web = data["services"]["web"]
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    assert web["ports"] == [{"target": 80, "published": 8080, "protocol": "tcp", "mode": "host"}]
    # two tasks cannot publish one host port on one node
    assert web["deploy"]["placement"]["max_replicas_per_node"] == 1
    assert web["deploy"]["update_config"]["failure_action"] == "rollback"
    assert web["deploy"]["rollback_config"]["parallelism"] == 1
    assert "depends_on" not in web and "container_name" not in data["services"]["db"]
    assert any("depends_on ignored" in w for w in warnings)
    assert any("db: container_name ignored" in w for w in warnings)
    assert data["networks"]["default"]["driver"] == "overlay"
    assert web["labels"]["io.compound.project"] == "shop"


def test_tenants_and_local_volumes_become_constraints(tmp_path: Path) -> None:
    data, warnings, pinned = _translate(
        _project(tmp_path, APP), [_host("h1"), _host("h2"), _host("h3")]
    )
    db = data["services"]["db"]
    constraints = db["deploy"]["placement"]["constraints"]
    assert "node.labels.compound.kernel == acme" in constraints
    assert "node.labels.compound.host == h2" in constraints
    assert pinned == {"db": "h2"}
    assert any("pinned to host h2" in w and "shared volume driver" in w for w in warnings)
    assert db["deploy"]["restart_policy"] == {"condition": "on-failure"}
    web = data["services"]["web"]
    assert "node.labels.compound.kernel == none" in web["deploy"]["placement"]["constraints"]


def test_facts_are_interpreted_not_trusted() -> None:
    raw = facts.parse(
        "cpus=8\nmem_kib=1024\nvirt=none\nos_name=Debian GNU/Linux 12 (bookworm)\n"
        "engine=20.10.24\nkvm_dev=1\ntun=1\nipvs=0\n"
    )
    f = facts.interpret(raw, local=False)
    assert f["class"] == "bare-metal" and f["cpus"] == 8 and f["memory"] == 1024 * 1024
    # a /dev/kvm on another host is no promise that KVM boots
    assert f["kvm"] is None and "not boot-probed" in f["kvm_reason"]
    assert facts.interpret({"virt": "kvm", "kvm_dev": "0"}, local=False)["class"] == "virtual"
    assert host_of(_host("h")).kvm is False


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("root@10.0.0.1: Permission denied (publickey).", "wrong credentials"),
        ("ssh: connect to host 10.0.0.1 port 22: Connection refused", "cannot reach"),
        ("ssh: connect to host 10.0.0.1 port 22: Connection timed out", "cannot reach"),
        ("Host key verification failed.", "different host key"),
    ],
)
def test_ssh_failures_are_sorted_and_name_the_host(stderr: str, expected: str) -> None:
    err = ssh.classify_ssh_failure(_host("edge-1"), stderr)
    assert expected in str(err) and "host 'edge-1'" in str(err)


def test_volumes_one_service_mounts_together_are_pinned_to_one_host(tmp_path: Path) -> None:
    from compound.hosts.deploy import _mounts, _volume_hosts

    project = _project(
        tmp_path,
        """
        services:
          db: {image: local/busybox:latest, volumes: [data:/d]}
          logger: {image: local/busybox:latest, volumes: [logs:/l]}
          worker: {image: local/busybox:latest, volumes: [data:/d, logs:/l]}
          other: {image: local/busybox:latest, volumes: [media:/m]}
        volumes: {data: {}, logs: {}, media: {}}
        """,
    )
    packing = place([project], [host_of(_host(n)) for n in ("h1", "h2", "h3")])
    # members=[]: no volume exists yet anywhere, the planner's choice decides
    where = _volume_hosts(project, _mounts(project), packing, [])
    assert set(where) == {"data", "logs", "media"}
    assert where["data"] == where["logs"]


def test_vm_services_are_planned_where_a_vm_can_run(tmp_path: Path) -> None:
    """Under TCG too (no probed KVM), on nodes labelled compound.vm == yes."""
    from compound.hosts.deploy import build_stack

    project = _project(
        tmp_path,
        """
        services:
          guest: {image: local/busybox:latest, x-compound: {runtime: vm}}
        """,
    )
    no_tun = _host("h2")
    no_tun.facts["tun"] = False
    stack, packing = build_stack(project, [_host("h1"), no_tun], ipvs=False)
    assert [packing.hosts[i].name for i in packing.assignment[0]] == ["h1"]
    assert (
        "node.labels.compound.vm == yes"
        in (stack.data["services"]["guest"]["deploy"]["placement"]["constraints"])
    )


LAUNCHER_CONFIG = {
    "Cmd": ["qemu-system-x86_64", "-machine", "microvm"],
    "HostConfig": {
        "CapDrop": ["ALL"],
        "CapAdd": ["SETUID", "SETGID", "NET_ADMIN", "NET_BIND_SERVICE"],
        "Memory": 448 << 20,
        "NanoCpus": 1_000_000_000,
        "Devices": [{"PathOnHost": "/dev/net/tun"}],
    },
    "Healthcheck": {
        "Test": ["CMD", "/usr/local/bin/compound-launcher", "--health"],
        "Interval": 2_000_000_000,
        "Timeout": 220_000_000_000,
        "Retries": 3,
    },
    "Labels": {
        "io.compound.vm.accel": "tcg",
        "io.compound.vm.run-dir": "/root/.cache/compound/vm/run/shop-db-1.0123abcd",
        "com.docker.compose.service": "db",
    },
}


def test_a_vm_service_becomes_its_launcher(tmp_path: Path) -> None:
    from compound.hosts.vm_services import launcher_service

    project = _project(
        tmp_path,
        """
        services:
          db:
            image: local/busybox:latest
            environment: {PASSWORD: hunter2}
            user: "1000"
            tmpfs: [/scratch]
            volumes: [data:/var/lib/db, {type: tmpfs, target: /cache}]
            healthcheck: {test: ["CMD", "true"]}
            x-compound: {runtime: vm}
        volumes: {data: {}}
        """,
    )
    stack = translate(project, {}, volume_hosts={"data": "h1"})
    entry = stack.data["services"]["db"]
    image = "10.0.0.1:5000/compound-vmdisk@sha256:" + "a" * 64
    out = launcher_service(entry, LAUNCHER_CONFIG, image)
    assert out["image"] == image
    assert out["command"] == LAUNCHER_CONFIG["Cmd"]
    # the guest's settings live in its config, inside the image: not the launcher's
    for key in ("environment", "user", "tmpfs", "entrypoint"):
        assert key not in out
    assert out["cap_drop"] == ["ALL"]
    assert out["cap_add"] == ["SETUID", "SETGID", "NET_ADMIN", "NET_BIND_SERVICE", "MKNOD"]
    assert out["read_only"] is True and "devices" not in out
    assert out["healthcheck"] == {
        "test": ["CMD", "/usr/local/bin/compound-launcher", "--health"],
        "interval": "2000ms",
        "timeout": "220000ms",
        "retries": 3,
    }
    targets = {v["target"]: v for v in out["volumes"]}
    assert targets["/compound/run"] == {"type": "volume", "target": "/compound/run"}
    assert targets["/tmp"]["type"] == "tmpfs"
    # the named volume reaches the guest through the launcher; the tmpfs is the guest's
    assert targets["/compound/volumes/0"]["source"] == "data"
    assert "/cache" not in targets and "/var/lib/db" not in targets
    assert out["deploy"]["resources"]["limits"] == {"memory": str(448 << 20), "cpus": "1.0"}
    # the pin of its local volume and the dnsrr endpoint survive the rewrite
    assert "node.labels.compound.host == h1" in out["deploy"]["placement"]["constraints"]
    assert out["deploy"]["endpoint_mode"] == "dnsrr"
    assert out["labels"]["io.compound.runtime"] == "vm"
    assert out["labels"]["io.compound.vm.accel"] == "tcg"
    # a path on this machine, new per request: it would update the service each deploy
    assert "io.compound.vm.run-dir" not in out["labels"]


def test_a_vm_asking_for_kvm_is_refused_on_the_swarm(tmp_path: Path) -> None:
    from compound.errors import NotSupportedError
    from compound.hosts.vm_services import build_images

    project = _project(
        tmp_path,
        """
        services:
          fast: {image: local/busybox:latest, x-compound: {runtime: vm, vm: {accel: kvm}}}
        """,
    )
    with pytest.raises(NotSupportedError, match=r"fast.*accel: kvm.*TCG"):
        build_images(project, ["fast"], progress=lambda _m: None)


DISK_LAUNCHER_CONFIG = {
    "Cmd": ["qemu-system-x86_64", "-machine", "pc"],
    "HostConfig": {
        "CapDrop": ["ALL"],
        "CapAdd": ["SETUID", "SETGID", "NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"],
        "Memory": 768 << 20,
        "NanoCpus": 2_000_000_000,
    },
    "Labels": {
        "io.compound.vm.accel": "tcg",
        "io.compound.vm.disk": "/srv/erp.qcow2",
        "io.compound.vm.guest-agent": "yes",
        "io.compound.vm.persist-volume": "shop_erp-disk-overlay",
        "io.compound.vm.run-dir": "/root/.cache/compound/vm/run/shop-erp-1.0123abcd",
    },
}


def test_a_persistent_disk_service_keeps_its_overlay_on_a_pinned_local_volume(
    tmp_path: Path,
) -> None:
    """Its overlay volume is declared like the project's own, mounted where
    the launcher keeps the overlay, and pins the service with the warning
    every local volume gets; a disk without persistent: true gets none."""
    from compound.hosts.deploy import build_stack
    from compound.hosts.disk_overlays import with_disk_overlays
    from compound.hosts.vm_services import launcher_service

    (tmp_path / "erp.qcow2").write_bytes(b"x")
    project = _project(
        tmp_path,
        """
        services:
          erp:
            x-compound: {runtime: vm, vm: {disk: ./erp.qcow2, persistent: true}}
          scratch:
            x-compound: {runtime: vm, vm: {disk: ./erp.qcow2}}
        """,
    )
    with_overlay = with_disk_overlays(project)
    vol = with_overlay.volumes["erp-disk-overlay"]
    assert vol.name == "shop_erp-disk-overlay"
    assert vol.labels == {"io.compound.vm.disk-overlay-of": "erp"}
    assert with_overlay.services["scratch"].volumes == ()
    assert project.volumes == {}  # the project itself is left as it was
    # where the volume lives decides: a fresh one goes where the planner puts erp
    stack = translate(
        with_overlay, {}, volume_hosts={"erp-disk-overlay": "h2"}
    )  # what build_stack passes once _volume_hosts chose
    erp = stack.data["services"]["erp"]
    assert erp["volumes"] == [
        {"type": "volume", "source": "erp-disk-overlay", "target": "/var/lib/compound/persist"}
    ]
    assert "node.labels.compound.host == h2" in erp["deploy"]["placement"]["constraints"]
    assert stack.pinned == {"erp": "h2"}
    assert any(
        "service erp: pinned to host h2 because local volume 'erp-disk-overlay'" in w
        for w in stack.warnings
    )
    assert stack.data["volumes"]["erp-disk-overlay"]["name"] == "shop_erp-disk-overlay"
    # the launcher mounts it where launcher.sh keeps the overlay, not as a guest share
    out = launcher_service(erp, DISK_LAUNCHER_CONFIG, "10.0.0.1:5000/compound-vmdisk@sha256:b")
    targets = {v["target"]: v for v in out["volumes"]}
    assert targets["/var/lib/compound/persist"]["source"] == "erp-disk-overlay"
    assert not any(t.startswith("/compound/volumes") for t in targets)
    assert targets["/compound/run"] == {"type": "volume", "target": "/compound/run"}
    # what exec needs to know about the guest travels with the task's labels
    assert out["labels"]["io.compound.vm.guest-agent"] == "yes"
    assert "io.compound.vm.disk" in out["labels"]
    assert "MKNOD" in out["cap_add"] and "NET_RAW" in out["cap_add"]
    # and build_stack does it all from the file: the disk services are VMs there too
    built, _ = build_stack(project, [_host("h1")], ipvs=False)
    assert "erp-disk-overlay" in built.data["volumes"]
    assert built.pinned == {"erp": "h1"}
    assert (
        "node.labels.compound.vm == yes"
        in (built.data["services"]["scratch"]["deploy"]["placement"]["constraints"])
    )
