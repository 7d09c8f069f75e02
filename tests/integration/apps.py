"""Drive the real CLI in-process against the real engine, one project per test."""

from __future__ import annotations

import contextlib
import io
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

import docker

from compound.cli.main import main


class App:
    def __init__(self, name: str, directory: Path, client: docker.DockerClient) -> None:
        self.name = name
        self.dir = directory
        self.client = client
        self.env: dict[str, str] = {}
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def file(self) -> Path:
        return self.dir / "compose.yaml"

    def write(self, body: str, env: Mapping[str, str] | None = None) -> None:
        self.file.write_text(textwrap.dedent(body).lstrip("\n"))
        if env is not None:
            self.env = dict(env)

    def run(self, *args: str) -> tuple[int, str]:
        """Run `compound -f FILE -p NAME args…`; exit code and stdout+stderr."""
        # a real text stream over bytes: exec writes raw bytes to .buffer
        raw = io.BytesIO()
        buf = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                code = main(["--progress", "plain", "-f", str(self.file), "-p", self.name, *args])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        buf.flush()
        return code, raw.getvalue().decode("utf-8", "replace")

    def ok(self, *args: str) -> str:
        code, out = self.run(*args)
        assert code == 0, f"compound {' '.join(args)} exited {code}:\n{out}"
        return out
