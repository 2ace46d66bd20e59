"""Real HTTP for the simulator: a ThreadingHTTPServer on loopback, in a daemon thread."""

from __future__ import annotations

import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING

from aivenator.adapters.fakes.aiven.core import Drop

if TYPE_CHECKING:
    from aivenator.adapters.fakes.aiven.core import FakeAiven


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a large body goes out in several writes; avoid 40 ms stalls
    # Buffered writes: the status line, headers and body leave in one write when the request is
    # done (`handle_one_request` flushes), so a client reads its answer in one receive.
    wbufsize = -1
    server: _Server

    _arrived: float | None = None

    def parse_request(self) -> bool:
        # Called as soon as the request line is in, before the headers are parsed: the
        # request's arrival, from which the simulator's response time counts.
        self._arrived = self.server.fake.monotonic()
        return super().parse_request()

    def _answer(self) -> None:
        body = self._read_body()
        outcome = self.server.fake.process(
            self.command, self.path, dict(self.headers.items()), body, arrived=self._arrived
        )
        if isinstance(outcome, Drop):
            self.close_connection = True
            if outcome.kind == "timeout":
                self.server.hang(outcome.hang_s)
            else:
                # RST instead of FIN, like a proxy that gave up on the connection.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        content = outcome.content()
        self.send_response(outcome.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for name, value in outcome.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the simulator's own request log is the record (and never holds bodies)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeAiven, address: tuple[str, int]) -> None:
        self.fake = fake
        self._stopping = threading.Event()
        super().__init__(address, _Handler)

    def hang(self, seconds: float) -> None:
        # Waits on the stop event, so stop() never blocks on a hanging request.
        self._stopping.wait(seconds)


class FakeAivenServer:
    """The simulator on a real socket. `base_url` has no trailing slash and no `/v1`."""

    def __init__(self, fake: FakeAiven, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake
        self._server = _Server(fake, (host, port))
        bound_host, bound_port = self._server.server_address[:2]
        shown = bound_host if isinstance(bound_host, str) else bound_host.decode()
        self.host = shown
        self.port = int(bound_port)
        self.base_url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fake-aiven-http",
            daemon=True,
        )
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeAivenServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait(self, poll_s: float = 0.2) -> None:
        """Block until stop() is called from elsewhere (signal handlers)."""
        while not self._stopped:
            time.sleep(poll_s)
