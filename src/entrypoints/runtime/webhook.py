"""The conversion webhook: `POST /convert` over HTTPS, answering ConversionReview v1.

Every replica serves it from start-up, leader or not (the apiserver may call any endpoint of
the Service; conversion needs no cluster state). The request is decoded here and answered by
`domain.conversion.review`, which owns every rule. The certificate and key are read from files
(a mounted Secret, usually issued by cert-manager) and reloaded when either file changes: the
files' modification times are checked at most once per second, on the next connection, so a
renewed certificate is used without a restart. The TLS handshake runs on the connection's own
thread, so a slow client cannot stall the accept loop.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

from aivenator.domain.conversion import ConversionError, review
from aivenator.entrypoints.runtime.http_thread import ThreadedServer, reply
from structlog.typing import FilteringBoundLogger

#: Largest request accepted (the apiserver sends at most a list's worth of objects).
MAX_BODY = 8 * 1024 * 1024
CONVERT_PATH = "/convert"


class CertificateFiles:
    """A server-side TLS context loaded from a certificate and a key file, reloaded on change."""

    def __init__(self, cert_file: str, key_file: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._read_stamp()
        self._context = self._load()
        self._checked = clock()
        self.reloads = 0

    def _read_stamp(self) -> tuple[int, int, int, int]:
        cert, key = os.stat(self.cert_file), os.stat(self.key_file)
        return (cert.st_mtime_ns, cert.st_ino, key.st_mtime_ns, key.st_ino)

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def context(self) -> ssl.SSLContext:
        """The current context; at most once a second, reload it if the files changed.

        A half-written pair (cert and key not matching yet) keeps the previous context."""
        with self._lock:
            now = self._clock()
            if now - self._checked >= 1.0:
                self._checked = now
                try:
                    stamp = self._read_stamp()
                    if stamp != self._stamp:
                        self._context = self._load()
                        self._stamp = stamp
                        self.reloads += 1
                except (OSError, ssl.SSLError):
                    pass
            return self._context


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    certificates: CertificateFiles

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """Handshake on the connection's thread, then serve it as plain HTTP would be."""
        if not isinstance(request, socket.socket):  # a datagram: never on this TCP server
            self.shutdown_request(request)
            return
        try:
            request.settimeout(10.0)
            tls = self.certificates.context().wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            self.shutdown_request(request)
            return
        super().process_request_thread(tls, client_address)


class _TLSServer6(_TLSServer):
    address_family = socket.AF_INET6


class WebhookServer(ThreadedServer):
    thread_name = "webhook-server"

    def __init__(
        self, host: str, port: int, certificates: CertificateFiles, log: FilteringBoundLogger | None = None
    ) -> None:
        super().__init__(host, port)
        self.certificates = certificates
        self._log = log

    @property
    def url(self) -> str:
        return f"https://{self._host}:{self.port}{CONVERT_PATH}"

    def _make_server(self) -> HTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != CONVERT_PATH:
                    self._reply(404, {"error": "not found"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or "0")
                except ValueError:
                    length = -1
                if not 0 < length <= MAX_BODY:
                    self._reply(
                        400, {"error": "a JSON body of at most 8 MiB with Content-Length is required"}
                    )
                    return
                try:
                    answer = review(json.loads(self.rfile.read(length)))
                except (ValueError, ConversionError) as exc:  # JSONDecodeError is a ValueError
                    self._reply(400, {"error": f"not a ConversionReview: {exc}"})
                    return
                result = answer["response"]["result"]
                if result["status"] != "Success" and owner._log is not None:
                    owner._log.warning("conversion_failed", message=result.get("message", ""))
                self._reply(200, answer)

            def do_GET(self) -> None:
                self._reply(404, {"error": "POST a ConversionReview to /convert"})

            def _reply(self, status: int, body: dict[str, object]) -> None:
                reply(self, status, json.dumps(body, separators=(",", ":")).encode(), "application/json")

            def log_message(self, format: str, *args: object) -> None:
                return

        server_class = _TLSServer6 if ":" in self._host else _TLSServer
        server = server_class((self._host, self._port), Handler)
        server.certificates = self.certificates
        return server
