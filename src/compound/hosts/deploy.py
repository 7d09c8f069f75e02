"""``compound up --swarm`` and its companions: deploy a project to the Swarm
as a stack, deliver its images to the nodes, wait until it converged, and
show, roll back or remove it across nodes."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from compound.engine import Client, connect
from compound.engine.errors import ImageNotFound, NotFound, SDKError
from compound.placement import place
from compound.placement.node_constraints import as_swarm_tasks
from compound.placement.node_constraints import vm_services as vm_service_names
from compound.runtimes.hostops import atomic_write
from compound.spec.model import Project

from . import records, swarm
from .disk_overlays import with_disk_overlays
from .engine import cli_host, client
from .errors import HostError, SwarmError
from .inventory import host_of
from .records import HostRecord
from .stack import Stack, translate

Progress = Callable[[str], None]
NAMESPACE = "com.docker.stack.namespace"
UNSCHEDULABLE_GRACE = 15.0  # seconds a task may wait for a node that fits
POLL = 0.2  # seconds between convergence checks (one API call each)
DETAILS_EVERY = 2.0  # seconds between reads of every task's state and error


def _quiet(_: str) -> None:
    pass


@dataclass
class DeployResult:
    project: str
    stack_file: str
    services: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    pinned: dict[str, str] = field(default_factory=dict)
    images_sent: dict[str, list[str]] = field(default_factory=dict)  # host -> images
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step, in order

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def stacks_dir() -> Any:
    d = records.hosts_dir() / "stacks"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def docker_cli(manager: HostRecord, args: list[str], *, timeout: float = 600) -> str:
    """The docker CLI against the host's engine (engine.cli_host)."""
    proc = subprocess.run(
        ["docker", "--host", cli_host(manager), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise HostError(
            manager.name, f"docker {args[0]} {args[1] if len(args) > 1 else ''}: {tail}"
        )
    return proc.stdout


def ready_members() -> list[tuple[HostRecord, dict[str, Any]]]:
    by_host = {n["host"]: n for n in swarm.nodes()}
    out = []
    for r in swarm.member_hosts():
        node = by_host.get(r.name)
        if node and node["state"] == "ready" and node["availability"] == "active":
            out.append((r, node))
    return out


def _volume_hosts(
    project: Project, stack_services: dict[str, list[str]], packing: Any, members: list[HostRecord]
) -> dict[str, str]:
    """Local volumes: where each lives already, else where the planner put
    the first service that mounts it; volumes one service mounts together
    go to one host."""
    local = {
        key: vol
        for key, vol in project.volumes.items()
        if not vol.external and (vol.driver in (None, "", "local"))
    }
    if not local:
        return {}
    found: dict[str, str] = {}

    def look(r: HostRecord) -> list[tuple[str, str]]:
        try:
            cli = client(r, timeout=30)
            names = {v.name for v in cli.volumes.list()}
        except (HostError, SDKError):
            return []
        return [(k, r.name) for k, v in local.items() if v.name in names]

    with ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
        for pairs in pool.map(look, members):
            for key, host in pairs:
                found.setdefault(key, host)
    # volumes mounted by one service must live on one host: group them
    group: dict[str, str] = {k: k for k in local}

    def root(k: str) -> str:
        while group[k] != k:
            k = group[k]
        return k

    for keys in stack_services.values():
        mine = [k for k in keys if k in local]
        for other in mine[1:]:
            group[root(other)] = root(mine[0])
    members_of: dict[str, list[str]] = {}
    for k in local:
        members_of.setdefault(root(k), []).append(k)
    chosen: dict[str, str] = {}
    for r, keys in members_of.items():
        where = sorted({found[k] for k in keys if k in found})
        if len(where) > 1:
            users = sorted(s for s, ks in stack_services.items() if set(ks) & set(keys))
            raise SwarmError(
                f"services {', '.join(users)} need volumes {', '.join(sorted(keys))} together, "
                f"but they already live on different hosts ({', '.join(where)})",
                hint="move the data onto one host (`compound volume backup/restore`), "
                "or use a shared volume driver",
            )
        if where:
            chosen[r] = where[0]
            continue
        for i, demand in enumerate(packing.demands):
            uses = set(stack_services.get(demand.service, [])) & set(keys)
            if uses and packing.assignment[i]:
                chosen[r] = packing.hosts[packing.assignment[i][0]].name
                break
    return {k: chosen[root(k)] for k in local if root(k) in chosen}


def _mounts(project: Project) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, svc in project.services.items():
        out[name] = [m.source for m in svc.volumes if m.type == "volume" and m.source]
    return out


def deliver_images(
    images: set[str], members: list[HostRecord], progress: Progress
) -> dict[str, list[str]]:
    """Images the nodes lack, sent from this machine's engine (docker save |
    docker load): no registry needed for images built or imported here."""
    local = connect(timeout=600)
    ids: dict[str, str] = {}
    for ref in sorted(images):
        try:
            ids[ref] = str(local.images.get(ref).id)
        except ImageNotFound:
            ids[ref] = ""
    sent: dict[str, list[str]] = {}

    def one(r: HostRecord) -> tuple[str, list[str]]:
        cli = client(r, timeout=600)
        done = []
        for ref, image_id in ids.items():
            try:
                if str(cli.images.get(ref).id) == image_id or not image_id:
                    continue
            except ImageNotFound:
                if not image_id:
                    raise SwarmError(
                        f"image {ref}: neither this machine nor host {r.name} has it, and no "
                        "registry is configured to pull it from",
                        hint=f"build or pull {ref} here first; compound then sends it to the nodes",
                    ) from None
            progress(f"{r.name}: sending image {ref}")
            # docker-py streams an iterable body; its stubs say bytes only
            cli.images.load(local.images.get(ref).save(named=True))  # type: ignore[arg-type]
            done.append(ref)
        return r.name, done

    with ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
        for host, done in pool.map(one, members):
            if done:
                sent[host] = done
    return sent


def build_stack(
    project: Project, members: list[HostRecord], *, ipvs: bool | None = None
) -> tuple[Stack, Any]:
    """The stack file and the planner's packing; ``ipvs``: whether the
    Swarm's kernel has it (default: as measured on the manager)."""
    project = with_disk_overlays(project)
    # on the Swarm a VM may run under TCG: where the node says compound.vm ==
    # yes (KVM, or /dev/net/tun for TCG), the constraint its service gets
    inventory = [
        replace(h, kvm=h.kvm or h.labels.get(f"{swarm.LABEL_PREFIX}vm") == "yes")
        for h in (host_of(r) for r in members)
    ]
    packing = place([project], inventory)
    if packing.unplaced:
        lines = "; ".join(f"{u.key}: {u.reason}" for u in packing.unplaced)
        raise SwarmError(
            f"the Swarm's hosts cannot run everything: {lines}",
            hint="add hosts (`compound host create`, `compound swarm join`) or lower reservations",
        )
    demands = as_swarm_tasks(list(packing.demands))
    if ipvs is None:
        ipvs = bool(records.load(swarm.load().manager).facts.get("ipvs"))
    stack = translate(
        project,
        demands,
        volume_hosts=_volume_hosts(project, _mounts(project), packing, members),
        ipvs=ipvs,
    )
    return stack, packing


def _vms_as_launchers(
    project: Project,
    stack: Stack,
    vms: list[str],
    manager: HostRecord,
    address: str,
    members: list[HostRecord],
    progress: Progress,
) -> None:
    """VM services become services running their launcher, from their
    containerDisk image in the Swarm's registry, named by digest."""
    if not address:
        raise SwarmError(
            f"the manager {manager.name} is not ready", hint="`compound swarm ls` shows it"
        )
    from . import registry, vm_services  # the VM runtime: imported when a VM is deployed

    built = vm_services.build_images(project, vms, progress=progress)
    # the containerDisks travel to the manager while the registry starts
    with ThreadPoolExecutor(max_workers=1) as pool:
        disks = pool.submit(deliver_images, {tag for _, tag in built.values()}, [manager], progress)
        where = registry.ensure(
            manager,
            address,
            members,
            docker_cli,
            lambda images, hosts: deliver_images(images, hosts, progress),
            progress=progress,
        )
        disks.result()
    services = stack.data["services"]
    for name, (config, tag) in built.items():
        progress(f"{name}: pushing its containerDisk to the Swarm's registry ({where})")
        ref = registry.push(manager, tag, where, docker_cli)
        services[name] = vm_services.launcher_service(services[name], config, ref)
    # a VM's image is inside its containerDisk: the nodes need only the containers'
    stack.images = {str(svc["image"]) for n, svc in services.items() if n not in built}


def label_kernels(manager: HostRecord, packing: Any) -> None:
    """``compound.kernel`` on every node: whose containers may share its
    kernel (its dedicated tenant, else the tenant the planner gave it, else
    none), so tenants never share a node even when Swarm reschedules."""
    mc = client(manager)
    rec = swarm.load()
    for i, host in enumerate(packing.hosts):
        kernel = host.tenant or (packing.kernel_tenant[i] if packing.kernel_tenant else None)
        node_id = rec.nodes.get(host.name)
        if node_id:
            swarm.set_labels(
                mc, host.name, node_id, {f"{swarm.LABEL_PREFIX}kernel": kernel or "none"}
            )


def deploy(project: Project, *, progress: Progress = _quiet, timeout: float = 300) -> DeployResult:
    t0 = mark = time.monotonic()
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 2)
        mark = now

    rec = swarm.load()
    manager = records.load(rec.manager)
    ready = ready_members()
    members = [r for r, _ in ready]
    if not members:
        raise SwarmError("no Swarm node is ready", hint="`compound swarm ls` shows the nodes")
    lap("nodes")
    stack, packing = build_stack(project, members)
    for w in stack.warnings:
        progress(f"WARN {w}")
    lap("plan")
    vms = vm_service_names(list(packing.demands))
    if vms:
        address = next((n["address"] for r, n in ready if r.name == manager.name), "")
        _vms_as_launchers(project, stack, vms, manager, address, members, progress)
        lap("vms")
    # independent round trips to the manager and to every node: side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        labelled = pool.submit(label_kernels, manager, packing)
        sent = deliver_images(stack.images, members, progress)
        labelled.result()
    lap("labels_and_images")
    path = stacks_dir() / f"{project.name}.yaml"
    # libyaml's emitter where present: a tenth of the pure-Python one's time
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(stack.data, Dumper=dumper, sort_keys=False)
    atomic_write(path, text.encode(), 0o600)
    progress(f"docker stack deploy {project.name} (manager {manager.name})")
    docker_cli(
        manager,
        ["stack", "deploy", "--prune", "--resolve-image", "never", "-c", str(path), project.name],
    )
    lap("stack_deploy")
    wait_converged(
        manager, project.name, list(stack.data["services"]), timeout=timeout, progress=progress
    )
    lap("converge")
    result = DeployResult(
        project=project.name,
        stack_file=str(path),
        services=sorted(stack.data["services"]),
        seconds=round(time.monotonic() - t0, 2),
        warnings=stack.warnings,
        pinned=stack.pinned,
        images_sent=sent,
        phases=phases,
    )
    _append_history(
        project.name, {"event": "deploy", "time": time.time(), "images": sorted(stack.images)}
    )
    return result


def _services(mc: Client, project: str) -> list[Any]:
    return list(mc.services.list(filters={"label": f"{NAMESPACE}={project}"}))


def service_status(mc: Client, project: str, *, details: bool = True) -> dict[str, dict[str, Any]]:
    """Per service: desired and running tasks, update state, and (``details``)
    for services not yet converged their tasks' errors and pending reasons.
    One API call when everything runs (``docker service ls`` asks the same),
    two otherwise."""
    services = mc.api.services(  # type: ignore[no-untyped-call]
        filters={"label": f"{NAMESPACE}={project}"}, status=True
    )
    out: dict[str, dict[str, Any]] = {}
    by_id: dict[str, str] = {}
    for svc in services:
        name = svc["Spec"]["Name"][len(project) + 1 :]
        counts = svc.get("ServiceStatus") or {}
        out[name] = {
            "desired": int(counts.get("DesiredTasks", 0)),
            "running": int(counts.get("RunningTasks", 0)),
            "update": (svc.get("UpdateStatus") or {}).get("State"),
            "errors": [],
            "pending": [],
        }
        by_id[svc["ID"]] = name
    if details and any(st["running"] != st["desired"] for st in out.values()):
        hosts = {node: host for host, node in swarm.load().nodes.items()}
        for t in mc.api.tasks(filters={"desired-state": "running"}):  # type: ignore[no-untyped-call]
            name = by_id.get(t.get("ServiceID", ""))
            if name is None:
                continue
            status = t.get("Status") or {}
            if status.get("Err"):
                # which host failed it: an image one node lacks, a node's own fault
                node = t.get("NodeID", "")
                where = hosts.get(node) or (f"node {node[:12]}" if node else "")
                out[name]["errors"].append(
                    f"{status['Err']} (on {where})" if where else status["Err"]
                )
            if status.get("State") == "pending":
                out[name]["pending"].append(status.get("Message", ""))
    return out


def wait_converged(
    manager: HostRecord,
    project: str,
    services: list[str],
    *,
    timeout: float,
    progress: Progress = _quiet,
) -> None:
    mc = client(manager)
    deadline = time.monotonic() + timeout
    status: dict[str, dict[str, Any]] = {}
    unschedulable_since: float | None = None
    next_details = 0.0
    while time.monotonic() < deadline:
        # the services' counts often (one call); why tasks wait, every 2 s
        details = time.monotonic() >= next_details
        if details:
            next_details = time.monotonic() + DETAILS_EVERY
        status = service_status(mc, project, details=details)
        if details:
            # no node satisfies the constraints: waiting will not help
            stuck = any("no suitable node" in m for s in status.values() for m in s["pending"])
            if not stuck:
                unschedulable_since = None
            elif unschedulable_since is None:
                unschedulable_since = time.monotonic()
            elif time.monotonic() - unschedulable_since > UNSCHEDULABLE_GRACE:
                break
        done = all(
            s in status
            and status[s]["running"] == status[s]["desired"]
            and status[s]["update"] not in ("updating", "rollback_started")
            for s in services
        )
        if done:
            return
        time.sleep(POLL)
    status = service_status(mc, project)  # with every task's reason
    try:
        down = [f"{n['host']} ({n['state']})" for n in swarm.nodes() if n["state"] != "ready"]
    except (HostError, SDKError):
        down = []  # the manager itself stopped answering: the services' state is the news
    raise SwarmError(
        not_converged_message(project, services, status, down),
        hint="`compound swarm ps` shows every task and the node it is on",
    )


def not_converged_message(
    project: str, services: list[str], status: dict[str, dict[str, Any]], down: list[str]
) -> str:
    """Why ``project`` did not converge: each waiting service with its tasks'
    errors (naming the host that reported each) and the nodes not ready."""
    bad = []
    for s in services:
        st = status.get(s)
        if st is None:
            bad.append(f"{s}: not created")
        elif st["running"] != st["desired"] or st["update"] in ("updating", "rollback_started"):
            why = "; ".join(dict.fromkeys(st["errors"] + st["pending"])) or (
                st["update"] or "starting"
            )
            if "No such image" in why:
                why += " (no node can pull the image)"
            bad.append(f"{s}: {st['running']}/{st['desired']} running ({why})")
    msg = f"project {project} did not converge: " + "; ".join(bad)
    if down:
        # a node lost during the deploy: its tasks wait for it, or for a node that fits
        msg += "; hosts not ready: " + ", ".join(down)
    return msg


def ps(project: str) -> list[dict[str, Any]]:
    """Every current task of the project, with the host it runs on; tasks
    pinned to a host that is down say that their volume is unavailable."""
    _, mc = swarm.manager_client()
    nodes = {n["id"]: n for n in swarm.nodes()}
    pinned = _pinned_from_stack(project)
    rows = []
    for svc in _services(mc, project):
        name = svc.attrs["Spec"]["Name"][len(project) + 1 :]
        tasks = sorted(
            svc.tasks(filters={"desired-state": "running"}),
            key=lambda t: t.get("Slot", 0),
        )
        for t in tasks:
            node = nodes.get(t.get("NodeID", ""), {})
            note = t["Status"].get("Err") or ""
            if name in pinned and t["Status"]["State"] != "running":
                host = pinned[name]
                down = [n for n in nodes.values() if n["host"] == host and n["state"] != "ready"]
                if down:
                    note = f"volume unavailable: pinned to host {host}, which is {down[0]['state']}"
            rows.append(
                {
                    "service": name,
                    "task": f"{name}.{t.get('Slot', '')}",
                    "host": node.get("host", "-"),
                    "node_state": node.get("state", "-"),
                    "state": t["Status"]["State"],
                    "image": t["Spec"]["ContainerSpec"]["Image"],
                    "note": note,
                }
            )
    return rows


def _pinned_from_stack(project: str) -> dict[str, str]:
    path = stacks_dir() / f"{project}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    out = {}
    for name, svc in (data.get("services") or {}).items():
        for c in ((svc.get("deploy") or {}).get("placement") or {}).get("constraints") or []:
            if c.startswith(f"node.labels.{swarm.LABEL_PREFIX}host == "):
                out[name] = c.rpartition("==")[2].strip()
    return out


def rollback(
    project: str, services: list[str], *, timeout: float = 300, progress: Progress = _quiet
) -> list[str]:
    rec = swarm.load()
    manager = records.load(rec.manager)
    mc = client(manager)
    names = sorted(s.attrs["Spec"]["Name"][len(project) + 1 :] for s in _services(mc, project))
    chosen = services or names
    rolled = []
    for s in chosen:
        if s not in names:
            raise SwarmError(f"project {project} has no service {s!r} on the Swarm")
        svc = mc.services.get(f"{project}_{s}")  # type: ignore[no-untyped-call]
        if not svc.attrs.get("PreviousSpec"):
            progress(f"{s}: no previous version to roll back to")
            continue
        progress(f"{s}: rolling back")
        docker_cli(manager, ["service", "rollback", "--detach", f"{project}_{s}"])
        rolled.append(s)
    wait_converged(manager, project, chosen, timeout=timeout, progress=progress)
    _append_history(project, {"event": "rollback", "time": time.time(), "services": rolled})
    return rolled


def history(project: str) -> list[dict[str, Any]]:
    """Deploys and rollbacks compound made, and each service's current and
    previous image as the Swarm keeps them."""
    events = []
    path = stacks_dir() / f"{project}.history.jsonl"
    if path.exists():
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    _, mc = swarm.manager_client()
    services = []
    for svc in _services(mc, project):
        a = svc.attrs
        prev = (a.get("PreviousSpec") or {}).get("TaskTemplate", {}).get("ContainerSpec", {})
        services.append(
            {
                "service": a["Spec"]["Name"][len(project) + 1 :],
                "version": a["Version"]["Index"],
                "image": a["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
                "previous_image": prev.get("Image"),
                "update": (a.get("UpdateStatus") or {}).get("State"),
                "update_message": (a.get("UpdateStatus") or {}).get("Message"),
            }
        )
    return [{"events": events, "services": sorted(services, key=lambda s: s["service"])}]


def _append_history(project: str, event: dict[str, Any]) -> None:
    path = stacks_dir() / f"{project}.history.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps(event) + "\n")


def logs(project: str, service: str, *, tail: int | str = 100) -> str:
    """What ``service``'s tasks wrote on every node (``tail``: lines per task, or "all")."""
    rec = swarm.load()
    manager = records.load(rec.manager)
    return docker_cli(
        manager,
        ["service", "logs", "--raw", "--tail", str(tail), f"{project}_{service}"],
        timeout=60,
    )


@dataclass(frozen=True)
class ExecTarget:
    """A running task of a service: where it runs and what its container is."""

    host: HostRecord
    container: str
    task: str  # service.slot
    labels: dict[str, str]  # the container's (io.compound.runtime=vm for a VM's launcher)

    @property
    def vm(self) -> bool:
        return self.labels.get("io.compound.runtime") == "vm"


def exec_target(project: str, service: str, slot: int | None = None) -> ExecTarget:
    """A running task of ``service`` (the first, or ``slot``)."""
    rec, mc = swarm.manager_client()
    by_id = {v: k for k, v in rec.nodes.items()}
    try:
        svc = mc.services.get(f"{project}_{service}")  # type: ignore[no-untyped-call]
    except NotFound:
        raise SwarmError(f"project {project} has no service {service!r} on the Swarm") from None
    tasks = sorted(
        (
            t
            for t in svc.tasks(filters={"desired-state": "running"})
            if t["Status"]["State"] == "running"
        ),
        key=lambda t: t.get("Slot", 0),
    )
    if slot is not None:
        tasks = [t for t in tasks if t.get("Slot") == slot]
    if not tasks:
        raise SwarmError(f"service {service} has no running task" + (f" {slot}" if slot else ""))
    task = tasks[0]
    name = f"{service}.{task.get('Slot')}"
    host = by_id.get(task["NodeID"])
    if host is None:
        raise SwarmError(f"task {name} runs on a node compound has no record of")
    return ExecTarget(
        host=records.load(host),
        container=task["Status"]["ContainerStatus"]["ContainerID"],
        task=name,
        labels=dict(task["Spec"]["ContainerSpec"].get("Labels") or {}),
    )


def down(project: str, *, timeout: float = 120) -> None:
    rec = swarm.load()
    manager = records.load(rec.manager)
    docker_cli(manager, ["stack", "rm", project])
    mc = client(manager)
    deadline = time.monotonic() + timeout
    # the stack's network goes once its tasks are gone on every node
    while time.monotonic() < deadline:
        if not _services(mc, project) and not mc.networks.list(
            filters={"label": f"{NAMESPACE}={project}"}
        ):
            return
        time.sleep(0.5)
