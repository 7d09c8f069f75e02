"""``to_compose_dict``: the resolved project as a Compose file (``compound config``).

Shaped like ``docker compose config``: long syntax everywhere, services
sorted, durations as Go duration strings (``1m30s``), sizes as strings of
bytes (``"536870912"``), false and empty values left out, and every ``$`` in
a value written ``$$`` so that loading the output again gives the same
project. The content of secrets and configs read from environment variables
is never included: only the variable name.
"""

from __future__ import annotations

from typing import Any

from .model import (
    BuildSpec,
    Deploy,
    Develop,
    FileObject,
    FileReference,
    Healthcheck,
    Network,
    PortSpec,
    Project,
    Provider,
    Resources,
    RestartPolicy,
    Service,
    ServiceHook,
    ServiceNetwork,
    UpdateConfig,
    Volume,
    VolumeMount,
    XCompound,
)
from .units import format_duration


def to_compose_dict(project: Project) -> dict[str, Any]:
    out: dict[str, Any] = {"name": project.name}
    out["services"] = {name: _service(project.services[name]) for name in sorted(project.services)}
    if project.networks:
        out["networks"] = {k: _network(v) for k, v in sorted(project.networks.items())}
    if project.volumes:
        out["volumes"] = {k: _volume(v) for k, v in sorted(project.volumes.items())}
    if project.secrets:
        out["secrets"] = {k: _file_object(v) for k, v in sorted(project.secrets.items())}
    if project.configs:
        out["configs"] = {k: _file_object(v) for k, v in sorted(project.configs.items())}
    for key, value in sorted(project.extensions.items()):
        out[key] = value
    escaped: dict[str, Any] = _escape(out)
    return escaped


def _escape(value: Any) -> Any:
    """``$`` → ``$$`` in every string value (keys are not interpolated, so not escaped)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape(v) for v in value]
    return value


def _bytes(value: int) -> str:
    return str(value)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` unless the value is None, False or an empty collection (omitempty)."""
    if value is None or value is False:
        return
    if isinstance(value, list | tuple | dict) and not value:
        return
    out[key] = list(value) if isinstance(value, tuple) else value


def _service(s: Service) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.provider is not None:
        out["provider"] = _provider(s.provider)
    _put(out, "image", s.image)
    if s.build is not None:
        out["build"] = _build(s.build)
    _put(out, "pull_policy", s.pull_policy)
    _put(out, "platform", s.platform)
    if s.command is not None:
        out["command"] = list(s.command)
    if s.entrypoint is not None:
        out["entrypoint"] = list(s.entrypoint)
    _put(out, "environment", dict(s.environment))
    _put(out, "ports", [_port(p) for p in s.ports])
    _put(out, "expose", s.expose)
    if s.network_mode is None:
        _put(out, "networks", {k: _service_network(v) for k, v in sorted(s.networks.items())})
    _put(out, "network_mode", s.network_mode)
    _put(out, "volumes", [_mount(v) for v in s.volumes])
    _put(out, "tmpfs", s.tmpfs)
    _put(
        out,
        "depends_on",
        {
            k: {"condition": d.condition, "restart": d.restart, "required": d.required}
            for k, d in sorted(s.depends_on.items())
        },
    )
    if s.healthcheck is not None:
        out["healthcheck"] = _healthcheck(s.healthcheck)
    _put(out, "restart", s.restart)
    deploy = _deploy(s.deploy)
    _put(out, "deploy", deploy)
    _put(out, "scale", s.scale)
    _put(out, "cpus", s.cpus)
    _put(out, "cpu_shares", s.cpu_shares)
    _put(out, "cpuset", s.cpuset)
    for key in ("mem_limit", "mem_reservation", "memswap_limit", "shm_size"):
        value = getattr(s, key)
        if value is not None:
            out[key] = _bytes(value)
    _put(out, "pids_limit", s.pids_limit)
    for key in ("user", "working_dir", "hostname", "domainname", "container_name"):
        _put(out, key, getattr(s, key))
    _put(out, "labels", dict(s.labels))
    for key in ("read_only", "privileged", "tty", "stdin_open"):
        _put(out, key, getattr(s, key))
    for key in ("cap_add", "cap_drop", "devices", "security_opt", "dns", "dns_search", "dns_opt"):
        _put(out, key, getattr(s, key))
    _put(
        out, "ulimits", {k: {"soft": u.soft, "hard": u.hard} for k, u in sorted(s.ulimits.items())}
    )
    _put(out, "sysctls", dict(s.sysctls))
    if s.init is not None:
        out["init"] = s.init
    _put(out, "stop_signal", s.stop_signal)
    if s.stop_grace_period is not None:
        out["stop_grace_period"] = format_duration(s.stop_grace_period)
    _put(out, "secrets", [_file_ref(r) for r in s.secrets])
    _put(out, "configs", [_file_ref(r) for r in s.configs])
    if s.logging is not None:
        logging: dict[str, Any] = {}
        _put(logging, "driver", s.logging.driver)
        _put(logging, "options", dict(s.logging.options))
        out["logging"] = logging
    _put(
        out,
        "extra_hosts",
        {h: ips.split(",") if "," in ips else ips for h, ips in s.extra_hosts.items()},
    )
    for key in ("ipc", "pid", "userns_mode", "group_add", "oom_score_adj", "profiles"):
        _put(out, key, getattr(s, key))
    if not s.attach:
        out["attach"] = False
    _put(out, "use_api_socket", s.use_api_socket)
    for key in ("pre_start", "post_start", "pre_stop"):
        _put(out, key, [_hook(h) for h in getattr(s, key)])
    if s.develop is not None:
        out["develop"] = _develop(s.develop)
    _put_engine(out, s)
    xc = _x_compound(s.x_compound)
    _put(out, "x-compound", xc)
    for key, value in sorted(s.extensions.items()):
        out[key] = value
    return out


def _hook(h: ServiceHook) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "command", h.command)
    for key in ("image", "user", "privileged", "working_dir", "per_replica"):
        _put(out, key, getattr(h, key))
    _put(out, "environment", dict(h.environment))
    return out


def _provider(p: Provider) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type}
    _put(out, "options", {k: v[0] if len(v) == 1 else list(v) for k, v in p.options.items()})
    return out


def _develop(d: Develop) -> dict[str, Any]:
    rules = []
    for r in d.watch:
        rule: dict[str, Any] = {"path": r.path, "action": r.action}
        _put(rule, "target", r.target)
        _put(rule, "ignore", r.ignore)
        _put(rule, "include", r.include)
        _put(rule, "initial_sync", r.initial_sync)
        if r.exec is not None:
            ex: dict[str, Any] = {"command": list(r.exec.command)}
            for key in ("user", "privileged", "working_dir", "environment"):
                _put(ex, key, getattr(r.exec, key))
            rule["exec"] = ex
        rules.append(rule)
    return {"watch": rules}


def _put_engine(out: dict[str, Any], s: Service) -> None:
    for key in s.engine.set_keys():
        value = getattr(s.engine, key)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        out[key] = value


def _build(b: BuildSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"context": b.context}
    if b.dockerfile_inline is not None:
        out["dockerfile_inline"] = b.dockerfile_inline
    else:
        out["dockerfile"] = b.dockerfile
    _put(out, "args", dict(b.args))
    _put(out, "target", b.target)
    _put(out, "labels", dict(b.labels))
    _put(out, "network", b.network)
    _put(out, "tags", b.tags)
    _put(out, "cache_from", b.cache_from)
    _put(out, "isolation", b.isolation)
    _put(out, "platforms", b.platforms)
    for key, value in b.buildkit_only.items():
        out[key] = value
    _put(out, "no_cache", b.no_cache)
    _put(out, "pull", b.pull)
    if b.shm_size is not None:
        out["shm_size"] = _bytes(b.shm_size)
    _put(out, "extra_hosts", dict(b.extra_hosts))
    return out


def _port(p: PortSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": p.mode, "target": p.target}
    _put(out, "published", p.published)
    _put(out, "host_ip", p.host_ip)
    out["protocol"] = p.protocol
    _put(out, "name", p.name)
    _put(out, "app_protocol", p.app_protocol)
    return out


def _service_network(n: ServiceNetwork) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    _put(out, "aliases", n.aliases)
    _put(out, "ipv4_address", n.ipv4_address)
    _put(out, "ipv6_address", n.ipv6_address)
    _put(out, "priority", n.priority or None)
    _put(out, "mac_address", n.mac_address)
    _put(out, "link_local_ips", n.link_local_ips)
    _put(out, "driver_opts", dict(n.driver_opts))
    _put(out, "interface_name", n.interface_name)
    _put(out, "gw_priority", n.gw_priority)
    return out or None


def _mount(v: VolumeMount) -> dict[str, Any]:
    out: dict[str, Any] = {"type": v.type}
    _put(out, "source", v.source)
    out["target"] = v.target
    _put(out, "read_only", v.read_only)
    _put(out, "consistency", v.consistency)
    if v.type == "bind" and (v.create_host_path or v.propagation or v.selinux or v.recursive):
        bind: dict[str, Any] = {"create_host_path": v.create_host_path}
        _put(bind, "propagation", v.propagation)
        _put(bind, "selinux", v.selinux)
        _put(bind, "recursive", v.recursive)
        out["bind"] = bind
    volume: dict[str, Any] = {}
    _put(volume, "nocopy", v.nocopy)
    _put(volume, "subpath", v.subpath)
    _put(out, "image" if v.type == "image" else "volume", volume)
    tmpfs: dict[str, Any] = {}
    if v.tmpfs_size is not None:
        tmpfs["size"] = _bytes(v.tmpfs_size)
    if v.tmpfs_mode is not None:
        tmpfs["mode"] = v.tmpfs_mode
    _put(out, "tmpfs", tmpfs)
    return out


def _healthcheck(h: Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if h.test is not None:
        out["test"] = list(h.test)
    for key in ("interval", "timeout", "start_period", "start_interval"):
        value = getattr(h, key)
        if value is not None:
            out[key] = format_duration(value)
    if h.retries is not None:
        out["retries"] = h.retries
    _put(out, "disable", h.disable)
    return out


def _resources(r: Resources, *, limits: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "cpus", r.cpus)
    if r.memory is not None:
        out["memory"] = _bytes(r.memory)
    if limits:
        _put(out, "pids", r.pids)
    else:
        _put(out, "devices", [dict(d) for d in r.devices])
    return out


def _update(u: UpdateConfig) -> dict[str, Any]:
    return {
        "parallelism": u.parallelism,
        "delay": format_duration(u.delay),
        "failure_action": u.failure_action,
        "monitor": format_duration(u.monitor),
        "max_failure_ratio": u.max_failure_ratio,
        "order": u.order,
    }


def _restart_policy(r: RestartPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {"condition": r.condition}
    if r.delay is not None:
        out["delay"] = format_duration(r.delay)
    _put(out, "max_attempts", r.max_attempts)
    if r.window is not None:
        out["window"] = format_duration(r.window)
    return out


def _deploy(d: Deploy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.mode != "replicated":
        out["mode"] = d.mode
    if d.replicas is not None:
        out["replicas"] = d.replicas
    resources: dict[str, Any] = {}
    _put(resources, "limits", _resources(d.resources.limits, limits=True))
    _put(resources, "reservations", _resources(d.resources.reservations, limits=False))
    _put(out, "resources", resources)
    if d.update_config is not None:
        out["update_config"] = _update(d.update_config)
    if d.rollback_config is not None:
        out["rollback_config"] = _update(d.rollback_config)
    if d.restart_policy is not None:
        out["restart_policy"] = _restart_policy(d.restart_policy)
    placement: dict[str, Any] = {}
    _put(placement, "constraints", d.placement.constraints)
    _put(placement, "preferences", [dict(p) for p in d.placement.preferences])
    _put(placement, "max_replicas_per_node", d.placement.max_replicas_per_node)
    _put(out, "placement", placement)
    _put(out, "labels", dict(d.labels))
    _put(out, "endpoint_mode", d.endpoint_mode)
    return out


def _file_ref(r: FileReference) -> dict[str, Any]:
    out: dict[str, Any] = {"source": r.source, "target": r.target}
    _put(out, "uid", r.uid)
    _put(out, "gid", r.gid)
    if r.mode is not None:
        out["mode"] = r.mode
    return out


def _x_compound(x: XCompound) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if x.runtime != XCompound.model_fields["runtime"].default:  # the default is not written
        out["runtime"] = x.runtime
    vm: dict[str, Any] = {}
    for key in ("memory", "vcpus", "kernel_args"):
        _put(vm, key, getattr(x.vm, key))
    if x.vm.kernel != "compound":
        vm["kernel"] = x.vm.kernel
    if x.vm.accel != "auto":
        vm["accel"] = x.vm.accel
    if x.vm.net != "tap":
        vm["net"] = x.vm.net
    if x.vm.share != "auto":
        vm["share"] = x.vm.share
    _put(vm, "disk", x.vm.disk)
    if x.vm.persistent:
        vm["persistent"] = True
    if x.vm.firmware != "auto":
        vm["firmware"] = x.vm.firmware
    _put(out, "vm", vm)
    lb: dict[str, Any] = {}
    if x.lb.mode != "http":
        lb["mode"] = x.lb.mode
    if x.lb.maxconn is not None:
        lb["maxconn"] = x.lb.maxconn
    if lb:
        out["lb"] = lb
    _put(out, "hints", dict(x.hints))
    return out


def _network(n: Network) -> dict[str, Any]:
    out: dict[str, Any] = {"name": n.name}
    _put(out, "driver", n.driver)
    _put(out, "driver_opts", dict(n.driver_opts))
    _put(out, "external", n.external)
    _put(out, "internal", n.internal)
    _put(out, "attachable", n.attachable)
    _put(out, "enable_ipv6", n.enable_ipv6)
    _put(out, "ipam", dict(n.ipam))
    _put(out, "labels", dict(n.labels))
    return out


def _volume(v: Volume) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v.name}
    _put(out, "driver", v.driver)
    _put(out, "driver_opts", dict(v.driver_opts))
    _put(out, "external", v.external)
    _put(out, "labels", dict(v.labels))
    return out


def _file_object(f: FileObject) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name}
    _put(out, "file", f.file)
    _put(out, "environment", f.environment)
    if f.environment is None:
        _put(out, "content", f.content)  # inline content only: never a variable's value
    _put(out, "external", f.external)
    return out
