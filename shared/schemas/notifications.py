"""Events of the notification service, published on ``notifications.events``.

Every status change of a notification (GOV.UK Notify's lifecycle: created, sending,
delivered, temporary-failure, permanent-failure, technical-failure) is one event whose
type names the new status. The aggregate is the notification (subject and Kafka key =
``notification_id``); ``causationid`` is the domain event that caused it.

Personal data (UU PDP 27/2022): no address (phone, email), no message body and no NIK
ever travel here — the recipient is a ``citizen_ref`` (keyed HMAC of the NIK) or an OPD
code, and errors are redacted before they are recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import Channel, CitizenRef, Locale
from shared.schemas.envelope import EventData

TOPIC = "notifications.events"
SOURCE = "/sinergi/notifications"
PREFIX = "id.sinergi.notifications.notification."

NotificationStatus = Literal[
    "created", "sending", "delivered", "temporary-failure", "permanent-failure", "technical-failure"
]
RecipientKind = Literal["citizen", "opd", "role"]


class NotificationEvent(EventData):
    """Fields every notification event carries (the notification's current state)."""

    notification_id: str = Field(description="Aggregate id (UUID); also the CloudEvent subject")
    source_event_id: str = Field(description="Id of the domain event that caused the notification")
    source_event_type: str = Field(examples=["id.sinergi.complaints.complaint.filed.v1"])
    tracking_code: str | None = Field(
        None, description="Tracking or booking code of the aggregate the notification is about"
    )
    rule: str = Field(description="Id of the notification rule (rules.yaml) that matched")
    recipient_kind: RecipientKind
    citizen_ref: CitizenRef | None = Field(None, description="The citizen notified (recipient_kind citizen)")
    opd: str | None = Field(None, description="Code of the OPD notified (recipient_kind opd)")
    channel: Channel
    template: str = Field(examples=["id/complaints/filed.email.j2"], description="Template used")
    locale: Locale
    status: NotificationStatus
    attempt: int = Field(ge=0, description="Delivery attempts made so far")
    urgent: bool = Field(False, description="Sent even in the citizen's quiet hours")
    required: bool = Field(False, description="Legally required: sent even to a citizen who opted out")
    error: str | None = Field(None, description="Why the last attempt failed (redacted; no address)")
    next_attempt_at: datetime | None = Field(
        None, description="When the notification is (re)tried: a retry, or the end of quiet hours"
    )
    at: datetime = Field(description="When the status changed")


class NotificationCreated(NotificationEvent):
    pass


class NotificationSending(NotificationEvent):
    pass


class NotificationDelivered(NotificationEvent):
    latency_seconds: float | None = Field(None, ge=0, description="Source event time to delivery")


class NotificationTemporaryFailure(NotificationEvent):
    """The attempt failed in a way worth retrying; `next_attempt_at` says when."""


class NotificationPermanentFailure(NotificationEvent):
    """The recipient cannot be reached (refused, invalid) or the attempts are exhausted."""


class NotificationTechnicalFailure(NotificationEvent):
    """Our side failed: a template error, a sealed contact that cannot be opened, a
    channel that is not configured. An officer can resend after the fix."""


EVENTS: dict[str, type[NotificationEvent]] = {
    f"{PREFIX}created.v1": NotificationCreated,
    f"{PREFIX}sending.v1": NotificationSending,
    f"{PREFIX}delivered.v1": NotificationDelivered,
    f"{PREFIX}temporary_failure.v1": NotificationTemporaryFailure,
    f"{PREFIX}permanent_failure.v1": NotificationPermanentFailure,
    f"{PREFIX}technical_failure.v1": NotificationTechnicalFailure,
}

#: The event class published for each status.
EVENT_FOR_STATUS: dict[str, type[NotificationEvent]] = {
    "created": NotificationCreated,
    "sending": NotificationSending,
    "delivered": NotificationDelivered,
    "temporary-failure": NotificationTemporaryFailure,
    "permanent-failure": NotificationPermanentFailure,
    "technical-failure": NotificationTechnicalFailure,
}
