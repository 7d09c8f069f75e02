"""Normalisation of every short syntax into the long-form model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from compound.errors import SpecError
from compound.spec.model import (
    Dependency,
    FileReference,
    Healthcheck,
    PortSpec,
    Service,
    ServiceNetwork,
    Ulimit,
    VolumeMount,
)

from .spec_helpers import Loader, write


def service(load: Loader, body: str, extra: str = "", **kw: object) -> Service:
    lines = "\n".join("    " + line for line in body.strip("\n").splitlines())
    text = f"services:\n  web:\n    image: x\n{lines}\n{extra}"
    found: Service = load(text, **kw).project.services["web"]
    return found


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortSpec(target=80)]),
        ("8080:80", [PortSpec(target=80, published="8080")]),
        (
            "127.0.0.1:8080:80/udp",
            [PortSpec(target=80, published="8080", host_ip="127.0.0.1", protocol="udp")],
        ),
        ("127.0.0.1::80", [PortSpec(target=80, host_ip="127.0.0.1")]),
        ("[::1]:8080:80", [PortSpec(target=80, published="8080", host_ip="::1")]),
        (
            "8000-8001:80-81",
            [PortSpec(target=80, published="8000"), PortSpec(target=81, published="8001")],
        ),
        ("80-81", [PortSpec(target=80), PortSpec(target=81)]),
        ("8000-8010:80", [PortSpec(target=80, published="8000-8010")]),
        ("53:53/SCTP", [PortSpec(target=53, published="53", protocol="sctp")]),
    ],
)
def test_port_short_syntax(load: Loader, spec: str, expected: list[PortSpec]) -> None:
    assert list(service(load, f"ports: [{spec!r}]").ports) == expected


def test_port_number_and_long_syntax(load: Loader) -> None:
    web = service(
        load,
        """
ports:
  - 9000
  - {target: 80, published: 8080, host_ip: 10.0.0.1, protocol: udp, mode: host,
     name: web, app_protocol: http}
  - {target: "443"}
""",
    )
    assert web.ports == (
        PortSpec(target=9000),
        PortSpec(
            target=80,
            published="8080",
            host_ip="10.0.0.1",
            protocol="udp",
            mode="host",
            name="web",
            app_protocol="http",
        ),
        PortSpec(target=443),
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("8080:80:90", "'8080' is not an IP address"),
        ("70000:80", "out of range"),
        ("80-79", "reversed"),
        ("a:80", "invalid host port"),
        ("80/xyz", "unknown protocol"),
        ("1.2.3.4:", "no container port"),
    ],
)
def test_bad_ports(load_error: Callable[..., list[SpecError]], spec: str, message: str) -> None:
    (error,) = load_error(f"services:\n  web:\n    image: x\n    ports: [{spec!r}]\n")
    assert message in error.message
    assert error.location.path == "services.web.ports[0]"


def test_volume_short_syntax(load: Loader, project_dir: Path) -> None:
    web = service(
        load,
        """
volumes:
  - data:/data:ro
  - ./rel:/rel
  - ../up:/up:rw,z
  - ~/cache:/cache
  - /abs:/abs:rw,Z,rslave
  - /anonymous
  - named:/nocopy:nocopy
  - ./x:/trailing/
""",
        "volumes: {data: {}, named: {}}\n",
    )
    home = "/home/tester"
    assert web.volumes == (
        VolumeMount(type="volume", source="data", target="/data", read_only=True),
        VolumeMount(type="bind", source=str(project_dir / "rel"), target="/rel"),
        VolumeMount(type="bind", source=str(project_dir.parent / "up"), target="/up", selinux="z"),
        VolumeMount(type="bind", source=f"{home}/cache", target="/cache"),
        VolumeMount(type="bind", source="/abs", target="/abs", selinux="Z", propagation="rslave"),
        VolumeMount(type="volume", target="/anonymous"),
        VolumeMount(type="volume", source="named", target="/nocopy", nocopy=True),
        VolumeMount(type="bind", source=str(project_dir / "x"), target="/trailing"),
    )


def test_volume_unknown_option_warns(load: Loader) -> None:
    result = load("services:\n  web:\n    image: x\n    volumes: ['/a:/b:fast']\n")
    assert any("unknown volume option 'fast'" in w for w in result.warnings)


def test_volume_long_syntax(load: Loader, project_dir: Path) -> None:
    web = service(
        load,
        """
volumes:
  - {type: bind, source: ./src, target: /src, read_only: true}
  - {type: bind, source: /h, target: /h, bind: {propagation: shared}}
  - {type: tmpfs, target: /t, tmpfs: {size: 1g, mode: "1777"}}
  - {type: volume, source: data, target: /d, volume: {nocopy: true, subpath: sub}}
""",
        "volumes: {data: {}}\n",
    )
    assert web.volumes == (
        VolumeMount(
            type="bind",
            source=str(project_dir / "src"),
            target="/src",
            read_only=True,
            create_host_path=False,
        ),
        VolumeMount(type="bind", source="/h", target="/h", propagation="shared"),
        VolumeMount(type="tmpfs", target="/t", tmpfs_size=1 << 30, tmpfs_mode=0o1777),
        VolumeMount(type="volume", source="data", target="/d", nocopy=True, subpath="sub"),
    )


def test_environment_list_and_map_forms(load: Loader) -> None:
    as_list = service(load, "environment: [A=1, B=, C, D=x=y, UNSET_ONE]", env={"C": "from-env"})
    assert as_list.environment == {
        "A": "1",
        "B": "",
        "C": "from-env",
        "D": "x=y",
        "UNSET_ONE": None,
    }
    as_map = service(load, "environment: {N: 42, F: 1.5, T: true, Z: null, E: ''}", env={"Z": "zz"})
    assert as_map.environment == {"N": "42", "F": "1.5", "T": "true", "Z": "zz", "E": ""}


def test_env_file_forms_and_precedence(load: Loader, project_dir: Path) -> None:
    write(project_dir, "a.env", "A=from-a\nSHARED=a\nREF=${PROJECT_VAR}-${EXPLICIT}\n")
    write(project_dir, "sub/b.env", "SHARED=b\nB='quoted # not comment'\n")
    web = service(
        load,
        """
env_file:
  - a.env
  - path: ./sub/b.env
  - path: ./missing.env
    required: false
environment:
  EXPLICIT: wins
  SHARED: explicit
""",
        env={"PROJECT_VAR": "pv"},
    )
    assert web.environment == {
        "A": "from-a",
        "SHARED": "explicit",
        "REF": "pv-wins",
        "B": "quoted # not comment",
        "EXPLICIT": "wins",
    }
    assert service(load, "env_file: a.env").environment["A"] == "from-a"


def test_env_file_raw_format(load: Loader, project_dir: Path) -> None:
    write(project_dir, "raw.env", "A='kept quotes' $X\n# comment\n")
    web = service(load, "env_file: [{path: raw.env, format: raw}]")
    assert web.environment == {"A": "'kept quotes' $X"}


def test_labels_list_and_map(load: Loader) -> None:
    assert service(load, "labels: [a=1, b, c=]").labels == {"a": "1", "b": "", "c": ""}
    assert service(load, "labels: {a: 1, b: null}").labels == {"a": "1", "b": ""}


def test_command_and_entrypoint(load: Loader) -> None:
    web = service(load, 'command: echo "hello world" \'a b\' c\\ d\nentrypoint: ["/bin/sh", "-c"]')
    assert web.command == ("echo", "hello world", "a b", "c d")
    assert web.entrypoint == ("/bin/sh", "-c")
    assert service(load, "command: []").command == ()
    assert service(load, "entrypoint: ''").entrypoint == ()
    assert service(load, "restart: always").command is None


def test_bad_command_quotes(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services:\n  web:\n    image: x\n    command: echo 'oops\n")
    assert "cannot split the command line" in error.message


def test_healthcheck_forms(load: Loader) -> None:
    assert service(load, "healthcheck: {test: curl -f localhost}").healthcheck == Healthcheck(
        test=("CMD-SHELL", "curl -f localhost")
    )
    hc = service(
        load,
        'healthcheck: {test: [CMD, "true"], interval: 1m30s, timeout: 500ms, retries: 3,'
        ' start_period: 1h2m, start_interval: "0"}',
    ).healthcheck
    assert hc == Healthcheck(
        test=("CMD", "true"),
        interval=90.0,
        timeout=0.5,
        retries=3,
        start_period=3720.0,
        start_interval=0.0,
    )
    assert service(load, "healthcheck: {test: [NONE]}").healthcheck == Healthcheck(
        test=("NONE",), disable=True
    )
    assert service(load, "healthcheck: {disable: true}").healthcheck == Healthcheck(
        test=("NONE",), disable=True
    )


def test_depends_on_forms(load: Loader) -> None:
    text = """
services:
  web:
    image: x
    depends_on: [db]
  api:
    image: x
    depends_on:
      db: {condition: service_healthy, restart: true}
      web: {condition: service_completed_successfully, required: false}
  db: {image: y}
  side: {image: z, network_mode: "service:db"}
"""
    services = load(text).project.services
    assert services["web"].depends_on == {"db": Dependency()}
    assert services["api"].depends_on == {
        "db": Dependency(condition="service_healthy", restart=True),
        "web": Dependency(condition="service_completed_successfully", required=False),
    }
    assert services["side"].depends_on == {"db": Dependency(restart=True)}
    assert services["side"].networks == {}


def test_networks_list_map_and_default(load: Loader) -> None:
    text = """
services:
  a: {image: x}
  b: {image: x, networks: [front]}
  c:
    image: x
    networks:
      front: {aliases: [see], ipv4_address: 10.1.0.5, priority: 5, mac_address: "02:42:ac:11:00:02"}
      default:
  d: {image: x, network_mode: host}
networks:
  front: {}
"""
    project = load(text).project
    s = project.services
    assert s["a"].networks == {"default": ServiceNetwork()}
    assert s["b"].networks == {"front": ServiceNetwork()}
    assert s["c"].networks == {
        "front": ServiceNetwork(
            aliases=("see",), ipv4_address="10.1.0.5", priority=5, mac_address="02:42:ac:11:00:02"
        ),
        "default": ServiceNetwork(),
    }
    assert s["d"].networks == {} and s["d"].network_mode == "host"
    assert project.networks["default"].name == "myapp_default"
    assert project.networks["front"].name == "myapp_front"


def test_no_default_network_when_unused(load: Loader) -> None:
    project = load("services:\n  a: {image: x, network_mode: none}\n").project
    assert project.networks == {}


def test_secrets_and_configs(load: Loader, project_dir: Path) -> None:
    text = """
services:
  web:
    image: x
    secrets:
      - s1
      - {source: s2, target: custom, uid: "1", gid: "2", mode: 0400}
      - {source: s1, target: /abs/s1}
    configs: [c1, {source: c2, target: etc/app.conf, mode: "0644"}]
secrets:
  s1: {file: ./s1.txt}
  s2: {environment: S2_VALUE}
configs:
  c1: {content: "x=$$1"}
  c2: {file: /etc/c2}
"""
    project = load(text, env={"S2_VALUE": "top secret"}).project
    web = project.services["web"]
    assert web.secrets == (
        FileReference(source="s1", target="/run/secrets/s1"),
        FileReference(source="s2", target="/run/secrets/custom", uid="1", gid="2", mode=0o400),
        FileReference(source="s1", target="/abs/s1"),
    )
    assert web.configs == (
        FileReference(source="c1", target="/c1"),
        FileReference(source="c2", target="/etc/app.conf", mode=0o644),
    )
    assert project.secrets["s1"].file == str(project_dir / "s1.txt")
    assert project.secrets["s2"].environment == "S2_VALUE"
    assert project.secrets["s2"].content == "top secret"
    assert project.configs["c1"].content == "x=$1"
    assert "S2_VALUE" not in project.environment  # secret values stay out of it


def test_environment_secret_is_checked_at_up_not_at_config(load: Loader) -> None:
    # Compose's rule: `config` of a file whose secret comes from an unset variable
    # works; creating a service that uses it fails, naming the variable
    from compound.errors import ServiceError
    from compound.runtimes.container_config import build_create_args

    project = load(
        "services:\n  web:\n    image: x\n    secrets: [tok]\n"
        "secrets:\n  tok:\n    environment: TOK\n"
    ).project
    assert project.secrets["tok"].environment == "TOK"
    assert project.secrets["tok"].content is None
    web = project.services["web"]
    with pytest.raises(ServiceError, match="comes from variable TOK, which is not set"):
        build_create_args(project, web, 1, "h", "sha256:x", environ={})


def test_units(load: Loader) -> None:
    web = service(
        load,
        """
mem_limit: 1.5gb
mem_reservation: 512m
memswap_limit: -1
shm_size: 1024
cpus: "0.5"
stop_grace_period: 1m30s
pids_limit: "100"
ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
sysctls: [net.core.somaxconn=1024]
tmpfs: /run
extra_hosts: ["a:1.2.3.4", "b=::1", "c:::1"]
dns: 8.8.8.8
group_add: [100, wheel]
""",
    )
    assert web.mem_limit == int(1.5 * (1 << 30))
    assert web.mem_reservation == 512 << 20
    assert web.memswap_limit == -1
    assert web.shm_size == 1024
    assert web.cpus == 0.5
    assert web.stop_grace_period == 90.0
    assert web.pids_limit == 100
    assert web.ulimits == {
        "nofile": Ulimit(soft=1024, hard=2048),
        "nproc": Ulimit(soft=512, hard=512),
    }
    assert web.sysctls == {"net.core.somaxconn": "1024"}
    assert web.tmpfs == ("/run",)
    assert web.extra_hosts == {"a": "1.2.3.4", "b": "::1", "c": "::1"}
    assert web.dns == ("8.8.8.8",)
    assert web.group_add == ("100", "wheel")


def test_deploy(load: Loader) -> None:
    deploy = service(
        load,
        """
deploy:
  replicas: 3
  resources:
    limits: {cpus: "2", memory: 1g, pids: 50}
    reservations: {memory: 100m, devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}
  update_config:
    {parallelism: 2, delay: 10s, monitor: 1m, order: start-first, failure_action: continue}
  restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 120s}
  placement: {constraints: [node.role==worker], preferences: [{spread: zone}]}
  labels: [tier=web]
""",
    ).deploy
    assert deploy.replicas == 3
    assert deploy.resources.limits.cpus == 2.0
    assert deploy.resources.limits.memory == 1 << 30
    assert deploy.resources.limits.pids == 50
    assert deploy.resources.reservations.memory == 100 << 20
    assert deploy.resources.reservations.devices == (
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]},
    )
    assert deploy.update_config is not None
    assert (
        deploy.update_config.parallelism,
        deploy.update_config.delay,
        deploy.update_config.monitor,
    ) == (2, 10.0, 60.0)
    assert deploy.restart_policy is not None
    assert (deploy.restart_policy.delay, deploy.restart_policy.window) == (5.0, 120.0)
    assert deploy.placement.preferences == ({"spread": "zone"},)
    assert deploy.labels == {"tier": "web"}


def test_replicas_property(load: Loader) -> None:
    assert service(load, "scale: 4").replicas == 4
    assert service(load, "deploy: {replicas: 2}").replicas == 2
    assert service(load, "restart: always").replicas == 1


def test_build_forms(load: Loader, project_dir: Path) -> None:
    simple = service(load, "build: .").build
    assert simple is not None and simple.context == str(project_dir)
    build = service(
        load,
        "build: {context: https://github.com/x/y.git#main, args: {A: 1, B: null, C: null}}",
        env={"B": "from-env"},
    ).build
    assert build is not None
    assert build.context == "https://github.com/x/y.git#main"
    assert build.args == {"A": "1", "B": "from-env"}
    assert build.dockerfile == "Dockerfile"


def test_pull_policy_if_not_present_is_missing(load: Loader) -> None:
    assert service(load, "pull_policy: if_not_present").pull_policy == "missing"


def test_x_compound_and_extensions(load: Loader, project_dir: Path) -> None:
    web = service(
        load,
        """
x-compound:
  runtime: vm
  vm: {memory: 512m, vcpus: 2, kernel: debian, kernel_args: quiet, accel: kvm}
  hints: {legacy: false}
x-other: {keep: [1, 2]}
""",
    )
    assert web.runtime == "vm"
    assert web.x_compound.vm.memory == 512 << 20
    assert web.x_compound.vm.vcpus == 2
    assert web.x_compound.vm.kernel == "debian"
    assert web.x_compound.vm.accel == "kvm"
    assert (web.x_compound.vm.net, web.x_compound.vm.share) == ("tap", "auto")
    assert web.x_compound.hints == {"legacy": False}
    assert web.extensions == {"x-other": {"keep": [1, 2]}}
    default = service(load, "restart: always")
    assert default.runtime == "container" and default.x_compound.vm.memory is None
    assert default.x_compound.vm.kernel == "compound"


def test_x_compound_vm_net_and_share(load: Loader) -> None:
    vm = service(load, "x-compound: {vm: {net: user, share: 9p}}").x_compound.vm
    assert (vm.net, vm.share) == ("user", "9p")


def test_x_compound_memory_as_bytes_and_null(load: Loader) -> None:
    assert service(load, "x-compound: {vm: {memory: 1073741824}}").x_compound.vm.memory == 1 << 30
    assert service(load, "x-compound:").runtime == "container"


def test_x_compound_lb_mode(load: Loader) -> None:
    assert service(load, "x-compound:").x_compound.lb.mode == "http"
    tcp = service(load, "x-compound: {lb: {mode: tcp}}")
    assert tcp.x_compound.lb.mode == "tcp"
    # the balancer's mode is the balancer's business: the instances stay as they are
    assert tcp.config_hash() == service(load, "x-compound: {lb: {mode: http}}").config_hash()


def test_volumes_from_an_undefined_service_is_refused(
    load_error: Callable[..., list[SpecError]],
) -> None:
    (error,) = load_error("services:\n  web:\n    image: x\n    volumes_from: [other]\n")
    assert error.location.path == "services.web.volumes_from[0]"
    assert "'other'" in error.message


def test_engine_keys_on_a_vm_warn_naming_the_runtime(load: Loader) -> None:
    result = load(
        "services:\n  web:\n    image: x\n    x-compound: {runtime: vm}\n"
        "    runtime: crun\n    mac_address: 02:42:ac:11:00:02\n"
    )
    for key in ("runtime", "mac_address"):
        assert any(
            f"services.web.{key}" in w and "x-compound.runtime: vm" in w for w in result.warnings
        ), result.warnings
    # a container: honoured, no warning
    assert not load("services:\n  web:\n    image: x\n    runtime: crun\n").warnings


def test_link_to_unknown_service(load_error: Callable[..., list[SpecError]]) -> None:
    (error,) = load_error("services:\n  web: {image: x, links: [dbb]}\n  db: {image: y}\n")
    assert error.location.path == "services.web.links[0]"
    assert "link to undefined service 'dbb'" in error.message
    assert error.hint == "did you mean 'db'?"


def test_links_imply_dependency(load: Loader) -> None:
    services = load(
        "services:\n  web: {image: x, links: ['db:database']}\n  db: {image: y}\n"
    ).project.services
    assert services["web"].depends_on == {"db": Dependency(restart=True)}


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ("healthcheck: {interval: 10}", "services.web.healthcheck.interval", "must be a string"),
        ("stop_grace_period: 5x", "services.web.stop_grace_period", "invalid duration"),
        ("mem_limit: lots", "services.web.mem_limit", "invalid size"),
        ("cpus: many", "services.web.cpus", "must be a number"),
        (
            "ulimits: {nofile: {soft: 10, hard: 5}}",
            "services.web.ulimits.nofile",
            "above the hard limit",
        ),
        ("expose: [http]", "services.web.expose[0]", "not a valid port to expose"),
        ("ports: [{published: 80}]", "services.web.ports[0]", "needs a target"),
        ("ports: [{target: 80, mode: bridge}]", "services.web.ports[0].mode", "unknown port mode"),
        (
            "ports: [{target: 80, host_ip: nope}]",
            "services.web.ports[0].host_ip",
            "not an IP address",
        ),
        (
            "volumes: [{type: tmpfs, source: x, target: /t}]",
            "services.web.volumes[0].source",
            "no source",
        ),
        ("secrets: [{target: /x}]", "services.web.secrets[0]", "missing 'source'"),
        (
            "configs: [{source: c, mode: rwx}]",
            "services.web.configs[0].mode",
            "not an octal file mode",
        ),
        ("deploy: {mode: batch}", "services.web.deploy.mode", "not supported"),
        (
            "cpus: 1\n    deploy: {resources: {limits: {cpus: 2}}}",
            "services.web.cpus",
            "different values",
        ),
        (
            "network_mode: host\n    networks: [default]",
            "services.web.network_mode",
            "cannot be used together",
        ),
        ("tmpfs: /data\n    volumes: ['./d:/data']", "services.web.volumes[0]", "already mounted"),
        ("provider: {type: compose}", "services.web.provider.type", "not a command name"),
        ("x-compound: {vm: {memory: 0}}", "services.web.x-compound.vm.memory", "more than 0"),
        (
            "x-compound: {vm: {accel: hvf}}",
            "services.web.x-compound.vm.accel",
            "must be one of auto, kvm, tcg",
        ),
        (
            "x-compound: {vm: {kernel: ./vmlinuz}}",
            "services.web.x-compound.vm.kernel",
            "must be one of compound, debian",
        ),
        (
            "x-compound: {vm: {net: bridge}}",
            "services.web.x-compound.vm.net",
            "must be one of tap, user",
        ),
        (
            "x-compound: {vm: {share: nfs}}",
            "services.web.x-compound.vm.share",
            "must be one of auto, virtiofs, 9p",
        ),
        (
            "network_mode: host\n    x-compound: {runtime: vm}",
            "services.web.network_mode",
            "not possible for a VM",
        ),
        (
            "network_mode: 'container:abc'\n    x-compound: {runtime: vm}",
            "services.web.network_mode",
            "not possible for a VM",
        ),
        (
            "x-compound: {lb: {mode: udp}}",
            "services.web.x-compound.lb.mode",
            "must be one of http, tcp",
        ),
    ],
)
def test_normalisation_errors(
    load_error: Callable[..., list[SpecError]], body: str, path: str, message: str
) -> None:
    errors = load_error(
        f"services:\n  web:\n    image: x\n    {body}\nconfigs: {{c: {{file: ./c}}}}\n"
    )
    assert any(e.location.path == path and message in e.message for e in errors), [
        e.render() for e in errors
    ]


def test_all_problems_are_reported_together(load_error: Callable[..., list[SpecError]]) -> None:
    errors = load_error(
        """
services:
  web:
    image: x
    ports: ["bad:port"]
    mem_limit: huge
    volumes: [undeclared:/x]
    depends_on: [ghost]
"""
    )
    assert [e.location.path for e in errors] == [
        "services.web.ports[0]",
        "services.web.mem_limit",
        "services.web.volumes[0]",
        "services.web.depends_on[0]",
    ]
