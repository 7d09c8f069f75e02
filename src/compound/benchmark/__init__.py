"""``compound bench``: the same image run as a container and as a compound
VM on this host, measured side by side, and the seeds' claims about
containers and VMs checked against the figures.

    options.py   what the user asked (image, quick/full, bounds)
    stats.py     median/min/max over rounds, VM/container ratios pair by pair, noise
    figures.py   the report's data model (JSON in and out)
    workload.py  what runs inside the targets (compose file, shell scripts)
    loadgen.py   the HTTP load generator, on the host and in the client container
    hostprobe.py memory (RSS/PSS from /proc), disk, confinement, seen from the host
    runner.py    starts, measures and removes everything, interleaving rounds
    claims.py    each claim of the seeds against its figures: a verdict
    compare.py   this report against a previous JSON report
    advice.py    what `compound advise` concludes for the user's own services
    plots.py     SVG plots (matplotlib, the optional ``bench`` extra)
    render.py    Markdown and HTML
    errors.py    BenchError (a CompoundError)
"""

from compound.benchmark.errors import BenchError
from compound.benchmark.figures import Figure, Report
from compound.benchmark.options import BenchOptions

__all__ = ["BenchError", "BenchOptions", "Figure", "Report"]
