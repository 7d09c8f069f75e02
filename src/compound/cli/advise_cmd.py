"""``compound advise`` and ``compound plan``.

``compound advise [SERVICE...] [--json] [--rules]`` explains, per service,
the runtime (container or vm) and host class (bare-metal, virtual or either)
the advisor recommends, how sure it is, the factors that decided it, and what
would change the decision. ``runtime: auto`` at ``up`` uses exactly this.

``compound plan --hosts hosts.yaml [-f compose.yaml ...] [--json]`` places
the instances of one or more applications on an inventory of hosts. Each
``-f`` given *after* ``plan`` is one application; without any, the project
of the global options is planned (global ``-f`` before the command merges
files into one application, as everywhere else). Exit code 1 when some
instance could not be placed (the report says why).

JSON (``--json`` prints JSON only, on stdout), version 1:

advise::

    {"version": 1,
     "host_facts": {"kvm_usable", "host_is_vm", "os", "arch", "cpus", "memory"} | null,
     "services": [{"service", "declared_runtime", "runtime", "effective_runtime",
                   "confidence", "tie", "runtime_score",
                   "host_class", "host_confidence", "host_tie", "host_score",
                   "factors": [{"rule", "factor", "axis", "toward", "weight", "why"}],
                   "would_change": [str]}]}

plan: see :meth:`compound.placement.pack.Packing.to_json`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from compound.errors import UsageError
from compound.spec.hints import HINTS

if TYPE_CHECKING:
    from rich.console import Console

    from compound.advisor import Advice, HostFacts
    from compound.placement import Packing
    from compound.spec.model import Project

LoadOne = Callable[[], "Project"]
LoadMany = Callable[[list[str]], list["Project"]]
Facts = Callable[[], "HostFacts | None"]


def _hint_line(name: str) -> str:
    kind, allowed, meaning = HINTS[name]
    shapes = {"bool": "true | false", "kernel": '"6.1" | [modules] | {version, modules}'}
    values = " | ".join(allowed) if allowed else shapes.get(kind, kind)
    return f"{name}: {values}: {meaning}"


_ADVISE_HELP = (
    "Container or VM, bare metal or virtual: the advice for each service, and why.\n\n"
    "Hints under x-compound.hints:\n\n" + "\n\n".join(_hint_line(n) for n in HINTS)
)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _default_load(ctx: typer.Context) -> Project:
    """The project of the global options, through the CLI's AppContext."""
    obj: Any = ctx.obj
    if obj is None or not hasattr(obj, "load"):
        raise UsageError("no project loader is configured")
    project: Project = obj.load(quiet=True).project
    return project


def _default_load_many(ctx: typer.Context, files: list[str]) -> list[Project]:
    """One application per file: the global options with ``files`` replaced."""
    obj: Any = ctx.obj
    if obj is None or not hasattr(obj, "opts"):
        raise UsageError("no project loader is configured")
    out: list[Project] = []
    for path in files:
        one = type(obj)(dataclasses.replace(obj.opts, files=[path]))
        out.append(one.load(quiet=True).project)
    return out


def render_advice(console: Console, advice: Sequence[Advice]) -> None:
    from rich.markup import escape

    for a in advice:
        runtime = f"[bold]{a.runtime}[/]"
        if a.tie:
            runtime += " (tie: container by default)"
        host = f"[bold]{a.host_class}[/]"
        if a.host_tie:
            host += " (tie)"
        declared = "" if a.declared_runtime == "auto" else f"   declared: {a.declared_runtime}"
        if a.declared_runtime not in ("auto", a.runtime):
            declared += " [yellow](differs from the advice)[/]"
        console.print(
            f"[bold cyan]{escape(a.service)}[/]  runtime: {runtime} "
            f"(confidence {a.confidence:.2f})   host: {host} "
            f"(confidence {a.host_confidence:.2f}){declared}"
        )
        width = max((len(f.rule) for f in a.factors), default=0)
        for f in a.factors:
            console.print(
                f"   {f.weight:>2} → {f.toward:<10} [dim]{f.rule:<{width}}[/]  {escape(f.why)}"
            )
        if not a.factors:
            console.print("   no factor applies: container, either host class")
        for text in a.would_change:
            console.print(f"   [dim]would change:[/] {escape(text)}")
        console.print()


def render_rules(console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from compound.advisor import RULES

    table = Table(title="advisor rules (compound.advisor.rules)")
    for col in ("rule", "toward", "weight", "factor"):
        table.add_column(col)
    for r in RULES:
        table.add_row(r.id, r.toward, str(r.weight), escape(r.factor))
    console.print(table)


def _names(packing: Packing, items: list[tuple[int, int]], limit: int | None) -> str:
    names = [packing.demands[d].instance_name(n) for d, n in items]
    if limit is not None and len(names) > limit:
        return ", ".join(names[:limit]) + f" (+{len(names) - limit} more)"
    return ", ".join(names)


def render_plan(console: Console, packing: Packing, *, limit: int | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    per_host = packing.instances_on()
    table = Table(title=f"placement on {len(packing.hosts)} host(s)")
    table.add_column("host")
    table.add_column("class")
    table.add_column("cpu", justify="right")
    table.add_column("mem", justify="right")
    table.add_column("instances", justify="right")
    table.add_column("placed here")
    for i in packing.used_hosts:
        h = packing.hosts[i]
        cpu, mem = packing.utilisation(i)
        table.add_row(
            escape(h.name),
            h.host_class + ("" if h.os == "linux" else f" ({h.os})"),
            f"{cpu:.0%}",
            f"{mem:.0%}",
            str(len(per_host[i])),
            escape(_names(packing, per_host[i], limit)),
        )
    console.print(table)
    lb = packing.lower_bound
    bal = packing.balance()
    console.print(
        f"hosts used: [bold]{packing.hosts_used}[/] of {len(packing.hosts)}   "
        f"lower bound: {lb.hosts} (by {lb.by})   gap: {packing.gap():.1%}   "
        f"utilisation min/mean/max: {bal['min']:.0%} / {bal['mean']:.0%} / {bal['max']:.0%}"
    )
    console.print(f"placed: {packing.placed}   unplaced: {packing.unplaced_count}")
    if packing.unplaced:
        by_key = {d.key: d for d in packing.demands}
        console.print("[bold red]could not place:[/]")
        for u in packing.unplaced:
            d = by_key[u.key]
            what = [d.instance_name(n) for n in u.numbers] or [
                f"{d.service} on {h}" for h in u.hosts
            ]
            shown = ", ".join(what if limit is None else what[:limit])
            if limit is not None and len(what) > limit:
                shown += f" (+{len(what) - limit} more)"
            console.print(f"  {escape(shown)}: {escape(u.reason)}")


def register(
    app: typer.Typer,
    load: LoadOne | None = None,
    load_many: LoadMany | None = None,
    host_facts: Facts | None = None,
) -> None:
    """Add ``advise`` and ``plan`` to ``app``.

    ``load`` returns the project of the global options; ``load_many`` one
    project per compose file; ``host_facts`` what ``compound doctor`` knows
    about this host. Left out, the first two use the CLI's context object
    (``ctx.obj.load()``), and no host facts are assumed.
    """

    @app.command("advise", help=_ADVISE_HELP)
    def advise_cmd(
        ctx: typer.Context,
        services: Annotated[
            list[str] | None, typer.Argument(help="Services to advise on (default: all).")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
        rules: Annotated[bool, typer.Option("--rules", help="Print the rule table.")] = False,
    ) -> None:
        from rich.console import Console

        from compound.advisor import RULES, advise

        console = Console(highlight=False, soft_wrap=True, emoji=False)
        if rules:
            if json_out:
                _print_json(
                    [
                        {"rule": r.id, "toward": r.toward, "weight": r.weight, "factor": r.factor}
                        for r in RULES
                    ]
                )
            else:
                render_rules(console)
            return
        project = load() if load is not None else _default_load(ctx)
        facts = host_facts() if host_facts is not None else None
        result = advise(project, facts, services or None)
        if json_out:
            from compound.reconcile.views import advice_json

            _print_json(advice_json(result, facts))
        else:
            render_advice(console, result)

    @app.command("plan")
    def plan_cmd(
        ctx: typer.Context,
        hosts: Annotated[
            str | None,
            typer.Option("--hosts", help="Host inventory (YAML); default: `compound host ls`."),
        ] = None,
        file: Annotated[
            list[str] | None,
            typer.Option("--file", "-f", help="One application per file (repeatable)."),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
        limit: Annotated[
            int,
            typer.Option("--limit", help="Instance names shown per host (0: all).", min=0),
        ] = 0,
    ) -> None:
        """Place the instances of one or more applications on an inventory of hosts."""
        from rich.console import Console

        from compound.placement import load_hosts, place

        if hosts is not None:
            inventory = load_hosts(hosts)
        else:
            from compound.hosts.inventory import recorded_inventory

            inventory = recorded_inventory()
        if file:
            projects = load_many(list(file)) if load_many else _default_load_many(ctx, file)
        else:
            projects = [load() if load is not None else _default_load(ctx)]
        facts = host_facts() if host_facts is not None else None
        packing = place(projects, inventory, host_facts=facts)
        if json_out:
            _print_json(packing.to_json())
        else:
            render_plan(
                Console(highlight=False, soft_wrap=True, emoji=False), packing, limit=limit or None
            )
        if packing.unplaced:
            raise typer.Exit(1)
