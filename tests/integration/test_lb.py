"""The HAProxy load balancer against the real engine: replicas of a small
HTTP server (local/python:3) behind ``{project}-{service}-lb``, reached from
the host through the LB's published port while servers are added, drained,
removed and synced, the LB restarted, removed, and taken down by `down`."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import docker
import docker.errors
import pytest

from compound import lb
from compound.engine.resources import ensure_network
from compound.errors import ServiceError
from compound.lb.balancer import LoadBalancer
from compound.lb.config import SOCKET_NAME
from compound.lb.container import lb_name, run_dir_for
from compound.reconcile.session import Session
from compound.runtimes.base import Instance
from compound.runtimes.container import ContainerDriver
from compound.runtimes.instances import list_load_balancers
from compound.spec.model import PortSpec, Project, Service, XCompound

from .conftest import MakeProject

pytestmark = pytest.mark.integration

PYTHON = "local/python:3"
# Answers every GET with its hostname (the container's short id), keeps
# connections alive (HTTP/1.1), so HAProxy pools idle server connections.
SERVER = r"""
import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", 8000), H).serve_forever()
"""


def web_service(**kw: object) -> Service:
    """The service as the file says it: replicas and a published port (any
    free host port, on loopback)."""
    return Service(
        name="web",
        image=PYTHON,
        command=("python3", "-c", SERVER),
        ports=(PortSpec(target=8000, host_ip="127.0.0.1"),),
        networks={"default": {}},
        deploy={"replicas": 2},
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class Replicas:
    """Instances of ``web`` as the orchestrator makes them: without ports."""

    driver: ContainerDriver
    project: Project
    made: dict[int, Instance] = field(default_factory=dict)

    def start(self, number: int, command: tuple[str, ...] | None = None) -> Instance:
        svc = self.project.service("web").model_copy(update={"ports": ()})
        if command is not None:
            svc = svc.model_copy(update={"command": command})
        inst = self.driver.create(self.project, svc, number, svc.config_hash())
        self.driver.start(inst)
        self.made[number] = self.driver.inspect(inst.id)
        return self.made[number]

    def stop(self, number: int) -> None:
        inst = self.made.pop(number)
        self.driver.stop(inst, 2)
        self.driver.remove(inst)


@pytest.fixture
def project(make_project: MakeProject, engine: docker.DockerClient) -> Iterator[Project]:
    proj = make_project(web_service())
    for net in proj.networks.values():
        ensure_network(engine, proj, net)
    yield proj
    lb.remove(engine, proj.name, "web")  # also its run dir, which the project fixture does not know


@pytest.fixture
def replicas(engine: docker.DockerClient, project: Project) -> Replicas:
    driver = ContainerDriver(engine)
    driver.prepare(project, project.service("web"))
    return Replicas(driver, project)


def published_port(engine: docker.DockerClient, balancer: LoadBalancer) -> int:
    ports = engine.api.inspect_container(balancer.container_id)["NetworkSettings"]["Ports"]
    return int(ports["8000/tcp"][0]["HostPort"])


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return resp.read().decode()


class Traffic:
    """Requests without pause from two threads until stopped: one opens a
    connection per request, one keeps a single keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.served: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._fresh, daemon=True),
            threading.Thread(target=self._keepalive, daemon=True),
        ]

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)

    def _record(self, host: str | None, error: str | None) -> None:
        with self._lock:
            if error is not None:
                self.failures.append(error)
            elif host is not None:
                self.served[host] += 1

    def _fresh(self) -> None:
        while not self._stop.is_set():
            try:
                self._record(get(self.port), None)
            except Exception as exc:
                self._record(None, f"fresh: {exc!r}")

    def _keepalive(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode()
                if resp.status != 200:
                    raise RuntimeError(f"status {resp.status}: {body[:80]}")
                self._record(body, None)
            except Exception as exc:
                self._record(None, f"keep-alive: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()

    def count(self, host: str) -> int:
        with self._lock:
            return self.served[host]

    def wait_served(self, host: str, more: int, timeout: float = 30) -> None:
        """Until ``host`` has answered ``more`` further requests."""
        target = self.count(host) + more
        deadline = time.monotonic() + timeout
        while self.count(host) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"{host} answered {self.count(host)} requests, not {target}")
            time.sleep(0.05)


def host(inst: Instance) -> str:
    return inst.id[:12]  # the container's hostname


def names(balancer: LoadBalancer) -> dict[str, tuple[str, str]]:
    """server -> (admin state, address) on the one backend."""
    return {s.name: (s.admin, s.address) for s in balancer.servers()}


def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_add_drain_remove_and_sync_fail_no_request(
    engine: docker.DockerClient, project: Project, replicas: Replicas
) -> None:
    w1, w2 = replicas.start(1), replicas.start(2)
    balancer = lb.ensure(engine, project, project.service("web"), [])
    balancer.sync([balancer.backend_for(w1), balancer.backend_for(w2)])
    assert names(balancer) == {
        w1.name: ("ready", balancer.backend_for(w1).address),
        w2.name: ("ready", balancer.backend_for(w2).address),
    }
    assert all(s.healthy and s.port == 8000 for s in balancer.servers())
    port = published_port(engine, balancer)

    with Traffic(port) as traffic:
        traffic.wait_served(host(w1), 20)
        traffic.wait_served(host(w2), 20)

        w3 = replicas.start(3)
        balancer.add(balancer.backend_for(w3))
        traffic.wait_served(host(w3), 20)

        assert balancer.drain(w1.name) == 0  # no session had to be cut
        state = {s.name: s.admin for s in balancer.servers()}
        assert state[w1.name] == "maint"
        balancer.remove(w1.name)
        replicas.stop(1)  # stopped only once the LB no longer sends it anything
        traffic.wait_served(host(w2), 20)

        w4 = replicas.start(4)
        balancer.sync([balancer.backend_for(w3), balancer.backend_for(w4)])
        assert set(names(balancer)) == {w3.name, w4.name}
        replicas.stop(2)
        traffic.wait_served(host(w3), 20)
        traffic.wait_served(host(w4), 20)

    assert traffic.failures == []
    for inst in (w1, w2, w3, w4):
        assert traffic.served[host(inst)] > 0, traffic.served
    # the file an LB restart reads holds exactly the current servers
    cfg = balancer.config_path.read_text()
    assert f"server {w3.name} " in cfg and f"server {w4.name} " in cfg
    assert w1.name not in cfg and w2.name not in cfg


def test_a_server_that_fails_its_check_is_named_and_taken_out(
    engine: docker.DockerClient, project: Project, replicas: Replicas
) -> None:
    idle = replicas.start(1, command=("sleep", "300"))  # on the network, nothing on 8000
    w2 = replicas.start(2)
    balancer = lb.ensure(engine, project, project.service("web"), [])
    with pytest.raises(ServiceError) as err:
        balancer.add_many([balancer.backend_for(idle), balancer.backend_for(w2)], timeout=3)
    message = err.value.message
    assert f"waited 3s for {idle.name} to pass the health check" in message
    assert "last check L4CON" in message and w2.name not in message
    # the one that passed serves; the other was taken out again
    assert names(balancer) == {w2.name: ("ready", balancer.backend_for(w2).address)}
    assert get(published_port(engine, balancer)) == host(w2)


def test_restart_keeps_the_servers_and_remove_leaves_nothing(
    engine: docker.DockerClient, project: Project, replicas: Replicas
) -> None:
    w1, w2 = replicas.start(1), replicas.start(2)
    service = project.service("web")
    balancer = lb.ensure(
        engine, project, service, [lb_backend(engine, project, w1), lb_backend(engine, project, w2)]
    )
    balancer.remove(w2.name)
    before = names(balancer)
    assert set(before) == {w1.name}

    engine.api.restart(balancer.container_id, timeout=2)
    balancer.wait_answering()
    assert names(balancer) == before
    port = published_port(engine, balancer)
    assert get(port) == host(w1)

    # ensure adopts the running LB (same container) and converges
    again = lb.ensure(engine, project, service, [balancer.backend_for(w2)])
    assert again.container_id == balancer.container_id
    assert set(names(again)) == {w2.name}

    found = lb.get(engine, project, service)
    assert found is not None and found.container_id == balancer.container_id
    assert set(names(found)) == {w2.name}

    assert lb.remove(engine, project.name, "web") is True
    assert lb.get(engine, project, service) is None
    with pytest.raises(docker.errors.NotFound):
        engine.api.inspect_container(balancer.container_id)
    assert not run_dir_for(lb_name(project.name, "web")).exists()
    assert list_load_balancers(engine, project.name) == []
    assert lb.remove(engine, project.name, "web") is False


def test_tcp_mode_drain_waits_for_connections_then_shuts_them(
    engine: docker.DockerClient, make_project: MakeProject, replicas: Replicas
) -> None:
    tcp = web_service(x_compound=XCompound(lb={"mode": "tcp"}))
    project = make_project(tcp)
    replicas.project = project
    w1, w2 = replicas.start(1), replicas.start(2)
    balancer = lb.ensure(engine, project, tcp, [lb_backend(engine, project, w1)])
    assert "mode tcp" in balancer.config_path.read_text()
    port = published_port(engine, balancer)
    # one idle keep-alive connection: in tcp mode it is a session on w1 until it closes
    held = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    held.request("GET", "/")
    assert held.getresponse().read().decode() == host(w1)
    balancer.add(lb_backend(engine, project, w2))
    assert balancer.drain(w1.name, timeout=1) == 1  # waited, then shut it
    with pytest.raises((http.client.HTTPException, OSError)):
        held.request("GET", "/")
        held.getresponse().read()
    held.close()
    assert get(port) == host(w2)  # new connections go to the other one


def lb_backend(engine: docker.DockerClient, project: Project, inst: Instance) -> lb.Backend:
    ip = inst.details["ip_addresses"][project.networks["default"].name]
    return lb.Backend(inst.name, ip)


def test_load_balancer_is_no_instance_and_down_removes_it(
    engine: docker.DockerClient, project: Project, replicas: Replicas
) -> None:
    w1 = replicas.start(1)
    balancer = lb.ensure(engine, project, project.service("web"), [lb_backend(engine, project, w1)])
    assert balancer.socket.name == SOCKET_NAME and balancer.socket.is_socket()
    session = Session(project, engine)
    assert [i.name for i in session.instances()] == [w1.name]
    assert [i.name for i in list_load_balancers(engine, project.name)] == [balancer.name]

    removed = session.down(timeout=2)
    assert removed["load_balancers"] == [balancer.name]
    assert removed["instances"] == [w1.name]
    assert list_load_balancers(engine, project.name) == []
    assert not balancer.run_dir.exists()
    assert removed["networks"] == [project.networks["default"].name]
