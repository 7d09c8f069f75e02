"""One VM as a bare QEMU child process (no launcher container): used by
the accelerator probe, the tests and the benchmark, and the reference the
launcher path is measured against."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from compound.errors import VMError

from .guestconfig import GuestConfig, GuestNetwork
from .qemu import (
    SLIRP_DNS,
    SLIRP_GATEWAY,
    SLIRP_GUEST,
    QemuSpec,
    build_command,
    create_overlay,
    prepare_runtime_dir,
)

MARKER = re.compile(rb"^COMPOUND-(START|EXIT|ERROR|PROBE-OK)\s*(.*?)\s*$", re.M)


def slirp_network(search: tuple[str, ...] = ()) -> GuestNetwork:
    return GuestNetwork(
        address=SLIRP_GUEST, gateway=SLIRP_GATEWAY, nameservers=(SLIRP_DNS,), search=search
    )


def read_markers(console: Path) -> list[tuple[str, str]]:
    try:
        data = console.read_bytes()
    except FileNotFoundError:
        return []
    return [
        (m.group(1).decode(), m.group(2).decode(errors="replace"))
        for m in MARKER.finditer(data.replace(b"\r", b""))
    ]


def exit_code_from_console(console: Path) -> int | None:
    """The guest entrypoint's exit code, from the last COMPOUND-EXIT marker."""
    for kind, value in reversed(read_markers(console)):
        if kind == "EXIT":
            with contextlib.suppress(ValueError):
                return int(value)
    return None


@dataclass
class BareVM:
    """A running QEMU process; ``started_at`` is time.monotonic() at spawn."""

    spec: QemuSpec
    proc: subprocess.Popen[bytes]
    started_at: float

    @classmethod
    def start(cls, spec: QemuSpec, base_disk: Path, guest: GuestConfig) -> BareVM:
        prepare_runtime_dir(spec)
        if not spec.root_disk.exists():
            create_overlay(base_disk, spec.root_disk)
        spec.config.write_text(guest.render())
        for f in (spec.console_log,):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        argv = build_command(spec)
        (spec.runtime_dir / "qemu.argv").write_text("\0".join(argv))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(spec.runtime_dir / "qemu.stderr").open("wb"),
            start_new_session=True,  # our signals to the caller don't hit QEMU
        )
        return cls(spec, proc, t0)

    def wait_marker(self, kind: str, timeout: float, poll: float = 0.005) -> tuple[str, float]:
        """Wait until the console shows COMPOUND-<kind>; return its value and
        the seconds since spawn. Fails early on COMPOUND-ERROR or QEMU exit."""
        deadline = self.started_at + timeout
        while True:
            now = time.monotonic()
            for k, v in read_markers(self.spec.console_log):
                if k == kind:
                    return v, now - self.started_at
                if k == "ERROR" and kind != "ERROR":
                    raise VMError(f"guest setup failed: {v}")
            if self.proc.poll() is not None and kind not in [
                k for k, _ in read_markers(self.spec.console_log)
            ]:
                raise VMError(
                    f"QEMU exited ({self.proc.returncode}) before COMPOUND-{kind}: "
                    + self.stderr_tail()
                )
            if now > deadline:
                raise VMError(
                    f"no COMPOUND-{kind} within {timeout:.0f}s; console: " + self.console_tail()
                )
            time.sleep(poll)

    def wait(self, timeout: float) -> int:
        """Wait for QEMU to end; the guest entrypoint's exit code (255 if the
        guest ended without reporting one)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise VMError(f"VM still running after {timeout:.0f}s") from exc
        code = exit_code_from_console(self.spec.console_log)
        return 255 if code is None else code

    def stop(self, timeout: float = 10.0) -> int:
        """Ask the guest to stop its entrypoint (control port), wait, kill."""
        with contextlib.suppress(OSError):
            fd = os.open(f"{self.spec.ctl_pipe}.in", os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, b"stop\n")
            finally:
                os.close(fd)
        try:
            return self.wait(timeout)
        except VMError:
            self.kill()
            return 137

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)

    def console_tail(self, n: int = 15) -> str:
        try:
            lines = self.spec.console_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "<no console output>"
        return " | ".join(lines[-n:])

    def stderr_tail(self) -> str:
        try:
            return (self.spec.runtime_dir / "qemu.stderr").read_text(errors="replace")[-800:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> BareVM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
