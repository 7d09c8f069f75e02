"""The report as Markdown and as HTML, from one list of blocks (heading,
paragraph, list, table, image), so both always say the same thing."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from compound.benchmark.claims import fmt
from compound.benchmark.figures import CONTAINER, Figure, Report, is_vm

CLAIM_PLOTS = {
    "startup.entrypoint": "startup",
    "memory.pss": "memory",
    "disk.footprint": "disk",
    "network.c2t.latency_p50": "latency",
}


@dataclass(frozen=True)
class Block:
    kind: str  # h1 h2 p ul table img
    text: str = ""
    items: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def _cell(f: Figure, variant: str) -> str:
    s = f.summary(variant)
    if s is None:
        return "—"
    if s.n == 1:
        return fmt(s.median, f.unit)
    return f"{fmt(s.median, f.unit)} ({s.min:.3g}-{s.max:.3g})"


def _ratio(f: Figure, variant: str) -> str:
    r = f.ratio(variant)
    if r is None:
        return "—"
    return f"{fmt(r.median, 'x')} ({r.min:.2f}-{r.max:.2f})"


def blocks(report: Report) -> list[Block]:
    h = report.host
    vms = report.vm_variants
    out = [
        Block("h1", f"compound bench: {report.image} as a container and as a VM"),
        Block(
            "p",
            f"{report.date} on {h.get('hostname')}: {h.get('cpus')} CPUs,"
            f" {h.get('memory_mib')} MiB,"
            f" kernel {h.get('kernel')}, Docker {h.get('docker')}, QEMU {h.get('qemu')};"
            f" host is a VM: {h.get('host_is_vm')}; KVM usable: {h.get('kvm_usable')}"
            f" ({h.get('accel_probe')}). Mode {report.mode},"
            f" {report.options.get('rounds')} interleaved rounds; the run took"
            f" {report.duration_s} s.",
        ),
        Block("ul", items=tuple(f"{v}: {label}" for v, label in report.variants.items())),
    ]
    noise = report.noise
    if noise.get("noisy"):
        out.append(
            Block(
                "p",
                "Noisy host: "
                + "; ".join(noise.get("reasons") or [])
                + ". Read single rounds with care; the medians and pair-by-pair ratios are"
                " the robust figures.",
            )
        )
    if report.plots_skipped:
        out.append(Block("p", f"No plots: {report.plots_skipped}."))
    out.append(Block("h2", "The seeds' claims, checked on this host"))
    for c in report.claims:
        out.append(Block("p", f"{c['claim']} Verdict: {c['verdict'].upper()}."))
        detail = [x for x in (c.get("measured"), c.get("why")) if x]
        out.append(Block("ul", items=tuple(detail)))
        plot = next(
            (report.plots.get(CLAIM_PLOTS[i]) for i in c.get("figures", []) if i in CLAIM_PLOTS),
            None,
        )
        if plot:
            out.append(Block("img", plot))
    if report.advice.get("services") is not None or report.advice.get("skipped"):
        pass  # the advice section closes the report
    out.append(Block("h2", "Figures"))
    out.append(
        Block(
            "p",
            "Median (min-max) over the rounds; VM/container is taken pair by pair (round i of"
            " the VM over round i of the container) and summarised the same way. Volume and"
            " CPU work is timed inside the target by /proc/uptime, in 10 ms steps: 0 s means"
            " under 10 ms (and gives no ratio).",
        )
    )
    header = ("figure", *report.variants, *(f"{v}/container" for v in vms))
    rows = []
    skipped = []
    for f in report.figures:
        if f.skipped:
            skipped.append(f"{f.title}: {f.skipped}")
            continue
        rows.append(
            (f.title, *(_cell(f, v) for v in report.variants), *(_ratio(f, v) for v in vms))
        )
    out.append(Block("table", header=header, rows=tuple(rows)))
    if skipped:
        out.append(Block("p", "Not measured (no number is given for these):"))
        out.append(Block("ul", items=tuple(skipped)))
    for group, plot in report.plots.items():
        if group not in CLAIM_PLOTS.values():
            out.append(Block("img", plot))
    out += _density(report)
    out += _isolation(report)
    if report.compare:
        out += _compare(report.compare)
    if report.errors:
        out.append(Block("h2", "Measurements that failed (left out of the figures)"))
        out.append(Block("ul", items=tuple(report.errors)))
    out += _advice(report)
    return out


def _density(report: Report) -> list[Block]:
    f = report.figure("density.instances")
    if f is None:
        return []
    d = f.details
    rows = []
    for variant, run in (d.get("steps") or {}).items():
        pts = run.get("steps") or []
        per = ", ".join(f"{p['instances']}: {p['pss_mib']:.0f}" for p in pts) or "none"
        rows.append((variant, str(len(pts)), per, str(run.get("stopped_because"))))
    return [
        Block("h2", "Density"),
        Block(
            "p",
            f"Idle instances started one at a time, each checked running, up to the bound of"
            f" {d.get('bound')} or a budget of {d.get('budget_mib')} MiB (PSS of all of them);"
            " every one removed afterwards. Not extrapolated.",
        ),
        Block(
            "table",
            header=("variant", "started", "instances: PSS MiB", "stopped because"),
            rows=tuple(rows),
        ),
    ]


def _isolation(report: Report) -> list[Block]:
    iso = report.isolation
    if not iso:
        return []
    rows = []
    keys = (
        "privileged",
        "extra_capabilities",
        "cap_add",
        "devices",
        "security_opt",
        "apparmor",
        "userns",
    )
    for side in ("container", "vm"):
        info = iso.get(side) or {}
        conf = info.get("confinement") or {}
        facts = "; ".join(f"{k}: {_val(conf.get(k))}" for k in keys if k in conf)
        rows.append((f"{side} ({info.get('variant', '?')})", str(info.get("kernel")), facts))
    return [
        Block("h2", "Isolation facts"),
        Block(
            "p",
            f"The host runs kernel {iso.get('host_kernel')}."
            " A VM's confinement is its launcher container's.",
        ),
        Block(
            "table", header=("instance", "kernel it sees", "engine confinement"), rows=tuple(rows)
        ),
    ]


def _val(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "none"
    return str(v)


def _compare(cmp: dict[str, Any]) -> list[Block]:
    prev = cmp.get("previous") or {}
    out = [Block("h2", f"Changes since the report of {prev.get('date')}")]
    host = [f"{c['key']}: {c['before']} → {c['after']}" for c in cmp.get("host") or []]
    v = cmp.get("variants") or {}
    host += [f"variant added: {x}" for x in v.get("added") or []]
    host += [f"variant removed: {x}" for x in v.get("removed") or []]
    out.append(Block("ul", items=tuple(host or ["the host's conditions are the same"])))
    rows = tuple(
        (
            c["title"],
            c["variant"],
            f"{c['before']:.3g}",
            f"{c['after']:.3g}",
            f"{c['factor']:.2f}x",
            c["verdict"],
        )
        for c in cmp.get("figures") or []
    )
    out.append(
        Block(
            "table", header=("figure", "variant", "before", "after", "after/before", ""), rows=rows
        )
    )
    claims = [f"{c['claim']} {c['before']} → {c['after']}" for c in cmp.get("claims") or []]
    if claims:
        out.append(Block("ul", items=tuple(claims)))
    return out


def _advice(report: Report) -> list[Block]:
    a = report.advice
    out = [Block("h2", "What `compound advise` concludes for your services")]
    if a.get("skipped"):
        return [
            *out,
            Block("p", f"Not given: {a['skipped']}. Run `compound bench` in a project directory."),
        ]
    items = []
    for s in a.get("services") or []:
        why = "; ".join(s.get("why") or [])
        items.append(
            f"{s['service']}: runs as {s.get('effective', s['runtime'])}; the advisor recommends"
            f" {s['runtime']} (declared {s['declared']}, confidence"
            f" {s['confidence']:.0%}{'; ' + why if why else ''}). In the light of these figures:"
            f" {s['in_light']}."
        )
    return [*out, Block("p", f"Project {a.get('project')}:"), Block("ul", items=tuple(items))]


# --- Markdown -------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    lines: list[str] = []
    for b in blocks(report):
        if b.kind == "h1":
            lines += [f"# {b.text}", ""]
        elif b.kind == "h2":
            lines += [f"## {b.text}", ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "ul":
            lines += [f"- {i}" for i in b.items] + [""]
        elif b.kind == "img":
            lines += [f"![{b.text}]({b.text})", ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_cell(x) for x in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_md_cell(x) for x in r) + " |" for r in b.rows]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --- HTML ---------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; margin: 0.5em 0 1.5em; }
.verdict { font-weight: bold; }
"""


def to_html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>compound bench: {e(report.image)}</title>",
        f"<style>{STYLE}</style></head><body>",
    ]
    for b in blocks(report):
        if b.kind in ("h1", "h2", "p"):
            parts.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "img":
            parts.append(f'<img src="{e(b.text)}" alt="{e(b.text)}">')
        elif b.kind == "table":
            head = "".join(f"<th>{e(x)}</th>" for x in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{e(x)}</td>" for x in r) + "</tr>" for r in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


__all__ = ["CONTAINER", "blocks", "is_vm", "to_html", "to_markdown"]
