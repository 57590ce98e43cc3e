"""HTTP routes of the notification service.

Officers (role ``notification_officer`` or ``admin``) list and search notifications, see
each one's status history and resend failed ones. Citizens set their preferences with
their NIK, which is turned into the citizen reference at once and never stored.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.notifications import handlers
from services.notifications.domain import (
    CHANNELS,
    Notification,
    Preferences,
    QuietHours,
    Status,
    parse_hhmm,
)
from services.notifications.repository import ListFilter
from shared.kit.app import context_dependency
from shared.kit.auth import Officer, require_role
from shared.kit.paging import PageNumber, PageSize, page_of
from shared.reference.fields import Nik

router = APIRouter()
officer_only = require_role("notification_officer")
admin_only = require_role("admin")

ChannelName = Literal["email", "sms", "whatsapp"]
Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]


# ----- citizens' preferences -----------------------------------------------------------------------


class NikIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nik: Nik = Field(description="16-digit NIK; only its keyed hash (citizen_ref) is stored")


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(examples=["21:00"], description="HH:MM, local time (WIB)")
    end: str = Field(examples=["06:00"], description="HH:MM, local time (WIB); may be after midnight")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        parse_hhmm(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursIn:
        if self.start == self.end:
            raise ValueError("start and end must differ (leave quiet_hours out for none)")
        return self


class PreferencesIn(NikIn):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "nik": "3306061708900001",
                "channels": ["whatsapp", "email"],
                "locale": "id",
                "quiet_hours": {"start": "21:00", "end": "06:00"},
                "opted_out": False,
            }
        },
    )

    channels: list[ChannelName] = Field(
        default_factory=list, max_length=3, description="Order of preference; empty = the service's order"
    )
    locale: Literal["id", "en"] | None = None
    quiet_hours: QuietHoursIn | None = Field(
        None, description="Non-urgent messages wait until the end of this window"
    )
    opted_out: bool = Field(
        False, description="No messages, except those the law requires (marked required in the rules)"
    )

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("channels must not repeat")
        return value


class PreferencesOut(BaseModel):
    stored: bool
    channels: list[str]
    locale: str | None
    quiet_hours: dict[str, str] | None
    opted_out: bool


def _prefs_view(prefs: Preferences | None) -> dict[str, Any]:
    p = prefs or Preferences()
    quiet = (
        {"start": p.quiet_hours.start.strftime("%H:%M"), "end": p.quiet_hours.end.strftime("%H:%M")}
        if p.quiet_hours
        else None
    )
    return {
        "stored": prefs is not None,
        "channels": list(p.channels),
        "locale": p.locale,
        "quiet_hours": quiet,
        "opted_out": p.opted_out,
    }


@router.put("/preferences", response_model=PreferencesOut, tags=["citizen"])
async def put_preferences(body: PreferencesIn, ctx: Ctx) -> dict[str, Any]:
    """Set how and when to be notified (channel order, language, quiet hours, opt-out)."""
    quiet = (
        QuietHours(parse_hhmm(body.quiet_hours.start), parse_hhmm(body.quiet_hours.end), ctx.tz)
        if body.quiet_hours
        else None
    )
    prefs = Preferences(
        channels=tuple(body.channels), locale=body.locale, quiet_hours=quiet, opted_out=body.opted_out
    )
    await handlers.set_preferences(ctx, body.nik, prefs)
    return _prefs_view(prefs)


@router.post("/preferences/lookup", response_model=PreferencesOut, tags=["citizen"])
async def lookup_preferences(body: NikIn, ctx: Ctx) -> dict[str, Any]:
    """The current preferences (a POST, so the NIK never appears in a URL or access log)."""
    return _prefs_view(await handlers.get_preferences(ctx, body.nik))


# ----- officers --------------------------------------------------------------------------------------


class HistoryOut(BaseModel):
    at: datetime
    status: str
    attempt: int
    error: str | None
    actor: str
    next_attempt_at: datetime | None


class NotificationOut(BaseModel):
    id: uuid.UUID
    status: str
    channel: str
    locale: str
    template_name: str
    template: str
    template_fallback: bool
    rule_id: str
    recipient_kind: str
    recipient_key: str
    opd: str | None
    citizen_ref: str | None
    address_masked: str | None
    tracking_code: str | None
    source_event_id: str
    source_event_type: str
    event_time: datetime
    urgent: bool
    required: bool
    attempt: int
    max_attempts: int
    due_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class NotificationDetailOut(NotificationOut):
    subject: str | None = Field(None, description="Subject of an email (no body: it holds personal data)")
    history: list[HistoryOut]


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    page: int
    page_size: int


def _detail(n: Notification) -> dict[str, Any]:
    view = {name: getattr(n, name) for name in NotificationOut.model_fields}
    view["status"] = n.status.value
    view["subject"] = n.subject
    view["history"] = [
        {
            "at": h.at,
            "status": h.status.value,
            "attempt": h.attempt,
            "error": h.error,
            "actor": h.actor,
            "next_attempt_at": h.next_attempt_at,
        }
        for h in n.history
    ]
    return view


@router.get("/notifications", response_model=NotificationPage, tags=["officer"])
async def list_notifications(
    ctx: Ctx,
    officer: Annotated[Officer, Depends(officer_only)],
    status: Status | None = None,
    channel: ChannelName | None = None,
    tracking_code: str | None = Query(None, max_length=40),
    event_type: str | None = Query(None, max_length=120),
    rule: str | None = Query(None, max_length=80),
    recipient_kind: Literal["citizen", "opd", "role"] | None = None,
    opd: str | None = Query(None, max_length=20),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    """Search the delivery log, newest first."""
    f = ListFilter(
        status=status,
        channel=channel,
        tracking_code=tracking_code.upper() if tracking_code else None,
        event_type=event_type,
        rule=rule,
        recipient_kind=recipient_kind,
        opd=opd,
        created_from=created_from,
        created_to=created_to,
        page=page,
        page_size=page_size,
    )
    items, total = await handlers.list_notifications(ctx, f)
    return page_of(items, total, page, page_size)


@router.get("/notifications/{notification_id}", response_model=NotificationDetailOut, tags=["officer"])
async def get_notification(
    notification_id: uuid.UUID, ctx: Ctx, officer: Annotated[Officer, Depends(officer_only)]
) -> dict[str, Any]:
    """One notification with its status history."""
    return _detail(await handlers.get(ctx, notification_id))


@router.post(
    "/notifications/{notification_id}/resend",
    response_model=NotificationDetailOut,
    status_code=202,
    tags=["officer"],
)
async def resend(
    notification_id: uuid.UUID, ctx: Ctx, officer: Annotated[Officer, Depends(officer_only)]
) -> dict[str, Any]:
    """Send a permanent- or technical-failure again (composed with the current
    templates); 409 for any other status."""
    return _detail(await handlers.resend(ctx, notification_id, officer))


@router.get("/rules", tags=["officer"])
async def rules(ctx: Ctx, officer: Annotated[Officer, Depends(officer_only)]) -> dict[str, Any]:
    """The rules in force (reloaded when rules.yaml or recipients.yaml change) and the
    last reload error, if an edit could not be loaded."""
    loaded = ctx.rulebook.current()
    return {
        "rules_file": str(ctx.rulebook.rules_path),
        "recipients_file": str(ctx.rulebook.recipients_path),
        "error": ctx.rulebook.error,
        "channels": list(CHANNELS),
        "rules": [
            {
                "id": r.id,
                "events": list(r.events),
                "to": list(r.to),
                "channels": list(r.channels),
                "template": r.template,
                "required": r.required,
                "urgent": r.urgent,
                "delivery": r.delivery,
                "when": {k: list(v) for k, v in r.when.items()},
            }
            for r in loaded.rules.rules
        ],
        "opds": sorted(loaded.recipients.opds),
        "roles": sorted(loaded.recipients.roles),
    }


# ----- holding deliveries (operators) ----------------------------------------------------------------


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, examples=["SMS gateway incident, ticket 1234"])


class HoldOut(BaseModel):
    channel: str
    reason: str
    held_by: str
    held_at: datetime


class DeliveryOut(BaseModel):
    paused: bool = Field(description="NOTIFICATIONS_DELIVERY_PAUSED: nothing is sent on any channel")
    holds: list[HoldOut]
    queued: dict[str, int] = Field(description="Notifications waiting, per channel")


@router.get("/delivery", response_model=DeliveryOut, tags=["operations"])
async def delivery(ctx: Ctx, officer: Annotated[Officer, Depends(admin_only)]) -> dict[str, Any]:
    """Whether deliveries are held, on which channels, and what waits."""
    return await handlers.delivery_state(ctx)


@router.put("/delivery/holds/{channel}", status_code=204, tags=["operations"])
async def hold_channel(
    channel: ChannelName, body: HoldIn, ctx: Ctx, officer: Annotated[Officer, Depends(admin_only)]
) -> None:
    """Stop sending on a channel on every instance (a gateway incident, a billing cap).
    Notifications keep being created and wait; they go out when the hold is lifted."""
    await handlers.hold(ctx, channel, body.reason, officer)


@router.delete("/delivery/holds/{channel}", status_code=204, tags=["operations"])
async def release_channel(
    channel: ChannelName, ctx: Ctx, officer: Annotated[Officer, Depends(admin_only)]
) -> None:
    """Send on the channel again; what waited goes out at once. 404 if it was not held."""
    await handlers.release(ctx, channel)
