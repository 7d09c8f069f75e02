"""Facts measured on a host in one round trip: class (``systemd-detect-virt``),
CPUs, memory, OS, kernel, engine version, KVM and /dev/net/tun.

KVM: an existing /dev/kvm proves nothing (nested KVM can hang in the first
vCPU run), so :mod:`compound.hosts.kvmprobe` runs a vCPU there; its answer
is kept in the record with the host's boot id and measured again only after
the host rebooted. A probe that could not run leaves ``kvm: null``, which
the inventory treats as no KVM.
"""

from __future__ import annotations

from typing import Any

from compound.hostfacts import kvm_usable

from . import kvmprobe, ssh
from .records import HostRecord

FACTS_SCRIPT = r"""
echo "cpus=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
echo "mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "virt=$(systemd-detect-virt 2>/dev/null || echo unknown)"
( . /etc/os-release 2>/dev/null && echo "os_name=$PRETTY_NAME" )
echo "kernel=$(uname -r)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
echo "arch=$(uname -m)"
echo "engine=$(docker version --format '{{.Server.Version}}' 2>/dev/null || true)"
[ -c /dev/kvm ] && echo kvm_dev=1 || echo kvm_dev=0
[ -c /dev/net/tun ] && echo tun=1 || echo tun=0
mods="/lib/modules/$(uname -r)"
if [ -e /proc/net/ip_vs ] || find "$mods" -name 'ip_vs.ko*' 2>/dev/null | grep -q .
then echo ipvs=1; else echo ipvs=0; fi
"""


def parse(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def measure(record: HostRecord) -> dict[str, Any]:
    raw = parse(ssh.run(record, FACTS_SCRIPT, timeout=30))
    out = interpret(raw, local=record.address is None)
    known = kvmprobe.cached(record.facts, raw)
    if record.driver == "qemu" and record.machine.get("accel") == "tcg":
        # its /dev/kvm is TCG's emulated SVM/VMX: a VM there would run
        # nested in emulation, slower than TCG on this machine
        known = (False, "a TCG guest: its KVM would be nested in emulation")
    kvm, reason = known if known is not None else kvmprobe.probe(record, raw)
    out.update(kvm=kvm, kvm_reason=reason, kvm_boot_id=raw.get("boot_id", ""))
    return out


def interpret(raw: dict[str, str], *, local: bool) -> dict[str, Any]:
    virt = raw.get("virt", "unknown") or "unknown"
    kvm_dev = raw.get("kvm_dev") == "1"
    kvm: bool | None
    if not kvm_dev:
        kvm, kvm_reason = False, "no /dev/kvm"
    elif local and kvm_usable() is not None:
        kvm = bool(kvm_usable())
        kvm_reason = "boot probe " + ("succeeded" if kvm else "failed (TCG only)")
    else:
        kvm, kvm_reason = None, "/dev/kvm present, not boot-probed"
    try:
        cpus = float(raw.get("cpus", "0"))
    except ValueError:
        cpus = 0.0
    try:
        memory = int(raw.get("mem_kib", "0")) * 1024
    except ValueError:
        memory = 0
    return {
        "class": "bare-metal" if virt == "none" else "virtual",
        "virt": virt,
        "cpus": cpus,
        "memory": memory,
        "os": "linux",
        "os_name": raw.get("os_name", ""),
        "kernel": raw.get("kernel", ""),
        "arch": raw.get("arch", ""),
        "engine": raw.get("engine", ""),
        "kvm": kvm,
        "kvm_reason": kvm_reason,
        "tun": raw.get("tun") == "1",
        "ipvs": raw.get("ipvs") == "1",
    }
