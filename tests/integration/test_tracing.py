"""One trace from a citizen's complaint to the email that answers it: the complaints,
notification and integration services as their own processes with tracing on, exporting
to a real OTLP receiver (shared/runtime/otlp_sink.py), on the real broker and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from shared.kit import tracing
from shared.runtime.fake_gateway import FakeGateway
from shared.runtime.otlp_sink import OtlpSink, ReceivedSpan
from shared.runtime.select import Infrastructure
from shared.runtime.smtp_sink import SmtpSink
from tests.faults.support import ServiceProcess, new_consumers, new_database
from tests.harness import wait_for
from tests.integration.test_complaints_service import complaint_body
from tests.pii import findings

EMAIL = "pelapor.jejak@example.com"
NIK = "3306061708900001"
FILED = "id.sinergi.complaints.complaint.filed.v1"
SERVER, PRODUCER, CONSUMER, CLIENT = 2, 4, 5, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def otlp_sink() -> Iterator[OtlpSink]:
    with OtlpSink() as sink:
        yield sink


def traced(sink: OtlpSink) -> dict[str, str]:
    # A short export delay: the test waits for spans, not for the SDK's 5 s default.
    return {"SINERGI_OTLP_ENDPOINT": sink.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}


def matching(spans: list[ReceivedSpan], what: str, **match: object) -> list[ReceivedSpan]:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert found, f"{what}: no span matches {match}: {[s.name for s in spans]}"
    return found


def one(spans: list[ReceivedSpan], what: str, **match: object) -> ReceivedSpan:
    found = matching(spans, what, **match)
    assert len(found) == 1, f"{what}: {len(found)} spans match {match}"
    return found[0]


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    """Names of the span's parents, nearest first, as far as they were received."""
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span.name)
    return chain


async def test_one_trace_from_the_request_to_the_email_and_the_view(
    infra: Infrastructure, smtp_sink: SmtpSink, fake_gateway: FakeGateway, otlp_sink: OtlpSink
) -> None:
    env = traced(otlp_sink)
    complaints = ServiceProcess("complaints", infra.kafka_bootstrap, await new_database(infra, "compl"), env)
    await complaints.start(ready=False)
    # The notification service opens the contact with the citizen's data key, asked of
    # the complaints service.
    consumers = await new_consumers(
        infra,
        smtp_sink,
        fake_gateway,
        key_holders={"complaints": complaints.base},
        notifications_env=env,
        integration_env=env,
    )
    await consumers.start()
    await complaints.wait_ready()
    try:
        async with complaints.client() as client:
            body = complaint_body(reporter={"nik": NIK, "email": EMAIL})
            response = await client.post("/complaints", json=body)
            assert response.status_code == 201, response.text
            code = response.json()["tracking_code"]

        async with consumers.integration[0].client() as view:

            async def delivered_and_viewed() -> bool:
                return bool(smtp_sink.messages_to(EMAIL)) and (
                    (await view.get(f"/api/track/{code}")).status_code == 200
                )

            await wait_for(delivered_and_viewed, timeout=60)

        def request_span() -> ReceivedSpan | None:
            return next(
                (
                    s
                    for s in otlp_sink.spans()
                    if s.kind == SERVER and s.attributes.get("http.route") == "/complaints"
                ),
                None,
            )

        request = await wait_for(request_span, timeout=30)
        trace_id = request.trace_id

        def whole_trace() -> list[ReceivedSpan] | None:
            # Done once both consumers' spans and the delivery span are exported.
            spans = [s for s in otlp_sink.spans() if s.trace_id == trace_id]
            services = {(s.service, s.kind) for s in spans}
            wanted = {("notifications", CONSUMER), ("notifications", CLIENT), ("integration", CONSUMER)}
            return spans if wanted <= services else None

        try:
            spans = await wait_for(whole_trace, timeout=30)
        except TimeoutError:
            found = sorted({(s.service, s.name) for s in otlp_sink.spans() if s.trace_id == trace_id})
            raise AssertionError(
                f"a consumer's or the delivery's span is not in the trace: {found}"
            ) from None
    finally:
        await complaints.stop()
        await consumers.stop()

    by_id = {s.span_id: s for s in spans}
    assert request.service == "complaints"
    assert request.name == "POST /complaints"
    assert request.attributes["http.response.status_code"] == 201

    unit_of_work = one(spans, "unit of work", service="complaints", name="unit of work")
    stage = one(spans, "outbox row written", service="complaints", name="outbox stage complaints.events")
    # A publish the broker did not acknowledge, a batch fetched again after a rebalance,
    # an attempt retried: each is a span of its own, so these may be more than one.
    publishes = matching(
        spans, "relay publish", service="complaints", name="publish complaints.events", kind=PRODUCER
    )
    notifieds = matching(spans, "notification consumer", service="notifications", name=f"process {FILED}")
    deliveries = matching(spans, "delivery", service="notifications", name="deliver email", kind=CLIENT)
    vieweds = matching(spans, "view consumer", service="integration", name=f"process {FILED}")
    publish, notified, delivery, viewed = publishes[-1], notifieds[0], deliveries[-1], vieweds[0]

    # Parent/child all the way: the request, its unit of work, the outbox row written in
    # it; the relay's publish and both consumers continue the row's context, which the
    # event carries; the delivery continues it through the notification's row.
    assert unit_of_work.parent_span_id == request.span_id
    assert stage.parent_span_id == unit_of_work.span_id
    for child in (*publishes, *notifieds, *vieweds, *deliveries):
        assert child.parent_span_id == stage.span_id, child.name
        assert ancestors(child, by_id)[-1] == request.name

    # The tracking code and the event are named, so the trace is found by either.
    assert stage.attributes[tracing.TRACKING_CODE] == [code]
    assert notified.attributes[tracing.TRACKING_CODE] == [code]
    assert delivery.attributes[tracing.TRACKING_CODE] == [code]
    assert delivery.attributes[tracing.OUTCOME] == "delivered"
    assert publish.attributes[tracing.EVENT_ID] == notified.attributes[tracing.EVENT_ID]
    assert viewed.attributes[tracing.CONSUMER_GROUP] == consumers.integration_group

    # Each consumer's batch span is a trace of its own, linked to the event's.
    everything = otlp_sink.spans()
    for consumer in (notified, viewed):
        batch = next(s for s in everything if s.span_id == consumer.links[0][1])
        assert batch.kind == CONSUMER and batch.name.startswith("consume ")
        assert (trace_id, stage.span_id) in batch.links

    # Nothing personal in any span any service exported.
    text = repr([(s.name, s.attributes) for s in everything])
    assert findings(text) == []
    assert EMAIL not in text and NIK not in text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text)
