"""A real `compound serve` process on loopback, for the API and browser tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

COMPOUND = str(Path(sys.executable).parent / "compound")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``compound -f FILE serve`` with its own state dir; tokens read from its
    first-start output (kept across restarts on the same state dir)."""

    def __init__(self, compose: Path, state_dir: Path, tokens: dict[str, str] | None = None):
        self.compose, self.state_dir = compose, state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tokens: dict[str, str] = dict(tokens or {})
        self.log = state_dir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.project = ""  # the project the tests drive, once they say
        self.client = httpx.Client(timeout=60)  # one client: a new one costs ~0.1 s

    def start(self, timeout: float = 30) -> ServeProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "COMPOUND_STATE_DIR": str(self.state_dir)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [COMPOUND, "-f", str(self.compose), "serve", "--listen", f"127.0.0.1:{self.port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"compound serve exited:\n{self.log.read_text()}")
            try:
                if self.client.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"compound serve did not answer:\n{self.log.read_text()}")
        for role, token in re.findall(
            r"^\s+(operator|read-only)\s+(\S+)$", self.log.read_text(), re.M
        ):
            self.tokens[role] = token
        assert set(self.tokens) == {"operator", "read-only"}, self.log.read_text()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def headers(self, role: str | None = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "read-only", **kw: Any) -> httpx.Response:
        return self.client.get(self.url + path, headers=self.headers(role), **kw)

    def post(
        self, path: str, body: dict[str, Any] | None = None, role: str | None = "operator"
    ) -> httpx.Response:
        return self.client.post(self.url + path, json=body or {}, headers=self.headers(role))

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] != "running":
                return dict(job)
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still running after {timeout}s")

    def act(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST an action, wait for its job, insist it succeeded."""
        r = self.post(path, body)
        assert r.status_code == 202, r.text
        job = self.wait_job(r.json()["id"])
        assert job["state"] == "succeeded", job
        return job
