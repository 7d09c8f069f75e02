"""Interleaved, colour-prefixed logs of many instances (`logs`, attached `up`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from compound.cli.context import AppContext
from compound.errors import CompoundError

if TYPE_CHECKING:
    from compound.reconcile.session import Session
    from compound.runtimes.base import Instance, LogLine

_DONE = object()


def follow_logs(
    app: AppContext,
    session: Session,
    services: Sequence[str],
    *,
    follow: bool,
    tail: int | None,
    timestamps: bool,
    since: str | None = None,
    prefix: bool = True,
    colour: bool = True,
) -> None:
    """Print until every instance's stream has ended (with ``follow``: until
    they all exit)."""
    from rich.text import Text

    from compound.cli.render import colour_for
    from compound.runtimes.base import LogLine

    instances = session.instances(services)
    if not instances:
        return
    width = max(len(_label(i)) for i in instances)
    colours = {i.id: colour_for(n) for n, i in enumerate(instances)}
    lines: queue.Queue[LogLine | object] = queue.Queue(maxsize=10000)

    def pump(inst: Instance) -> None:
        try:
            for line in session.driver_for(inst).logs(
                inst, follow=follow, tail=tail, timestamps=timestamps, since=since
            ):
                lines.put(line)
        except CompoundError as exc:
            lines.put(LogLine(inst.service, inst.name, f"<logs unavailable: {exc.message}>"))
        finally:
            lines.put(_DONE)

    threads = [threading.Thread(target=pump, args=(i,), daemon=True) for i in instances]
    for t in threads:
        t.start()
    by_name = {i.name: i for i in instances}
    remaining = len(threads)
    while remaining:
        try:
            item = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is _DONE:
            remaining -= 1
            continue
        assert isinstance(item, LogLine)
        inst = by_name.get(item.instance)
        label = _label(inst) if inst else item.instance
        text = Text()
        if prefix:
            style = colours.get(inst.id, "white") if (inst and colour) else ""
            text.append(f"{label:<{width}} | ", style=style)
        if timestamps and item.timestamp:
            text.append(f"{item.timestamp} ")
        text.append(item.text.rstrip("\n"))
        app.out.print(text, highlight=False, markup=False)


def _label(inst: Instance) -> str:
    return f"{inst.service}-{inst.number}"
