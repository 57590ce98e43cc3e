"""HTTP edge shared by every service: error mapping, request size limit, correlation
id, and request metrics with the route template as label (bounded cardinality)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.kit import tracing
from shared.kit.errors import DomainError, IllegalTransition, InvalidField
from shared.kit.logs import set_correlation_id
from shared.kit.metrics import KitMetrics

log = logging.getLogger(__name__)


def _validation_detail(errors: Any) -> list[dict[str, Any]]:
    # The submitted value ("input") is left out: it may be a NIK or a phone number.
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]


# The database is restarting or unreachable, or a socket timed out: nothing was committed
# and the client may retry. Not the client's fault and not a bug, so 503 rather than 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def log_unavailable(exc: Exception) -> None:
    log.warning("dependency unavailable", extra={"error": f"{type(exc).__name__}: {str(exc)[:200]}"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc.errors())}, status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        if isinstance(exc, InvalidField):
            body: dict[str, Any] = {
                "detail": [{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in exc.errors]
            }
        else:
            body = {"detail": exc.message}
            if isinstance(exc, IllegalTransition):
                body.update(current_status=exc.current, command=exc.command)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(asyncpg.DataError)
    async def _unstorable(_: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Values PostgreSQL cannot store (a NUL character in text, a number out of
        # range) that passed validation: the client's input, so 422, never a 500.
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["body"],
                        "msg": f"value cannot be stored: {exc.__class__.__name__}",
                        "type": "value_error",
                    }
                ]
            },
            status_code=422,
        )

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        log_unavailable(exc)
        return JSONResponse(
            {"detail": "service temporarily unavailable; nothing was saved, please retry"},
            status_code=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
        )

    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"detail": "internal error"}, status_code=500)


# The probes' and scrapers' routes (every 15 s each): a trace apiece would bury the
# citizens' in Jaeger.
UNTRACED = frozenset({"health", "ready", "metrics"})


class _TooLarge(Exception):
    pass


class HttpEdge:
    """Pure ASGI middleware (no per-request task overhead)."""

    def __init__(self, app: ASGIApp, *, metrics: KitMetrics, max_body: int, max_upload: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        # A multipart body carries one attachment, whose own cap answers with a field
        # message (shared/kit/attachments.py); the edge stops only what is larger still.
        self.max_upload = max_upload
        # Each (method, route, status)'s metric children, looked up once (bounded: routes
        # are templates), not by label values on every request.
        self.observed: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.enabled() and scope.get("path", "").rsplit("/", 1)[-1] not in UNTRACED:
            await self._traced(scope, receive, send)
        else:
            await self._handle(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request's server span (a child of the caller's `traceparent`, if any),
        named by the route template; the path, query and client address are left out
        (a path may hold a tracking code, a query what a citizen typed)."""
        headers = dict(scope.get("headers") or ())
        parent = tracing.context_of(
            headers.get(b"traceparent", b"").decode("latin-1"),
            headers.get(b"tracestate", b"").decode("latin-1"),
        )
        method = scope.get("method", "")
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.span(method, kind=SpanKind.SERVER, parent=parent) as current:
            try:
                await self._handle(scope, receive, observed_send)
            finally:
                template = _template(scope)
                current.update_name(f"{method} {template}")
                current.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": template,
                        "http.response.status_code": status,
                    }
                )
                if status >= 500:
                    current.set_status(StatusCode.ERROR)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or ())
        correlation = headers.get(b"x-correlation-id", b"").decode("latin-1")[:64] or str(uuid.uuid4())
        set_correlation_id(correlation)
        started = time.perf_counter()
        status = 500
        response_started = False

        max_body = (
            self.max_upload
            if headers.get(b"content-type", b"").startswith(b"multipart/form-data")
            else self.max_body
        )
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            await self._too_large(send, max_body)
            self._observe(scope, 413, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-correlation-id", correlation.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._too_large(send, max_body)
            status = 413
        finally:
            self._observe(scope, status, started)

    async def _too_large(self, send: Send, max_body: int) -> None:
        await send_json(send, 413, b'{"detail":"request body too large (limit %d bytes)"}' % max_body)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        key = (scope.get("method", ""), _template(scope), status)
        children = self.observed.get(key)
        if children is None:
            method, template, _ = key
            children = self.observed[key] = (
                self.metrics.http_requests.labels(method, template, str(status)),
                self.metrics.http_latency.labels(method, template),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


def _template(scope: Scope) -> str:
    """The matched route's template (bounded: labels and span names)."""
    return getattr(scope.get("route"), "path", None) or "unmatched"


async def send_json(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer from an ASGI middleware, before the app: a JSON body and its status."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
