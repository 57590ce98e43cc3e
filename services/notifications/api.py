"""HTTP routes of the notification service.

Officers (role ``notification_officer`` or ``admin``) list and search notifications, see
each one's status history and resend failed ones. Citizens prove a phone number or
email address with a one-time code and get a session (shared/kit/citizen.py), with
which they read and set their preferences under the NIK they stated (turned into the
citizen reference at once, never stored). The session keys are published for every
service at /.well-known/jwks.json.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from services.notifications import handlers
from services.notifications.domain import (
    CHANNELS,
    CODE_DIGITS,
    Notification,
    Preferences,
    QuietHours,
    Status,
    is_code,
    parse_hhmm,
)
from services.notifications.repository import ListFilter
from shared.kit.app import context_dependency
from shared.kit.auth import Officer, require_role
from shared.kit.bodies import RequestBody, with_example
from shared.kit.citizen import CitizenSession
from shared.kit.errors import NotFound
from shared.kit.limits import Limit, Limits, limited
from shared.kit.paging import PageNumber, PageSize, page_of
from shared.reference.fields import Nik, contact

router = APIRouter()
officer_only = require_role("notification_officer")
admin_only = require_role("admin")

ChannelName = Literal["email", "sms", "whatsapp"]
Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]
# Abuse limit per client address on reading and setting preferences by NIK (numbers and
# reasons: docs/operations.md).
PREFERENCES = Limit("notifications.preferences", 30, 3600)
# One-time codes: a contact gets 3 codes at once (a lost message or two), then one per 5
# minutes, too few to pump messages at someone else's phone; an address asks for codes
# for at most 20 contacts an hour (a family sharing a phone, a kiosk) and tries 60 codes.
CODES_PER_CONTACT = Limit("notifications.codes.contact", 3, 900)
CODES_PER_CLIENT = Limit("notifications.codes.client", 20, 3600)
SESSIONS_PER_CLIENT = Limit("notifications.sessions.client", 60, 3600)


# ----- citizens' one-time codes and sessions ---------------------------------------------------------


class ContactIn(RequestBody):
    contact: str = Field(
        min_length=3,
        max_length=254,
        examples=["081234567890", "warga@example.com"],
        description="Mobile number (08…, 628…, +628…) or email address the code goes to",
    )

    @field_validator("contact")
    @classmethod
    def _valid_contact(cls, value: str) -> str:
        return contact(value)

    def citizen_contact(self) -> handlers.CitizenContact:
        return handlers.CitizenContact("email" if "@" in self.contact else "phone", self.contact)


class CodeRequestIn(ContactIn):
    model_config = with_example({"contact": "081234567890"})


class CodeOut(BaseModel):
    destination: str = Field(description="Where the code went, masked")
    channel: str
    expires_in: int = Field(description="Seconds the code stays valid")


class SessionIn(ContactIn):
    code: str = Field(description=f"The {CODE_DIGITS}-digit code received", examples=["123456"])
    nik: Nik | None = Field(
        None, description="Optional: the session then acts for this NIK (only its keyed hash is kept)"
    )

    @field_validator("code")
    @classmethod
    def _digits(cls, value: str) -> str:
        if not is_code(value):
            raise ValueError(f"kode terdiri dari {CODE_DIGITS} angka")
        return value


class SessionOut(BaseModel):
    session: str = Field(description="Send as `Authorization: Bearer <session>`")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    expires_at: datetime
    nik_stated: bool


@router.post(
    "/citizen/codes", response_model=CodeOut, status_code=202, tags=["citizen"], **limited(CODES_PER_CLIENT)
)
async def request_code(body: CodeRequestIn, ctx: Ctx, limits: Limits) -> dict[str, Any]:
    """Send a 6-digit code to a phone number (WhatsApp, else SMS) or email address, valid
    5 minutes. The answer is the same whether or not the contact is known; 429 with
    Retry-After when this contact or this client address has asked too often."""
    await limits.take(CODES_PER_CONTACT, body.contact)
    sent = await handlers.request_code(ctx, body.citizen_contact())
    return {"destination": sent.destination, "channel": sent.channel, "expires_in": sent.expires_in}


@router.post(
    "/citizen/sessions",
    response_model=SessionOut,
    status_code=201,
    tags=["citizen"],
    **limited(SESSIONS_PER_CLIENT),
)
async def open_session(body: SessionIn, ctx: Ctx) -> dict[str, Any]:
    """Trade the code for a short-lived citizen session. A wrong, expired, used or
    exhausted code (5 tries) gets one and the same 422 on `code`."""
    session = await handlers.open_session(ctx, body.citizen_contact(), body.code, body.nik)
    expires_in = max(0, session.expires_at - int(datetime.now(UTC).timestamp()))
    return {
        "session": session.token,
        "expires_in": expires_in,
        "expires_at": datetime.fromtimestamp(session.expires_at, UTC),
        "nik_stated": session.citizen_ref is not None,
    }


@router.get("/.well-known/jwks.json", tags=["citizen"])
async def jwks(ctx: Ctx) -> dict[str, Any]:
    """The public keys citizen sessions are signed with, for every service to verify them."""
    if ctx.sessions is None:
        raise NotFound("citizen sessions are not configured")
    return ctx.sessions.jwks()


@router.get("/.well-known/openid-configuration", tags=["citizen"])
async def openid_configuration(ctx: Ctx, request: Request) -> dict[str, Any]:
    """The issuer of citizen sessions and where its keys are."""
    if ctx.sessions is None:
        raise NotFound("citizen sessions are not configured")
    return ctx.sessions.openid_configuration(str(request.base_url))


# ----- citizens' preferences -----------------------------------------------------------------------


class NikIn(RequestBody):
    nik: Nik | None = Field(
        None, description="Optional; if given, it must be the NIK stated when the session was opened"
    )


class QuietHoursIn(RequestBody):
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
    # No request example: it is refused without a session, which the docs page cannot give.
    channels: list[ChannelName] = Field(
        default_factory=list,
        max_length=3,
        description="Order of preference; empty = the service's order",
        examples=[["whatsapp", "email"]],
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


@router.put("/preferences", response_model=PreferencesOut, tags=["citizen"], **limited(PREFERENCES))
async def put_preferences(body: PreferencesIn, ctx: Ctx, citizen: CitizenSession) -> dict[str, Any]:
    """Set how and when to be notified (channel order, language, quiet hours, opt-out).
    Needs `Authorization: Bearer <session>` of a session opened with a NIK: 401 without
    a valid one, 403 when it has no NIK or the body names another NIK."""
    quiet = (
        QuietHours(parse_hhmm(body.quiet_hours.start), parse_hhmm(body.quiet_hours.end), ctx.tz)
        if body.quiet_hours
        else None
    )
    prefs = Preferences(
        channels=tuple(body.channels), locale=body.locale, quiet_hours=quiet, opted_out=body.opted_out
    )
    await handlers.set_preferences(ctx, citizen, body.nik, prefs)
    return _prefs_view(prefs)


@router.post("/preferences/lookup", response_model=PreferencesOut, tags=["citizen"], **limited(PREFERENCES))
async def lookup_preferences(ctx: Ctx, citizen: CitizenSession, body: NikIn | None = None) -> dict[str, Any]:
    """The current preferences of the session's NIK, under the same rules as PUT (a POST,
    so a NIK given in the body never appears in a URL or access log)."""
    return _prefs_view(await handlers.get_preferences(ctx, citizen, body.nik if body else None))


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
    status: Annotated[list[Status] | None, Query(description="Any of these (repeat the parameter)")] = None,
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
        status=tuple(status or ()),
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


class HoldIn(RequestBody):
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
