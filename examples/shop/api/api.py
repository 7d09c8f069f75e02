"""The shop API: takes an order, charges it through billing, reads the ledger,
and records the order in PostgreSQL (the db service, a VM) by service name."""

import json
import os
import platform
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2  # Debian's python3-psycopg2 in local/python:3

BILLING = os.environ["BILLING_URL"]
LEDGER = os.environ["LEDGER"]
# libpq takes PGHOST, PGUSER, PGPASSWORD, PGDATABASE from the environment

SCHEMA = """CREATE TABLE IF NOT EXISTS orders (
    id serial PRIMARY KEY,
    item text NOT NULL,
    charged_by text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
)"""


def db():
    """A connection per request: simple, and nothing stale to repair after
    the database VM is replaced by a rolling update."""
    return psycopg2.connect("", connect_timeout=10)


def record(item: str, billing: dict) -> int:
    with db() as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
        cur.execute(
            "INSERT INTO orders (item, charged_by) VALUES (%s, %s) RETURNING id",
            (item, str(billing.get("host", "?"))),
        )
        return cur.fetchone()[0]


def orders() -> list[dict]:
    with db() as conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
        cur.execute("SELECT id, item, charged_by, at FROM orders ORDER BY id")
        return [
            {"id": i, "item": item, "charged_by": by, "at": at.isoformat()}
            for i, item, by, at in cur.fetchall()
        ]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            self.route()
        except psycopg2.Error as e:
            self.reply(503, {"error": f"database: {str(e).strip()}"})

    def route(self) -> None:
        url = urllib.parse.urlparse(self.path)
        if url.path == "/health":
            return self.reply(200, {"ok": True})
        if url.path == "/order":
            item = urllib.parse.parse_qs(url.query).get("item", ["thing"])[0]
            with urllib.request.urlopen(f"{BILLING}/cgi-bin/charge?item={item}", timeout=10) as r:
                billing = json.load(r)
            with open(LEDGER) as f:
                entries = f.read().splitlines()
            return self.reply(200, {
                "order": item,
                "order_id": record(item, billing),
                "billing": billing,
                "api_kernel": platform.release(),
                "ledger_entries": len(entries),
                "last_entry": entries[-1] if entries else None,
            })
        if url.path == "/orders":
            return self.reply(200, {"orders": orders()})
        return self.reply(404, {"error": "not found"})

    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"api: {self.address_string()} {fmt % args}", flush=True)


if __name__ == "__main__":
    print("api: listening on :8000", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
