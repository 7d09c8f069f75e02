"""`compound serve`: the REST API, the dashboard and /metrics.

run.py       start-up: tokens, the listen address's rules, uvicorn
app.py       the FastAPI routes (reads, actions as jobs, SSE, logs, /metrics)
actions.py   what each action does on a reconcile Session
jobs.py      actions as jobs: a thread each, the project's lock, progress, audit
events.py    the event bus the SSE stream reads
projects.py  the Compose projects served
tokens.py    the operator and read-only tokens (digests only on disk)
errors.py    errors as JSON in the CLI's shape, with their HTTP status
metrics.py   the Prometheus collector; cgroups.py reads an instance's cgroup
static/      the dashboard: hand-written HTML, CSS and JS, no build step
"""

# the server is started by `compound serve` (cli/serve_cmd.py, through run.py);
# nothing is imported from the package itself
__all__: list[str] = []
