"""HTTP endpoints for Prometheus and kubelet probes: `/metrics`, `/healthz`, `/readyz`.

A `ThreadingHTTPServer` on its own daemon thread; `start()` binds (port 0 picks a free port,
readable from `.port`), `stop()` shuts it down. Readiness and liveness are callables returning
`(ok, reason)` so the operator decides what they mean (caches synced; leading or standing by).
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

from aivenator.entrypoints.runtime.http_thread import ThreadedServer, reply
from aivenator.entrypoints.shells.metrics import CONTENT_TYPE_LATEST, Metrics

Check = Callable[[], tuple[bool, str]]


def _always_ok() -> tuple[bool, str]:
    return True, "ok"


class HealthServer(ThreadedServer):
    thread_name = "health-server"

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics | None = None,
        ready: Check = _always_ok,
        alive: Check = _always_ok,
        serve_metrics: bool = True,
    ) -> None:
        super().__init__(host, port)
        self._metrics = metrics
        self.ready = ready
        self.alive = alive
        self._serve_metrics = serve_metrics

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def _make_server(self) -> HTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics" and owner._serve_metrics and owner._metrics is not None:
                    self._reply(200, owner._metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/livez"):
                    self._check(owner.alive)
                elif path == "/readyz":
                    self._check(owner.ready)
                else:
                    self._reply(404, b"not found\n", "text/plain; charset=utf-8")

            def _check(self, check: Check) -> None:
                try:
                    ok, reason = check()
                except Exception as exc:  # a probe must answer, never hang or crash the server
                    ok, reason = False, f"check failed: {type(exc).__name__}"
                self._reply(200 if ok else 503, (reason + "\n").encode(), "text/plain; charset=utf-8")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                reply(self, status, body, content_type)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds would drown the operator's own logs

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        return server
