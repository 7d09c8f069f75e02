#!/usr/bin/env python3
"""20 services onto a 3-node Swarm: `compound up --swarm` vs `docker stack deploy`,
and how long the Swarm takes to bring everything back after losing a node.

The cluster is three nested Docker hosts (`compound host create --driver
nested`, containers of local/dockerhost on their own network, adopted over
SSH) formed with `compound swarm init`; it is built at the start and removed
at the end. The application is bench/compose/twenty.yaml.

Both tools are timed to convergence (every replica running), not to the
command's return: `docker stack deploy` returns before anything runs, so it
is followed by polling `docker service ls` on the manager every 0.2 s
(what a user of it must do; compound polls as often). The peer's commands
reach the manager through the socket compound's SSH control master
forwards, as compound's own calls do, not through `--context`, which
starts an ssh and a remote `docker system dial-stdio` per command and so
made each of the peer's polls slower than compound's. `compound up --swarm` itself waits until every replica runs,
so its clock stops when it returns, and the same `docker service ls` check
then verifies that everything runs (a round fails otherwise). Each compound
round also records where its time went: the deploy's own phases
(`up --swarm --json`) and the rest of the process (Python start, imports,
loading the file). The peer deploys
the stack file compound generated from the same Compose file (this kernel has
no IPVS, so the file must say `endpoint_mode: dnsrr`, which compound adds;
twenty.yaml itself would not start on Swarm here). Rounds alternate tools, a
fresh stack name each; images are on the nodes before the first timed round.

Node loss: the app is deployed, one worker is stopped (`compound host
stop`), and the clock runs until every service whose tasks can move (not
pinned to the stopped node by a local volume) is fully running again.

Writes bench/results/swarm_deploy-<date>_<host>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPOUND = str(Path(sys.executable).parent / "compound")
APP = ROOT / "bench" / "compose" / "twenty.yaml"
HOSTS = ("swarm-b1", "swarm-b2", "swarm-b3")


def sh(argv: list[str], timeout: float = 900, check: bool = True) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def compound(*args: str, project: str | None = None) -> str:
    cmd = [COMPOUND, "--progress", "quiet", "-f", str(APP)]
    if project:
        cmd += ["-p", project]
    return sh([*cmd, *args])


# `docker --host` for the manager, through the socket compound's SSH control
# master forwards (set once the cluster exists): what compound's own calls
# use, so the peer's deploy and its polling pay no ssh + dial-stdio per command
MANAGER: list[str] = ["--context", HOSTS[0]]


def replicas_ready(stack: str) -> tuple[int, int]:
    out = sh(
        ["docker", *MANAGER, "service", "ls", "--filter",
         f"label=com.docker.stack.namespace={stack}", "--format", "{{.Replicas}}"],
        check=False,
    )  # fmt: skip
    ready = total = 0
    for line in out.split():
        run, _, want = line.partition("/")
        total += 1
        ready += int(run == want and want != "0")
    return ready, total


def wait_ready(stack: str, services: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, total = replicas_ready(stack)
        if total == services and ready == services:
            return
        time.sleep(0.2)
    raise SystemExit(f"stack {stack} did not converge within {timeout:.0f}s")


def stack_rm(stack: str) -> None:
    sh(["docker", *MANAGER, "stack", "rm", stack], check=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if replicas_ready(stack)[1] == 0:
            nets = sh(
                ["docker", *MANAGER, "network", "ls", "-q", "--filter",
                 f"label=com.docker.stack.namespace={stack}"],
                check=False,
            )  # fmt: skip
            if not nets.strip():
                return
        time.sleep(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    # compound's sources byte-compiled, as an installed package's are: with
    # PYTHONDONTWRITEBYTECODE set, an edited checkout would compile every
    # changed module in every timed `compound` process
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=False)
    # a fixed directory: ~/.ssh/config includes its ssh_config once, not once per run
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    hosts_dir = str(cache / "compound" / "swarm" / "bench-hosts")
    os.environ["COMPOUND_HOSTS_DIR"] = hosts_dir
    os.environ["COMPOUND_NESTED_PREFIX"] = "swarm-bench-host-"
    doc: dict[str, object] = {"date": time.strftime("%Y-%m-%dT%H%M%S")}
    try:
        # leftovers of an interrupted run
        for h in HOSTS:
            subprocess.run([COMPOUND, "host", "rm", "--force", h], capture_output=True, check=False)
        (Path(hosts_dir) / "swarm.json").unlink(missing_ok=True)
        t0 = time.monotonic()
        procs = [
            subprocess.Popen([COMPOUND, "host", "create", h, "--driver", "nested"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for h in HOSTS
        ]  # fmt: skip
        for p in procs:
            if p.wait() != 0:
                raise SystemExit(
                    f"host create failed: {p.stderr.read().decode() if p.stderr else ''}"
                )
        compound("swarm", "init", "--hosts", ",".join(HOSTS))
        from compound.hosts import records
        from compound.hosts.engine import cli_host

        MANAGER[:] = ["--host", cli_host(records.load(HOSTS[0]))]
        doc["cluster_build_seconds"] = round(time.monotonic() - t0, 1)
        services = len(compound("config", "--services").split())
        # warm-up: images reach the nodes, compound writes the stack file the peer deploys
        compound("up", "--swarm", project="swarmbench-warm")
        stack_file = Path(hosts_dir) / "stacks" / "swarmbench-warm.yaml"
        compound("swarm", "down", project="swarmbench-warm")
        times: dict[str, list[float]] = {"compound": [], "docker-stack": []}
        breakdown: dict[str, list[dict[str, float]]] = {"compound": [], "docker-stack": []}
        for i in range(args.rounds):
            name = f"swarmbench-c{i}"
            t = time.monotonic()
            result = json.loads(compound("up", "--swarm", "--json", project=name))
            wall = time.monotonic() - t
            times["compound"].append(wall)
            wait_ready(name, services, timeout=5)  # verifies; not timed
            phases = dict(result["phases"])
            phases["process_outside_deploy"] = round(wall - result["seconds"], 2)
            breakdown["compound"].append(phases)
            compound("swarm", "down", project=name)
            name = f"swarmbench-d{i}"
            t = time.monotonic()
            sh(["docker", *MANAGER, "stack", "deploy", "--resolve-image", "never",
                "-c", str(stack_file), name])  # fmt: skip
            returned = time.monotonic() - t
            wait_ready(name, services)
            times["docker-stack"].append(time.monotonic() - t)
            breakdown["docker-stack"].append(
                {
                    "stack_deploy": round(returned, 2),
                    "converge": round(times["docker-stack"][-1] - returned, 2),
                }
            )
            stack_rm(name)
        med = {k: statistics.median(v) for k, v in times.items()}
        doc["services"] = services
        doc["deploy_seconds"] = {k: [round(x, 2) for x in v] for k, v in times.items()}
        doc["median_seconds"] = {k: round(v, 2) for k, v in med.items()}
        doc["breakdown"] = breakdown
        doc["median_breakdown"] = {
            tool: {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0]}
            for tool, rows in breakdown.items()
        }
        doc["ratio_compound_over_docker_stack"] = round(med["compound"] / med["docker-stack"], 2)
        # node loss
        compound("up", "--swarm", project="swarmbench-loss")
        stack = yaml_services_pinned(Path(hosts_dir) / "stacks" / "swarmbench-loss.yaml")
        movable = services - len(stack.get(HOSTS[2], []))
        t = time.monotonic()
        compound("host", "stop", HOSTS[2])
        deadline = time.monotonic() + 300
        converged = None
        while time.monotonic() < deadline:
            ready, _ = replicas_ready("swarmbench-loss")
            if ready >= movable:
                converged = time.monotonic() - t
                break
            time.sleep(0.5)
        doc["node_loss"] = {
            "stopped": HOSTS[2],
            "services_pinned_to_it": stack.get(HOSTS[2], []),
            "movable_services": movable,
            "seconds_to_converge": round(converged, 1) if converged else None,
        }
    finally:
        for h in HOSTS:
            subprocess.run([COMPOUND, "host", "rm", "--force", h], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", "swarm-bench-host-net"], capture_output=True)
    doc["machine"] = {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"swarm_deploy-{doc['date']}_{socket.gethostname()}"
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    loss = doc["node_loss"]
    assert isinstance(loss, dict)
    lines = [
        f"# Swarm deploy, {doc['date']}",
        "",
        f"Machine: {socket.gethostname()}, {os.cpu_count()} cores, load {os.getloadavg()}",
        "",
        f"- cluster of 3 nested hosts built and formed in {doc['cluster_build_seconds']} s",
        f"- {doc['services']} services to convergence, median of {args.rounds}: compound "
        f"{med['compound']:.1f} s, docker stack deploy {med['docker-stack']:.1f} s, "
        f"ratio {doc['ratio_compound_over_docker_stack']} (target <= 1.0)",
        *(
            f"- {tool}, median seconds per phase: "
            + ", ".join(f"{k} {v}" for k, v in phases.items())
            for tool, phases in doc["median_breakdown"].items()  # type: ignore[attr-defined]
        ),
        f"- node loss ({loss['stopped']} stopped): {loss['movable_services']} movable services "
        f"running again after {loss['seconds_to_converge']} s; pinned there by a local volume: "
        f"{', '.join(loss['services_pinned_to_it']) or 'none'}",
    ]
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {base}.json and {base}.md")
    return 0


def yaml_services_pinned(stack_file: Path) -> dict[str, list[str]]:
    """host -> services pinned to it (the stack file is YAML; a line scan does)."""
    out: dict[str, list[str]] = {}
    service = None
    in_services = False
    for line in stack_file.read_text().splitlines():
        if line.startswith("services:"):
            in_services = True
            continue
        if in_services and line and not line.startswith(" "):
            in_services = False
        if in_services and line.startswith("  ") and not line.startswith("   "):
            service = line.strip().rstrip(":")
        marker = "node.labels.compound.host == "
        if in_services and service and marker in line:
            out.setdefault(line.split(marker)[1].strip().strip("'\""), []).append(service)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
