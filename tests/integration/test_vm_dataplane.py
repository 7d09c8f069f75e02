"""A VM as a full citizen of its networks and volumes (issue 10), through the
real CLI, real QEMU guests (TCG here) and real containers.

One VM serves every assertion: a python guest with an HTTP server on 8080
and a UDP echo on 5353, neither declared (no expose:), on two networks with
an alias on each, one port published, one named volume shared with a
container.

- every TCP and UDP port of the guest is reached by service name from a
  container, on both networks (by each network's alias too), and ping works;
- the guest owns the launcher's addresses: what its own hostname resolves
  to is one of the launcher's IPs, and what other services resolve for it;
  service names resolve inside the guest;
- the published port reaches the guest from the host;
- a container and the VM write 200 small files each into the same volume at
  the same time, and each reads all of the other's; owners and modes pass
  through both ways;
- `ps --json` says what the launcher set up (network tap, the share).
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compound.runtimes.base import LABEL_PROJECT
from tests.integration.apps import App
from tests.integration.test_vm_compose import (
    LABEL_RUN_DIR,
    PYTHON,
    _free_port,
    _host_get,
    _launchers,
    _until,
    vm_app,
)

pytestmark = pytest.mark.integration
__all__ = ["vm_app"]  # the fixture, re-exported for pytest

BUSYBOX = "local/busybox:latest"
FILES = 200
OWNER = ("1234", "5678", "640")  # uid, gid, mode of the container's marker file

# The guest's service: HTTP on 8080 (serves /www) and a UDP echo on 5353.
GUEST = textwrap.dedent("""
    import http.server, functools, os, socket, threading
    os.makedirs("/www", exist_ok=True)
    open("/www/index.html", "w").write("served-by-the-vm")
    def echo():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("", 5353))
        while True:
            data, peer = s.recvfrom(2048)
            s.sendto(b"echo:" + data, peer)
    threading.Thread(target=echo, daemon=True).start()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/www")
    http.server.ThreadingHTTPServer(("", 8080), handler).serve_forever()
""")

UDP_ASK = (
    "import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
    " s.settimeout(3); s.sendto(b'ping', (sys.argv[1], 5353)); print(s.recvfrom(100)[0].decode())"
)
HTTP_GET = (
    "import sys, urllib.request;"
    " print(urllib.request.urlopen(f'http://{sys.argv[1]}:8080/', timeout=5).read().decode())"
)
# Write n files into DIR/<who>/, the last ones owned uid:gid with mode.
WRITE = (
    "import os, sys; d, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3]);"
    " os.makedirs(f'{d}/{who}', exist_ok=True)\n"
    "for i in range(n):\n"
    "    open(f'{d}/{who}/{i}', 'w').write(f'{who}-{i}')\n"
    "p = f'{d}/{who}.owned'; open(p, 'w').write('x'); os.chown(p, int(sys.argv[4]),"
    " int(sys.argv[5])); os.chmod(p, int(sys.argv[6], 8))"
)
# Read every file of DIR/<who>/ and the stat of DIR/<who>.owned, as JSON.
READ = (
    "import json, os, sys; d, who = sys.argv[1], sys.argv[2]; names = os.listdir(f'{d}/{who}');"
    " st = os.stat(f'{d}/{who}.owned');"
    " print(json.dumps({'ok': sum(open(f'{d}/{who}/{n}').read() == f'{who}-{n}' for n in names),"
    " 'n': len(names), 'owner': [st.st_uid, st.st_gid], 'mode': oct(st.st_mode & 0o7777)}))"
)


def _exec(app: App, service: str, *cmd: str) -> str | None:
    code, out = app.run("exec", "-T", service, *cmd)
    return out if code == 0 else None


def _launcher_ips(app: App) -> dict[str, str]:
    [launcher] = [c for c in _launchers(app) if c.labels["io.compound.service"] == "vm"]
    launcher.reload()
    nets = launcher.attrs["NetworkSettings"]["Networks"]
    return {name.removeprefix(f"{app.name}_"): n["IPAddress"] for name, n in nets.items()}


@pytest.fixture
def citizen(vm_app: App) -> Iterator[tuple[App, int]]:
    port = _free_port()
    vm_app.write(f"""
        services:
          vm:
            image: {PYTHON}
            command: ["python3", "-c", {json.dumps(GUEST)}]
            networks:
              front: {{aliases: [vm-front]}}
              back: {{aliases: [vm-back]}}
            ports: ["127.0.0.1:{port}:8080"]
            volumes: ["shared:/shared"]
            x-compound: {{runtime: vm}}
          front:                       # a python container on the first network
            image: {PYTHON}
            command: ["python3", "-c", "import time; time.sleep(3600)"]
            stop_signal: SIGKILL
            networks: [front]
            volumes: ["shared:/shared"]
          back:                        # a busybox container on the second one
            image: {BUSYBOX}
            command: ["sleep", "3600"]
            stop_signal: SIGKILL
            networks: [back]
        networks:
          front: {{}}
          back: {{}}
        volumes:
          shared: {{}}
        """)
    vm_app.ok("up", "-d")
    yield vm_app, port


@pytest.mark.timeout(420)
def test_vm_owns_its_address_and_shares_volumes(citizen: tuple[App, int]) -> None:
    app, port = citizen
    # an undeclared TCP port, by service name, from a container
    out = _until(
        "front fetches http://vm:8080/",
        lambda: _exec(app, "front", "python3", "-c", HTTP_GET, "vm"),
        180,
    )
    assert "served-by-the-vm" in out
    # an undeclared UDP port
    out = _until(
        "UDP echo from vm", lambda: _exec(app, "front", "python3", "-c", UDP_ASK, "vm"), 30
    )
    assert "echo:ping" in out
    # the second network: by name and by that network's alias, ping and TCP
    for name in ("vm", "vm-back"):
        out = _until(
            f"back pings {name}", lambda n=name: _exec(app, "back", "ping", "-c", "1", n), 30
        )
        assert "1 packets received" in out, out
        out = _until(
            f"back gets http://{name}:8080/",
            lambda n=name: _exec(
                app, "back", "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {n} 8080"
            ),
            30,
        )
        assert "served-by-the-vm" in out
    out = _exec(app, "front", "python3", "-c", HTTP_GET, "vm-front")
    assert out and "served-by-the-vm" in out
    # the published port from the host
    body = _until(
        "host fetches the published port", lambda: _host_get(f"http://127.0.0.1:{port}/"), 30
    )
    assert "served-by-the-vm" in body

    # the guest owns the launcher's addresses, and names resolve both ways
    ips = _launcher_ips(app)
    assert set(ips) == {"front", "back"}, ips
    resolve = "import socket, sys; print(socket.gethostbyname(sys.argv[1]))"
    own = _exec(
        app,
        "vm",
        "python3",
        "-c",
        "import socket; print(socket.gethostbyname(socket.gethostname()))",
    )
    assert own and own.strip() in ips.values(), (own, ips)  # what `hostname -i` says
    seen_by_front = _exec(app, "front", "python3", "-c", resolve, "vm")
    assert seen_by_front and seen_by_front.strip() == ips["front"]
    front_ip = _exec(app, "front", "python3", "-c", resolve, "front")
    in_guest = _exec(app, "vm", "python3", "-c", resolve, "front")
    assert in_guest and front_ip and in_guest.strip() == front_ip.strip()

    # one volume, written by both at the same time; each reads the other's
    [front] = app.client.containers.list(
        filters={"label": [f"{LABEL_PROJECT}={app.name}", "io.compound.service=front"]}
    )
    writer = subprocess.Popen(
        ["docker", "exec", front.id, "python3", "-c", WRITE, "/shared", "c", str(FILES), *OWNER],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    vm_out = _exec(
        app, "vm", "python3", "-c", WRITE, "/shared", "v", str(FILES), "4321", "8765", "604"
    )
    assert vm_out is not None
    assert writer.wait(120) == 0, writer.stdout.read() if writer.stdout else ""
    seen: dict[str, Any] = {}
    for reader, who in (("vm", "c"), ("front", "v")):
        out = _exec(app, reader, "python3", "-c", READ, "/shared", who)
        assert out, f"{reader} cannot read {who}'s files"
        seen[who] = json.loads(out.strip().splitlines()[-1])
    assert seen["c"] == {"ok": FILES, "n": FILES, "owner": [1234, 5678], "mode": "0o640"}
    assert seen["v"] == {"ok": FILES, "n": FILES, "owner": [4321, 8765], "mode": "0o604"}

    # ps says what the launcher set up
    [row] = [r for r in json.loads(app.ok("ps", "--json")) if r["service"] == "vm"]
    assert row["network"] == "tap", row
    # virtiofsd runs in the launcher under Docker's default seccomp profile
    # plus unshare(CLONE_FS) (runtimes/vm/seccomp.py), so not 9p
    assert row["share"] == "virtiofs", row
    [launcher] = [c for c in _launchers(app) if c.labels["io.compound.service"] == "vm"]
    effective = (Path(launcher.labels[LABEL_RUN_DIR]) / "effective").read_text()
    assert f"share vol0 {row['share']}" in effective, (row, effective)
