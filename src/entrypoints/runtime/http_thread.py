"""One HTTP server on its own daemon thread: what the probe/metrics server and the conversion
webhook share. `start()` binds (port 0 picks a free port, readable from `.port`) and is a no-op
when already started; `stop()` shuts the server down and joins its thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class ThreadedServer:
    #: The serving thread's name (seen in thread dumps).
    thread_name = "http-server"

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    def _make_server(self) -> HTTPServer:
        """The bound server with its request handler (subclasses say which)."""
        raise NotImplementedError

    def start(self) -> None:
        if self._server is not None:
            return
        server = self._make_server()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
