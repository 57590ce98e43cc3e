"""A standard-library threaded HTTP server in a daemon thread: the base of the local
stand-ins for what a deployment reaches over HTTP (the SMS/WhatsApp gateway, the issuer of
citizen sessions), so synchronous and asyncio callers can share one."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from shared.runtime.embedded import InProcessServer


class BackgroundHttpServer(InProcessServer):
    """Bound at construction (`port` 0: any free one), serving from `start` to `stop`;
    a subclass gives its request handler class (`_handler_class`)."""

    scheme = "http"
    thread_name = "http-stand-in"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
