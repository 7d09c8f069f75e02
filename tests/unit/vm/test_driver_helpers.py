"""VMDriver's pure parts: guest ports, memory sizing, the launcher request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from compound.runtimes.vm.basedisk import BaseDisk
from compound.runtimes.vm.driver import (
    QEMU_OVERHEAD_MIB,
    VMDriver,
    _guest_ports,
    _memory,
    _vcpus,
)
from compound.runtimes.vm.guestconfig import GuestConfig
from compound.runtimes.vm.imageconfig import ImageConfig
from compound.runtimes.vm.initramfs import Initramfs
from compound.runtimes.vm.kernel import KernelArtifacts
from compound.runtimes.vm.launcher import (
    VOLUME_CAPS,
    LauncherSpec,
    LauncherVolume,
    guest_healthcheck,
)
from compound.spec.model import Service, VMOptions, XCompound

MiB = 1 << 20


def test_guest_ports() -> None:
    assert _guest_ports(["80/tcp", "53/udp", "9/sctp", "8080", "x/tcp", "80/tcp"]) == (
        (53, "udp"),
        (80, "tcp"),
        (8080, "tcp"),
    )


def test_memory_and_vcpus() -> None:
    assert _memory(Service(name="a")) == (256, None)
    assert _memory(Service(name="a", mem_limit=512 * MiB)) == (512, (512 + QEMU_OVERHEAD_MIB) * MiB)
    vm = XCompound(runtime="vm", vm=VMOptions(memory=128 * MiB, vcpus=3))
    assert _memory(Service(name="a", x_compound=vm)) == (128, None)
    assert _vcpus(Service(name="a", x_compound=vm)) == 3
    assert _vcpus(Service(name="a", cpus=1.5)) == 2
    assert _vcpus(Service(name="a")) == 1


def test_launcher_config_keeps_engine_facts_and_drops_process_ones(tmp_path: Path) -> None:
    k = KernelArtifacts(
        "6.1 (x)",
        "6.1",
        tmp_path / "k/vmlinuz",
        tmp_path / "k/vmlinux",
        tmp_path / "k/modules",
        (),
        tmp_path / "k/config",
    )
    spec = LauncherSpec(
        name="p-web-1",
        image="local/compound-launcher:abc",
        kernel=k,
        initramfs=Initramfs(tmp_path / "initramfs.cpio", "key", 1),
        base=BaseDisk("sha256:1", tmp_path / "1.ext4", 1, ImageConfig()),
        guest=GuestConfig(argv=("true",)),
        run_dir=tmp_path / "run",
        accel="kvm",
        volumes=(
            LauncherVolume("p_data", "/data"),
            LauncherVolume("/srv", "/srv", True, True),
            LauncherVolume("", "/anon"),
        ),
    )
    container_request = {
        "Image": "busybox",
        "Cmd": ["httpd"],
        "Env": ["A=1"],
        "User": "www",
        "Hostname": "web",
        "ExposedPorts": {"80/tcp": {}},
        "StopTimeout": 5,
        "Healthcheck": {"Test": ["CMD", "true"]},
        "Labels": {"x": "y"},
        "HostConfig": {
            "RestartPolicy": {"Name": "always"},
            "PortBindings": {"80/tcp": [{}]},
            "NetworkMode": "p_default",
            "CapAdd": ["NET_ADMIN"],
            "Privileged": True,
            "Sysctls": {"a": "b"},
            "Binds": ["/x:/y"],
            "Memory": 1,
        },
    }
    cfg = VMDriver()._launcher_config(container_request, spec, ["qemu"], 700 * MiB)
    assert cfg["Image"] == "local/compound-launcher:abc" and cfg["Cmd"] == ["qemu"]
    assert {"Env", "User", "Healthcheck", "Labels"}.isdisjoint(cfg)
    assert cfg["Hostname"] == "web" and cfg["StopSignal"] == "SIGTERM"
    host = cfg["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "always"} and host["NetworkMode"] == "p_default"
    assert {"Privileged", "Sysctls"}.isdisjoint(host)
    # confined: the service's caps are the guest's business; the launcher keeps
    # only what its network (tap) and volumes need, read-only, no-new-privileges
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] == ["SETUID", "SETGID", "NET_ADMIN", "NET_BIND_SERVICE", *VOLUME_CAPS]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["ReadonlyRootfs"] is True and set(host["Tmpfs"]) == {"/tmp", "/run"}
    assert host["PidsLimit"] == 128 + 3 * 80
    assert host["Memory"] == 700 * MiB  # the service's limit, above guest + overhead
    assert host["NanoCpus"] >= 10**9
    assert f"{tmp_path}/run:/compound/run" in host["Binds"]
    assert "/srv:/compound/volumes/1:ro" in host["Binds"]
    assert host["Mounts"] == [
        {"Type": "volume", "Target": "/compound/volumes/0", "Source": "p_data"},
        {"Type": "volume", "Target": "/compound/volumes/2"},
    ]
    assert [d["PathOnHost"] for d in host["Devices"]] == ["/dev/kvm", "/dev/net/tun"]
    user = VMDriver()._launcher_config(
        container_request, replace(spec, net="user", accel="tcg"), ["qemu"], None
    )
    assert "Devices" not in user["HostConfig"]
    assert user["HostConfig"]["CapAdd"] == ["SETUID", "SETGID", *VOLUME_CAPS]
    # no limit asked: guest RAM + QEMU + one virtiofsd allowance per volume
    assert user["HostConfig"]["Memory"] == (256 + 192 + 3 * 32) * MiB


def test_launcher_healthcheck_runs_the_service_check_in_the_guest(tmp_path: Path) -> None:
    spec = LauncherSpec(
        name="p-web-1",
        image="local/compound-launcher:abc",
        kernel=KernelArtifacts(
            "6.1 (x)",
            "6.1",
            tmp_path / "k/vmlinuz",
            tmp_path / "k/vmlinux",
            tmp_path / "k/modules",
            (),
            tmp_path / "k/config",
        ),
        initramfs=Initramfs(tmp_path / "initramfs.cpio", "key", 1),
        base=BaseDisk("sha256:1", tmp_path / "1.ext4", 1, ImageConfig()),
        guest=GuestConfig(argv=("true",), health=guest_healthcheck(["CMD-SHELL", "curl -f x"])),
        run_dir=tmp_path / "run",
        boot_timeout=100,
    )
    assert spec.guest.health == ("/bin/sh", "-c", "curl -f x")
    check = {"Test": ["CMD-SHELL", "curl -f x"], "Interval": 2 * 10**9, "Retries": 2}
    cfg = VMDriver()._launcher_config({"Healthcheck": check}, spec, ["qemu"], None)
    health = cfg["Healthcheck"]
    assert health["Test"] == ["CMD", "/usr/local/bin/compound-launcher", "--health"]
    assert health["Interval"] == 2 * 10**9 and health["Retries"] == 2
    # the first check waits for the boot: default 30 s + boot + round trip
    assert health["Timeout"] == (30 + 100 + 10) * 10**9
    assert guest_healthcheck(["NONE"]) == () and guest_healthcheck(None) == ()
