"""A local stand-in for the SMS / WhatsApp HTTP gateway, for `make run` and the tests.

It accepts ``POST /sms`` and ``POST /whatsapp`` with the JSON the notification service
sends (``{"channel", "to", "message", "reference", "locale"}``), records every request
and answers ``200 {"id": "fake-N", "status": "accepted"}`` — unless told to fail:

    gateway.fail_next(2)                 # the next 2 requests answer 500
    gateway.fail_next(1, status=400)     # a permanent failure
    gateway.fail_always(to="+62812…")    # every request to that number answers 500
    gateway.fail_always(400, channel="whatsapp")   # WhatsApp refuses, SMS still accepts
    gateway.reset_failures()

The same controls over HTTP (for `make run`): ``POST /_control/fail``
``{"times": 2, "status": 500, "to": null, "channel": null}`` (``times`` null = always),
``POST /_control/reset``, ``GET /_requests``.

A standard-library threaded HTTP server in a daemon thread (background_http.py), so
synchronous and asyncio callers can share it. With `record_dir`, each accepted message is appended to
``<record_dir>/messages.jsonl``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self

from shared.runtime.background_http import BackgroundHttpServer

CHANNEL_PATHS = {"/sms": "sms", "/whatsapp": "whatsapp"}


@dataclass(frozen=True)
class GatewayRequest:
    channel: str
    path: str
    body: dict[str, Any]
    authorization: str | None
    status: int
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def to(self) -> str | None:
        return self.body.get("to")

    @property
    def message(self) -> str | None:
        return self.body.get("message")


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: always
    to: str | None
    channel: str | None = None  # sms | whatsapp; None: both


class FakeGateway(BackgroundHttpServer):
    thread_name = "fake-gateway"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        record_dir: Path | None = None,
    ) -> None:
        self.token = token
        self.record_dir = Path(record_dir) if record_dir else None
        self._requests: list[GatewayRequest] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        super().__init__(host, port)

    # ----- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self.record_dir:
            self.record_dir.mkdir(parents=True, exist_ok=True)
        return super().start()

    @property
    def sms_url(self) -> str:
        return f"{self.url}/sms"

    @property
    def whatsapp_url(self) -> str:
        return f"{self.url}/whatsapp"

    # ----- controls ----------------------------------------------------------------------------

    def fail_next(
        self, times: int, status: int = 500, *, to: str | None = None, channel: str | None = None
    ) -> None:
        with self._lock:
            self._failures.append(_Failure(status, times, to, channel))

    def fail_always(self, status: int = 500, *, to: str | None = None, channel: str | None = None) -> None:
        with self._lock:
            self._failures.append(_Failure(status, None, to, channel))

    def reset_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()

    @property
    def requests(self) -> list[GatewayRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, to: str, *, channel: str | None = None) -> list[GatewayRequest]:
        return [r for r in self.requests if r.to == to and (channel is None or r.channel == channel)]

    def delivered_to(self, to: str, *, channel: str | None = None) -> list[GatewayRequest]:
        return [r for r in self.requests_to(to, channel=channel) if 200 <= r.status < 300]

    # ----- serving -----------------------------------------------------------------------------

    def _decide(self, channel: str, body: dict[str, Any], authorization: str | None) -> int:
        if self.token and authorization != f"Bearer {self.token}":
            return 401
        if not isinstance(body.get("to"), str) or not isinstance(body.get("message"), str):
            return 400
        with self._lock:
            for failure in self._failures:
                if failure.to not in (None, body["to"]) or failure.channel not in (None, channel):
                    continue
                if failure.remaining is None:
                    return failure.status
                if failure.remaining > 0:
                    failure.remaining -= 1
                    return failure.status
            self._failures = [f for f in self._failures if f.remaining is None or f.remaining > 0]
        return 200

    def _record(self, request: GatewayRequest) -> int:
        with self._lock:
            self._requests.append(request)
            n = len(self._requests)
            if self.record_dir and 200 <= request.status < 300:
                with (self.record_dir / "messages.jsonl").open("a", encoding="utf-8") as out:
                    out.write(json.dumps(asdict(request), ensure_ascii=False) + "\n")
        return n

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    return json.loads(raw or b"{}")
                except ValueError:
                    return None

            def do_GET(self) -> None:
                if self.path == "/_requests":
                    self._reply(200, [asdict(r) for r in gateway.requests])
                else:
                    self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self._body()
                if self.path == "/_control/fail":
                    body = body or {}
                    times, status = body.get("times"), int(body.get("status", 500))
                    where = {"to": body.get("to"), "channel": body.get("channel")}
                    if times is None:
                        gateway.fail_always(status, **where)
                    else:
                        gateway.fail_next(int(times), status, **where)
                    self._reply(200, {"ok": True})
                    return
                if self.path == "/_control/reset":
                    gateway.reset_failures()
                    self._reply(200, {"ok": True})
                    return
                channel = CHANNEL_PATHS.get(self.path)
                if channel is None:
                    self._reply(404, {"error": "not found"})
                    return
                if not isinstance(body, dict):
                    gateway._record(GatewayRequest(channel, self.path, {}, None, 400))
                    self._reply(400, {"error": "body must be a JSON object"})
                    return
                authorization = self.headers.get("authorization")
                status = gateway._decide(channel, body, authorization)
                n = gateway._record(GatewayRequest(channel, self.path, body, authorization, status))
                if 200 <= status < 300:
                    self._reply(status, {"id": f"fake-{n}", "status": "accepted"})
                else:
                    self._reply(status, {"error": f"fake gateway failure ({status})"})

        return Handler
