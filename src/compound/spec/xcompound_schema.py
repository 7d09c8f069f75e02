"""JSON schema of the service-level ``x-compound`` extension.

    x-compound:
      runtime: container | vm | auto     # default container
      vm:
        memory: 2g | 2147483648          # size string or bytes
        vcpus: 2                         # >= 1
        kernel: compound | debian        # default compound (its own, no modules);
                                         # debian: Debian's generic kernel + modules
        kernel_args: "console=ttyS0"
        accel: auto | kvm | tcg
        net: tap | user                  # default tap: the guest owns the launcher's address;
                                         # user = QEMU's slirp (declared ports only)
        share: auto | virtiofs | 9p      # volumes; auto = virtio-fs, 9p where it cannot run
        disk: ./erp.qcow2                # a legacy VM disk (any format qemu-img reads),
                                         # booted through its own bootloader; no image needed
        persistent: true                 # keep the disk's overlay across recreates
        firmware: auto | bios | uefi     # auto: UEFI when the disk has an EFI system partition
      lb:                                # the load balancer of a replicated service with ports
        mode: http | tcp                 # default http (per request); tcp for other protocols
      hints: {...}                       # free-form; checked by the advisor

Sizes and paths are checked and normalised by the loader, not here.

The top-level ``x-compound`` (``PROJECT_XCOMPOUND_SCHEMA``) holds project settings:

    x-compound:
      target: host | swarm               # default host; swarm: `up`, `down`, `ps`, `logs`,
                                         # `exec`, `history`, `rollback` act on the Swarm
"""

from __future__ import annotations

from typing import Any

RUNTIMES = ("container", "vm", "auto")
ACCELERATORS = ("auto", "kvm", "tcg")
GUEST_KERNELS = ("compound", "debian")
VM_NETS = ("tap", "user")
VM_SHARES = ("auto", "virtiofs", "9p")
VM_FIRMWARES = ("auto", "bios", "uefi")
LB_MODES = ("http", "tcp")
TARGETS = ("host", "swarm")

PROJECT_XCOMPOUND_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {"target": {"type": "string", "enum": list(TARGETS)}},
    "additionalProperties": False,
}

XCOMPOUND_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "properties": {
        "runtime": {"type": "string", "enum": list(RUNTIMES)},
        "vm": {
            "type": ["object", "null"],
            "properties": {
                "memory": {"type": ["string", "integer"]},
                "vcpus": {"type": "integer", "minimum": 1},
                "kernel": {"type": "string", "enum": list(GUEST_KERNELS)},
                "kernel_args": {"type": "string"},
                "accel": {"type": "string", "enum": list(ACCELERATORS)},
                "net": {"type": "string", "enum": list(VM_NETS)},
                "share": {"type": "string", "enum": list(VM_SHARES)},
                "disk": {"type": "string", "minLength": 1},
                "persistent": {"type": "boolean"},
                "firmware": {"type": "string", "enum": list(VM_FIRMWARES)},
            },
            "additionalProperties": False,
        },
        "lb": {
            "type": ["object", "null"],
            "properties": {
                "mode": {"type": "string", "enum": list(LB_MODES)},
                "maxconn": {"type": ["integer", "null"], "minimum": 1},
            },
            "additionalProperties": False,
        },
        "hints": {"type": ["object", "null"]},
    },
    "additionalProperties": False,
}
