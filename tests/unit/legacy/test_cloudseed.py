"""The NoCloud seed of a disk service whose guest has cloud-init: the files
compound writes, the network-config the launcher fills in (its own shell
function, run here), the volume QEMU makes of them (vvfat, read back with
qemu-img and blkid), and the QEMU drive."""

from __future__ import annotations

import json
import mmap
import re
import stat
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

from compound.runtimes.vm import cloudseed
from compound.runtimes.vm.diskread import DiskFacts
from compound.runtimes.vm.legacy import LegacyPlan, guest_hostname, qemu_argv

LAUNCHER = Path(cloudseed.__file__).with_name("launcher.sh")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPOUND_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_the_project_key_is_made_once_private_and_reused(state: Path) -> None:
    key, public = cloudseed.project_key("shop")
    assert key == state / "ssh" / "shop_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert public.startswith("ssh-ed25519 ") and public.endswith(" compound-shop")
    assert cloudseed.project_key("shop") == (key, public)  # not regenerated
    assert not list(key.parent.glob(".keygen-*"))
    # the public half really belongs to the private key
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout.split()[:2]
    assert derived == public.split()[:2]


def test_the_seed_says_hostname_and_key_in_cloud_init_yaml(state: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    seed = cloudseed.write_seed(run, "shop", "compound-shop-erp-1", "erp")
    meta = yaml.safe_load((seed / "meta-data").read_text())
    assert meta == {"instance-id": "compound-shop-erp-1", "local-hostname": "erp"}
    user_text = (seed / "user-data").read_text()
    assert user_text.startswith("#cloud-config\n")
    user = yaml.safe_load(user_text)
    assert user["hostname"] == "erp"
    assert user["ssh_authorized_keys"] == [cloudseed.project_key("shop")[1]]
    assert "@MATCH@" in (seed / "network-config.in").read_text()


def _legacy_seed_function() -> str:
    text = LAUNCHER.read_text()
    m = re.search(r"^legacy_seed\(\) \{\n.*?^\}\n", text, re.S | re.M)
    assert m, "legacy_seed() not found in launcher.sh"
    return m.group(0)


@pytest.mark.parametrize(
    ("mac", "ip", "match"),
    [
        ("02:42:ac:12:00:05", "172.18.0.5", {"macaddress": "02:42:ac:12:00:05"}),
        ("", "", {"name": "e*"}),  # QEMU's user network: no MAC of ours
    ],
)
def test_the_launcher_fills_in_the_guests_nic(
    state: Path, tmp_path: Path, mac: str, ip: str, match: dict[str, str]
) -> None:
    run, st = tmp_path / "run", tmp_path / "state-dir"
    run.mkdir()
    st.mkdir()
    cloudseed.write_seed(run, "shop", "i", "erp")
    script = (
        f"RUN={run} STATE={st}\nSEED_MAC='{mac}' SEED_IP='{ip}'\n"
        + _legacy_seed_function()
        + "legacy_seed\n"
    )
    subprocess.run(["sh", "-c", script], check=True)
    text = (run / "seed/network-config").read_text()
    net = yaml.safe_load(text)
    assert net == {"version": 2, "ethernets": {"nic0": {"match": match, "dhcp4": True}}}
    assert (ip or "its address") in text.splitlines()[0]
    assert (st / "effective").read_text() == f"seed {ip or 'dhcp'}\n"


def test_qemu_makes_a_fat_volume_labelled_cidata_of_the_seed(state: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    seed = cloudseed.write_seed(run, "shop", "compound-shop-erp-1", "erp")
    raw = tmp_path / "seed.raw"
    # the same block driver and options as the QEMU command below
    spec = {"driver": "vvfat", "dir": str(seed), "label": cloudseed.LABEL}
    subprocess.run(
        ["qemu-img", "convert", "-O", "raw", f"json:{json.dumps(spec)}", str(raw)], check=True
    )
    table = json.loads(
        subprocess.run(
            ["sfdisk", "-J", str(raw)], capture_output=True, text=True, check=True
        ).stdout
    )["partitiontable"]
    start = int(table["partitions"][0]["start"]) * 512
    probe = subprocess.run(
        ["blkid", "-p", "-o", "export", "-O", str(start), str(raw)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TYPE=vfat" in probe and "LABEL=cidata" in probe
    with open(raw, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        assert data.find((seed / "user-data").read_bytes()) >= 0  # the files are on it
        assert data.find((seed / "meta-data").read_bytes()) >= 0


def _plan(cloud_init: bool) -> LegacyPlan:
    return LegacyPlan(
        Path("/srv/erp.qcow2"),
        DiskFacts("qcow2", "bios", "Debian 12", True, cloud_init),
        PurePosixPath("/compound/run/state/root.qcow2"),
        None,
    )


def test_the_seed_is_attached_only_when_the_guest_has_cloud_init() -> None:
    with_seed = " ".join(qemu_argv("p-erp-1", "tcg", 1024, 1, _plan(True)))
    assert (
        "if=none,id=seed,driver=vvfat,dir=/compound/run/seed,label=cidata,read-only=on" in with_seed
    )
    assert "virtio-blk-pci,drive=seed" in with_seed
    assert "vvfat" not in " ".join(qemu_argv("p-erp-1", "tcg", 1024, 1, _plan(False)))


def test_the_guest_hostname_is_the_service_or_its_hostname() -> None:
    assert guest_hostname("erp", 1, None) == "erp"
    assert guest_hostname("erp", 2, None) == "erp-2"
    assert guest_hostname("my_erp", 1, None) == "my-erp"
    assert guest_hostname("erp", 1, "billing") == "billing"
