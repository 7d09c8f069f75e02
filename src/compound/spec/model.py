"""The typed, immutable model of a resolved Compose project.

The loader turns files into a normalised dict (long syntax everywhere,
durations in seconds, sizes in bytes, interpolation done, extends and
profiles applied) and then into these models. Everything downstream
(advisor, planner, runtimes) reads only these, never raw YAML.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_EVERY = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
PULL_POLICY = re.compile(
    r"^(always|never|missing|build|if_not_present|refresh|daily|weekly|every_(\d+[wdhms])+)$"
)


# endpoint keys added after compound 0.1's hashes: left out of a hash while unset
_NEW_ENDPOINT_KEYS: dict[str, Any] = {
    "link_local_ips": [],
    "driver_opts": {},
    "interface_name": None,
    "gw_priority": None,
}


_NEW_BUILD_KEYS: dict[str, Any] = {
    "tags": [],
    "cache_from": [],
    "isolation": None,
    "platforms": [],
    "buildkit_only": {},
}


class Frozen(BaseModel):
    # validators are built on first use: a project from the cache (cli/project_cache.py)
    # needs none, and a load builds only those of the parts its files use
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --- service parts ---------------------------------------------------------


class BuildSpec(Frozen):
    context: str  # absolute path
    dockerfile: str = "Dockerfile"  # relative to context, as in Compose
    dockerfile_inline: str | None = None
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    network: str | None = None
    no_cache: bool = False
    pull: bool = False
    shm_size: int | None = None  # bytes
    extra_hosts: dict[str, str] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()  # more names for the built image
    cache_from: tuple[str, ...] = ()
    isolation: str | None = None
    platforms: tuple[str, ...] = ()
    # keys that change what is built but need BuildKit, which the engine's classic
    # /build API (compound's builder) lacks: kept as written; building refuses, naming them
    buildkit_only: dict[str, Any] = Field(default_factory=dict)


class PortSpec(Frozen):
    """One container port; short-syntax ranges are expanded to one per port."""

    target: int
    published: str | None = None  # "8080", "8080-8090" (engine picks), or None (random)
    host_ip: str | None = None
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    mode: Literal["host", "ingress"] = "ingress"
    name: str | None = None
    app_protocol: str | None = None


class ServiceNetwork(Frozen):
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    priority: int = 0
    mac_address: str | None = None
    link_local_ips: tuple[str, ...] = ()
    driver_opts: dict[str, str] = Field(default_factory=dict)
    interface_name: str | None = None
    gw_priority: int | None = None


class VolumeMount(Frozen):
    type: Literal["volume", "bind", "tmpfs", "npipe", "cluster", "image"]
    # volume key (project-level), absolute host path, image reference (type image), or None
    source: str | None = None
    target: str
    read_only: bool = False
    consistency: str | None = None
    # bind options
    create_host_path: bool = True
    propagation: str | None = None
    selinux: str | None = None
    recursive: Literal["enabled", "disabled", "writable", "readonly"] | None = None
    # volume options
    nocopy: bool = False
    subpath: str | None = None
    # tmpfs options
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None


class Dependency(Frozen):
    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = (
        "service_started"
    )
    restart: bool = False
    required: bool = True


class Healthcheck(Frozen):
    test: tuple[str, ...] | None = None  # ("CMD", ...), ("CMD-SHELL", "..."), ("NONE",)
    interval: float | None = None  # seconds
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False


class Resources(Frozen):
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    devices: tuple[dict[str, Any], ...] = ()  # generic device requests (GPU), kept verbatim


class DeployResources(Frozen):
    limits: Resources = Field(default_factory=Resources)
    reservations: Resources = Field(default_factory=Resources)


class UpdateConfig(Frozen):
    parallelism: int = 1
    delay: float = 0.0  # seconds
    failure_action: Literal["continue", "rollback", "pause"] = "pause"
    monitor: float = 0.0  # seconds
    max_failure_ratio: float = 0.0
    order: Literal["start-first", "stop-first"] = "stop-first"


class RestartPolicy(Frozen):
    condition: Literal["none", "on-failure", "any"] = "any"
    delay: float | None = None
    max_attempts: int | None = None
    window: float | None = None


class Placement(Frozen):
    constraints: tuple[str, ...] = ()
    preferences: tuple[dict[str, str], ...] = ()
    max_replicas_per_node: int | None = None


class Deploy(Frozen):
    # the *-job modes run to completion (Swarm jobs): replicas = completions
    mode: Literal["replicated", "global", "replicated-job", "global-job"] = "replicated"
    replicas: int | None = None
    resources: DeployResources = Field(default_factory=DeployResources)
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement = Field(default_factory=Placement)
    labels: dict[str, str] = Field(default_factory=dict)
    endpoint_mode: str | None = None


class ServiceHook(Frozen):
    """One lifecycle hook (post_start, pre_stop, pre_start): a command run in
    the instance (post_start, pre_stop) or in a one-off instance of the
    service before its instances start (pre_start)."""

    command: tuple[str, ...] = ()  # empty: the image's default (pre_start only)
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: dict[str, str | None] = Field(default_factory=dict)
    image: str | None = None  # pre_start only: another image for the one-off
    per_replica: bool = False  # pre_start only: once per replica (refused: not yet)


class Provider(Frozen):
    """A service delivered by an external binary (Compose's provider protocol)."""

    type: str  # an executable on PATH, or the docker CLI plugin docker-<type>
    options: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # --key=value each


class Ulimit(Frozen):
    soft: int
    hard: int


class FileReference(Frozen):
    """A service's use of a top-level secret or config."""

    source: str
    target: str  # absolute path in the container (secrets default /run/secrets/<source>)
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


class Logging(Frozen):
    driver: str | None = None
    options: dict[str, str] = Field(default_factory=dict)


class VMOptions(Frozen):
    memory: int | None = None  # bytes; None = sensible default for the image
    vcpus: int | None = None
    # compound's own guest kernel (built once, everything built in) or
    # Debian's generic one (for images that need its modules)
    kernel: Literal["compound", "debian"] = "compound"
    kernel_args: str | None = None
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    # tap: the guest takes over the launcher's addresses on every network;
    # user: QEMU's slirp NAT with a forward per declared port (the old way).
    net: Literal["tap", "user"] = "tap"
    # How volumes reach the guest: auto = virtio-fs, 9p where it cannot run.
    share: Literal["auto", "virtiofs", "9p"] = "auto"
    # A legacy VM disk (absolute host path after loading): boots its own
    # bootloader instead of an image; see runtimes/vm/legacy.py.
    disk: str | None = None
    persistent: bool = False  # one overlay kept across recreates (a volume)
    firmware: Literal["auto", "bios", "uefi"] = "auto"


class LBOptions(Frozen):
    """How compound's load balancer treats the service's published ports."""

    mode: Literal["http", "tcp"] = "http"
    # concurrent connections per replica; beyond it requests queue in HAProxy
    # instead of overflowing a small server's accept queue (None: no limit)
    maxconn: int | None = None


class XCompound(Frozen):
    """The service-level ``x-compound`` extension."""

    runtime: Literal["container", "vm", "auto"] = "container"
    vm: VMOptions = Field(default_factory=VMOptions)
    lb: LBOptions = Field(default_factory=LBOptions)
    hints: dict[str, Any] = Field(default_factory=dict)  # validated by the advisor


WatchAction = Literal["sync", "rebuild", "restart", "sync+restart", "sync+exec"]


class WatchExec(Frozen):
    """``develop.watch[].exec``: what ``sync+exec`` runs in each instance after a sync."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)


class WatchRule(Frozen):
    """One ``develop.watch`` rule (Compose's develop specification)."""

    path: str  # absolute host path, file or directory
    action: WatchAction
    target: str | None = None  # absolute path in the instance (sync actions)
    ignore: tuple[str, ...] = ()  # gitignore-style, relative to ``path``
    include: tuple[str, ...] = ()  # gitignore-style allow-list, relative to ``path``
    initial_sync: bool = False
    exec: WatchExec | None = None


class Develop(Frozen):
    watch: tuple[WatchRule, ...] = ()


class EngineOptions(Frozen):
    """Keys the Docker Engine applies to a container as written (Compose's
    meaning, values normalised: sizes in bytes, durations in microseconds
    where the engine wants them). A VM's launcher applies none of them; the
    loader warns, naming the runtime."""

    annotations: dict[str, str] = Field(default_factory=dict)
    blkio_config: dict[str, Any] = Field(default_factory=dict)
    cgroup: Literal["host", "private"] | None = None
    cgroup_parent: str | None = None
    cpu_count: int | None = None
    cpu_percent: int | None = None
    cpu_period: int | None = None  # microseconds
    cpu_quota: int | None = None  # microseconds
    cpu_rt_period: int | None = None  # microseconds
    cpu_rt_runtime: int | None = None  # microseconds
    device_cgroup_rules: tuple[str, ...] = ()
    external_links: tuple[str, ...] = ()  # "container[:alias]"
    gpus: tuple[dict[str, Any], ...] = ()  # device requests; count -1: all
    isolation: str | None = None
    links: tuple[str, ...] = ()  # "service[:alias]"
    mac_address: str | None = None
    mem_swappiness: int | None = None
    oom_kill_disable: bool | None = None
    runtime: str | None = None  # the OCI runtime (runc, crun, io.containerd.wasmedge.v1)
    storage_opt: dict[str, str] = Field(default_factory=dict)
    uts: str | None = None
    volumes_from: tuple[str, ...] = ()  # "service[:ro|rw]" or "container:name[:ro|rw]"

    def set_keys(self) -> list[str]:
        """The keys the file set (for a runtime that applies none of them)."""
        defaults = EngineOptions()
        return [k for k in type(self).model_fields if getattr(self, k) != getattr(defaults, k)]


class Service(Frozen):
    name: str
    image: str | None = None
    build: BuildSpec | None = None
    # always | never | missing | build | refresh | daily | weekly | every_<duration>
    pull_policy: str | None = None
    platform: str | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: dict[str, str | None] = Field(default_factory=dict)  # env_file merged in
    ports: tuple[PortSpec, ...] = ()
    expose: tuple[str, ...] = ()
    networks: dict[str, ServiceNetwork] = Field(default_factory=dict)  # project network keys
    network_mode: str | None = None  # host, none, service:x, container:x
    volumes: tuple[VolumeMount, ...] = ()
    tmpfs: tuple[str, ...] = ()
    depends_on: dict[str, Dependency] = Field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    restart: str | None = None  # no, always, on-failure[:N], unless-stopped
    deploy: Deploy = Field(default_factory=Deploy)
    scale: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpuset: str | None = None
    mem_limit: int | None = None  # bytes
    mem_reservation: int | None = None
    memswap_limit: int | None = None
    shm_size: int | None = None
    pids_limit: int | None = None
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    container_name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    devices: tuple[str, ...] = ()  # "host:container[:perms]"
    security_opt: tuple[str, ...] = ()
    ulimits: dict[str, Ulimit] = Field(default_factory=dict)
    sysctls: dict[str, str] = Field(default_factory=dict)
    init: bool | None = None
    stop_signal: str | None = None
    stop_grace_period: float | None = None  # seconds
    secrets: tuple[FileReference, ...] = ()
    configs: tuple[FileReference, ...] = ()
    logging: Logging | None = None
    tty: bool = False
    stdin_open: bool = False
    extra_hosts: dict[str, str] = Field(default_factory=dict)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    ipc: str | None = None
    pid: str | None = None
    userns_mode: str | None = None
    group_add: tuple[str, ...] = ()
    oom_score_adj: int | None = None
    profiles: tuple[str, ...] = ()
    engine: EngineOptions = Field(default_factory=EngineOptions)
    attach: bool = True  # `up` follows this service's logs (what runs is the same either way)
    use_api_socket: bool = False  # the engine's socket mounted at /var/run/docker.sock
    post_start: tuple[ServiceHook, ...] = ()
    pre_stop: tuple[ServiceHook, ...] = ()
    pre_start: tuple[ServiceHook, ...] = ()
    provider: Provider | None = None  # no instances: an external binary delivers it
    develop: Develop | None = None  # `compound watch`'s rules; not what an instance runs
    x_compound: XCompound = Field(default_factory=XCompound)
    extensions: dict[str, Any] = Field(default_factory=dict)  # other x-* keys, verbatim

    @property
    def job(self) -> bool:
        """Its instances run to completion (deploy.mode *-job)."""
        return self.deploy.mode.endswith("-job")

    @property
    def replicas(self) -> int:
        """Instances wanted: deploy.replicas, else scale, else 1 (a global
        service or job: one, on a single host)."""
        if self.provider is not None:
            return 0
        if self.deploy.mode == "global-job":
            return 1
        if self.deploy.replicas is not None:
            return self.deploy.replicas
        if self.scale is not None:
            return self.scale
        return 1

    @property
    def pull_interval(self) -> float | None:
        """Seconds between pulls for a time-based pull_policy (daily, weekly,
        every_<duration>), else None."""
        policy = self.pull_policy or ""
        if policy == "daily":
            return 86400.0
        if policy == "weekly":
            return 7 * 86400.0
        if policy.startswith("every_"):
            total = 0.0
            for number, unit in _EVERY.findall(policy.removeprefix("every_")):
                total += int(number) * _UNIT_SECONDS[unit]
            return total
        return None

    @property
    def runtime(self) -> str:
        return self.x_compound.runtime

    @property
    def fixed_host_ports(self) -> bool:
        """Publishes a port on a fixed host port: two instances cannot both run."""
        return any(p.published and "-" not in p.published for p in self.ports)

    def config_hash(self) -> str:
        """Hash of everything that, when changed, means the instances must be
        recreated. Replica count is excluded: scaling is not a recreate; so are
        the load balancer's options, which change the balancer, not the instances."""
        data = self.model_dump(mode="json", exclude={"scale", "profiles", "attach", "develop"})
        # how instances are replaced or balanced is not what they run: editing
        # the update policy must not itself trigger an update
        for key in ("replicas", "update_config", "rollback_config"):
            data["deploy"].pop(key, None)
        data["x_compound"].pop("lb", None)
        if not data.get("use_api_socket"):
            data.pop("use_api_socket", None)  # unset: the hash of compound 0.1
        for key in ("post_start", "pre_stop", "pre_start", "provider"):
            if not data.get(key):
                data.pop(key, None)  # unset: the hash of a service without hooks stays
        if not self.engine.set_keys():
            data.pop("engine")  # the hashes of services without these keys stay as they were
        if data["build"] is not None:
            for key, empty in _NEW_BUILD_KEYS.items():
                if data["build"].get(key) == empty:
                    data["build"].pop(key, None)  # likewise
        for net in data["networks"].values():
            for key, empty in _NEW_ENDPOINT_KEYS.items():
                if net.get(key) == empty:
                    net.pop(key, None)  # likewise
        for mount in data["volumes"]:
            if mount.get("recursive") is None:
                mount.pop("recursive", None)  # likewise
        vm = data["x_compound"].get("vm") or {}
        for key, empty in (("disk", None), ("persistent", False), ("firmware", "auto")):
            if vm.get(key) == empty:
                vm.pop(key, None)  # a VM that boots an image: its hash stays as it was
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


# --- top-level resources ---------------------------------------------------


class Network(Frozen):
    key: str  # the key in the file
    name: str  # the engine name ({project}_{key} unless `name:` or external)
    driver: str | None = None
    driver_opts: dict[str, str] = Field(default_factory=dict)
    external: bool = False
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    ipam: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class Volume(Frozen):
    key: str
    name: str  # engine name ({project}_{key} unless `name:` or external)
    driver: str | None = None
    driver_opts: dict[str, str] = Field(default_factory=dict)
    external: bool = False
    labels: dict[str, str] = Field(default_factory=dict)


class FileObject(Frozen):
    """A top-level secret or config."""

    key: str
    name: str
    file: str | None = None  # absolute path
    environment: str | None = None  # name of the variable holding the content
    content: str | None = None  # inline content (configs)
    external: bool = False


class Project(Frozen):
    name: str
    working_dir: str  # absolute: the directory of the first compose file
    files: tuple[str, ...]  # absolute paths of the compose files, in merge order
    services: dict[str, Service]
    networks: dict[str, Network] = Field(default_factory=dict)
    volumes: dict[str, Volume] = Field(default_factory=dict)
    secrets: dict[str, FileObject] = Field(default_factory=dict)
    configs: dict[str, FileObject] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)  # resolved variables used
    extensions: dict[str, Any] = Field(default_factory=dict)  # top-level x-* keys
    disabled_services: tuple[str, ...] = ()  # excluded by profiles

    def service(self, name: str) -> Service:
        return self.services[name]

    @property
    def target(self) -> str:
        """Where the project runs: ``host`` (this engine) or ``swarm`` (the
        top-level ``x-compound.target``, checked by the schema)."""
        settings = self.extensions.get("x-compound") or {}
        return str(settings.get("target") or "host")
