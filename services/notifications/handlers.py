"""Use cases of the notification service.

- `on_event` runs inside the kit's inbox transaction for each domain event: it only
  *creates* notifications (status created, or technical-failure when the message cannot
  even be composed) and stages their events; it never talks to SMTP or a gateway.
- `deliver_due` is the worker: it claims due notifications with FOR UPDATE SKIP LOCKED,
  marks them `sending` and commits (so no other instance takes them), sends outside any
  transaction, then records the outcome. A worker that dies mid-send leaves a lease
  that expires; the attempt then counts as a temporary failure and is retried.
- Officers list, inspect and resend; citizens set their preferences by NIK, stored
  under the citizen reference only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from services.notifications.channels import EmailChannel, GatewayChannel, OutgoingMessage
from services.notifications.domain import (
    CHANNELS,
    WIB,
    Contact,
    Notification,
    Outcome,
    Preferences,
    RetryPolicy,
    Rule,
    SendResult,
    Skip,
    TokenBucket,
    plan_delivery,
    template_context,
    tracking_code_of,
)
from services.notifications.repository import ListFilter, NotificationRepository
from services.notifications.rules import RuleBook
from services.notifications.templates import RenderError, TemplateStore
from shared.kit import audit
from shared.kit.auth import Officer
from shared.kit.errors import Conflict, NotFound
from shared.kit.logs import redact, set_correlation_id
from shared.kit.outbox import add_event
from shared.kit.privacy import citizen_ref, open_contact, seal_contact
from shared.kit.settings import PlatformSettings
from shared.reference import InvalidPhone, mask_email, mask_phone, normalize_mobile
from shared.schemas import ParsedEvent, make_envelope
from shared.schemas import notifications as schema
from shared.schemas.common import SealedContact
from shared.schemas.privacy import CitizenDataErased

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """What the use cases need; built once by the app, replaced freely in tests."""

    pool: Callable[[], asyncpg.Pool]
    platform: PlatformSettings
    rulebook: RuleBook
    templates: TemplateStore
    email: EmailChannel
    gateways: dict[str, GatewayChannel]
    buckets: dict[str, TokenBucket]
    retry: RetryPolicy
    metrics: Any  # app.NotificationMetrics
    default_locale: str = "id"
    tz: ZoneInfo = WIB
    lease: timedelta = timedelta(seconds=120)
    batch_size: int = 50
    region_name: str = "Kabupaten Purworejo"
    tracking_url: str | None = None  # e.g. http://127.0.0.1:8000/lacak/{code}
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def contact_key(self) -> str:
        return self.platform.contact_key.get_secret_value()


# ----- consuming domain events ---------------------------------------------------------------


async def on_event(ctx: Context, conn: asyncpg.Connection, parsed: ParsedEvent) -> int:
    """Create the notifications one domain event calls for; returns how many."""
    envelope = parsed.envelope
    if isinstance(parsed.data, CitizenDataErased):
        erased = await NotificationRepository(conn).erase_citizen(parsed.data.citizen_ref)
        log.info("citizen data erased", extra={"source": parsed.data.service, **erased})
        return 0
    data = parsed.data.model_dump(mode="json")
    loaded = ctx.rulebook.current()
    rules = loaded.rules.match(envelope.type, data)
    if not rules:
        ctx.metrics.unruled.labels(envelope.type).inc()
        return 0
    repo = NotificationRepository(conn)
    now = ctx.clock()
    created = 0
    for rule in rules:
        for target in rule.to:
            if target == "citizen":
                created += await _for_citizen(ctx, repo, rule, parsed, data, now)
            else:
                created += await _for_officer(ctx, repo, rule, target, parsed, data, now, loaded.recipients)
    return created


async def _for_citizen(
    ctx: Context,
    repo: NotificationRepository,
    rule: Rule,
    parsed: ParsedEvent,
    data: dict[str, Any],
    now: datetime,
) -> int:
    sealed = getattr(parsed.data, "contact", None)
    ref = getattr(parsed.data, "citizen_ref", None)
    if sealed is None:
        ctx.metrics.skipped.labels("no_contact").inc()
        return 0
    try:
        opened = open_contact(ctx.contact_key, sealed)
    except ValueError as exc:
        # Never a silent drop: a contact we cannot open is our fault (keys differ).
        channel = next((c for c in rule.channels if c in sealed.channels), rule.channels[0])
        return await _create(
            ctx,
            repo,
            rule,
            parsed,
            data,
            now,
            channel=channel,
            locale=data.get("locale") or ctx.default_locale,
            due_at=now,
            kind="citizen",
            key=ref or f"event:{parsed.envelope.id}",
            address=None,
            recipient_name=None,
            broken=str(exc),
        )
    phone = None
    if opened.get("phone"):
        try:
            phone = normalize_mobile(opened["phone"])
        except InvalidPhone:
            log.warning("contact phone is not a mobile number", extra={"phone": mask_phone(opened["phone"])})
    contact = Contact(email=opened.get("email") or None, phone=phone)
    prefs = await repo.get_preferences(ref, ctx.tz) if ref else None
    plan = plan_delivery(
        rule,
        reachable=contact.reachable(),
        now=now,
        event_locale=data.get("locale"),
        default_locale=ctx.default_locale,
        preferences=prefs,
    )
    if isinstance(plan, Skip):
        ctx.metrics.skipped.labels(plan.reason).inc()
        return 0
    created = 0
    for channel in plan.channels:
        created += await _create(
            ctx,
            repo,
            rule,
            parsed,
            data,
            now,
            channel=channel,
            locale=plan.locale,
            due_at=plan.due_at,
            kind="citizen",
            key=ref or f"event:{parsed.envelope.id}",
            address=contact.address(channel),
            recipient_name=None,
        )
    return created


async def _for_officer(
    ctx: Context,
    repo: NotificationRepository,
    rule: Rule,
    target: str,
    parsed: ParsedEvent,
    data: dict[str, Any],
    now: datetime,
    recipients: Any,
) -> int:
    kind, key, contact, fallback = recipients.resolve(target, data)
    if contact is None:
        ctx.metrics.skipped.labels("no_recipient").inc()
        log.warning("no address for officer recipient", extra={"rule": rule.id, "recipient": f"{kind}:{key}"})
        return 0
    if fallback:
        ctx.metrics.recipient_fallbacks.labels(kind).inc()
    plan = plan_delivery(
        rule,
        reachable=contact.reachable(),
        now=now,
        event_locale=data.get("locale"),
        default_locale=ctx.default_locale,
        recipient_locale=contact.locale,
    )
    if isinstance(plan, Skip):
        ctx.metrics.skipped.labels(plan.reason).inc()
        return 0
    created = 0
    for channel in plan.channels:
        created += await _create(
            ctx,
            repo,
            rule,
            parsed,
            data,
            now,
            channel=channel,
            locale=plan.locale,
            due_at=plan.due_at,
            kind=kind,
            key=key,
            address=contact.address(channel),
            recipient_name=contact.name,
        )
    return created


def _context(
    ctx: Context, parsed: ParsedEvent, data: dict[str, Any], kind: str, key: str, name: str | None
) -> dict[str, Any]:
    envelope = parsed.envelope
    code = tracking_code_of(parsed.data)
    return template_context(
        data,
        {
            "event": {
                "id": envelope.id,
                "type": envelope.type,
                "time": envelope.time.isoformat(),
                "source": envelope.source,
            },
            "tracking_code": code,
            "tracking_url": ctx.tracking_url.format(code=code) if ctx.tracking_url and code else None,
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


async def _create(
    ctx: Context,
    repo: NotificationRepository,
    rule: Rule,
    parsed: ParsedEvent,
    data: dict[str, Any],
    now: datetime,
    *,
    channel: str,
    locale: str,
    due_at: datetime,
    kind: str,
    key: str,
    address: str | None,
    recipient_name: str | None,
    broken: str | None = None,
) -> int:
    envelope = parsed.envelope
    sealed, masked = _seal(ctx, channel, address)
    context = _context(ctx, parsed, data, kind, key, recipient_name)
    n = Notification.create(
        now=now,
        source_event_id=envelope.id,
        source_event_type=envelope.type,
        event_time=envelope.time,
        rule_id=rule.id,
        recipient_kind=kind,
        recipient_key=key,
        tracking_code=tracking_code_of(parsed.data),
        citizen_ref=getattr(parsed.data, "citizen_ref", None) if kind == "citizen" else None,
        opd=key if kind == "opd" else data.get("opd"),
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
    )
    if broken is not None:
        n.fail_technical(now, redact(broken))
    else:
        _render_into(ctx, n)
    if not await repo.add(n):
        return 0
    await _emit(repo.conn, ctx, n)
    ctx.metrics.created.labels(channel, rule.id).inc()
    if n.status == "technical-failure":
        ctx.metrics.failed.labels(channel, rule.template, "technical-failure").inc()
    return 1


def _render_into(ctx: Context, n: Notification) -> None:
    """Compose the message now, so a broken template shows at once as a
    technical-failure with its error, rather than at the first delivery attempt."""
    assert n.context is not None
    try:
        rendered = ctx.templates.render(n.template_name, n.channel, n.locale, n.context)
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


async def _emit(
    conn: asyncpg.Connection, ctx: Context, n: Notification, latency: float | None = None
) -> list[str]:
    """Publish each new status of `n` on notifications.events (through the outbox);
    returns the event types."""
    types: list[str] = []
    for entry in n.changes:
        model = schema.EVENT_FOR_STATUS[entry.status.value]
        extra: dict[str, Any] = {}
        if entry.status == "delivered" and latency is not None:
            extra["latency_seconds"] = latency
        data = model(
            notification_id=str(n.id),
            source_event_id=n.source_event_id,
            source_event_type=n.source_event_type,
            tracking_code=n.tracking_code,
            rule=n.rule_id,
            recipient_kind=n.recipient_kind,
            citizen_ref=n.citizen_ref,
            opd=n.opd if n.recipient_kind == "opd" else None,
            channel=n.channel,
            template=n.template,
            locale=n.locale,
            status=entry.status.value,
            attempt=entry.attempt,
            urgent=n.urgent,
            required=n.required,
            error=entry.error,
            next_attempt_at=entry.next_attempt_at,
            at=entry.at,
            **extra,
        )
        envelope = make_envelope(
            data,
            subject=str(n.id),
            source=schema.SOURCE,
            region=ctx.platform.region,
            correlation_id=n.correlation_id,
            causation_id=n.source_event_id,
        )
        await add_event(conn, envelope, schema.TOPIC)
        types.append(envelope.type)
    n.changes.clear()
    return types


# ----- the delivery worker ----------------------------------------------------------------------


async def deliver_due(ctx: Context, max_rounds: int = 20) -> int:
    """Send what is due, within each channel's rate limit; returns how many were sent
    (attempted). Safe on any number of instances at once."""
    await recover_expired_leases(ctx)
    total = 0
    async with httpx.AsyncClient() as client:
        for _ in range(max_rounds):
            if ctx.stopping.is_set():
                break
            round_total = 0
            for channel in CHANNELS:
                claimed = await _claim(ctx, channel)
                if claimed:
                    await asyncio.gather(*(_deliver_one(ctx, n, client) for n in claimed))
                    round_total += len(claimed)
            total += round_total
            if round_total == 0:
                break
    return total


async def _claim(ctx: Context, channel: str) -> list[Notification]:
    bucket = ctx.buckets[channel]
    wanted = bucket.take(ctx.batch_size, ctx.monotonic())
    if wanted == 0:
        ctx.metrics.throttled.labels(channel).inc()
        return []
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        claimed = await repo.claim_due(channel, now, wanted)
        for n in claimed:
            n.start_sending(now, ctx.lease)
            await repo.save(n)
            await _emit(conn, ctx, n)
    bucket.give_back(wanted - len(claimed))
    return claimed


def _open_address(ctx: Context, n: Notification) -> str | None:
    if not n.address_sealed:
        return None
    opened = open_contact(ctx.contact_key, SealedContact(sealed=n.address_sealed, channels=[]))
    return opened.get("email") if n.channel == "email" else opened.get("phone")


async def _send(ctx: Context, n: Notification, client: httpx.AsyncClient) -> SendResult:
    try:
        address = _open_address(ctx, n)
    except ValueError as exc:
        return SendResult(Outcome.TECHNICAL, str(exc))
    if not address:
        return SendResult(Outcome.TECHNICAL, "no address kept for this notification (purged?)")
    if n.body is None:
        return SendResult(Outcome.TECHNICAL, "no message kept for this notification (purged?)")
    message = OutgoingMessage(
        notification_id=str(n.id),
        channel=n.channel,
        to=address,
        subject=n.subject,
        body=n.body,
        locale=n.locale,
        tracking_code=n.tracking_code,
    )
    try:
        if n.channel == "email":
            return await ctx.email.send(message)
        return await ctx.gateways[n.channel].send(message, client)
    except Exception as exc:  # a channel bug must not leave the notification in `sending`
        log.exception("channel failed unexpectedly")
        return SendResult(Outcome.TECHNICAL, redact(f"{type(exc).__name__}: {exc}")[:500])


async def _deliver_one(ctx: Context, claimed: Notification, client: httpx.AsyncClient) -> None:
    set_correlation_id(claimed.correlation_id)  # this task's logs join the source event's
    result = await _send(ctx, claimed, client)
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        n = await repo.get(claimed.id, for_update=True)
        if n is None or n.status != "sending" or n.attempt != claimed.attempt:
            log.warning(
                "attempt outcome arrived after its lease was recovered",
                extra={"notification": str(claimed.id)},
            )
            return
        defer = None
        if n.citizen_ref and not n.urgent:
            prefs = await repo.get_preferences(n.citizen_ref, ctx.tz)
            if prefs is not None and prefs.quiet_hours is not None:
                defer = prefs.quiet_hours.defer
        n.changes.clear()
        n.record(result, now, ctx.retry, defer)
        await repo.save(n)
        latency = max(0.0, (now - n.event_time).total_seconds()) if n.status == "delivered" else None
        await _emit(conn, ctx, n, latency)
    _observe(ctx, n, latency)


def _observe(ctx: Context, n: Notification, latency: float | None) -> None:
    m = ctx.metrics
    if n.status == "delivered":
        m.sent.labels(n.channel, n.template_name).inc()
        if latency is not None:
            m.latency.labels(n.channel).observe(latency)
    else:
        m.failed.labels(n.channel, n.template_name, n.status.value).inc()
        log.info(
            "notification attempt failed",
            extra={
                "notification": str(n.id),
                "status": n.status.value,
                "attempt": n.attempt,
                "error": n.last_error,
            },
        )


async def recover_expired_leases(ctx: Context) -> int:
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        stale = await repo.expired_leases(now)
        for n in stale:
            if n.lease_expired(now, ctx.retry):
                await repo.save(n)
                await _emit(conn, ctx, n)
    return len(stale)


# ----- housekeeping ----------------------------------------------------------------------------


async def queue_depth(ctx: Context) -> dict[str, int]:
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).queue_depth()


async def purge(ctx: Context, retention: timedelta) -> int:
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).purge_content(ctx.clock() - retention)


# ----- officers ------------------------------------------------------------------------------------


async def list_notifications(ctx: Context, f: ListFilter) -> tuple[list[dict[str, Any]], int]:
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).list(f)


async def get(ctx: Context, notification_id: uuid.UUID) -> Notification:
    async with ctx.pool().acquire() as conn:
        n = await NotificationRepository(conn).get(notification_id)
    if n is None:
        raise NotFound(f"no notification {notification_id}")
    return n


async def resend(ctx: Context, notification_id: uuid.UUID, officer: Officer) -> Notification:
    """Send a failed notification again, composed afresh with the current templates."""
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        n = await repo.get(notification_id, for_update=True)
        if n is None:
            raise NotFound(f"no notification {notification_id}")
        n.changes.clear()
        n.resend(now, officer.subject)
        if n.context is None or n.address_sealed is None:
            raise Conflict("this notification's content is no longer kept (retention); it cannot be resent")
        _render_into(ctx, n)
        await repo.save(n)
        types = await _emit(conn, ctx, n)
        await audit.record(conn, [str(n.id)], types)  # who resent what, in the same transaction
    return n


# ----- citizens' preferences -----------------------------------------------------------------------


async def set_preferences(ctx: Context, nik: str, prefs: Preferences) -> Preferences:
    ref = citizen_ref(nik, ctx.platform.citizen_ref_key.get_secret_value())
    async with ctx.pool().acquire() as conn:
        await NotificationRepository(conn).put_preferences(ref, prefs)
    return prefs


async def get_preferences(ctx: Context, nik: str) -> Preferences | None:
    ref = citizen_ref(nik, ctx.platform.citizen_ref_key.get_secret_value())
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).get_preferences(ref, ctx.tz)
