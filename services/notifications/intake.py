"""Consuming domain events: the notifications each event calls for, composed.

`on_events` runs inside the kit consumer's transaction for each batch of domain events
(`on_event` for one): it only *creates* notifications (status created, or
technical-failure when the message cannot even be composed) and stages their events,
set-based; it never talks to SMTP or a gateway.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.notifications.context import Context
from services.notifications.domain import (
    Contact,
    Notification,
    Preferences,
    Recipients,
    Rule,
    Skip,
    Status,
    plan_delivery,
    preferences_for,
    quoting,
    template_context,
    tracking_code_of,
)
from services.notifications.repository import NotificationRepository
from services.notifications.status_events import stage
from services.notifications.templates import RenderError
from shared.kit.data_keys import producer_of
from shared.kit.logs import event_context, redact
from shared.kit.privacy import contact_refs, open_contact, opened_texts, seal_contact, sealed_texts, text_key
from shared.reference import InvalidPhone, mask_email, mask_phone, normalize_mobile
from shared.schemas import Envelope, ParsedEvent
from shared.schemas.common import SealedContact
from shared.schemas.privacy import CitizenDataErased

log = logging.getLogger(__name__)


async def on_event(ctx: Context, conn: asyncpg.Connection, parsed: ParsedEvent) -> int:
    """Create the notifications one domain event calls for; returns how many. The
    kit uses it record by record (its fallback, dead-letter replay): a batch of one, so
    both forms give the same notifications by construction."""
    return await on_events(ctx, conn, [parsed])


async def on_events(ctx: Context, conn: asyncpg.Connection, events: Sequence[ParsedEvent]) -> int:
    """Create the notifications a batch of domain events (in delivery order) calls for,
    in a constant number of round trips; returns how many were created.

    An erasure is applied in its place: what the events before it created is written
    first (so it is erased too), the events after it see the citizen's preferences gone.
    """
    repo = NotificationRepository(conn)
    created = 0
    pending: list[ParsedEvent] = []
    for parsed in events:
        if not isinstance(parsed.data, CitizenDataErased):
            pending.append(parsed)
            continue
        created += await _create_for(ctx, repo, pending)
        pending = []
        erased = await repo.erase_citizen(parsed.data.citizen_ref, parsed.data.contact_refs)
        if ctx.data_keys is not None:  # the citizen's key is gone at its producer: here too
            ctx.data_keys.forget()
        with event_context(parsed.envelope):
            log.info("citizen data erased", extra={"source": parsed.data.service, **erased})
    return created + await _create_for(ctx, repo, pending)


@dataclass(frozen=True)
class _Event:
    """A domain event being turned into notifications."""

    parsed: ParsedEvent
    data: dict[str, Any]  # as JSON values: what the rules and the templates see
    now: datetime
    # What the citizen wrote, opened for rendering only (`data` keeps it sealed, as the
    # stored template context does): by clear name, None once the citizen is erased.
    texts: dict[str, str | None] = field(default_factory=dict)

    @property
    def envelope(self) -> Envelope:
        return self.parsed.envelope

    @property
    def citizen_ref(self) -> str | None:
        return getattr(self.parsed.data, "citizen_ref", None)


async def _create_for(ctx: Context, repo: NotificationRepository, events: Sequence[ParsedEvent]) -> int:
    """Compose every notification of `events` in memory, then store them, their history
    and their events with one statement each. The unique constraint per event, rule,
    recipient and channel decides what is new; only that is published and counted."""
    if not events:
        return 0
    loaded = ctx.rulebook.current()
    now = ctx.clock()
    matched: list[tuple[_Event, list[Rule]]] = []
    refs: set[str] = set()
    for parsed in events:
        event = _Event(parsed, parsed.data.model_dump(mode="json"), now)
        rules = loaded.rules.match(parsed.envelope.type, event.data)
        if not rules:
            ctx.metrics.unruled.labels(parsed.envelope.type).inc()
            continue
        matched.append((event, rules))
        if event.citizen_ref and any("citizen" in rule.to for rule in rules):
            refs.add(event.citizen_ref)
    preferences = await repo.preferences_of(refs, ctx.tz)
    keys = await _data_keys(ctx, matched)
    text_keys = _text_keys(keys)
    composed: list[Notification] = []
    with ctx.templates.held():  # nothing awaited inside
        for event, rules in matched:
            # What the citizen wrote, for the templates as they knew it (`data.reason`): opened
            # with the text key of the same data key, or left out once the citizen is erased.
            event.texts.update(opened_texts(event.parsed.data, text_keys))
            with event_context(event.envelope):
                composed += _compose(ctx, event, rules, loaded.recipients, preferences, keys)
    composed = await _within_unsolicited_limit(ctx, repo, composed)
    created = await repo.add_all(composed)
    await stage(repo.conn, ctx, created)
    # a label lookup per rule and channel, not per notification
    for (channel, rule_id), count in Counter((n.channel, n.rule_id) for n in created).items():
        ctx.metrics.created.labels(channel, rule_id).inc(count)
    for n in created:
        if n.status == Status.TECHNICAL_FAILURE:
            ctx.metrics.failed.labels(n.channel, n.template_name, n.status.value).inc()
    return len(created)


async def _data_keys(ctx: Context, matched: Sequence[tuple[_Event, Sequence[Rule]]]) -> dict[str, str | None]:
    """The data keys of the contacts the batch's citizens are to be told at and of the texts
    citizens wrote (any recipient's message may quote them), asked of the services that
    sealed them (key id -> key; None once the citizen's data is erased). A service that
    cannot be asked fails the batch, which the consumer tries again."""
    wanted = [
        (producer_of(event.envelope.source), contact.key_id)
        for event, rules in matched
        if any("citizen" in rule.to for rule in rules)
        and (contact := getattr(event.parsed.data, "contact", None)) is not None
        and contact.key_id is not None
    ] + [
        (producer_of(event.envelope.source), text.key_id)
        for event, _ in matched
        for text in sealed_texts(event.parsed.data).values()
        if text.key_id is not None
    ]
    return await _asked(ctx, wanted)


async def _asked(ctx: Context, wanted: Sequence[tuple[str, str]]) -> dict[str, str | None]:
    """The data keys of (producer, key id) pairs, asked of their producers."""
    if not wanted:
        return {}
    if ctx.data_keys is None:
        return dict.fromkeys((key_id for _, key_id in wanted), None)
    return await ctx.data_keys.keys(wanted)


def _text_keys(keys: Mapping[str, str | None]) -> dict[str, str]:
    return {key_id: text_key(key) for key_id, key in keys.items() if key is not None}


async def reopened_texts(ctx: Context, context: Mapping[str, Any] | None) -> dict[str, str | None]:
    """What the citizen wrote that a kept message's template context quotes, opened again
    for a new rendering (a resend): the context keeps it sealed, never in clear, and its
    text key is asked of the producer as at intake (None once the citizen is erased)."""
    data = (context or {}).get("data") or {}
    sealed = sealed_texts(data)
    if context is None or not sealed:
        return {}
    producer = producer_of(context["event"]["source"])
    keys = await _asked(ctx, [(producer, text.key_id) for text in sealed.values() if text.key_id])
    return opened_texts(data, _text_keys(keys))


async def _within_unsolicited_limit(
    ctx: Context, repo: NotificationRepository, composed: list[Notification]
) -> list[Notification]:
    """Drop what a submission would send beyond `unsolicited_per_hour` to a contact that
    never proved itself: whoever files may name any phone number or address, and must not
    make the regency message it at will. One query for the whole batch."""
    asked = [n for n in composed if n.contact_ref is not None]
    if not asked:
        return composed
    since = ctx.clock() - timedelta(hours=1)
    left = await repo.unsolicited_sent({n.contact_ref for n in asked if n.contact_ref}, since)
    kept: list[Notification] = []
    for n in composed:
        sent = left.get(n.contact_ref) if n.contact_ref else None
        if sent is not None:
            if sent >= ctx.unsolicited_per_hour:
                ctx.metrics.skipped.labels("unsolicited_limit").inc()
                continue
            left[n.contact_ref] = sent + 1  # type: ignore[index]
        kept.append(n)
    return kept


def _compose(
    ctx: Context,
    event: _Event,
    rules: Sequence[Rule],
    recipients: Recipients,
    preferences: Mapping[str, Mapping[str, Preferences]],
    keys: Mapping[str, str | None],
) -> list[Notification]:
    """The notifications (rendered, not stored) one event calls for."""
    composed: list[Notification] = []
    contact: Contact | Unopened | None = None
    opened = False
    for rule in rules:
        for target in rule.to:
            if target != "citizen":
                composed += _for_officer(ctx, rule, target, event, recipients)
                continue
            if not opened:  # once per event, however many rules name the citizen
                contact, opened = _citizen_contact(ctx, event.parsed, keys), True
            composed += _for_citizen(ctx, rule, event, contact, preferences)
    return composed


@dataclass(frozen=True)
class Unopened:
    """A sealed contact that cannot be opened (the producer's key differs)."""

    sealed: SealedContact
    error: str


def _citizen_contact(
    ctx: Context, parsed: ParsedEvent, keys: Mapping[str, str | None]
) -> Contact | Unopened | None:
    """The event's sealed contact, opened (None when the event has none, or when the
    citizen's data was erased: their data key is gone, and with it the contact)."""
    sealed = getattr(parsed.data, "contact", None)
    if sealed is None:
        return None
    key = ctx.contact_key if sealed.key_id is None else keys.get(sealed.key_id)
    if key is None:
        return None
    try:
        opened = open_contact(key, sealed)
    except ValueError as exc:
        return Unopened(sealed, str(exc))
    phone = None
    if opened.get("phone"):
        try:
            phone = normalize_mobile(opened["phone"])
        except InvalidPhone:
            log.warning("contact phone is not a mobile number", extra={"phone": mask_phone(opened["phone"])})
    return Contact(email=opened.get("email") or None, phone=phone)


def _for_citizen(
    ctx: Context,
    rule: Rule,
    event: _Event,
    contact: Contact | Unopened | None,
    preferences: Mapping[str, Mapping[str, Preferences]],
) -> list[Notification]:
    ref = event.citizen_ref
    key = ref or f"event:{event.envelope.id}"
    if contact is None:
        ctx.metrics.skipped.labels("no_contact").inc()
        return []
    context = _context(ctx, event, "citizen", key, None)
    if isinstance(contact, Unopened):
        # Never a silent drop: a contact we cannot open is our fault (keys differ).
        channel = next((c for c in rule.channels if c in contact.sealed.channels), rule.channels[0])
        broken = _new(
            ctx,
            rule,
            event,
            channel=channel,
            locale=event.data.get("locale") or ctx.default_locale,
            due_at=event.now,
            kind="citizen",
            key=key,
            address=None,
            context=context,
            broken=contact.error,
        )
        return [broken]
    stored = preferences.get(ref) if ref else None
    reaches = contact_refs(ctx.citizen_key, phone=contact.phone, email=contact.email) if stored else []
    prefs = preferences_for(stored, reaches) if stored else None
    return _per_channel(
        ctx, rule, event, contact, kind="citizen", key=key, context=context, preferences=prefs
    )


def _for_officer(
    ctx: Context, rule: Rule, target: str, event: _Event, recipients: Recipients
) -> list[Notification]:
    kind, key, contact, fallback = recipients.resolve(target, event.data)
    if contact is None:
        ctx.metrics.skipped.labels("no_recipient").inc()
        log.warning("no address for officer recipient", extra={"rule": rule.id, "recipient": f"{kind}:{key}"})
        return []
    if fallback:
        ctx.metrics.recipient_fallbacks.labels(kind).inc()
    context = _context(ctx, event, kind, key, contact.name)
    return _per_channel(ctx, rule, event, contact, kind=kind, key=key, context=context)


def _per_channel(
    ctx: Context,
    rule: Rule,
    event: _Event,
    contact: Contact,
    *,
    kind: str,
    key: str,
    context: dict[str, Any],
    preferences: Preferences | None = None,
) -> list[Notification]:
    """A recipient's notifications: one on each channel `plan_delivery` chooses (none
    when it skips the recipient)."""
    plan = plan_delivery(
        rule,
        reachable=contact.reachable(),
        now=event.now,
        event_locale=event.data.get("locale"),
        default_locale=ctx.default_locale,
        preferences=preferences,
        recipient_locale=contact.locale,
    )
    if isinstance(plan, Skip):
        ctx.metrics.skipped.labels(plan.reason).inc()
        return []
    return [
        _new(
            ctx,
            rule,
            event,
            channel=channel,
            locale=plan.locale,
            due_at=plan.due_at,
            kind=kind,
            key=key,
            address=contact.address(channel),
            context=context,
        )
        for channel in plan.channels
    ]


def _context(ctx: Context, event: _Event, kind: str, key: str, name: str | None) -> dict[str, Any]:
    envelope = event.envelope
    code = tracking_code_of(event.parsed.data)
    return template_context(
        event.data,
        {
            "event": {
                "id": envelope.id,
                "type": envelope.type,
                "time": envelope.time.isoformat(),
                "source": envelope.source,
            },
            "tracking_code": code,
            "tracking_url": ctx.tracking_url.format(code=code) if ctx.tracking_url and code else None,
            "booking_url": ctx.booking_url,
            "recipient": {"kind": kind, "key": key if kind != "citizen" else None, "name": name},
            "region_name": ctx.region_name,
        },
    )


def _seal(ctx: Context, channel: str, address: str | None) -> tuple[str | None, str | None]:
    if not address:
        return None, None
    if channel == "email":
        sealed = seal_contact(ctx.contact_key, email=address)
        return (sealed.sealed if sealed else None), mask_email(address)
    sealed = seal_contact(ctx.contact_key, phone=address)
    return (sealed.sealed if sealed else None), mask_phone(address)


def _new(
    ctx: Context,
    rule: Rule,
    event: _Event,
    *,
    channel: str,
    locale: str,
    due_at: datetime,
    kind: str,
    key: str,
    address: str | None,
    context: dict[str, Any],
    broken: str | None = None,
) -> Notification:
    """One notification, composed (or a technical failure when it cannot be), not stored.
    `context` may be shared by a recipient's channels: nothing changes it."""
    envelope = event.envelope
    sealed, masked = _seal(ctx, channel, address)
    address_ref = ctx.address_ref(channel, address) if kind == "citizen" and address else None
    n = Notification.create(
        now=event.now,
        source_event_id=envelope.id,
        source_event_type=envelope.type,
        event_time=envelope.time,
        rule_id=rule.id,
        recipient_kind=kind,
        recipient_key=key,
        tracking_code=tracking_code_of(event.parsed.data),
        citizen_ref=event.citizen_ref if kind == "citizen" else None,
        opd=key if kind == "opd" else event.data.get("opd"),
        channel=channel,
        locale=locale,
        template_name=rule.template,
        template=rule.template,
        due_at=due_at,
        max_attempts=ctx.retry.max_attempts,
        urgent=rule.urgent,
        required=rule.required,
        address_sealed=sealed,
        address_masked=masked,
        context=context,
        correlation_id=envelope.correlationid or envelope.id,
        # an unsolicited message's address is counted per hour by its keyed hash
        contact_ref=address_ref if rule.unsolicited else None,
        address_ref=address_ref,
        traceparent=envelope.traceparent,
    )
    if broken is not None:
        n.fail_technical(event.now, redact(broken))
    else:
        render_into(ctx, n, event.texts)
    return n


def render_into(ctx: Context, n: Notification, texts: Mapping[str, str | None]) -> None:
    """Compose the message now, so a broken template shows at once as a
    technical-failure with its error, rather than at the first delivery attempt.
    `texts`: what the citizen wrote, opened for this rendering only (never kept)."""
    assert n.context is not None
    try:
        rendered = ctx.templates.render(n.template_name, n.channel, n.locale, quoting(n.context, texts))
    except RenderError as exc:
        n.template = exc.template
        n.fail_technical(n.updated_at or ctx.clock(), redact(exc.message)[:1000])
        log.warning("template failed", extra={"template": exc.template, "error": redact(exc.message)[:300]})
        return
    n.template = rendered.template
    n.template_fallback = rendered.fallback
    n.subject = rendered.subject
    n.body = rendered.body
    if rendered.fallback:
        ctx.metrics.fallbacks.labels(n.template_name, n.channel, n.locale).inc()
        log.warning(
            "template missing, generic fallback used",
            extra={"template": n.template_name, "channel": n.channel, "locale": n.locale},
        )
