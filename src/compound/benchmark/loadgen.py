"""The HTTP load generator, the same code on the host and in the client
container (compound's python image runs this file's source with
``python3 -c``), so "host → published port" and "container → target" are
measured alike. Standard library only; prints one JSON object.

    python3 -c "$(cat loadgen.py)" latency|throughput HOST PORT SECONDS
"""

from __future__ import annotations

import http.client
import json
import sys
import time

BIG_PATH = "/big"
SMALL_PATH = "/index.html"
MIN_REQUESTS = 20


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _get(host: str, port: int, path: str) -> int:
    """One request on a fresh connection (busybox httpd closes each); bytes read."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        n = 0
        while chunk := resp.read(1 << 20):
            n += len(chunk)
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {host}:{port}{path}")
        return n
    finally:
        conn.close()


def latency(host: str, port: int, seconds: float) -> dict[str, float]:
    """Requests one after another for ``seconds``: p50/p99 in ms."""
    samples: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(samples) < MIN_REQUESTS:
        a = time.perf_counter()
        _get(host, port, SMALL_PATH)
        samples.append((time.perf_counter() - a) * 1000)
    return {
        "p50_ms": round(percentile(samples, 0.5), 4),
        "p99_ms": round(percentile(samples, 0.99), 4),
        "requests": len(samples),
    }


def throughput(host: str, port: int, seconds: float) -> dict[str, float]:
    """The big file fetched again and again for ``seconds``: MiB/s."""
    total = 0
    start = time.perf_counter()
    while True:
        total += _get(host, port, BIG_PATH)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return {"mib_s": round(total / 1024**2 / elapsed, 3), "bytes": total}


if __name__ == "__main__":
    mode, host, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    fn = latency if mode == "latency" else throughput
    print(json.dumps(fn(host, port, seconds)))
