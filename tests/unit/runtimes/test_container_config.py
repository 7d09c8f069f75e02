"""The Compose model → container-create request translation, option by option."""

from __future__ import annotations

from typing import Any

import pytest

from compound import __version__
from compound.errors import NotSupportedError, ServiceError
from compound.runtimes.container_config import (
    CreateArgs,
    InjectedFile,
    NetworkAttachment,
    build_create_args,
    container_name,
    image_ref,
)
from compound.spec.model import (
    BuildSpec,
    Deploy,
    DeployResources,
    FileObject,
    FileReference,
    Healthcheck,
    Logging,
    Network,
    PortSpec,
    Project,
    Resources,
    RestartPolicy,
    Service,
    ServiceNetwork,
    Ulimit,
    Volume,
    VolumeMount,
)

IMAGE_ID = "sha256:" + "ab" * 32


def project(*services: Service, **kw: Any) -> Project:
    nets = kw.pop("networks", {"default": Network(key="default", name="p_default")})
    return Project(
        name="p",
        working_dir="/w",
        files=("/w/compose.yaml",),
        services={s.name: s for s in services},
        networks=nets,
        **kw,
    )


def svc(**kw: Any) -> Service:
    kw.setdefault("name", "web")
    kw.setdefault("image", "img:1")
    return Service(**kw)


def args(service: Service | None = None, number: int = 1, **kw: Any) -> CreateArgs:
    service = service or svc()
    proj = kw.pop("project", None) or project(service)
    resolver = kw.pop("resolver", lambda name: f"id-of-{name}")
    return build_create_args(proj, service, number, "hash1", IMAGE_ID, resolver, **kw)


def config(service: Service | None = None, **kw: Any) -> dict[str, Any]:
    return args(service, **kw).config


def host(service: Service | None = None, **kw: Any) -> dict[str, Any]:
    return dict(config(service, **kw)["HostConfig"])


# --- names, image, labels --------------------------------------------------------


def test_minimal_service() -> None:
    a = args()
    assert a.name == "p-web-1"
    assert a.platform is None and a.networks == () and a.files == ()
    assert a.config == {
        "Image": "img:1",
        "Labels": {
            "io.compound.project": "p",
            "io.compound.service": "web",
            "io.compound.number": "1",
            "io.compound.config-hash": "hash1",
            "io.compound.runtime": "container",
            "io.compound.image-id": IMAGE_ID,
            "io.compound.oneoff": "false",
            "io.compound.version": __version__,
        },
        "Tty": False,
        "OpenStdin": False,
        "HostConfig": {"NetworkMode": "p_default"},
        "NetworkingConfig": {"EndpointsConfig": {"p_default": {"Aliases": ["web"]}}},
    }


def test_names() -> None:
    p = project(svc())
    assert container_name(p, svc(), 3) == "p-web-3"
    assert container_name(p, svc(container_name="mine"), 1) == "mine"
    with pytest.raises(ServiceError, match="container_name"):
        container_name(p, svc(container_name="mine"), 2)
    assert container_name(p, svc(), 1, "abc") == "p-web-run-abc"


def test_oneoff_has_its_label_and_no_service_alias() -> None:
    a = args(oneoff_suffix="xyz")
    assert a.name == "p-web-run-xyz"
    assert a.labels["io.compound.oneoff"] == "true"
    assert a.config["NetworkingConfig"]["EndpointsConfig"]["p_default"] == {}


def test_image_from_build_uses_compose_v2_name() -> None:
    built = svc(image=None, build=BuildSpec(context="/w"))
    assert image_ref(project(built), built) == "p-web"
    assert config(built)["Image"] == "p-web"
    with pytest.raises(ServiceError, match="neither"):
        image_ref(project(svc(image=None)), svc(image=None))


def test_service_labels_cannot_override_ours() -> None:
    labels = config(svc(labels={"a": "1", "io.compound.project": "evil"}))["Labels"]
    assert labels["a"] == "1" and labels["io.compound.project"] == "p"


def test_platform() -> None:
    assert args(svc(platform="linux/arm64")).platform == "linux/arm64"


# --- process ---------------------------------------------------------------------


def test_command_entrypoint_and_clearing() -> None:
    c = config(svc(command=("a", "b c"), entrypoint=("/init",)))
    assert (c["Cmd"], c["Entrypoint"]) == (["a", "b c"], ["/init"])
    # an explicit empty list clears the image's value, None inherits it
    c = config(svc(entrypoint=(), command=()))
    assert (c["Entrypoint"], c["Cmd"]) == ([], [])
    assert "Entrypoint" not in config(svc()) and "Cmd" not in config(svc())


def test_environment_drops_unset_variables() -> None:
    c = config(svc(environment={"A": "1", "B": None, "C": "", "D": "x=y"}))
    assert c["Env"] == ["A=1", "C=", "D=x=y"]
    assert "Env" not in config(svc(environment={"B": None}))


def test_process_settings() -> None:
    c = config(
        svc(
            working_dir="/app",
            user="1000:1000",
            tty=True,
            stdin_open=True,
            hostname="h",
            domainname="example.org",
            stop_signal="SIGINT",
            stop_grace_period=1.2,
        )
    )
    assert (c["WorkingDir"], c["User"], c["Tty"], c["OpenStdin"]) == (
        "/app",
        "1000:1000",
        True,
        True,
    )
    assert (c["Hostname"], c["Domainname"]) == ("h", "example.org")
    assert (c["StopSignal"], c["StopTimeout"]) == ("SIGINT", 2)  # whole seconds, rounded up


# --- ports -------------------------------------------------------------------------


def test_ports() -> None:
    c = config(
        svc(
            ports=(
                PortSpec(target=80, published="8080"),
                PortSpec(target=80, published="8081", host_ip="127.0.0.1"),
                PortSpec(target=53, protocol="udp", published="5353"),
                PortSpec(target=9000),  # random host port
                PortSpec(target=7000, published="7000-7010"),  # engine picks one
                PortSpec(target=132, protocol="sctp", published="132", mode="host"),
            ),
            expose=("3000", "4000-4001/udp"),
        )
    )
    assert c["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "", "HostPort": "5353"}],
        "9000/tcp": [{"HostIp": "", "HostPort": ""}],
        "7000/tcp": [{"HostIp": "", "HostPort": "7000-7010"}],
        "132/sctp": [{"HostIp": "", "HostPort": "132"}],
    }
    assert set(c["ExposedPorts"]) == {
        "80/tcp",
        "53/udp",
        "9000/tcp",
        "7000/tcp",
        "132/sctp",
        "3000/tcp",
        "4000/udp",
        "4001/udp",
    }


def test_bad_expose_entry() -> None:
    with pytest.raises(NotSupportedError, match="expose"):
        config(svc(expose=("http",)))


# --- networks ------------------------------------------------------------------------


def nets(*keys: str) -> dict[str, Network]:
    return {k: Network(key=k, name=f"p_{k}") for k in keys}


def test_networks_by_priority_then_name_first_at_create() -> None:
    s = svc(
        networks={
            "b": ServiceNetwork(aliases=("bee",)),
            "a": ServiceNetwork(ipv4_address="10.0.0.5"),
            "z": ServiceNetwork(priority=10, aliases=("web", "zed"), ipv6_address="fd00::5"),
        }
    )
    a = args(s, project=project(s, networks=nets("a", "b", "z")))
    assert a.config["HostConfig"]["NetworkMode"] == "p_z"
    assert a.config["NetworkingConfig"] == {
        "EndpointsConfig": {
            "p_z": {"Aliases": ["web", "zed"], "IPAMConfig": {"IPv6Address": "fd00::5"}}
        }
    }
    assert a.networks == (
        NetworkAttachment("p_a", ("web",), ipv4_address="10.0.0.5"),
        NetworkAttachment("p_b", ("web", "bee")),
    )
    assert a.networks[0].endpoint_config() == {
        "Aliases": ["web"],
        "IPAMConfig": {"IPv4Address": "10.0.0.5"},
    }


def test_no_networks_means_the_default_network() -> None:
    assert host()["NetworkMode"] == "p_default"
    # no default network in the project: the engine's default bridge
    s = svc()
    c = config(s, project=project(s, networks={}))
    assert "NetworkMode" not in c["HostConfig"] and "NetworkingConfig" not in c


def test_undeclared_network() -> None:
    s = svc(networks={"nope": ServiceNetwork()})
    with pytest.raises(ServiceError, match="nope"):
        config(s)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("host", "host"),
        ("none", "none"),
        ("bridge", "bridge"),
        ("container:abc", "container:abc"),
        ("service:db", "container:id-of-db"),
    ],
)
def test_network_mode(mode: str, expected: str) -> None:
    c = config(svc(network_mode=mode))
    assert c["HostConfig"]["NetworkMode"] == expected
    assert "NetworkingConfig" not in c


def test_ipc_and_pid_service_refs() -> None:
    h = host(svc(ipc="service:db", pid="host"))
    assert (h["IpcMode"], h["PidMode"]) == ("container:id-of-db", "host")
    assert host(svc(ipc="shareable"))["IpcMode"] == "shareable"


def test_mac_address() -> None:
    s = svc(networks={"a": ServiceNetwork(mac_address="02:42:ac:11:00:02")})
    p = project(s, networks=nets("a"))
    c = config(s, project=p)  # API 1.41: only in Config
    assert c["MacAddress"] == "02:42:ac:11:00:02"
    assert c["NetworkingConfig"]["EndpointsConfig"]["p_a"] == {"Aliases": ["web"]}
    c = config(s, project=p, api_version="1.44")
    assert "MacAddress" not in c
    assert c["NetworkingConfig"]["EndpointsConfig"]["p_a"]["MacAddress"] == "02:42:ac:11:00:02"
    s2 = svc(networks={"a": ServiceNetwork(), "b": ServiceNetwork(mac_address="02:42:ac:11:00:03")})
    with pytest.raises(NotSupportedError, match=r"1\.44"):
        config(s2, project=project(s2, networks=nets("a", "b")))


# --- volumes ----------------------------------------------------------------------------


def vproject(s: Service) -> Project:
    return project(
        s,
        volumes={
            "data": Volume(key="data", name="p_data"),
            "ext": Volume(key="ext", name="shared", external=True),
        },
    )


def test_named_anonymous_and_external_volumes() -> None:
    s = svc(
        volumes=(
            VolumeMount(type="volume", source="data", target="/data", read_only=True, nocopy=True),
            VolumeMount(type="volume", source="ext", target="/ext"),
            VolumeMount(type="volume", target="/anon"),
        )
    )
    h = host(s, project=vproject(s))
    assert "Binds" not in h
    assert h["Mounts"] == [
        {
            "Type": "volume",
            "Source": "p_data",
            "Target": "/data",
            "ReadOnly": True,
            "VolumeOptions": {"NoCopy": True},
        },
        {"Type": "volume", "Source": "shared", "Target": "/ext"},
        {
            "Type": "volume",
            "Target": "/anon",
            "VolumeOptions": {"Labels": {"io.compound.project": "p"}},
        },
    ]


def test_undeclared_volume() -> None:
    s = svc(volumes=(VolumeMount(type="volume", source="nope", target="/x"),))
    with pytest.raises(ServiceError, match="nope"):
        host(s)


def test_subpath_needs_api_1_45() -> None:
    s = svc(volumes=(VolumeMount(type="volume", source="data", target="/d", subpath="sub/dir"),))
    with pytest.raises(NotSupportedError, match=r"1\.45"):
        host(s, project=vproject(s))
    mounts = host(s, project=vproject(s), api_version="1.45")["Mounts"]
    assert mounts[0]["VolumeOptions"] == {"Subpath": "sub/dir"}


def test_binds() -> None:
    s = svc(
        volumes=(
            VolumeMount(type="bind", source="/h/a", target="/a"),
            VolumeMount(type="bind", source="/h/b", target="/b", read_only=True, selinux="z"),
            VolumeMount(type="bind", source="/h/c", target="/c", propagation="rshared"),
            VolumeMount(
                type="bind", source="/h/d", target="/d", create_host_path=False, read_only=True
            ),
            VolumeMount(
                type="bind",
                source="/h/e",
                target="/e",
                create_host_path=False,
                propagation="rslave",
            ),
        )
    )
    h = host(s)
    # create_host_path (the default): the Binds API, which creates a missing directory
    assert h["Binds"] == ["/h/a:/a", "/h/b:/b:ro,z", "/h/c:/c:rshared"]
    # create_host_path: false: the Mounts API, which refuses a missing source
    assert h["Mounts"] == [
        {"Type": "bind", "Source": "/h/d", "Target": "/d", "ReadOnly": True},
        {
            "Type": "bind",
            "Source": "/h/e",
            "Target": "/e",
            "BindOptions": {"Propagation": "rslave"},
        },
    ]


def test_selinux_needs_binds() -> None:
    s = svc(
        volumes=(
            VolumeMount(type="bind", source="/h", target="/x", create_host_path=False, selinux="Z"),
        )
    )
    with pytest.raises(NotSupportedError, match="selinux"):
        host(s)


def test_tmpfs_mounts_and_list() -> None:
    s = svc(
        volumes=(
            VolumeMount(type="tmpfs", target="/t", tmpfs_size=1 << 20, tmpfs_mode=0o1777),
            VolumeMount(type="tmpfs", target="/u", read_only=True),
        ),
        tmpfs=("/run", "/cache:size=64m,mode=1777"),
    )
    h = host(s)
    assert h["Mounts"] == [
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}},
        {"Type": "tmpfs", "Target": "/u", "ReadOnly": True},
    ]
    assert h["Tmpfs"] == {"/run": "", "/cache": "size=64m,mode=1777"}


@pytest.mark.parametrize("kind", ["npipe", "cluster"])
def test_unsupported_volume_types(kind: str) -> None:
    with pytest.raises(NotSupportedError, match=kind):
        host(svc(volumes=(VolumeMount(type=kind, source="x", target="/x"),)))


# --- secrets and configs ----------------------------------------------------------------


def fproject(s: Service, **kw: Any) -> Project:
    return project(
        s,
        secrets={
            "pw": FileObject(key="pw", name="pw", file="/w/pw.txt"),
            "tok": FileObject(key="tok", name="tok", environment="TOKEN"),
            "ext": FileObject(key="ext", name="ext", external=True),
        },
        configs={"conf": FileObject(key="conf", name="conf", content="a=1\n")},
        **kw,
    )


def test_file_secrets_are_read_only_binds() -> None:
    s = svc(secrets=(FileReference(source="pw", target="/run/secrets/pw", mode=0o400),))
    a = args(s, project=fproject(s))
    assert a.config["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": "/w/pw.txt", "Target": "/run/secrets/pw", "ReadOnly": True}
    ]
    assert a.files == ()


def test_content_and_environment_sources_are_injected() -> None:
    s = svc(
        secrets=(FileReference(source="tok", target="tok"),),  # relative: under /run/secrets
        configs=(FileReference(source="conf", target="/etc/a.conf", mode=0o640, uid="1", gid="2"),),
    )
    a = args(s, project=fproject(s, environment={"TOKEN": "t0k"}))
    assert "HostConfig" in a.config and "Mounts" not in a.config["HostConfig"]
    assert a.files == (
        InjectedFile("/run/secrets/tok", b"t0k", 0o444, 0, 0),
        InjectedFile("/etc/a.conf", b"a=1\n", 0o640, 1, 2),
    )


def test_environment_source_falls_back_to_environ() -> None:
    s = svc(secrets=(FileReference(source="tok", target="/run/secrets/tok"),))
    a = args(s, project=fproject(s), environ={"TOKEN": "from-env"})
    assert a.files[0].content == b"from-env"
    with pytest.raises(ServiceError, match="TOKEN"):
        args(s, project=fproject(s), environ={})


def test_secret_errors() -> None:
    s = svc(secrets=(FileReference(source="ext", target="/run/secrets/ext"),))
    with pytest.raises(NotSupportedError, match="Swarm"):
        args(s, project=fproject(s))
    s = svc(secrets=(FileReference(source="nope", target="/run/secrets/nope"),))
    with pytest.raises(ServiceError, match="nope"):
        args(s, project=fproject(s))
    s = svc(configs=(FileReference(source="conf", target="/c", uid="www-data"),))
    with pytest.raises(ServiceError, match="uid"):
        args(s, project=fproject(s))


# --- healthcheck, restart -------------------------------------------------------------------


def test_healthcheck_in_nanoseconds() -> None:
    hc = Healthcheck(
        test=("CMD-SHELL", "curl -f localhost"), interval=1.5, timeout=2, retries=3, start_period=10
    )
    assert config(svc(healthcheck=hc))["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f localhost"],
        "Interval": 1_500_000_000,
        "Timeout": 2_000_000_000,
        "StartPeriod": 10_000_000_000,
        "Retries": 3,
    }
    # only some fields: the image's test stays
    assert config(svc(healthcheck=Healthcheck(retries=5)))["Healthcheck"] == {"Retries": 5}


def test_healthcheck_disable() -> None:
    assert config(svc(healthcheck=Healthcheck(disable=True)))["Healthcheck"] == {"Test": ["NONE"]}
    assert config(svc(healthcheck=Healthcheck(test=("NONE",))))["Healthcheck"] == {"Test": ["NONE"]}


def test_healthcheck_start_interval_needs_api_1_44() -> None:
    s = svc(healthcheck=Healthcheck(test=("CMD", "true"), start_interval=1))
    with pytest.raises(NotSupportedError, match="start_interval"):
        config(s)
    assert config(s, api_version="1.44")["Healthcheck"]["StartInterval"] == 1_000_000_000


@pytest.mark.parametrize(
    ("restart", "expected"),
    [
        ("no", {"Name": "no", "MaximumRetryCount": 0}),
        ("always", {"Name": "always", "MaximumRetryCount": 0}),
        ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
        ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
        ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
    ],
)
def test_restart(restart: str, expected: dict[str, Any]) -> None:
    assert host(svc(restart=restart))["RestartPolicy"] == expected


def test_no_restart_key_leaves_the_engine_default() -> None:
    assert "RestartPolicy" not in host()


def test_bad_restart() -> None:
    with pytest.raises(ServiceError, match="restart"):
        host(svc(restart="sometimes"))
    with pytest.raises(ServiceError, match="restart"):
        host(svc(restart="on-failure:x"))


@pytest.mark.parametrize(
    ("condition", "attempts", "expected"),
    [
        ("none", None, {"Name": "no", "MaximumRetryCount": 0}),
        ("on-failure", 3, {"Name": "on-failure", "MaximumRetryCount": 3}),
        ("any", None, {"Name": "always", "MaximumRetryCount": 0}),
    ],
)
def test_deploy_restart_policy_wins(condition: str, attempts: int | None, expected: Any) -> None:
    policy = RestartPolicy(condition=condition, max_attempts=attempts)  # type: ignore[arg-type]
    s = svc(restart="unless-stopped", deploy=Deploy(restart_policy=policy))
    assert host(s)["RestartPolicy"] == expected


# --- resources ------------------------------------------------------------------------------


def test_service_level_resources() -> None:
    h = host(
        svc(
            cpus=1.5,
            mem_limit=256 << 20,
            mem_reservation=128 << 20,
            memswap_limit=512 << 20,
            pids_limit=100,
            shm_size=64 << 20,
            cpu_shares=512,
            cpuset="0-1",
        )
    )
    assert {k: h[k] for k in h if k not in ("NetworkMode",)} == {
        "NanoCpus": 1_500_000_000,
        "Memory": 256 << 20,
        "MemoryReservation": 128 << 20,
        "MemorySwap": 512 << 20,
        "PidsLimit": 100,
        "ShmSize": 64 << 20,
        "CpuShares": 512,
        "CpusetCpus": "0-1",
    }


def test_deploy_limits_win_and_reservations() -> None:
    deploy = Deploy(
        resources=DeployResources(
            limits=Resources(cpus=0.25, memory=64 << 20, pids=10),
            reservations=Resources(
                cpus=0.1,  # no meaning for a lone container, as in Compose
                memory=32 << 20,
                devices=(
                    {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]},
                    {
                        "device_ids": ["0", "1"],
                        "capabilities": ["gpu", "compute"],
                        "options": {"a": "b"},
                    },
                ),
            ),
        )
    )
    h = host(svc(cpus=2, mem_limit=1 << 30, mem_reservation=1, pids_limit=99, deploy=deploy))
    assert (h["NanoCpus"], h["Memory"], h["PidsLimit"]) == (250_000_000, 64 << 20, 10)
    assert h["MemoryReservation"] == 32 << 20
    assert h["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]},
        {"DeviceIDs": ["0", "1"], "Capabilities": [["gpu", "compute"]], "Options": {"a": "b"}},
    ]


# --- host settings ----------------------------------------------------------------------------


def test_security_and_kernel_settings() -> None:
    h = host(
        svc(
            read_only=True,
            cap_add=("NET_ADMIN",),
            cap_drop=("ALL",),
            privileged=True,
            security_opt=("no-new-privileges:true", "seccomp=unconfined"),
            ulimits={
                "nofile": Ulimit(soft=1024, hard=4096),
                "nproc": Ulimit(soft=65535, hard=65535),
            },
            sysctls={"net.core.somaxconn": "1024"},
            init=True,
            userns_mode="host",
            group_add=("audio", "1001"),
            oom_score_adj=-500,
        )
    )
    assert h["ReadonlyRootfs"] is True and h["Privileged"] is True and h["Init"] is True
    assert (h["CapAdd"], h["CapDrop"]) == (["NET_ADMIN"], ["ALL"])
    assert h["SecurityOpt"] == ["no-new-privileges:true", "seccomp=unconfined"]
    assert h["Ulimits"] == [
        {"Name": "nofile", "Soft": 1024, "Hard": 4096},
        {"Name": "nproc", "Soft": 65535, "Hard": 65535},
    ]
    assert h["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert (h["UsernsMode"], h["GroupAdd"], h["OomScoreAdj"]) == ("host", ["audio", "1001"], -500)


def test_init_false_is_sent_none_is_not() -> None:
    assert host(svc(init=False))["Init"] is False
    assert "Init" not in host(svc())


def test_devices() -> None:
    h = host(svc(devices=("/dev/fuse", "/dev/sda:/dev/xvda", "/dev/snd:r", "/dev/a:/dev/b:rw")))
    assert h["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvda", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/snd", "PathInContainer": "/dev/snd", "CgroupPermissions": "r"},
        {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b", "CgroupPermissions": "rw"},
    ]


def test_dns_and_hosts() -> None:
    h = host(
        svc(
            extra_hosts={"db": "10.0.0.2", "v6": "::1"},
            dns=("1.1.1.1",),
            dns_search=("example.org",),
            dns_opt=("ndots:2",),
        )
    )
    assert h["ExtraHosts"] == ["db:10.0.0.2", "v6:::1"]
    assert (h["Dns"], h["DnsSearch"], h["DnsOptions"]) == (
        ["1.1.1.1"],
        ["example.org"],
        ["ndots:2"],
    )


def test_logging() -> None:
    h = host(svc(logging=Logging(driver="json-file", options={"max-size": "1m"})))
    assert h["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    # options without a driver: the engine's default driver
    assert host(svc(logging=Logging(options={"tag": "x"})))["LogConfig"] == {
        "Type": "",
        "Config": {"tag": "x"},
    }
    assert "LogConfig" not in host()


def test_no_nulls_reach_the_engine() -> None:
    def walk(value: Any) -> None:
        assert value is not None
        if isinstance(value, dict):
            for v in value.values():
                walk(v)

    walk(config())
