"""The launcher container's arguments and the cache keys (no engine used)."""

from __future__ import annotations

import shlex
from pathlib import Path

from docker.types import Mount

from compound.runtimes.vm import accel, launcher_image
from compound.runtimes.vm._util import digest
from compound.runtimes.vm.basedisk import BaseDisk, disk_size
from compound.runtimes.vm.guestconfig import GuestConfig
from compound.runtimes.vm.imageconfig import ImageConfig
from compound.runtimes.vm.initramfs import Initramfs, modules_env
from compound.runtimes.vm.kernel import KernelArtifacts
from compound.runtimes.vm.launcher import (
    VOLUME_CAPS,
    LauncherSpec,
    LauncherVolume,
    container_kwargs,
    effective_setup,
    launcher_conf,
)


def make_spec(tmp_path: Path, **kw: object) -> LauncherSpec:
    k = KernelArtifacts(
        "6.1 (x)",
        "6.1",
        tmp_path / "k/vmlinuz",
        tmp_path / "k/vmlinux",
        tmp_path / "k/modules",
        (),
        tmp_path / "k/config",
    )
    base: dict[str, object] = dict(
        name="proj-db-1",
        image="local/compound-launcher:abc",
        kernel=k,
        initramfs=Initramfs(tmp_path / "initramfs.cpio", "key", 1),
        base=BaseDisk("sha256:1", tmp_path / "1.ext4", 1, ImageConfig()),
        guest=GuestConfig(argv=("true",)),
        run_dir=tmp_path / "run",
    )
    base.update(kw)
    return LauncherSpec(**base)  # type: ignore[arg-type]


def test_container_kwargs(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        guest_ports=((80, "tcp"), (53, "udp")),
        published={"80/tcp": 8080},
        volumes=(LauncherVolume("proj_data", "/data"), LauncherVolume("/etc/x", "/x", True, True)),
        network="proj_default",
        labels={"io.compound.runtime": "vm"},
    )
    kw = container_kwargs(spec)
    assert kw["image"] == "local/compound-launcher:abc"
    mounts: list[Mount] = kw["mounts"]
    by_target = {m["Target"]: m for m in mounts}
    assert by_target["/compound/kernel"]["ReadOnly"] is True
    assert by_target["/compound/base.ext4"]["Source"] == str(tmp_path / "1.ext4")
    assert by_target["/compound/run"]["Source"] == str(tmp_path / "run")
    assert by_target["/compound/volumes/0"]["Type"] == "volume"
    assert by_target["/compound/volumes/1"]["Type"] == "bind"
    assert by_target["/compound/volumes/1"]["ReadOnly"] is True
    # net: tap (default): /dev/net/tun and NET_ADMIN, nothing broader; no /dev/kvm for TCG
    assert kw["devices"] == ["/dev/net/tun:/dev/net/tun:rwm"]
    assert kw["cap_drop"] == ["ALL"]
    assert kw["cap_add"] == ["SETUID", "SETGID", "NET_ADMIN", "NET_BIND_SERVICE", *VOLUME_CAPS]
    assert kw["security_opt"] == ["no-new-privileges:true"] and kw["read_only"] is True
    assert {"privileged", "network_mode"}.isdisjoint(kw)
    cmd: list[str] = kw["command"]
    assert cmd[cmd.index("-kernel") + 1] == "/compound/kernel/vmlinux"
    assert cmd[cmd.index("-initrd") + 1] == "/compound/initramfs"
    # NICs and volumes are the launcher script's: they depend on what it finds
    assert "-netdev" not in cmd and "-fsdev" not in cmd
    assert "share=off" in cmd[cmd.index("-object") + 1]  # 9p (the spec's default share)
    assert kw["ports"] == {"80/tcp": 8080}
    assert kw["network"] == "proj_default"


def test_kvm_gets_the_device(tmp_path: Path) -> None:
    kw = container_kwargs(make_spec(tmp_path, accel="kvm"))
    assert kw["devices"] == ["/dev/kvm:/dev/kvm:rwm", "/dev/net/tun:/dev/net/tun:rwm"]


def test_user_networking_needs_nothing_extra(tmp_path: Path) -> None:
    kw = container_kwargs(make_spec(tmp_path, net="user"))
    assert "devices" not in kw and kw["cap_add"] == ["SETUID", "SETGID"]


def test_launcher_conf(tmp_path: Path) -> None:
    spec = make_spec(
        tmp_path,
        guest_ports=((80, "tcp"), (53, "udp")),
        volumes=(LauncherVolume("proj_data", "/data"), LauncherVolume("/etc/x", "/x", True, True)),
        share="virtiofs",
    )
    # as the launcher's shell reads it
    conf = dict(w.split("=", 1) for w in shlex.split(launcher_conf(spec)))
    assert conf["COMPOUND_NET"] == "tap"
    assert conf["COMPOUND_DEVICE_SUFFIX"] == "device"
    # the slirp NIC (net: user, or the fallback) forwards the declared ports
    assert conf["COMPOUND_SLIRP_NETDEV"] == (
        "user,id=net0,net=10.0.2.0/24,hostfwd=tcp::80-:80,hostfwd=udp::53-:53"
    )
    assert conf["COMPOUND_SHARE"] == "virtiofs"
    # one "tag<TAB>dir<TAB>mode" line per volume
    assert conf["COMPOUND_SHARES"] == "vol0\t/compound/volumes/0\trw\nvol1\t/compound/volumes/1\tro"
    cmd: list[str] = container_kwargs(spec)["command"]
    # virtiofsd maps the guest's RAM: shared memfd, modern virtio-mmio
    assert "share=on" in cmd[cmd.index("-object") + 1]
    assert cmd[cmd.index("-global") + 1] == "virtio-mmio.force-legacy=false"


def test_effective_setup(tmp_path: Path) -> None:
    assert effective_setup(tmp_path) == {}
    (tmp_path / "effective").write_text(
        "net eth0 tap0 02:42:ac:13:00:03 172.19.0.3/16\nnet eth1 tap1 02:42:ac:14:00:02 "
        "172.20.0.2/16\nshare vol0 virtiofs\nshare vol1 9p\n"
    )
    assert effective_setup(tmp_path) == {"network": "tap", "share": "9p, virtiofs"}
    (tmp_path / "effective").write_text("net user (fallback)\n")
    assert effective_setup(tmp_path) == {"network": "user (fallback)"}


def test_cache_keys_are_stable_and_sensitive() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    r = launcher_image.recipe()
    assert digest(r) == digest(launcher_image.recipe())
    assert digest({**r, "script": str(r["script"]) + "\n"}) != digest(r)
    assert accel.boot_id()


def test_modules_env_lists_each_step() -> None:
    env = modules_env()
    assert "MODULES_BASE='virtio_mmio " in env
    assert "MODULES_9P='9pnet_virtio 9p'" in env
    assert "MODULES_VIRTIOFS='virtiofs'" in env


def test_disk_size_has_headroom() -> None:
    size = disk_size(10 << 20, 100)
    assert size % (1 << 20) == 0
    assert size >= (10 << 20) + (512 << 20)
