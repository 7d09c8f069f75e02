"""The shop API: takes an order, charges it through billing, reads the ledger."""

import json
import os
import platform
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BILLING = os.environ["BILLING_URL"]
LEDGER = os.environ["LEDGER"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
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
                "billing": billing,
                "api_kernel": platform.release(),
                "ledger_entries": len(entries),
                "last_entry": entries[-1] if entries else None,
            })
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
