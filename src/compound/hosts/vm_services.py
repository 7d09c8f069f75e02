"""VM services on the Swarm: each a service whose tasks run the VM's launcher.

The launcher is the one the single-host VM driver makes (its request comes
from ``VMDriver.launcher_request``: QEMU's argv, capabilities, limits,
healthcheck), rewritten into a stack-file service:

- what the driver bind-mounts from this machine (kernel, initramfs, base
  disk, the run dir's guest config) travels in the service's containerDisk
  image (runtimes/vm/containerdisk.py), pushed to the Swarm's registry
  (registry.py) and named by digest, so every node runs the same bytes;
- the run dir is an anonymous volume per task, seeded from the image;
- devices: Swarm 20.10 services cannot have any, so the launcher makes
  /dev/net/tun itself (CAP_MKNOD; Docker's default device cgroup allows it)
  and QEMU runs under TCG (/dev/kvm cannot be passed, and nested KVM hangs
  on these machines);
- the guest's own settings (environment, user, sysctls, tmpfs...) are in
  its configuration, so the launcher's service drops them.

A VM disk service (``x-compound.vm.disk``, legacy.py) is the same: its
request comes from ``VMDriver.disk_launcher_request``, its containerDisk
carries the disk itself (a read-only base; each task's overlay in its run
dir), the run dir's files include the cloud-init seed. ``persistent: true``
puts the overlay on a named local volume instead (disk_overlays.py), which
pins the service to the node that holds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compound.errors import NotSupportedError
from compound.runtimes.vm.containerdisk import ensure_container_disk, ensure_disk_container_disk
from compound.runtimes.vm.driver import LABEL_VM_RUN_DIR, VMDriver
from compound.runtimes.vm.launcher import IN_RUN, IN_VOLUMES, TMPFS
from compound.runtimes.vm.legacy import IN_PERSIST
from compound.spec.model import Project

Progress = Callable[[str], None]
# Beyond the launcher's own: MKNOD for /dev/net/tun (see the module docstring).
SWARM_CAPS = ("MKNOD",)
# A container's keys that are the guest's business in a VM.
_GUEST_KEYS = (
    "entrypoint",
    "environment",
    "user",
    "working_dir",
    "sysctls",
    "tmpfs",
    "ulimits",
    "init",
    "tty",
    "stdin_open",
    "cap_add",
    "cap_drop",
    "read_only",
    "healthcheck",
)


def _duration(ns: int | None) -> str | None:
    return f"{ns // 1_000_000}ms" if ns else None


def _healthcheck(check: dict[str, Any] | None) -> dict[str, Any] | None:
    if not check:
        return None
    out: dict[str, Any] = {"test": list(check["Test"])}
    for api, key in (
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("StartPeriod", "start_period"),
    ):
        d = _duration(check.get(api))
        if d:
            out[key] = d
    if check.get("Retries"):
        out["retries"] = int(check["Retries"])
    return out


def launcher_service(entry: dict[str, Any], config: dict[str, Any], image: str) -> dict[str, Any]:
    """The stack-file service ``entry`` (as stack.translate made it for a
    container) rewritten to run the launcher whose Engine create request is
    ``config`` (``LauncherRequest.config``) from ``image``."""
    out = {k: v for k, v in entry.items() if k not in _GUEST_KEYS}
    host = config["HostConfig"]
    out["image"] = image
    out["command"] = list(config["Cmd"])
    out["stop_signal"] = "SIGTERM"
    out["cap_drop"] = list(host["CapDrop"])
    out["cap_add"] = [*host["CapAdd"], *(c for c in SWARM_CAPS if c not in host["CapAdd"])]
    out["read_only"] = True
    health = _healthcheck(config.get("Healthcheck"))
    if health:
        out["healthcheck"] = health
    volumes: list[dict[str, Any]] = [
        {"type": "tmpfs", "target": path, "tmpfs": {"size": _size(opts)}}
        for path, opts in TMPFS.items()
    ]
    # the run dir: per task, seeded with the image's config (copy-up)
    volumes.append({"type": "volume", "target": str(IN_RUN)})
    shared = [m for m in entry.get("volumes") or [] if m.get("type") != "tmpfs"]
    # a persistent disk's overlay volume is the launcher's own (disk_overlays.py)
    volumes += [m for m in shared if m.get("target") == str(IN_PERSIST)]
    shared = [m for m in shared if m.get("target") != str(IN_PERSIST)]
    for i, m in enumerate(shared):
        volumes.append({**m, "target": f"{IN_VOLUMES}/{i}"})
    out["volumes"] = volumes
    deploy = dict(out.get("deploy") or {})
    resources = dict(deploy.get("resources") or {})
    limits = dict(resources.get("limits") or {})
    limits["memory"] = str(host["Memory"])
    if host.get("NanoCpus"):
        limits["cpus"] = str(host["NanoCpus"] / 1e9)
    resources["limits"] = limits
    deploy["resources"] = resources
    out["deploy"] = deploy
    labels = dict(out.get("labels") or {})
    # what ran (accelerator, kernel, network); not the run dir, a path on this
    # machine that differs per request (and would update the service each time)
    labels.update(
        {
            k: v
            for k, v in config["Labels"].items()
            if k.startswith("io.compound.vm") and k != LABEL_VM_RUN_DIR
        }
    )
    labels["io.compound.runtime"] = "vm"
    out["labels"] = labels
    return out


def _size(opts: str) -> int:
    for o in opts.split(","):
        if o.startswith("size="):
            v = o[5:]
            mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(v[-1].lower(), 1)
            return int(v.rstrip("kmgKMG")) * mult
    return 16 << 20


def build_images(
    project: Project,
    names: list[str],
    *,
    progress: Progress,
) -> dict[str, tuple[dict[str, Any], str]]:
    """Per VM service: its launcher's Engine create request and its
    containerDisk image (built on this machine, cached by recipe hash)."""
    driver = VMDriver()
    out = {}
    for name in names:
        service = project.services[name]
        if service.x_compound.vm.accel == "kvm":
            raise NotSupportedError(
                f"service {name!r} asks for accel: kvm, but Swarm services cannot be given "
                "/dev/kvm (Docker 20.10): VMs on the Swarm run under TCG",
                hint="use accel: auto, or run it with `compound up` on a host with KVM",
            )

        def say(svc: str, msg: str) -> None:
            progress(f"{svc}: {msg}")

        if service.x_compound.vm.disk:
            hc = service.healthcheck
            if hc and not hc.disable and hc.test and tuple(hc.test[:1]) != ("NONE",):
                progress(
                    f"WARN service {name}: its healthcheck is not run on the Swarm (a disk "
                    "service's check goes through its guest agent, which only `compound up` "
                    "on one host polls); its task counts as running once QEMU runs"
                )
            progress(f"{name}: preparing the VM (its disk as a containerDisk image)")
            driver.prepare(project, service, say)
            # the launcher finds the disk converted to qcow2 (containerdisk.py)
            dreq = driver.disk_launcher_request(
                project, service, 1, "swarm", accel="tcg", disk_format="qcow2"
            )
            disk = ensure_disk_container_disk(
                driver.client,
                str(dreq.config["Image"]),
                dreq.plan.disk,
                dreq.plan.facts.format,
                dreq.image_id,
                dreq.run_files,
                driver.cache_dir,
            )
            out[name] = (dreq.config, disk.tag)
            continue
        progress(f"{name}: preparing the VM (kernel, initramfs, base disk, containerDisk image)")
        driver.prepare(project, service, say)
        req = driver.launcher_request(project, service, 1, "swarm", accel="tcg")
        disk = ensure_container_disk(driver.client, req.spec, driver.cache_dir)
        out[name] = (req.config, disk.tag)
    return out
