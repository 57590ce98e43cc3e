"""Every event type Sinergi knows, by topic, and the one way to parse a record.

Consumers call :func:`parse_record`; an unknown type or a payload that does not match
its model raises :class:`EventRejected` with a reason, which the kit turns into a
dead letter instead of a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from shared.schemas import complaints, health, notifications, permits, privacy
from shared.schemas.envelope import Envelope, EventData, schema_uri


@dataclass(frozen=True)
class Domain:
    name: str
    topic: str
    source: str
    events: dict[str, type[EventData]]


# Every domain service also publishes the privacy events (data erased on request).
DOMAINS: dict[str, Domain] = {
    "complaints": Domain(
        "complaints", complaints.TOPIC, complaints.SOURCE, {**complaints.EVENTS, **privacy.EVENTS}
    ),
    "health": Domain("health", health.TOPIC, health.SOURCE, {**health.EVENTS, **privacy.EVENTS}),
    "permits": Domain("permits", permits.TOPIC, permits.SOURCE, {**permits.EVENTS, **privacy.EVENTS}),
    "notifications": Domain(
        "notifications", notifications.TOPIC, notifications.SOURCE, dict(notifications.EVENTS)
    ),
}

# One topic per producing domain (docs/architecture.md, "Event contract"); they exist
# even before their producing service does. The e-government domains' topics are what
# the notification service listens to; the integration view reads every domain topic.
EGOV_TOPICS = [permits.TOPIC, health.TOPIC, complaints.TOPIC]
DOMAIN_TOPICS = [*EGOV_TOPICS, notifications.TOPIC]

EVENT_TYPES: dict[str, type[EventData]] = {
    event_type: model for domain in DOMAINS.values() for event_type, model in domain.events.items()
}
_TYPE_OF_MODEL: dict[type[EventData], str] = {model: t for t, model in EVENT_TYPES.items()}


class EventRejected(ValueError):
    """A record that no amount of retrying will make valid. `reason` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ParsedEvent:
    envelope: Envelope
    data: EventData


def type_of(model: type[EventData]) -> str:
    return _TYPE_OF_MODEL[model]


def make_envelope(
    data: EventData,
    *,
    subject: str,
    source: str,
    region: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
) -> Envelope:
    event_type = type_of(type(data))
    return Envelope(
        source=f"{source}/{region}",
        type=event_type,
        subject=subject,
        dataschema=schema_uri(event_type),
        correlationid=correlation_id,
        causationid=causation_id,
        region=region,
        traceparent=traceparent,
        data=data.model_dump(mode="json", exclude_none=True),
    )


def parse_record(value: bytes | None, max_bytes: int = 1_000_000) -> ParsedEvent:
    """Parse and validate one Kafka record value as a known Sinergi event."""
    if value is None:
        raise EventRejected("empty", "record has no value")
    if len(value) > max_bytes:
        raise EventRejected("oversize", f"{len(value)} bytes exceeds {max_bytes}")
    try:
        envelope = Envelope.from_kafka(value)
    except ValidationError as exc:
        raise EventRejected("invalid_envelope", _short(exc)) from exc
    except Exception as exc:  # the SDK raises several error types for bad JSON/attributes
        raise EventRejected("invalid_cloudevent", str(exc)[:500]) from exc
    model = EVENT_TYPES.get(envelope.type)
    if model is None:
        raise EventRejected("unknown_type", envelope.type)
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventRejected("invalid_data", _short(exc)) from exc
    return ParsedEvent(envelope, data)


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5])[
        :500
    ]
