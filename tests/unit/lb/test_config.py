"""The HAProxy config renderer and the LB container's spec (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compound.errors import NotSupportedError, ServiceError
from compound.lb.config import Backend, LBConfig, render, server_args, valid_server_name
from compound.lb.container import create_args, lb_name, spec_for
from compound.runtimes.base import LABEL_PROJECT, LABEL_ROLE, LABEL_SERVICE
from compound.spec.model import Network, PortSpec, ServiceNetwork, XCompound
from tests.unit.fakes import project, service

SERVERS = (Backend("p-web-1", "172.20.0.2"), Backend("p-web-2", "172.20.0.3"))


def sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            current = line
            out[current] = []
        else:
            out[current].append(line.strip())
    return out


def test_one_frontend_and_backend_per_published_port() -> None:
    cfg = sections(render(LBConfig("web", "http", (80, 443), SERVERS)))
    assert cfg["frontend fe_80"] == ["bind :80", "default_backend be_80"]
    assert cfg["frontend fe_443"] == ["bind :443", "default_backend be_443"]
    assert cfg["backend be_443"] == [
        "balance roundrobin",
        "server p-web-1 172.20.0.2:443 check inter 500ms rise 1 fall 3",
        "server p-web-2 172.20.0.3:443 check inter 500ms rise 1 fall 3",
    ]


def test_http_mode_balances_requests_and_retries_elsewhere() -> None:
    defaults = sections(render(LBConfig("web", "http", (80,), SERVERS)))["defaults"]
    assert "mode http" in defaults
    assert "retries 3" in defaults and "option redispatch 1" in defaults
    assert "timeout http-keep-alive 10s" in defaults and "timeout connect 5s" in defaults


def test_tcp_mode_allows_long_idle_connections() -> None:
    defaults = sections(render(LBConfig("db", "tcp", (5432,))))["defaults"]
    assert "mode tcp" in defaults
    assert "timeout client 1h" in defaults and "timeout server 1h" in defaults
    assert not any("http" in line for line in defaults)


def test_admin_socket_in_the_run_dir_owned_by_the_host_user() -> None:
    glob = sections(render(LBConfig("web", "http", (80,), socket_uid=1000, socket_gid=100)))
    assert glob["global"][0] == (
        "stats socket /compound/lb/admin.sock mode 600 level admin uid 1000 gid 100"
    )


def test_no_servers_is_a_valid_empty_backend() -> None:
    assert sections(render(LBConfig("web", "http", (80,))))["backend be_80"] == [
        "balance roundrobin"
    ]


def test_server_args_are_the_same_for_the_file_and_the_runtime_api() -> None:
    assert (
        server_args(Backend("a", "10.0.0.1"), 80) == "10.0.0.1:80 check inter 500ms rise 1 fall 3"
    )
    assert server_args(Backend("a", "fd00::1"), 80).startswith("[fd00::1]:80 ")
    assert valid_server_name("proj_x-web.1") and not valid_server_name("a b")


def test_spec_publishes_the_service_ports_on_its_networks() -> None:
    web = service(
        "web",
        ports=(
            PortSpec(target=80, published="8080", host_ip="127.0.0.1"),
            PortSpec(target=80, published="8081"),
            PortSpec(target=443),
        ),
        networks={"back": ServiceNetwork(), "front": ServiceNetwork(priority=10)},
        x_compound=XCompound(lb={"mode": "tcp"}),
    )
    proj = project(web, name="p").model_copy(
        update={
            "networks": {
                "front": Network(key="front", name="p_f"),
                "back": Network(key="back", name="p_b"),
            }
        }
    )
    spec = spec_for(proj, web, "local/compound-lb:x")
    assert spec.name == lb_name("p", "web") == "p-web-lb"
    assert spec.networks == ("p_f", "p_b")  # by priority: backends are reached on the first
    assert spec.targets == (80, 443) and spec.mode == "tcp"
    args = create_args(spec, Path("/cache/lb/run/p-web-lb"))
    assert args["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8081"}, {"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "443/tcp": [{"HostIp": "", "HostPort": ""}],
    }
    assert args["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert args["HostConfig"]["Binds"] == ["/cache/lb/run/p-web-lb:/compound/lb"]
    assert args["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert args["HostConfig"]["NetworkMode"] == "p_f"
    labels = args["Labels"]
    assert (labels[LABEL_PROJECT], labels[LABEL_SERVICE], labels[LABEL_ROLE]) == ("p", "web", "lb")


def test_spec_digest_follows_what_the_container_is_made_from() -> None:
    web = service("web", ports=(PortSpec(target=80),))
    proj = project(web)
    a = spec_for(proj, web, "img:1")
    assert a.digest() == spec_for(proj, web, "img:1").digest()
    assert a.digest() != spec_for(proj, web, "img:2").digest()
    tcp = web.model_copy(update={"x_compound": XCompound(lb={"mode": "tcp"})})
    assert a.digest() != spec_for(proj, tcp, "img:1").digest()


def test_what_cannot_be_balanced_says_so() -> None:
    udp = service("dns", ports=(PortSpec(target=53, protocol="udp"),))
    with pytest.raises(NotSupportedError, match="53/udp cannot be load-balanced"):
        spec_for(project(udp), udp, "img")
    quiet = service("worker")
    with pytest.raises(ServiceError, match="publishes no ports"):
        spec_for(project(quiet), quiet, "img")
    host = service("h", ports=(PortSpec(target=80),), network_mode="host", networks={})
    with pytest.raises(NotSupportedError, match="network_mode 'host'"):
        spec_for(project(host), host, "img")


def test_maxconn_limits_each_server_in_the_file_and_the_runtime_api() -> None:
    assert server_args(Backend("a", "10.0.0.1"), 80, 8) == (
        "10.0.0.1:80 maxconn 8 check inter 500ms rise 1 fall 3"
    )
    text = render(
        LBConfig(
            service="web",
            mode="http",
            targets=(80,),
            servers=(Backend("a", "10.0.0.1"),),
            maxconn=8,
        )
    )
    assert "    server a 10.0.0.1:80 maxconn 8 check" in text
