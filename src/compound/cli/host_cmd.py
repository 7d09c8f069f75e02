"""compound host create | ls | inspect | start | stop | rm | env."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from compound.cli.context import app_context
from compound.errors import UsageError

if TYPE_CHECKING:
    from compound.hosts import records

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

host_app = typer.Typer(
    name="host",
    help="Docker hosts compound can deploy to: this machine, machines over SSH, local VMs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    app.add_typer(host_app, name="host")


def _labels(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


@host_app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    driver: Annotated[
        str, typer.Option("--driver", "-d", help="local, ssh, nested (test hosts) or qemu.")
    ] = "local",
    address: Annotated[str | None, typer.Option("--address", help="ssh: IP or DNS name.")] = None,
    user: Annotated[str, typer.Option("--user", help="ssh: login user.")] = "root",
    port: Annotated[int, typer.Option("--port", help="ssh: port.")] = 22,
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity", help="ssh: a private key the machine accepts (else one is generated)."
        ),
    ] = None,
    install_docker: Annotated[
        bool, typer.Option("--install-docker", help="ssh: install docker.io when missing.")
    ] = False,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="KEY=VALUE (repeatable).")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Dedicate the host to this tenant.")
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option("--memory", "-m", help="qemu: guest memory, e.g. 2g (default 1g)."),
    ] = None,
    cpus: Annotated[
        int | None, typer.Option("--cpus", help="qemu: virtual CPUs (default 1).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Provision (qemu, nested) or adopt (ssh, local) a Docker host and measure it."""
    from compound.cli.render import print_json
    from compound.hosts import drivers
    from compound.hosts.records import DRIVERS

    app_ctx = app_context(ctx)
    if driver not in DRIVERS:
        raise UsageError(f"--driver {driver!r}: expected one of {', '.join(DRIVERS)}")
    record = drivers.create(
        name,
        driver,
        address=address,
        user=user,
        port=port,
        identity=identity,
        install_docker=install_docker,
        labels=_labels(label),
        tenant=tenant,
        memory_mib=_mebibytes(memory),
        cpus=cpus,
        progress=lambda m: app_ctx.err.print(f"{name}: {m}", markup=False),
    )
    if json_out:
        print_json(record.to_json())
    else:
        app_ctx.out.print(f"{name}: ready ({_summary(record)})", markup=False)
        app_ctx.out.print(f"  docker --context {record.context} ps", markup=False)


def _mebibytes(memory: str | None) -> int | None:
    """``--memory 2g`` in MiB; a bare number is MiB, as QEMU's -m takes it."""
    from compound.spec.units import UnitError, parse_size

    if memory is None:
        return None
    text = memory.strip()
    if text.isdigit():
        return int(text)
    try:
        return parse_size(text) // (1024 * 1024)
    except UnitError as exc:
        raise UsageError(f"--memory {memory!r}: {exc}; e.g. 2g or 1536m") from None


def _summary(r: records.HostRecord) -> str:
    from compound.cli.render import human_bytes

    f = r.facts
    return (
        f"{f.get('class', '?')}, {f.get('cpus', 0):g} CPUs, {human_bytes(f.get('memory', 0))}, "
        f"kvm {_kvm(f)}, engine {f.get('engine') or '-'}"
    )


def _kvm(f: dict[str, Any]) -> str:
    kvm = f.get("kvm")
    return "yes" if kvm else "no" if kvm is False else "unknown"


def _states(rows: list[records.HostRecord]) -> list[str]:
    from compound.hosts import drivers

    if not rows:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(rows))) as pool:
        return list(pool.map(drivers.state, rows))


@host_app.command("ls")
def ls(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Every host with its state (asked now) and its measured facts."""
    from rich.table import Table

    from compound.cli.render import human_bytes, print_json
    from compound.hosts import records

    app_ctx = app_context(ctx)
    rows = records.load_all()
    states = _states(rows)
    if json_out:
        print_json([{**r.to_json(), "state": s} for r, s in zip(rows, states, strict=True)])
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    cols = ("NAME", "DRIVER", "ADDRESS", "STATE", "CLASS", "CPUS", "MEMORY", "KVM", "OS", "ENGINE")
    for col in (*cols, "TENANT", "LABELS"):
        table.add_column(col)
    for r, s in zip(rows, states, strict=True):
        f = r.facts
        table.add_row(
            r.name,
            r.driver,
            r.address or "(this machine)",
            s,
            str(f.get("class", "-")),
            f"{f.get('cpus', 0):g}",
            human_bytes(f.get("memory", 0)),
            _kvm(f),
            str(f.get("os_name") or f.get("os") or "-"),
            str(f.get("engine") or "-"),
            r.tenant or "-",
            ",".join(f"{k}={v}" for k, v in sorted(r.labels.items())) or "-",
        )
    app_ctx.out.print(table)


@host_app.command("inspect")
def inspect(ctx: typer.Context, name: str) -> None:
    """The host's record as JSON, with its state asked now (no secrets: the key's path only)."""
    from compound.cli.render import print_json
    from compound.hosts import drivers, records

    r = records.load(name)
    print_json({**r.to_json(), "state": drivers.state(r)})


@host_app.command("start")
def start(ctx: typer.Context, name: str) -> None:
    """Start a nested or qemu host and wait until its engine answers."""
    from compound.hosts import drivers, records

    app_ctx = app_context(ctx)
    r = records.load(name)
    drivers.start(r, progress=lambda m: app_ctx.err.print(f"{name}: {m}", markup=False))
    app_ctx.out.print(f"{name}: running", markup=False)


@host_app.command("stop")
def stop(ctx: typer.Context, name: str) -> None:
    """Stop a nested or qemu host (its record, disk and engine data stay)."""
    from compound.hosts import drivers, records

    app_ctx = app_context(ctx)
    drivers.stop(records.load(name))
    app_ctx.out.print(f"{name}: stopped", markup=False)


@host_app.command("rm")
def rm(
    ctx: typer.Context,
    names: list[str],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Even if it still runs containers.")
    ] = False,
) -> None:
    """Forget hosts (destroying nested and qemu machines); refuses a busy host without --force."""
    from compound.hosts import drivers, records

    app_ctx = app_context(ctx)
    for name in names:
        drivers.remove(records.load(name), force=force)
        app_ctx.out.print(f"{name}: removed", markup=False)


@host_app.command("env")
def env(ctx: typer.Context, name: str) -> None:
    """Shell lines pointing the docker CLI at the host: eval "$(compound host env NAME)"."""
    from compound.hosts import records

    app_ctx = app_context(ctx)
    r = records.load(name)
    app_ctx.out.print(f"export DOCKER_CONTEXT={r.context}", markup=False)
    app_ctx.out.print(f"# or: export DOCKER_HOST={r.docker_host}", markup=False)
    app_ctx.out.print(
        f'# Run this command to configure your shell: eval "$(compound host env {name})"',
        markup=False,
    )
