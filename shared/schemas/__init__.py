"""Event contracts: the CloudEvents envelope and every domain event (pydantic models)."""

from shared.schemas.envelope import CONTENT_TYPE, Envelope, EventData
from shared.schemas.registry import (
    DOMAIN_TOPICS,
    DOMAINS,
    EGOV_TOPICS,
    EVENT_TYPES,
    EventRejected,
    ParsedEvent,
    make_envelope,
    parse_record,
    type_of,
)

__all__ = [
    "CONTENT_TYPE",
    "DOMAINS",
    "DOMAIN_TOPICS",
    "EGOV_TOPICS",
    "EVENT_TYPES",
    "Envelope",
    "EventData",
    "EventRejected",
    "ParsedEvent",
    "make_envelope",
    "parse_record",
    "type_of",
]
