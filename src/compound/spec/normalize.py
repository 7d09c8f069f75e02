"""One validated service mapping → ``model.Service``, in long syntax.

Short forms are expanded (ports, volumes, secrets, configs, depends_on,
networks, healthcheck test, env/labels lists), durations become seconds,
sizes bytes, host paths absolute, ``env_file`` is read into
``environment``. Keys the model cannot hold are reported as warnings, never
dropped silently. Problems are recorded in the context, one per bad value.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
import shlex
from collections.abc import Callable
from typing import Any

from compound.errors import SpecError

from . import convert
from .context import Context, Invalid, invalid
from .develop import develop
from .disk_keys import check_disk_service_keys
from .dotenv import parse_dotenv
from .files import exists, is_file, read_text_bounded
from .hints import check_hints
from .model import (
    PULL_POLICY,
    BuildSpec,
    Dependency,
    Deploy,
    DeployResources,
    EngineOptions,
    FileReference,
    Healthcheck,
    LBOptions,
    Logging,
    Placement,
    PortSpec,
    Provider,
    Resources,
    RestartPolicy,
    Service,
    ServiceHook,
    ServiceNetwork,
    Ulimit,
    UpdateConfig,
    VMOptions,
    VolumeMount,
    XCompound,
)
from .nodes import Path
from .shortsyntax import (
    PROTOCOLS,
    SyntaxProblem,
    parse_port,
    parse_volume,
    split_extra_host,
)

# keys the model has no room for: accepted, reported, ignored
IGNORED_KEYS = (
    "credential_spec",
    "pull_refresh_after",
)
_IGNORED_WHY = {
    "credential_spec": "applies to Windows containers only (gMSA); ignored on Linux",
}
# build keys that change what is built and need BuildKit (refused when building)
_BUILD_NEEDS_BUILDKIT = (
    "additional_contexts",
    "entitlements",
    "no_cache_filter",
    "privileged",
    "secrets",
    "ssh",
    "ulimits",
)
# BuildKit's extra outputs: the image built is the same without them
_BUILD_OUTPUTS_ONLY = ("cache_to", "provenance", "sbom")
_REMOTE_CONTEXT = ("https://", "http://", "git://", "ssh://", "github.com/", "git@")
_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
_EXPOSE = re.compile(r"^\d+(-\d+)?(/(tcp|udp|sctp))?$")
_SERVICE_REF = ("network_mode", "ipc", "pid")
_PULL_POLICIES = (
    "always",
    "never",
    "missing",
    "if_not_present",
    "build",
    "refresh",
    "daily",
    "weekly",
)
_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # the current schema's pattern

# Sane maxima, beyond what any one host offers, so a typo fails at `config`
# instead of at `up` (or in a planner asked for a billion instances):
MAX_REPLICAS = 10_000  # per service; a busy Docker host runs a few thousand containers
MAX_VM_MEMORY = 16 << 40  # 16 TiB: more than the largest x86 servers' RAM
MAX_VCPUS = 288  # QEMU's limit for an x86 guest


def _options_map(value: Any) -> dict[str, str]:
    if not value:
        return {}
    return {str(k): convert.scalar_text(v) for k, v in value.items() if v is not None}


def _microseconds(value: Any, path: Path) -> int:
    """cpu_period & co: an integer of microseconds, or a duration ("10ms")."""
    if isinstance(value, str) and not value.strip().isdigit():
        return round(convert.duration(value, path) * 1_000_000)
    return convert.integer(value, path, minimum=0)


def normalize_service(name: str, raw: dict[str, Any], ctx: Context, *, enabled: bool) -> Service:
    """The model of one service; bad values are recorded in ``ctx`` and left at defaults."""
    return _ServiceNormalizer(name, raw, ctx, enabled).build()


class _ServiceNormalizer:
    def __init__(self, name: str, raw: dict[str, Any], ctx: Context, enabled: bool) -> None:
        self.name = name
        self.raw = raw
        self.ctx = ctx
        self.enabled = enabled
        self.base: Path = ("services", name)

    def at(self, *parts: str | int) -> Path:
        return (*self.base, *parts)

    def build(self) -> Service:
        raw = self.raw
        fields: dict[str, Any] = {"name": self.name}
        simple: dict[str, Callable[[Any], Any]] = {
            "image": str,
            "platform": str,
            "network_mode": str,
            "cpuset": str,
            "user": str,
            "working_dir": str,
            "hostname": str,
            "domainname": str,
            "read_only": bool,
            "privileged": bool,
            "tty": bool,
            "stdin_open": bool,
            "init": bool,
            "attach": bool,
            "use_api_socket": bool,
            "stop_signal": str,
            "ipc": str,
            "pid": str,
            "userns_mode": str,
            "cap_add": convert.string_list,
            "cap_drop": convert.string_list,
            "security_opt": convert.string_list,
            "dns": convert.string_list,
            "dns_search": convert.string_list,
            "dns_opt": convert.string_list,
            "group_add": convert.string_list,
            "tmpfs": convert.string_list,
            "profiles": convert.string_list,
        }
        for key, fn in simple.items():
            if raw.get(key) is not None:
                fields[key] = fn(raw[key])

        converters: dict[str, Callable[[Any, Path], Any]] = {
            "build": self.build_spec,
            "command": self.command,
            "entrypoint": self.command,
            "ports": self.ports,
            "expose": self.expose,
            "volumes": self.volumes,
            "healthcheck": self.healthcheck,
            "restart": self.restart,
            "deploy": self.deploy,
            "scale": lambda v, p: convert.integer(v, p, minimum=0, maximum=MAX_REPLICAS),
            "cpus": convert.number,
            "cpu_shares": convert.integer,
            "mem_limit": convert.size,
            "mem_reservation": convert.size,
            "memswap_limit": convert.size,
            "shm_size": convert.size,
            "pids_limit": convert.integer,
            "oom_score_adj": convert.integer,
            "stop_grace_period": convert.duration,
            "labels": convert.strict_map,
            "sysctls": convert.strict_map,
            "extra_hosts": self.extra_hosts,
            "ulimits": self.ulimits,
            "secrets": lambda v, p: self.file_refs(v, p, "/run/secrets"),
            "configs": lambda v, p: self.file_refs(v, p, ""),
            "logging": self.logging,
            "develop": lambda v, p: develop(v, p, self.ctx),
            "devices": self.devices,
            "x-compound": self.x_compound,
            "container_name": self.container_name,
            "pull_policy": self.pull_policy,
            "post_start": lambda v, p: self.hooks(v, p, pre_start=False),
            "pre_stop": lambda v, p: self.hooks(v, p, pre_start=False),
            "pre_start": lambda v, p: self.hooks(v, p, pre_start=True),
            "provider": self.provider,
        }
        for key, conv in converters.items():
            value = raw.get(key)
            if value is None:
                continue
            path = self.at(key)
            result = self.ctx.guarded(path, functools.partial(conv, value, path))
            if result is not None:
                fields[key.replace("-", "_")] = result

        engine = self.ctx.guarded(self.base, self.engine_options)
        if engine is not None:
            fields["engine"] = engine
        labels = self.ctx.guarded(self.at("label_file"), self.label_files)
        if labels:
            fields["labels"] = {**labels, **fields.get("labels", {})}  # `labels` wins
        fields["environment"] = self.ctx.guarded(self.at("environment"), self.environment) or {}
        networks = self.ctx.guarded(self.at("networks"), self.networks)
        if networks is not None:
            fields["networks"] = networks
        depends = self.ctx.guarded(self.at("depends_on"), self.depends_on)
        if depends is not None:
            fields["depends_on"] = depends
        fields["extensions"] = {
            k: v for k, v in raw.items() if k.startswith("x-") and k != "x-compound"
        }
        self.report_unused()
        self.engine_keys_on_a_vm(fields)
        if isinstance(xc := fields.get("x_compound"), XCompound) and xc.vm.disk:
            check_disk_service_keys(self.raw, self.at, self.ctx.warn, self.ctx.problems.add)
        self.check_consistency(fields)
        service: Service | None = self.ctx.guarded(self.base, lambda: Service(**fields))
        return service if service is not None else Service(name=self.name)

    # --- reporting -------------------------------------------------------------

    def engine_keys_on_a_vm(self, fields: dict[str, Any]) -> None:
        xc = fields.get("x_compound")
        engine = fields.get("engine")
        if not isinstance(xc, XCompound) or xc.runtime != "vm" or engine is None:
            return
        if fields.get("use_api_socket"):
            self.ctx.warn(
                self.at("use_api_socket"),
                "applies to containers only: the VM runtime (x-compound.runtime: vm) has no "
                "engine socket to mount into the guest; ignored for this service",
            )
        for key in engine.set_keys():
            self.ctx.warn(
                self.at(key),
                "applies to containers only: the VM runtime (x-compound.runtime: vm) "
                "does not apply it to the guest; ignored for this service",
            )

    def report_unused(self) -> None:
        for key in IGNORED_KEYS:
            if key in self.raw:
                self.ctx.warn(
                    self.at(key), _IGNORED_WHY.get(key, "not supported by compound yet; ignored")
                )
        if "models" in self.raw:
            self.ctx.problems.add(
                self.at("models"),
                "'models' (AI models served by Docker Model Runner, injected as "
                "endpoint variables) is not supported by compound",
                "remove it and set the model endpoint's URL in environment:, "
                "or run this project with docker compose",
            )

    def check_consistency(self, fields: dict[str, Any]) -> None:
        """Rules across fields; each reports on its own so all are seen at once."""
        for check in (
            self.check_image,
            self.check_provider,
            self.check_job,
            self.check_vm_hooks,
            self.check_replicas,
            self.check_resources,
            self.check_network_mode,
        ):
            self.ctx.guarded(self.base, functools.partial(check, fields))

    def check_image(self, _fields: dict[str, Any]) -> None:
        if "provider" in self.raw:
            return  # an external binary delivers it: no image, no instances
        vm = ((self.raw.get("x-compound") or {}).get("vm")) or {}
        if vm.get("disk") and (self.raw.get("image") or self.raw.get("build") is not None):
            invalid(
                self.base,
                f"service {self.name!r} has both a VM disk and an image or build",
                "a disk service boots its own disk: remove image/build, or x-compound.vm.disk",
            )
        if not self.raw.get("image") and self.raw.get("build") is None and not vm.get("disk"):
            invalid(
                self.base,
                f"service {self.name!r} has neither an image nor a build context",
                "add image: NAME, or build: DIRECTORY",
            )

    def check_provider(self, _fields: dict[str, Any]) -> None:
        if "provider" not in self.raw:
            return
        # what would run is the provider's business: keys that shape an
        # instance have nothing to act on (Compose ignores them; say so)
        for key in ("image", "build"):
            if self.raw.get(key) is not None:
                self.ctx.warn(
                    self.at(key),
                    "this service is delivered by its provider (no instance is created); ignored",
                )

    def check_job(self, fields: dict[str, Any]) -> None:
        deploy: Deploy | None = fields.get("deploy")
        if deploy is None or not deploy.mode.endswith("-job"):
            return
        if deploy.mode == "global-job" and deploy.replicas not in (None, 1):
            invalid(
                self.at("deploy", "replicas"),
                "a global-job runs once per host; replicas cannot be set",
                "remove replicas, or use mode: replicated-job",
            )
        if self.raw.get("restart") not in (None, "no"):
            invalid(
                self.at("restart"),
                f"a job ({deploy.mode}) runs to completion: restart: {self.raw['restart']} "
                "would start it again after it completed",
                "use deploy.restart_policy (condition: on-failure, max_attempts: N)"
                ' or restart: "no"',
            )
        policy = deploy.restart_policy
        if policy is not None and policy.condition != "none" and policy.max_attempts is None:
            invalid(
                self.at("deploy", "restart_policy"),
                f"a job ({deploy.mode}) with restart condition {policy.condition!r} needs "
                "max_attempts: `up` waits for the job, and unlimited retries of a failing "
                "one would never end",
                "add max_attempts: N (retries after the first run), or condition: none",
            )

    def check_vm_hooks(self, fields: dict[str, Any]) -> None:
        xc = fields.get("x_compound")
        if not isinstance(xc, XCompound) or xc.runtime != "vm":
            return
        for key in ("post_start", "pre_stop", "pre_start"):
            for i, hook in enumerate(fields.get(key) or ()):
                if hook.privileged:
                    self.ctx.problems.add(
                        self.at(key, i, "privileged"),
                        "a privileged hook is not supported in a VM (x-compound.runtime: vm): "
                        "the guest runs hooks with the service's own capabilities",
                        "remove privileged:, or give the service the capabilities it needs "
                        "(cap_add) or run it as a container",
                    )

    def check_replicas(self, fields: dict[str, Any]) -> None:
        deploy: Deploy | None = fields.get("deploy")
        scale = fields.get("scale")
        replicas = deploy.replicas if deploy is not None else None
        if replicas is not None and scale is not None and scale != replicas:
            invalid(
                self.at("scale"),
                "scale and deploy.replicas are set to different values",
                "keep only one of them",
            )
        count = replicas if replicas is not None else scale
        if fields.get("container_name") and count is not None and count > 1:
            invalid(
                self.at("container_name"),
                f"container_name cannot be used with {count} replicas: "
                "container names must be unique",
                "remove container_name, or run a single replica",
            )

    def check_resources(self, fields: dict[str, Any]) -> None:
        deploy: Deploy | None = fields.get("deploy")
        if deploy is None:
            return
        limits, reservations = deploy.resources.limits, deploy.resources.reservations
        pairs = (
            ("cpus", limits.cpus, "deploy.resources.limits.cpus"),
            ("mem_limit", limits.memory, "deploy.resources.limits.memory"),
            ("mem_reservation", reservations.memory, "deploy.resources.reservations.memory"),
            ("pids_limit", limits.pids, "deploy.resources.limits.pids"),
        )
        for key, deployed, where in pairs:
            own = fields.get(key)
            if own is not None and deployed is not None and own != deployed:
                self.ctx.problems.add(
                    self.at(key),
                    f"{key} and {where} are set to different values",
                    "keep only one of them",
                )

    def check_network_mode(self, _fields: dict[str, Any]) -> None:
        if self.raw.get("network_mode") is not None and self.raw.get("networks"):
            invalid(
                self.at("network_mode"),
                "network_mode and networks cannot be used together",
                "remove one of them",
            )

    # --- fields -------------------------------------------------------------

    def build_spec(self, value: Any, path: Path) -> BuildSpec:
        spec = {"context": value} if isinstance(value, str) else dict(value)
        context = spec.get("context") or "."
        if not context.startswith(_REMOTE_CONTEXT) and "://" not in context:
            context = self.ctx.host_path(context)
        out: dict[str, Any] = {"context": context}
        if spec.get("dockerfile") is not None and spec.get("dockerfile_inline") is not None:
            invalid(
                (*path, "dockerfile_inline"),
                "dockerfile and dockerfile_inline cannot be used together",
            )
        for key in ("dockerfile", "dockerfile_inline", "target", "network"):
            if spec.get(key) is not None:
                out[key] = str(spec[key])
        if spec.get("args") is not None:
            args = convert.key_values(spec["args"], (*path, "args"), missing=self.ctx.lookup)
            out["args"] = {k: v for k, v in args.items() if v is not None}  # unset: dropped
        if spec.get("labels") is not None:
            out["labels"] = convert.strict_map(spec["labels"], (*path, "labels"))
        for key in ("no_cache", "pull"):
            if spec.get(key) is not None:
                out[key] = bool(spec[key])
        if spec.get("shm_size") is not None:
            out["shm_size"] = convert.size(spec["shm_size"], (*path, "shm_size"))
        if spec.get("extra_hosts") is not None:
            out["extra_hosts"] = self.extra_hosts(spec["extra_hosts"], (*path, "extra_hosts"))
        for key in ("tags", "cache_from", "platforms"):
            if spec.get(key) is not None:
                out[key] = convert.string_list(spec[key])
        if spec.get("isolation") is not None:
            out["isolation"] = str(spec["isolation"])
        out["buildkit_only"] = {k: spec[k] for k in _BUILD_NEEDS_BUILDKIT if spec.get(k)}
        for key in _BUILD_OUTPUTS_ONLY:
            if key in spec:
                self.ctx.warn(
                    (*path, key),
                    "needs BuildKit; compound builds with the engine's classic builder, "
                    "which builds the same image without this output; ignored",
                )
        return BuildSpec(**out)

    def command(self, value: Any, path: Path) -> tuple[str, ...]:
        if isinstance(value, list):
            return tuple(convert.scalar_text(v) for v in value)
        try:
            return tuple(shlex.split(str(value)))
        except ValueError as exc:
            invalid(path, f"cannot split the command line: {exc}", "check its quotes")

    def environment(self) -> dict[str, str | None]:
        path = self.at("environment")
        explicit: dict[str, str | None] = {}
        if self.raw.get("environment") is not None:
            explicit = convert.key_values(self.raw["environment"], path, missing=self.ctx.lookup)
        from_files: dict[str, str | None] = {}
        if self.enabled and self.raw.get("env_file") is not None:
            from_files.update(self.env_files(self.raw["env_file"], explicit))
        return {**from_files, **explicit}

    def env_files(self, value: Any, explicit: dict[str, str | None]) -> dict[str, str]:
        entries = [value] if isinstance(value, str) else list(value)
        out: dict[str, str] = {}
        for i, entry in enumerate(entries):
            path = self.at("env_file", i) if not isinstance(value, str) else self.at("env_file")
            spec = {"path": entry} if isinstance(entry, str) else entry
            file = self.ctx.host_path(spec["path"])
            required = spec.get("required", True)
            if not exists(file):
                if required:
                    invalid(
                        path,
                        f"env file not found: {file}",
                        "create it, or mark it `required: false` (long syntax)",
                    )
                continue

            def lookup(key: str) -> str | None:
                found = self.ctx.lookup(key)
                return found if found is not None else explicit.get(key)

            try:
                text = read_text_bounded(file, "env file")
            except SpecError as exc:
                invalid(path, exc.message)
            if spec.get("format") == "raw":
                for line in text.splitlines():
                    if line.strip() and not line.lstrip().startswith("#"):
                        key, _, val = line.partition("=")
                        out[key.strip()] = val
            else:
                out.update(parse_dotenv(text, lookup, file=file, warn=self.ctx.warn_text))
        return out

    def ports(self, value: Any, path: Path) -> tuple[PortSpec, ...]:
        out: list[PortSpec] = []
        for i, item in enumerate(value):
            where = (*path, i)
            try:
                if isinstance(item, dict):
                    out.append(self.long_port(item, where))
                else:
                    for m in parse_port(convert.scalar_text(item)):
                        out.append(
                            PortSpec(
                                target=m.target,
                                published=m.published,
                                host_ip=m.host_ip,
                                protocol=m.protocol,
                            )
                        )
            except SyntaxProblem as exc:
                self.ctx.problems.add(where, exc.message, exc.hint)
            except Invalid as exc:
                self.ctx.report(exc)
        return tuple(out)

    def long_port(self, item: dict[str, Any], path: Path) -> PortSpec:
        if item.get("target") is None:
            invalid(path, "port needs a target (the container port)")
        target = convert.integer(item["target"], (*path, "target"), minimum=0)
        if target > 65535:
            invalid((*path, "target"), f"port {target} is out of range 0-65535")
        published = item.get("published")
        published_text: str | None = None
        if published is not None and published != "":
            published_text = convert.scalar_text(published)
            if not re.fullmatch(r"\d+(-\d+)?", published_text):
                invalid(
                    (*path, "published"),
                    f"{published_text!r} is not a valid published port",
                    "use a port like 8080 or a range like 8000-8010",
                )
        protocol = str(item.get("protocol") or "tcp").lower()
        if protocol not in PROTOCOLS:
            invalid((*path, "protocol"), f"unknown protocol {protocol!r}", "use tcp, udp or sctp")
        mode = item.get("mode") or "ingress"
        if mode not in ("host", "ingress"):
            invalid((*path, "mode"), f"unknown port mode {mode!r}", "use host or ingress")
        host_ip = item.get("host_ip")
        if host_ip is not None:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                invalid((*path, "host_ip"), f"{host_ip!r} is not an IP address")
        return PortSpec(
            target=target,
            published=published_text,
            host_ip=host_ip,
            protocol=protocol,
            mode=mode,
            name=item.get("name"),
            app_protocol=item.get("app_protocol"),
        )

    def expose(self, value: Any, path: Path) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(value):
            text = convert.scalar_text(item)
            if not _EXPOSE.match(text):
                self.ctx.problems.add(
                    (*path, i),
                    f"{text!r} is not a valid port to expose",
                    "use a port like 3000, a range like 8000-8010, optionally with /udp",
                )
                continue
            out.append(text)
        return tuple(out)

    def volumes(self, value: Any, path: Path) -> tuple[VolumeMount, ...]:
        out: list[VolumeMount] = []
        for i, item in enumerate(value):
            where = (*path, i)
            try:
                mount = (
                    self.long_volume(item, where)
                    if isinstance(item, dict)
                    else self.short_volume(str(item), where)
                )
            except SyntaxProblem as exc:
                self.ctx.problems.add(where, exc.message, exc.hint)
                continue
            except Invalid as exc:
                self.ctx.report(exc)
                continue
            if not mount.target.startswith("/"):
                self.ctx.problems.add(
                    where,
                    f"volume target {mount.target!r} must be an absolute path in the container",
                    "write it like /data",
                )
                continue
            out.append(mount)
        return tuple(out)

    def short_volume(self, spec: str, path: Path) -> VolumeMount:
        vol = parse_volume(spec)
        for option in vol.unknown_options:
            self.ctx.warn(path, f"unknown volume option {option!r} ignored")
        source = vol.source
        if vol.type == "bind" and source is not None:
            source = self.ctx.host_path(source)
        return VolumeMount(
            type=vol.type,
            source=source,
            target=_clean_target(vol.target),
            read_only=vol.read_only,
            nocopy=vol.nocopy,
            propagation=vol.propagation,
            selinux=vol.selinux,
            create_host_path=True,
        )

    def long_volume(self, item: dict[str, Any], path: Path) -> VolumeMount:
        kind = item.get("type")
        if kind == "image":
            return self.image_volume(item, path)
        target = item.get("target")
        if not target:
            invalid(path, "volume needs a target (the path in the container)")
        source = item.get("source")
        if kind == "bind":
            if not source:
                invalid(path, "a bind mount needs a source (a path on the host)")
            source = self.ctx.host_path(source)
        elif kind == "tmpfs" and source:
            invalid((*path, "source"), "a tmpfs mount has no source")
        bind = item.get("bind") or {}
        volume = item.get("volume") or {}
        tmpfs = item.get("tmpfs") or {}
        fields: dict[str, Any] = {
            "type": kind,
            "source": source or None,
            "target": _clean_target(target),
            "read_only": bool(item.get("read_only", False)),
            "consistency": item.get("consistency"),
            # as in Compose: a long-syntax bind creates a missing host path only when
            # it has a `bind:` section (where create_host_path defaults to true)
            "create_host_path": bool(bind.get("create_host_path", True))
            if bind
            else kind != "bind",
            "propagation": bind.get("propagation"),
            "selinux": bind.get("selinux"),
            "recursive": bind.get("recursive"),
            "nocopy": bool(volume.get("nocopy", False)),
            "subpath": volume.get("subpath"),
        }
        if tmpfs.get("size") is not None:
            fields["tmpfs_size"] = convert.size(tmpfs["size"], (*path, "tmpfs", "size"))
        if tmpfs.get("mode") is not None:
            fields["tmpfs_mode"] = convert.file_mode(tmpfs["mode"], (*path, "tmpfs", "mode"))
        return VolumeMount(**fields)

    def image_volume(self, item: dict[str, Any], path: Path) -> VolumeMount:
        """An image's files, read-only (`volumes[].type: image`). Docker 20.10 has
        no image mounts, so `up` extracts the image into a cached, labelled
        volume per image id (engine/imagevolume.py) and mounts that read-only."""
        if not item.get("source"):
            invalid(path, "an image volume needs a source (the image to mount)")
        if not item.get("target"):
            invalid(path, "volume needs a target (the path in the container)")
        subpath = (item.get("image") or {}).get("subpath")
        if subpath is not None and (not str(subpath).strip("/") or ".." in str(subpath).split("/")):
            invalid(
                (*path, "image", "subpath"),
                f"image subpath {subpath!r} must be a path inside the image, without '..'",
            )
        if item.get("read_only") is False:
            self.ctx.warn(
                (*path, "read_only"),
                "an image volume is always read-only; read_only: false ignored",
            )
        return VolumeMount(
            type="image",
            source=convert.scalar_text(item["source"]),
            target=_clean_target(item["target"]),
            read_only=True,
            subpath=str(subpath).strip("/") if subpath else None,
        )

    def pull_policy(self, value: Any, path: Path) -> str:
        policy = convert.scalar_text(value)
        if not PULL_POLICY.match(policy):
            close = difflib.get_close_matches(policy, _PULL_POLICIES, n=1)
            invalid(
                path,
                f"pull_policy {policy!r} is not one of {', '.join(_PULL_POLICIES)}, "
                "every_<duration>",
                f"did you mean {close[0]!r}?" if close else "e.g. every_12h, every_1w2d",
            )
        return "missing" if policy == "if_not_present" else policy

    def container_name(self, value: Any, path: Path) -> str:
        name = convert.scalar_text(value)
        if not _CONTAINER_NAME.match(name):
            shown = "empty (an unset variable?)" if not name else repr(name)
            invalid(
                path,
                f"container_name is {shown}: a container name is a letter or digit "
                "followed by letters, digits, '_', '.' or '-'",
                "set the variable, or remove container_name",
            )
        return name

    def engine_options(self) -> EngineOptions:
        """The keys the Docker Engine applies as written (model.EngineOptions)."""
        raw = self.raw
        out: dict[str, Any] = {}
        plain: dict[str, Callable[[Any, Path], Any]] = {
            "annotations": convert.strict_map,
            "cgroup": lambda v, p: str(v),
            "cgroup_parent": lambda v, p: str(v),
            "cpu_count": lambda v, p: convert.integer(v, p, minimum=0),
            "cpu_percent": lambda v, p: convert.integer(v, p, minimum=0, maximum=100),
            "cpu_period": _microseconds,
            "cpu_quota": _microseconds,
            "cpu_rt_period": _microseconds,
            "cpu_rt_runtime": _microseconds,
            "device_cgroup_rules": lambda v, p: convert.string_list(v),
            "external_links": lambda v, p: convert.string_list(v),
            "isolation": lambda v, p: str(v),
            "links": lambda v, p: convert.string_list(v),
            "mac_address": lambda v, p: str(v),
            "mem_swappiness": lambda v, p: convert.integer(v, p, minimum=0, maximum=100),
            "oom_kill_disable": lambda v, p: bool(v),
            "runtime": lambda v, p: str(v),
            "storage_opt": lambda v, p: {str(k): convert.scalar_text(x) for k, x in v.items()},
            "uts": lambda v, p: str(v),
            "volumes_from": lambda v, p: convert.string_list(v),
            "blkio_config": self.blkio_config,
            "gpus": self.gpus,
        }
        for key, conv in plain.items():
            if raw.get(key) is not None:
                out[key] = conv(raw[key], self.at(key))
        return EngineOptions(**out)

    def blkio_config(self, value: Any, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if value.get("weight") is not None:
            out["weight"] = convert.integer(value["weight"], (*path, "weight"), minimum=0)
        for key in ("weight_device",):
            if value.get(key):
                out[key] = [
                    {"path": str(d["path"]), "weight": int(d["weight"])} for d in value[key]
                ]
        for key in ("device_read_bps", "device_write_bps"):
            if value.get(key):
                out[key] = [
                    {"path": str(d["path"]), "rate": convert.size(d["rate"], (*path, key, i))}
                    for i, d in enumerate(value[key])
                ]
        for key in ("device_read_iops", "device_write_iops"):
            if value.get(key):
                out[key] = [
                    {"path": str(d["path"]), "rate": convert.integer(d["rate"], (*path, key, i))}
                    for i, d in enumerate(value[key])
                ]
        return out

    def gpus(self, value: Any, path: Path) -> tuple[dict[str, Any], ...]:
        if value == "all":
            return ({"count": -1, "capabilities": ["gpu"]},)
        out = []
        for item in value:
            entry = {k: v for k, v in dict(item).items() if v is not None}
            if entry.get("count") == "all":
                entry["count"] = -1
            entry.setdefault("capabilities", ["gpu"])
            out.append(entry)
        return tuple(out)

    def label_files(self) -> dict[str, str]:
        value = self.raw.get("label_file")
        if value is None:
            return {}
        entries = [value] if isinstance(value, str) else list(value)
        out: dict[str, str] = {}
        for i, entry in enumerate(entries):
            path = self.at("label_file", i) if not isinstance(value, str) else self.at("label_file")
            file = self.ctx.host_path(str(entry))
            if not exists(file):
                invalid(path, f"label file not found: {file}", "create it, or remove the entry")
            text = read_text_bounded(file, "label file")
            out.update({k: v for k, v in parse_dotenv(text, lambda _k: None, file=file).items()})
        return out

    def networks(self) -> dict[str, ServiceNetwork]:
        value = self.raw.get("networks")
        if not value:
            if self.raw.get("network_mode") is not None:
                return {}
            return {"default": ServiceNetwork()}
        if isinstance(value, list):
            return {str(n): ServiceNetwork() for n in value}
        out: dict[str, ServiceNetwork] = {}
        for key, spec in value.items():
            spec = spec or {}
            path = self.at("networks", key)
            priority = spec.get("priority")
            gw_priority = spec.get("gw_priority")
            out[key] = ServiceNetwork(
                aliases=convert.string_list(spec.get("aliases")),
                ipv4_address=spec.get("ipv4_address"),
                ipv6_address=spec.get("ipv6_address"),
                priority=convert.integer(priority, (*path, "priority"))
                if priority is not None
                else 0,
                mac_address=spec.get("mac_address"),
                link_local_ips=convert.string_list(spec.get("link_local_ips")),
                driver_opts=_options_map(spec.get("driver_opts")),
                interface_name=spec.get("interface_name"),
                gw_priority=convert.integer(gw_priority, (*path, "gw_priority"))
                if gw_priority is not None
                else None,
            )
        return out

    def depends_on(self) -> dict[str, Dependency]:
        value = self.raw.get("depends_on")
        out: dict[str, Dependency] = {}
        if isinstance(value, list):
            out = {str(n): Dependency() for n in value}
        elif isinstance(value, dict):
            for key, spec in value.items():
                spec = spec or {}
                out[key] = Dependency(
                    condition=spec.get("condition", "service_started"),
                    restart=bool(spec.get("restart", False)),
                    required=bool(spec.get("required", True)),
                )
        # sharing another service's namespace means starting after it (Compose does this)
        for key in _SERVICE_REF:
            ref = self.raw.get(key)
            if isinstance(ref, str) and ref.startswith("service:"):
                out.setdefault(ref[len("service:") :], Dependency(restart=True))
        for link in self.raw.get("links") or []:
            target = str(link).split(":", 1)[0]
            out.setdefault(target, Dependency(restart=True))
        return out

    def hooks(self, value: Any, path: Path, *, pre_start: bool) -> tuple[ServiceHook, ...]:
        out: list[ServiceHook] = []
        for i, spec in enumerate(value):
            where = (*path, i)
            fields: dict[str, Any] = {}
            command = spec.get("command")
            if command is not None:
                fields["command"] = self.command(command, (*where, "command"))
            if not fields.get("command") and not pre_start:
                invalid(
                    (*where, "command"),
                    "a hook needs a command",
                    "e.g. command: [sh, -c, 'echo started']",
                )
            for key in ("user", "working_dir", "image"):
                if spec.get(key) is not None:
                    fields[key] = convert.scalar_text(spec[key])
            for key in ("privileged", "per_replica"):
                if spec.get(key) is not None:
                    fields[key] = convert.boolean(spec[key], (*where, key))
            if spec.get("environment") is not None:
                fields["environment"] = convert.key_values(
                    spec["environment"], (*where, "environment"), missing=self.ctx.lookup
                )
            if fields.get("per_replica"):
                invalid(
                    (*where, "per_replica"),
                    "per_replica pre_start hooks are not supported (Compose does not run "
                    "them either yet)",
                    "remove per_replica: the hook runs once before the service's instances",
                )
            out.append(ServiceHook(**fields))
        return tuple(out)

    def provider(self, value: Any, path: Path) -> Provider:
        ptype = convert.scalar_text(value.get("type") or "")
        if not ptype or "/" in ptype or ptype == "compose":
            invalid(
                (*path, "type"),
                f"provider type {ptype!r} is not a command name",
                "name an executable on PATH, or a docker CLI plugin (docker-<type>)",
            )
        options: dict[str, tuple[str, ...]] = {}
        for key, opt in (value.get("options") or {}).items():
            values = opt if isinstance(opt, list) else [opt]
            options[str(key)] = tuple(convert.scalar_text(v) for v in values)
        return Provider(type=ptype, options=options)

    def healthcheck(self, value: Any, path: Path) -> Healthcheck:
        test = value.get("test")
        test_tuple: tuple[str, ...] | None = None
        if isinstance(test, str):
            test_tuple = ("CMD-SHELL", test)
        elif isinstance(test, list) and test:
            test_tuple = tuple(convert.scalar_text(t) for t in test)
            if test_tuple[0] not in ("CMD", "CMD-SHELL", "NONE"):
                invalid(
                    (*path, "test"),
                    "healthcheck test must start with CMD, CMD-SHELL or NONE, "
                    f"not {test_tuple[0]!r}",
                    'e.g. ["CMD", "curl", "-f", "http://localhost"] or a plain shell string',
                )
        disable = bool(value.get("disable", False)) or test_tuple == ("NONE",)
        if disable:
            test_tuple = ("NONE",)
        fields: dict[str, Any] = {"test": test_tuple, "disable": disable}
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if value.get(key) is not None:
                fields[key] = convert.duration(value[key], (*path, key))
        if value.get("retries") is not None:
            fields["retries"] = convert.integer(value["retries"], (*path, "retries"), minimum=0)
        return Healthcheck(**fields)

    def restart(self, value: Any, path: Path) -> str:
        text = str(value)
        if not _RESTART.match(text):
            close = difflib.get_close_matches(
                text, ["no", "always", "on-failure", "unless-stopped"], n=1
            )
            invalid(
                path,
                f"invalid restart policy {text!r}",
                f"did you mean {close[0]!r}?"
                if close
                else "use no, always, on-failure[:N] or unless-stopped",
            )
        return text

    def deploy(self, value: Any, path: Path) -> Deploy:
        fields: dict[str, Any] = {}
        mode = value.get("mode")
        if mode is not None:
            if mode not in ("replicated", "global", "replicated-job", "global-job"):
                invalid(
                    (*path, "mode"),
                    f"deploy mode {mode!r} is not supported by compound",
                    "use replicated, global, replicated-job or global-job",
                )
            fields["mode"] = mode
        if value.get("replicas") is not None:
            fields["replicas"] = convert.integer(
                value["replicas"], (*path, "replicas"), minimum=0, maximum=MAX_REPLICAS
            )
        resources = value.get("resources") or {}
        fields["resources"] = DeployResources(
            limits=self.resources(resources.get("limits") or {}, (*path, "resources", "limits")),
            reservations=self.resources(
                resources.get("reservations") or {}, (*path, "resources", "reservations")
            ),
        )
        for key in ("update_config", "rollback_config"):
            if value.get(key) is not None:
                fields[key] = self.update_config(value[key], (*path, key))
        if value.get("restart_policy") is not None:
            fields["restart_policy"] = self.restart_policy(
                value["restart_policy"], (*path, "restart_policy")
            )
        placement = value.get("placement")
        if placement is not None:
            max_per_node = placement.get("max_replicas_per_node")
            fields["placement"] = Placement(
                constraints=convert.string_list(placement.get("constraints")),
                preferences=tuple(
                    {k: convert.scalar_text(v) for k, v in p.items()}
                    for p in placement.get("preferences") or []
                ),
                max_replicas_per_node=convert.integer(
                    max_per_node, (*path, "placement", "max_replicas_per_node")
                )
                if max_per_node is not None
                else None,
            )
        if value.get("labels") is not None:
            fields["labels"] = convert.strict_map(value["labels"], (*path, "labels"))
        if value.get("endpoint_mode") is not None:
            fields["endpoint_mode"] = str(value["endpoint_mode"])
        return Deploy(**fields)

    def resources(self, value: dict[str, Any], path: Path) -> Resources:
        fields: dict[str, Any] = {}
        if value.get("cpus") is not None:
            fields["cpus"] = convert.number(value["cpus"], (*path, "cpus"))
        if value.get("memory") is not None:
            fields["memory"] = convert.size(value["memory"], (*path, "memory"))
        if value.get("pids") is not None:
            fields["pids"] = convert.integer(value["pids"], (*path, "pids"))
        if value.get("devices"):
            fields["devices"] = tuple(dict(d) for d in value["devices"])
        if value.get("generic_resources"):
            self.ctx.warn(
                (*path, "generic_resources"),
                "applies to Swarm's scheduler only (a node's advertised resources); "
                "a single engine has none to reserve; ignored",
            )
        return Resources(**fields)

    def update_config(self, value: dict[str, Any], path: Path) -> UpdateConfig:
        fields: dict[str, Any] = {}
        if value.get("parallelism") is not None:
            fields["parallelism"] = convert.integer(
                value["parallelism"], (*path, "parallelism"), minimum=0
            )
        for key in ("delay", "monitor"):
            if value.get(key) is not None:
                fields[key] = convert.duration(value[key], (*path, key))
        action = value.get("failure_action")
        if action is not None:
            if action not in ("continue", "rollback", "pause"):
                invalid(
                    (*path, "failure_action"),
                    f"unknown failure_action {action!r}",
                    "use continue, rollback or pause",
                )
            fields["failure_action"] = action
        if value.get("max_failure_ratio") is not None:
            fields["max_failure_ratio"] = convert.number(
                value["max_failure_ratio"], (*path, "max_failure_ratio")
            )
        if value.get("order") is not None:
            fields["order"] = value["order"]
        return UpdateConfig(**fields)

    def restart_policy(self, value: dict[str, Any], path: Path) -> RestartPolicy:
        fields: dict[str, Any] = {}
        condition = value.get("condition")
        if condition is not None:
            if condition not in ("none", "on-failure", "any"):
                invalid(
                    (*path, "condition"),
                    f"unknown restart condition {condition!r}",
                    "use none, on-failure or any",
                )
            fields["condition"] = condition
        for key in ("delay", "window"):
            if value.get(key) is not None:
                fields[key] = convert.duration(value[key], (*path, key))
        if value.get("max_attempts") is not None:
            fields["max_attempts"] = convert.integer(
                value["max_attempts"], (*path, "max_attempts"), minimum=0
            )
        return RestartPolicy(**fields)

    def extra_hosts(self, value: Any, path: Path) -> dict[str, str]:
        out: dict[str, str] = {}
        if isinstance(value, dict):
            for host, ip in value.items():
                if isinstance(ip, list):
                    # several addresses: one /etc/hosts line each (model: comma-separated)
                    ip = ",".join(convert.scalar_text(a) for a in ip)
                out[host] = convert.scalar_text(ip)
            return out
        for i, item in enumerate(value):
            try:
                host, ip = split_extra_host(str(item))
            except SyntaxProblem as exc:
                invalid((*path, i), exc.message, exc.hint)
            out[host] = f"{out[host]},{ip}" if host in out else ip  # a host listed twice
        return out

    def ulimits(self, value: Any, path: Path) -> dict[str, Ulimit]:
        out: dict[str, Ulimit] = {}
        for key, spec in value.items():
            where = (*path, key)
            if isinstance(spec, dict):
                soft = convert.integer(spec.get("soft"), (*where, "soft"))
                hard = convert.integer(spec.get("hard"), (*where, "hard"))
            else:
                soft = hard = convert.integer(spec, where)
            if soft > hard and hard != -1:
                invalid(where, f"soft limit {soft} is above the hard limit {hard}")
            out[key] = Ulimit(soft=soft, hard=hard)
        return out

    def file_refs(self, value: Any, path: Path, default_dir: str) -> tuple[FileReference, ...]:
        out: list[FileReference] = []
        for i, item in enumerate(value):
            where = (*path, i)
            spec = {"source": item} if isinstance(item, str) else dict(item)
            source = spec.get("source")
            if not source:
                self.ctx.problems.add(where, "missing 'source': the name of the top-level entry")
                continue
            target = spec.get("target") or source
            if not target.startswith("/"):
                target = f"{default_dir}/{target}"
            try:
                mode = (
                    convert.file_mode(spec["mode"], (*where, "mode"))
                    if spec.get("mode") is not None
                    else None
                )
            except Invalid as exc:
                self.ctx.report(exc)
                continue
            out.append(
                FileReference(
                    source=source,
                    target=target,
                    uid=None if spec.get("uid") is None else str(spec["uid"]),
                    gid=None if spec.get("gid") is None else str(spec["gid"]),
                    mode=mode,
                )
            )
        return tuple(out)

    def logging(self, value: Any, path: Path) -> Logging:
        options = value.get("options") or {}
        return Logging(
            driver=value.get("driver"),
            options={k: "" if v is None else convert.scalar_text(v) for k, v in options.items()},
        )

    def devices(self, value: Any, path: Path) -> tuple[str, ...]:
        out = []
        for item in value:
            if isinstance(item, dict):
                parts = [item["source"], item.get("target") or item["source"]]
                if item.get("permissions"):
                    parts.append(item["permissions"])
                out.append(":".join(parts))
            else:
                out.append(str(item))
        return tuple(out)

    def x_compound(self, value: Any, path: Path) -> XCompound:
        value = value or {}
        fields: dict[str, Any] = {}
        if value.get("runtime") is not None:
            fields["runtime"] = value["runtime"]
        vm = value.get("vm") or {}
        vm_fields: dict[str, Any] = {}
        if vm.get("memory") is not None:
            vm_fields["memory"] = convert.size(
                vm["memory"], (*path, "vm", "memory"), maximum=MAX_VM_MEMORY
            )
            if vm_fields["memory"] <= 0:
                invalid((*path, "vm", "memory"), "VM memory must be more than 0 bytes")
        if vm.get("vcpus") is not None:
            vm_fields["vcpus"] = convert.integer(
                vm["vcpus"], (*path, "vm", "vcpus"), minimum=1, maximum=MAX_VCPUS
            )
        for key in ("kernel", "kernel_args", "accel", "net", "share", "persistent", "firmware"):
            if vm.get(key) is not None:
                vm_fields[key] = vm[key]
        if vm.get("disk") is not None:
            vm_fields["disk"] = self.ctx.host_path(str(vm["disk"]))
            if value.get("runtime") != "vm":
                invalid(
                    (*path, "vm", "disk"),
                    "a VM disk boots only as a VM",
                    "set x-compound.runtime: vm on this service",
                )
            if not is_file(vm_fields["disk"]):
                invalid(
                    (*path, "vm", "disk"),
                    f"VM disk {vm_fields['disk']} does not exist or is not a file",
                    "give the path of a disk image (qcow2, raw, vmdk, vdi), relative to the"
                    " project directory",
                )
        fields["vm"] = VMOptions(**vm_fields)
        lb = value.get("lb") or {}
        fields["lb"] = LBOptions(**{k: v for k, v in lb.items() if v is not None})
        hints = dict(value.get("hints") or {})
        problems: list[tuple[Path, str, str | None]] = []
        # validated here, with the position of every bad value (the advisor reads
        # them typed and never re-reads the files); kept as written for the hash
        check_hints(hints, self.name, lambda p, msg, hint=None: problems.append((p, msg, hint)))
        for where, message, hint in problems:
            self.ctx.problems.add(where, message, hint)
        fields["hints"] = hints
        return XCompound(**fields)


def _clean_target(target: str) -> str:
    cleaned = os.path.normpath(target)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned
