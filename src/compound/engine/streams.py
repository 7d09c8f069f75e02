"""The engine's byte streams: whole lines of a log stream, our terminal
pumped to an attached instance.

The engine multiplexes stdout and stderr into frames (8-byte header: stream,
0, 0, 0, size). On a hijacked socket (exec, attach) the SDK's own frame
reader (``docker.utils.socket``) reads them. A logs response is an HTTP body
(chunked), which the SDK reads only as one merged stream: :func:`frames`
reads it keeping stdout and stderr apart.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal as signals
import socket
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

import docker.errors
from docker.utils.socket import STDERR, STDOUT, SocketError, next_frame_header, read_exactly

_STREAMS = {0: "stdin", STDOUT: "stdout", STDERR: "stderr"}


def _read_exact(raw: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def frames(raw: Any) -> Iterator[tuple[str, bytes]]:
    """The frames of a logs response body (a file: urllib3 undoes the HTTP
    chunking). Not the SDK's socket reader: it polls the socket before each
    read, and would wait forever for bytes urllib3 has already buffered."""
    while True:
        header = _read_exact(raw, 8)
        if len(header) < 8:
            return
        size = int.from_bytes(header[4:8], "big")
        payload = _read_exact(raw, size)
        if size and not payload:
            return
        yield _STREAMS.get(header[0], "stdout"), payload


def raw_chunks(raw: Any) -> Iterator[tuple[str, bytes]]:
    # A tty merges both streams and has no framing.
    for chunk in raw.stream(4096, decode_content=False):
        yield "stdout", chunk


def split_lines(chunks: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
    """Whole lines per stream (a frame may hold part of a line, or several)."""
    pending: dict[str, bytes] = {}
    for stream, data in chunks:
        buf = pending.get(stream, b"") + data
        *lines, pending[stream] = buf.split(b"\n")
        for line in lines:
            yield stream, line.rstrip(b"\r").decode(errors="replace")
    for stream, rest in pending.items():
        if rest:
            yield stream, rest.rstrip(b"\r").decode(errors="replace")


def write_flush(stream: IO[bytes], data: bytes | None) -> None:
    if data:
        stream.write(data)
        stream.flush()


class Pump:
    """Wire a hijacked socket (exec or attach) to our terminal (raw mode when a tty)."""

    def __init__(
        self,
        resize: Callable[[int, int], None],
        sock: Any,
        tty: bool,
        stdin: IO[bytes],
        stdout: IO[bytes],
        stderr: IO[bytes],
    ) -> None:
        self.resize, self.tty = resize, tty
        self.sock = getattr(sock, "_sock", sock)  # SocketIO → the socket itself
        self.wrapper = sock
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    def run(self) -> None:
        in_fd = self.stdin.fileno()
        restore = self._raw_mode(in_fd) if self.tty and os.isatty(in_fd) else None
        old_winch = self._watch_size(in_fd) if self.tty else None
        try:
            self._loop(in_fd)
        finally:
            if restore is not None:
                restore()
            if old_winch is not None:
                signals.signal(signals.SIGWINCH, old_winch)
            with contextlib.suppress(OSError):
                self.wrapper.close()

    def _loop(self, in_fd: int) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ, "engine")
        self.sock.setblocking(True)
        try:
            sel.register(in_fd, selectors.EVENT_READ, "stdin")
        except PermissionError:
            # A regular file (`exec ... < file`) cannot be polled; reading it
            # never blocks for long, so a thread can copy it.
            threading.Thread(target=self._copy_file, args=(in_fd,), daemon=True).start()
        while True:
            for key, _ in sel.select():
                if key.data == "engine":
                    try:
                        if not self._output():
                            return
                    except ConnectionResetError:
                        return
                elif not self._forward(in_fd):
                    sel.unregister(in_fd)

    def _forward(self, in_fd: int) -> bool:
        """Copy one read of our stdin to the process; False at its end."""
        data = os.read(in_fd, 65536)
        if data:
            try:
                self.sock.sendall(data)
                return True
            except OSError:  # the process is gone; its output still drains
                return False
        # Our stdin ended: tell the process, keep reading its output. Not with a
        # tty: there the engine answers a half-close by dropping the output, and
        # end-of-input is the ^D a raw terminal sends anyway.
        if not self.tty:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        return False

    def _copy_file(self, in_fd: int) -> None:
        with contextlib.suppress(OSError):
            while self._forward(in_fd):
                pass

    def _output(self) -> bool:
        """Copy what the process wrote (the engine has something for us);
        False at its end. Without a tty, one whole frame, by the SDK's frame
        reader: the engine writes a frame at once, so reading it whole keeps
        stdin waiting no longer than a frame takes to arrive."""
        if self.tty:  # a tty merges both streams and has no framing
            data = self.sock.recv(65536)
            write_flush(self.stdout, data)
            return bool(data)
        stream, size = next_frame_header(self.sock)
        if size < 0:
            return False
        try:
            payload = read_exactly(self.sock, size) if size else b""
        except SocketError:  # the connection ended inside a frame
            return False
        write_flush(self.stderr if stream == STDERR else self.stdout, payload)
        return True

    @staticmethod
    def _raw_mode(fd: int) -> Callable[[], None]:
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(fd)
        ttymod.setraw(fd)
        return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def _watch_size(self, fd: int) -> Any:
        def resize(*_: Any) -> None:
            with contextlib.suppress(OSError, docker.errors.DockerException):
                size = os.get_terminal_size(fd)
                self.resize(size.lines, size.columns)

        resize()
        try:
            return signals.signal(signals.SIGWINCH, resize)
        except ValueError:  # not the main thread: no resize on window change
            return None
