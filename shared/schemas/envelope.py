"""The CloudEvents 1.0 envelope every Sinergi event travels in (structured mode).

On Kafka the whole event is the record value as JSON, with the header
``content-type: application/cloudevents+json``; the record key is the aggregate id
(``subject``) so one aggregate's events stay in order on one partition. The wire
conversion is the CloudEvents SDK's; this module adds typing of ``data`` per event type.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, Literal

from cloudevents.core.bindings.kafka import KafkaMessage, from_structured, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "id.sinergi."
# W3C Trace Context `traceparent`, version 00: version-trace id-parent id-flags.
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
_FORMAT = JSONFormat()
_set = object.__setattr__  # what pydantic itself sets a frozen model's slots with


def new_event_id() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` gives it at half the cost
    (that builds a UUID object only to format it): one for every event staged, several
    per event a consumer fans out."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class EventData(BaseModel):
    """Base of every event payload. Unknown fields are kept so that an older consumer
    still parses a newer minor revision of the same ``.vN`` type."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Envelope(BaseModel):
    """A CloudEvent as Sinergi uses it: required attributes, the recommended ones, and
    the extensions ``correlationid``, ``causationid`` and ``region``, and the
    distributed-tracing extension's ``traceparent`` and ``tracestate`` (W3C Trace
    Context of the work that staged the event, when tracing is on)."""

    model_config = ConfigDict(frozen=True)

    specversion: str = SPECVERSION
    id: str = Field(default_factory=new_event_id)
    source: str
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str
    datacontenttype: str = "application/json"
    dataschema: str
    correlationid: str | None = None
    causationid: str | None = None
    region: str
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT)
    tracestate: str | None = None
    data: dict[str, Any]

    def attributes(self) -> dict[str, Any]:
        attrs = self.model_dump(exclude={"data"}, exclude_none=True)
        return attrs

    def to_kafka(self) -> KafkaMessage:
        """Structured-mode Kafka record: value is the event JSON, key the subject.

        Serialised by pydantic (about a quarter of the SDK's cost, which was a tenth of a
        consumer staging an event per notification) when the result is an event exactly
        as `from_kafka`'s fast path reads it; anything else goes through the SDK, which
        decides and explains. Which of the two is decided once per shape (`_shape`), by
        the fast path's own parse of the first event of that shape."""
        value = self.__pydantic_serializer__.to_json(self, exclude_none=True)
        shape = self._shape()
        fast = _FAST_SHAPES.get(shape)
        if fast is None:
            fast = _FAST_SHAPES[shape] = _is_wire(value)
        if not fast:
            event = CloudEvent(attributes=self.attributes(), data=self.data)
            return to_structured(event, _FORMAT, key_mapper=lambda e: e.get_subject())
        return KafkaMessage(headers={"content-type": CONTENT_TYPE.encode()}, key=self.subject, value=value)

    def _shape(self) -> tuple[Any, ...]:
        """Everything `_WireEnvelope` checks beyond what this model already validates:
        the attributes a producer fixes per event type and region by value, and of those
        that change per event only what can fail (empty, a time without offset). Two
        envelopes of one shape are both accepted by the fast path's parse or both refused;
        the data, any JSON object, never decides."""
        return (
            self.specversion,
            self.source,
            self.type,
            self.datacontenttype,
            self.dataschema,
            self.region,
            self.id == "",
            self.subject == "",
            self.time.utcoffset() is None,
            self.correlationid == "",
            self.causationid == "",
            self.tracestate == "",
        )

    @classmethod
    def from_kafka(cls, value: bytes, key: bytes | None = None) -> Envelope:
        """Parse a structured-mode record; raises ValueError (or a CloudEvents SDK
        error) when the value is not a valid CloudEvent.

        Events as Sinergi writes them take a fast path (one strict pydantic parse, about
        a sixth of the SDK's cost, which was a third of a consumer's time); anything
        else, valid or not, goes through the SDK, which decides and explains."""
        try:
            wire = _WireEnvelope.model_validate_json(value)
        except ValidationError:
            return cls._from_kafka_sdk(value)
        return cls._trusted(wire)

    @classmethod
    def _trusted(cls, wire: _WireEnvelope) -> Envelope:
        """The envelope of a validated wire event, as `model_construct` would build it
        (same fields, same fields set) without its per-field Python loop, which cost a
        consumer about as much as parsing the event: the wire model has exactly the
        envelope's fields, already validated, so there is nothing to default or drop."""
        envelope = cls.__new__(cls)
        _set(envelope, "__dict__", wire.__dict__)  # the wire model is the caller's to give up
        _set(envelope, "__pydantic_fields_set__", wire.model_fields_set)
        _set(envelope, "__pydantic_extra__", None)
        _set(envelope, "__pydantic_private__", None)
        return envelope

    @classmethod
    def _from_kafka_sdk(cls, value: bytes) -> Envelope:
        message = KafkaMessage(headers={"content-type": CONTENT_TYPE.encode()}, key=None, value=value)
        event = from_structured(message, _FORMAT, CloudEvent)
        attrs = dict(event.get_attributes())
        data = event.get_data()
        if not isinstance(data, dict):
            raise ValueError("event data must be a JSON object")
        return cls(**attrs, data=data)


class _WireEnvelope(BaseModel):
    """A CloudEvent exactly as Sinergi's producers write it: every attribute present
    and well-formed, no others. Stricter than the specification on purpose (the fast
    path of `Envelope.from_kafka` must never accept what the SDK would refuse)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: AwareDatetime
    subject: str = Field(min_length=1)
    datacontenttype: Literal["application/json"]
    dataschema: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
    correlationid: str | None = Field(default=None, min_length=1)
    causationid: str | None = Field(default=None, min_length=1)
    region: str = Field(min_length=1)
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT)
    tracestate: str | None = Field(default=None, min_length=1)
    data: dict[str, Any]


# Whether events of a shape take the fast writer. Its keys are per event type and region
# (and the few per-event failures), so it stays as small as the registry.
_FAST_SHAPES: dict[tuple[Any, ...], bool] = {}


def _is_wire(value: bytes) -> bool:
    """Whether `value` is an event exactly as `Envelope.from_kafka`'s fast path reads it."""
    try:
        _WireEnvelope.model_validate_json(value)
    except ValidationError:
        return False
    return True


def schema_uri(event_type: str) -> str:
    """`dataschema` of a type: the JSON Schema file generated in shared/schemas/jsonschema/."""
    return f"urn:sinergi:schema:{event_type}"
