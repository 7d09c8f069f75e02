"""VMDriver end to end: a project whose `web` service is a VM (busybox httpd
serving a named volume, published port) and whose `client` service is a
container on the same project network: the container reaches the VM by its
service name, exec runs inside the VM as the service, stop gives 143."""

from __future__ import annotations

import io
import time
import urllib.request
from typing import Any

import docker
import pytest

from compound.engine.resources import ensure_network, ensure_volume
from compound.runtimes.container import ContainerDriver
from compound.runtimes.vm.driver import LABEL_VM_KERNEL, VMDriver
from compound.spec.model import PortSpec, Service, VMOptions, VolumeMount, XCompound

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
def test_vm_service_beside_a_container(
    engine: docker.DockerClient, busybox_image: str, make_project: Any
) -> None:
    web = Service(
        name="web",
        image=busybox_image,
        command=("httpd", "-f", "-v", "-p", "80", "-h", "/www"),
        volumes=(VolumeMount(type="volume", source="site", target="/www"),),
        ports=(PortSpec(target=80),),
        environment={"GREETING": "it's a VM"},
        x_compound=XCompound(runtime="vm"),
    )
    client = Service(name="client", image=busybox_image, command=("sleep", "600"))
    project = make_project(web, client, volumes=("site",))
    for net in project.networks.values():
        ensure_network(engine, project, net)
    for vol in project.volumes.values():
        ensure_volume(engine, project, vol)
    engine.containers.run(
        busybox_image,
        ["sh", "-c", "echo hello-from-vm > /v/index.html"],
        volumes={project.volumes["site"].name: {"bind": "/v"}},
        remove=True,
    )

    out, err = io.BytesIO(), io.BytesIO()
    vms = VMDriver(engine, stdout=out, stderr=err)
    containers = ContainerDriver(engine)
    image_id = vms.prepare(project, web)
    assert image_id.startswith("sha256:")
    vm = vms.create(project, web, 1, web.config_hash())
    assert vm.runtime == "vm"
    vms.start(vm)
    ct_image = containers.prepare(project, client)
    assert ct_image
    ct = containers.create(project, client, 1, client.config_hash())
    containers.start(ct)

    # The container reaches the VM by service name through Docker's DNS.
    fetch = (
        "ip=$(nslookup web | awk '/^Address: /{print $2}' | tail -n 1); "
        "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 $ip 80"
    )
    deadline = time.monotonic() + 90
    text = ""
    while time.monotonic() < deadline:
        _, answer, _ = containers.exec_capture(ct, ["sh", "-c", fetch])
        text = answer.decode(errors="replace")
        if "hello-from-vm" in text:
            break
        time.sleep(0.5)
    assert "200 OK" in text and "hello-from-vm" in text, vms.console(vm)[-2000:]

    # The published port on the host reaches the guest too.
    inst = vms.inspect(vm.id)
    assert inst.runtime == "vm" and inst.details["accel"] in ("kvm", "tcg")
    port = next(p.host_port for p in inst.ports if p.target == 80)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
        assert r.read() == b"hello-from-vm\n"

    # exec runs in the guest as the service: its env, its root filesystem.
    assert vms.exec(vm, ["sh", "-c", 'echo "$GREETING"; cat /www/index.html; exit 4']) == 4
    assert out.getvalue() == b"it's a VM\nhello-from-vm\n"
    assert "COMPOUND-START" in vms.console(vm)

    vms.stop(vm, grace=30)
    assert vms.wait(vm, timeout=30) == 143
    logs = [line.text for line in vms.logs(vm)]
    assert any("response:200" in t for t in logs)
    vms.remove(vm)
    containers.remove(ct)


@pytest.mark.timeout(300)
def test_each_service_boots_the_kernel_it_asks_for(
    engine: docker.DockerClient, busybox_image: str, make_project: Any
) -> None:
    """compound's kernel by default; `x-compound: {vm: {kernel: debian}}` boots
    Debian's generic kernel with its modules; the label says which."""
    cmd = ("sh", "-c", "uname -r; grep -c . /proc/modules 2>/dev/null || echo no-modules")
    ours = Service(
        name="ours", image=busybox_image, command=cmd, x_compound=XCompound(runtime="vm")
    )
    debian = Service(
        name="debian",
        image=busybox_image,
        command=cmd,
        x_compound=XCompound(runtime="vm", vm=VMOptions(kernel="debian")),
    )
    project = make_project(ours, debian)
    for net in project.networks.values():
        ensure_network(engine, project, net)
    vms = VMDriver(engine)
    seen: dict[str, tuple[str, list[str]]] = {}
    for svc in (ours, debian):
        vms.prepare(project, svc)
        vm = vms.create(project, svc, 1, svc.config_hash())
        vms.start(vm)
        assert vms.wait(vm, timeout=120) == 0, vms.console(vm)[-2000:]
        label = vms.inspect(vm.id).labels[LABEL_VM_KERNEL]
        seen[svc.name] = (label, [line.text.strip() for line in vms.logs(vm)])
        vms.remove(vm)
    label, lines = seen["ours"]
    assert "compound-" in label and lines[0].endswith("-compound"), seen
    assert lines[1] == "no-modules"  # built without module support: no /proc/modules
    label, lines = seen["debian"]
    assert label.startswith(lines[0]) and lines[0].endswith("-amd64"), seen
    assert int(lines[1]) >= 5  # virtio, ext4, ... loaded by /init
