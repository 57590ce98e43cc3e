"""Distributed tracing (OpenTelemetry): one trace from a citizen's request to the message
that reaches them.

Off unless an OTLP endpoint is set (`SINERGI_OTLP_ENDPOINT`, or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`): then `configure_tracing` installs the SDK's tracer
provider (parent-based sampling at `SINERGI_TRACE_SAMPLE_RATIO`, batched OTLP/HTTP
export, `service.name` = the service). While it is off, `enabled()` is False and the
kit's hot paths (outbox, relay, consumers) skip tracing entirely; `span` is then the
API's no-op.

The context crosses the bus in the CloudEvents distributed-tracing extension
(`traceparent`, `tracestate` attributes of the envelope, W3C Trace Context), is kept
with the outbox row, and reaches the delivery worker in the notification's row.

Span attributes are codes and ids (event ids and types, tracking codes, topics, route
templates, status codes), never a NIK, a phone, an email or what a citizen wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.kit.settings import PlatformSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

TRACER_NAME = "sinergi.kit"
_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, TracerProvider | None] = {"provider": None}

# Attribute names of Sinergi's own spans (OpenTelemetry's semantic conventions where one
# exists), one home each.
EVENT_ID = "messaging.message.id"
EVENT_TYPE = "cloudevents.event_type"
EVENT_SUBJECT = "cloudevents.event_subject"
DESTINATION = "messaging.destination.name"
CONSUMER_GROUP = "messaging.consumer.group.name"
BATCH_SIZE = "messaging.batch.message_count"
TRACKING_CODE = "sinergi.tracking_code"
NOTIFICATION_ID = "sinergi.notification_id"
CHANNEL = "sinergi.channel"
OUTCOME = "sinergi.outcome"


def enabled() -> bool:
    """Whether spans are recorded and exported in this process."""
    return _state["provider"] is not None


def in_trace() -> bool:
    """Whether tracing is on and a span is current (a request, a consumer's batch)."""
    return enabled() and trace.get_current_span().get_span_context().is_valid


def configure_tracing(service: str, settings: PlatformSettings) -> bool:
    """Install the tracer provider when an endpoint is set; returns whether tracing is on.
    Called once per process (a second call keeps the first provider)."""
    if not settings.otlp_endpoint or enabled():
        return enabled()
    # Imported here: a service without an endpoint never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "sinergi"}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    install(provider)
    log.info("tracing on", extra={"sample_ratio": settings.trace_sample_ratio})
    return True


def install(provider: TracerProvider | None) -> TracerProvider | None:
    """Make `provider` the one the kit's spans go to (None: tracing off); returns the
    one it replaces. The process's global provider is left alone, so a test can trace
    with an in-memory exporter and switch back without tracing the rest of its suite."""
    previous, _state["provider"] = _state["provider"], provider
    return previous


def shutdown_tracing() -> None:
    """Export what is buffered (at the service's stop)."""
    provider = _state["provider"]
    if provider is not None:
        provider.force_flush(5_000)


def tracer() -> trace.Tracer:
    provider = _state["provider"]
    return provider.get_tracer(TRACER_NAME) if provider is not None else trace.NoOpTracer()


def context_of(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context | None:
    """The remote parent a `traceparent` names (None when absent or malformed)."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    found = _PROPAGATOR.extract(carrier)
    return found if trace.get_current_span(found).get_span_context().is_valid else None


def link_to(traceparent: str | None, tracestate: str | None = None) -> Link | None:
    parent = context_of(traceparent, tracestate)
    return Link(trace.get_current_span(parent).get_span_context()) if parent is not None else None


def _carrier() -> dict[str, str]:
    """The W3C Trace Context headers of the current span (empty when there is none)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def current_traceparent() -> tuple[str | None, str | None]:
    """(`traceparent`, `tracestate`) of the current span, (None, None) when there is none."""
    carrier = _carrier()
    return carrier.get("traceparent"), carrier.get("tracestate")


def outgoing_headers() -> dict[str, str]:
    """The headers that carry the current trace to another service's HTTP API (the
    portal's calls), none when there is no trace."""
    return _carrier() if in_trace() else {}


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: otel_context.Context | None = None,
    links: Sequence[Link] = (),
) -> Iterator[Span]:
    """A current span (a child of `parent` when given, else of the current one); an
    exception leaving it marks it failed with the exception's type only (its message may
    quote a citizen's input)."""
    with tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=dict(attributes or {}),
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            fail(current, exc)
            raise


@dataclass(frozen=True)
class Continued:
    """A span to open in the trace an item (an event, a notification) was staged in."""

    traceparent: str | None
    tracestate: str | None
    name: str
    attributes: Mapping[str, Any]


@contextmanager
def continued(
    items: Sequence[Continued], *, kind: SpanKind, links: Sequence[Link] = ()
) -> Iterator[list[Span | None]]:
    """One span per item, a child of the item's own trace context (None for an item
    staged outside any trace), all open for the block (work done for a batch at once)
    and failed with it if it raises."""
    spans: list[Span | None] = []
    for item in items:
        parent = context_of(item.traceparent, item.tracestate)
        spans.append(
            None
            if parent is None
            else tracer().start_span(
                item.name, context=parent, kind=kind, attributes=dict(item.attributes), links=links
            )
        )
    try:
        yield spans
    except BaseException as exc:
        for current in spans:
            if current is not None:
                fail(current, exc)
        raise
    finally:
        for current in spans:
            if current is not None:
                current.end()


def messaging(operation: str, topic: str, event_id: str, subject: str) -> dict[str, Any]:
    """The attributes of a span about one event on Kafka (OpenTelemetry's messaging
    conventions): what happened to it (`send`, `process`), where, which event."""
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        DESTINATION: topic,
        EVENT_ID: event_id,
        EVENT_SUBJECT: subject,
    }


def tracking_codes(payloads: Iterable[Mapping[str, Any]]) -> list[str]:
    """The public tracking codes events name (a case's, to find its trace by)."""
    return sorted({code for data in payloads if isinstance(code := data.get("tracking_code"), str)})


def fail(current: Span, exc: BaseException) -> None:
    current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    current.set_attribute("error.type", type(exc).__name__)
