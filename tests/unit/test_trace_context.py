"""The kit's tracing without I/O: the trace context written into a CloudEvent and its
outbox row and read back from the record, and no personal data in a span's attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.portal.clients.base import _headers as portal_headers
from shared.kit import tracing
from shared.kit.bodies import RequestBody
from shared.kit.http import HttpEdge
from shared.kit.metrics import KitMetrics
from shared.kit.uow import EventSource, UnitOfWork
from shared.schemas import Envelope, EventRejected, parse_record
from shared.schemas.envelope import schema_uri
from tests.pii import findings

FILED = "id.sinergi.complaints.complaint.filed.v1"
ORIGIN = EventSource("complaints.events", "/sinergi/complaints", "33.06")
NIK, PHONE, EMAIL = "3306061708900001", "081234567890", "warga.rahasia@example.com"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only, into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(previous)


class Recorder:
    """A connection that keeps the outbox inserts it is given."""

    def __init__(self) -> None:
        self.inserts: list[tuple[Any, ...]] = []

    async def execute(self, statement: str, *args: Any) -> None:
        assert statement.startswith("INSERT INTO outbox")
        self.inserts.append(args)


def envelope(**extra: Any) -> Envelope:
    return Envelope(
        source="/sinergi/complaints/33.06",
        type=FILED,
        subject="9f1c3c0e-5d0e-4c61-8d43-2b7f6f0d4a11",
        dataschema=schema_uri(FILED),
        region="33.06",
        data={"tracking_code": "ADU-7K2M9Q4X1P3RT"},
        **extra,
    )


async def test_the_staged_event_and_its_outbox_row_carry_the_stage_span(
    exported: InMemorySpanExporter,
) -> None:
    conn = Recorder()
    with tracing.span("request") as request:
        await UnitOfWork(conn, ORIGIN).stage([envelope()])  # type: ignore[arg-type]
    (args,) = conn.inserts
    value, traceparent = args[4], args[6]  # (event id, topic, key, type, value, headers, traceparent, …)

    stage = next(s for s in exported.get_finished_spans() if s.name == "outbox stage complaints.events")
    assert stage.parent is not None and stage.parent.span_id == request.get_span_context().span_id
    assert stage.attributes is not None and stage.attributes[tracing.TRACKING_CODE] == ("ADU-7K2M9Q4X1P3RT",)
    # The record's value is the CloudEvent, its `traceparent` the stage span's context,
    # and the outbox row keeps the same.
    parsed = Envelope.from_kafka(value)
    assert parsed.traceparent == traceparent
    assert json.loads(value)["traceparent"] == traceparent
    remote = trace.get_current_span(tracing.context_of(parsed.traceparent)).get_span_context()
    assert (remote.trace_id, remote.span_id) == (stage.context.trace_id, stage.context.span_id)
    # The CloudEvents SDK's path (anything the fast path does not take) reads it too.
    assert Envelope._from_kafka_sdk(value).traceparent == traceparent


async def test_an_event_staged_with_the_trace_of_its_cause_keeps_it(exported: InMemorySpanExporter) -> None:
    cause = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    conn = Recorder()
    with tracing.span("batch"):
        await UnitOfWork(conn, ORIGIN).stage([envelope(traceparent=cause)])  # type: ignore[arg-type]
    # Outside any trace (the delivery worker's rounds) too, and then no trace of its own.
    await UnitOfWork(conn, ORIGIN).stage([envelope(traceparent=cause)])  # type: ignore[arg-type]
    for args in conn.inserts:
        assert Envelope.from_kafka(args[4]).traceparent == args[6] == cause
    assert [s.name for s in exported.get_finished_spans()] == ["outbox stage complaints.events", "batch"]


async def test_with_tracing_off_nothing_is_traced_or_stored() -> None:
    assert not tracing.enabled()
    conn = Recorder()
    with tracing.span("request"):
        assert tracing.current_traceparent() == (None, None)
        await UnitOfWork(conn, ORIGIN).stage([envelope()])  # type: ignore[arg-type]
    assert conn.inserts[0][6] is None
    assert "traceparent" not in json.loads(conn.inserts[0][4])


def test_a_malformed_traceparent_is_refused_on_the_bus_and_ignored_as_a_parent() -> None:
    value = envelope().to_kafka().value.replace(b'"region"', b'"traceparent":"00-zz-01","region"')
    with pytest.raises(EventRejected) as refused:
        parse_record(value)
    assert refused.value.reason == "invalid_envelope"
    assert tracing.context_of("00-zz-01") is None
    assert tracing.context_of(None) is None


class Filing(RequestBody):
    nik: str
    phone: str
    email: str
    description: str


async def test_no_personal_data_in_a_request_span(exported: InMemorySpanExporter) -> None:
    app = FastAPI()

    @app.post("/cases/{code}")
    async def file(code: str, body: Filing) -> dict[str, str]:
        return {"code": code}

    traced = HttpEdge(app, metrics=KitMetrics("tracing-test"), max_body=65536, max_upload=65536)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=traced), base_url="http://t") as client:
        response = await client.post(
            f"/cases/{PHONE}",
            params={"email": EMAIL, "nik": NIK},
            json={"nik": NIK, "phone": PHONE, "email": EMAIL, "description": f"rumah {NIK}"},
        )
        for probe in ("/health", "/ready", "/metrics"):  # scraped every 15 s: no trace each
            await client.get(probe)
    assert response.status_code == 200

    (span,) = exported.get_finished_spans()
    assert span.name == "POST /cases/{code}"
    assert span.kind == trace.SpanKind.SERVER
    text = repr((span.name, dict(span.attributes or {}), [e.attributes for e in span.events]))
    assert findings(text) == []
    assert EMAIL not in text and not re.search(r"@[\w-]+\.", text)
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/cases/{code}",
        "http.response.status_code": 200,
    }


async def test_a_request_continues_its_callers_trace_and_the_portal_passes_its_own_on(
    exported: InMemorySpanExporter,
) -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {}

    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = HttpEdge(app, metrics=KitMetrics("tracing-test"), max_body=1024, max_upload=1024)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=traced), base_url="http://t") as client:
        assert (await client.get("/ping", headers={"traceparent": caller})).status_code == 200
    (span,) = exported.get_finished_spans()
    assert span.parent is not None and span.parent.is_remote
    assert (f"{span.context.trace_id:032x}", f"{span.parent.span_id:016x}") == tuple(caller.split("-")[1:3])

    with tracing.span("portal page") as page:
        sent = portal_headers(None)
    context = page.get_span_context()
    assert sent["traceparent"].split("-")[1:3] == [f"{context.trace_id:032x}", f"{context.span_id:016x}"]


def test_without_tracing_the_portal_sends_no_trace_header() -> None:
    with tracing.span("portal page"):
        assert "traceparent" not in portal_headers(None)
