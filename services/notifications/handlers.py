"""Use cases of the notification service.

- `on_events` runs inside the kit's inbox transaction for each batch of domain events
  (`on_event` for one): it only *creates* notifications (status created, or
  technical-failure when the message cannot even be composed) and stages their events,
  set-based; it never talks to SMTP or a gateway.
- `deliver_due` is the worker: per channel (side by side) it claims a batch of due
  notifications with FOR UPDATE SKIP LOCKED, marks them `sending` and commits (so no
  other instance takes them), sends the batch outside any transaction (email over a
  few SMTP connections kept for the next batch), then records all outcomes in one
  transaction, set-based, while it claims and sends the next batch. A worker that dies
  mid-send leaves a lease that expires; the attempt then counts as a temporary failure
  and is retried. Held channels (NOTIFICATIONS_DELIVERY_PAUSED, or an operator's hold)
  are not claimed.
- Officers list, inspect and resend; citizens set their preferences by NIK, stored
  under the citizen reference only.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from services.notifications.channels import EmailChannel, GatewayChannel, OutgoingMessage, Session
from services.notifications.domain import (
    CHANNELS,
    WIB,
    Contact,
    Notification,
    Outcome,
    Preferences,
    Recipients,
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
from shared.kit.logs import event_context, redact, set_correlation_id
from shared.kit.outbox import add_events
from shared.kit.privacy import citizen_ref, open_contact, seal_contact
from shared.kit.settings import PlatformSettings
from shared.reference import InvalidPhone, mask_email, mask_phone, normalize_mobile
from shared.schemas import Envelope, ParsedEvent, make_envelope
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
    # NOTIFICATIONS_DELIVERY_PAUSED: nothing is sent; notifications wait as `created`.
    delivery_paused: bool = False
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tls: ssl.SSLContext | None = field(default=None, init=False, repr=False)

    @property
    def contact_key(self) -> str:
        return self.platform.contact_key.get_secret_value()

    def tls(self) -> ssl.SSLContext:
        """The gateways' TLS settings, built once: loading the CA bundle takes tens of
        milliseconds, too much for every round of the worker."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls


# ----- consuming domain events ---------------------------------------------------------------


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
        erased = await repo.erase_citizen(parsed.data.citizen_ref)
        with event_context(parsed.envelope):
            log.info("citizen data erased", extra={"source": parsed.data.service, **erased})
    return created + await _create_for(ctx, repo, pending)


async def _create_for(ctx: Context, repo: NotificationRepository, events: Sequence[ParsedEvent]) -> int:
    """Compose every notification of `events` in memory, then store them, their history
    and their events with one statement each. The unique constraint per event, rule,
    recipient and channel decides what is new; only that is published and counted."""
    if not events:
        return 0
    loaded = ctx.rulebook.current()
    now = ctx.clock()
    matched: list[tuple[ParsedEvent, dict[str, Any], list[Rule]]] = []
    refs: set[str] = set()
    for parsed in events:
        data = parsed.data.model_dump(mode="json")
        rules = loaded.rules.match(parsed.envelope.type, data)
        if not rules:
            ctx.metrics.unruled.labels(parsed.envelope.type).inc()
            continue
        matched.append((parsed, data, rules))
        ref = getattr(parsed.data, "citizen_ref", None)
        if ref and any("citizen" in rule.to for rule in rules):
            refs.add(ref)
    preferences = await repo.preferences_of(refs, ctx.tz)
    composed: list[Notification] = []
    for parsed, data, rules in matched:
        with event_context(parsed.envelope):
            composed += _compose(ctx, parsed, data, rules, loaded.recipients, preferences, now)
    created = await repo.add_all(composed)
    await add_events(repo.conn, [e for n in created for e in _envelopes(ctx, n)], schema.TOPIC)
    for n in created:
        ctx.metrics.created.labels(n.channel, n.rule_id).inc()
        if n.status == "technical-failure":
            ctx.metrics.failed.labels(n.channel, n.template_name, "technical-failure").inc()
    return len(created)


def _compose(
    ctx: Context,
    parsed: ParsedEvent,
    data: dict[str, Any],
    rules: Sequence[Rule],
    recipients: Recipients,
    preferences: Mapping[str, Preferences],
    now: datetime,
) -> list[Notification]:
    """The notifications (rendered, not stored) one event calls for."""
    composed: list[Notification] = []
    contact: Contact | Unopened | None = None
    opened = False
    for rule in rules:
        for target in rule.to:
            if target != "citizen":
                composed += _for_officer(ctx, rule, target, parsed, data, now, recipients)
                continue
            if not opened:  # once per event, however many rules name the citizen
                contact, opened = _citizen_contact(ctx, parsed), True
            composed += _for_citizen(ctx, rule, parsed, data, now, contact, preferences)
    return composed


@dataclass(frozen=True)
class Unopened:
    """A sealed contact that cannot be opened (the producer's key differs)."""

    sealed: SealedContact
    error: str


def _citizen_contact(ctx: Context, parsed: ParsedEvent) -> Contact | Unopened | None:
    """The event's sealed contact, opened (None when the event has none)."""
    sealed = getattr(parsed.data, "contact", None)
    if sealed is None:
        return None
    try:
        opened = open_contact(ctx.contact_key, sealed)
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
    parsed: ParsedEvent,
    data: dict[str, Any],
    now: datetime,
    contact: Contact | Unopened | None,
    preferences: Mapping[str, Preferences],
) -> list[Notification]:
    ref = getattr(parsed.data, "citizen_ref", None)
    key = ref or f"event:{parsed.envelope.id}"
    if contact is None:
        ctx.metrics.skipped.labels("no_contact").inc()
        return []
    context = _context(ctx, parsed, data, "citizen", key, None)
    if isinstance(contact, Unopened):
        # Never a silent drop: a contact we cannot open is our fault (keys differ).
        channel = next((c for c in rule.channels if c in contact.sealed.channels), rule.channels[0])
        broken = _new(
            ctx,
            rule,
            parsed,
            data,
            now,
            channel=channel,
            locale=data.get("locale") or ctx.default_locale,
            due_at=now,
            kind="citizen",
            key=key,
            address=None,
            context=context,
            broken=contact.error,
        )
        return [broken]
    plan = plan_delivery(
        rule,
        reachable=contact.reachable(),
        now=now,
        event_locale=data.get("locale"),
        default_locale=ctx.default_locale,
        preferences=preferences.get(ref) if ref else None,
    )
    if isinstance(plan, Skip):
        ctx.metrics.skipped.labels(plan.reason).inc()
        return []
    return [
        _new(
            ctx,
            rule,
            parsed,
            data,
            now,
            channel=channel,
            locale=plan.locale,
            due_at=plan.due_at,
            kind="citizen",
            key=key,
            address=contact.address(channel),
            context=context,
        )
        for channel in plan.channels
    ]


def _for_officer(
    ctx: Context,
    rule: Rule,
    target: str,
    parsed: ParsedEvent,
    data: dict[str, Any],
    now: datetime,
    recipients: Recipients,
) -> list[Notification]:
    kind, key, contact, fallback = recipients.resolve(target, data)
    if contact is None:
        ctx.metrics.skipped.labels("no_recipient").inc()
        log.warning("no address for officer recipient", extra={"rule": rule.id, "recipient": f"{kind}:{key}"})
        return []
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
        return []
    context = _context(ctx, parsed, data, kind, key, contact.name)
    return [
        _new(
            ctx,
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
            context=context,
        )
        for channel in plan.channels
    ]


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


def _new(
    ctx: Context,
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
    context: dict[str, Any],
    broken: str | None = None,
) -> Notification:
    """One notification, composed (or a technical failure when it cannot be), not stored.
    `context` may be shared by a recipient's channels: nothing changes it."""
    envelope = parsed.envelope
    sealed, masked = _seal(ctx, channel, address)
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
    return n


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


def _envelopes(ctx: Context, n: Notification, latency: float | None = None) -> list[Envelope]:
    """The notifications.events event of each new status of `n` (its pending changes,
    which are then cleared)."""
    envelopes: list[Envelope] = []
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
        envelopes.append(
            make_envelope(
                data,
                subject=str(n.id),
                source=schema.SOURCE,
                region=ctx.platform.region,
                correlation_id=n.correlation_id,
                causation_id=n.source_event_id,
            )
        )
    n.changes.clear()
    return envelopes


async def _emit(
    conn: asyncpg.Connection, ctx: Context, n: Notification, latency: float | None = None
) -> list[str]:
    """Publish each new status of `n` on notifications.events (through the outbox);
    returns the event types."""
    envelopes = _envelopes(ctx, n, latency)
    await add_events(conn, envelopes, schema.TOPIC)
    return [e.type for e in envelopes]


# ----- the delivery worker ----------------------------------------------------------------------


async def deliver_due(ctx: Context, max_rounds: int = 20) -> int:
    """Send what is due on the channels not held, within each channel's rate limit;
    returns how many were sent (attempted). Safe on any number of instances at once."""
    _, held = await asyncio.gather(recover_expired_leases(ctx), held_channels(ctx))  # independent
    channels = [c for c in CHANNELS if c not in held]
    if not channels:
        return 0
    async with httpx.AsyncClient(verify=ctx.tls()) as client:
        # Each channel finishes what it took even when another fails: a batch cut off
        # mid-send would wait for its lease, then go out twice.
        done = await asyncio.gather(
            *(_deliver_channel(ctx, c, client, max_rounds) for c in channels), return_exceptions=True
        )
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    return sum(n for n in done if isinstance(n, int))


async def _deliver_channel(ctx: Context, channel: str, client: httpx.AsyncClient, max_rounds: int) -> int:
    """Rounds of one channel until nothing is due: claim a batch, send it, and record
    its outcomes while the next batch is claimed and sent. The channels go side by side,
    so a slow gateway does not hold email back."""
    total = 0
    recording: asyncio.Task[None] | None = None
    try:
        async with _session(ctx, channel, client) as session:
            for _ in range(max_rounds):
                if ctx.stopping.is_set():
                    break
                claimed = await _claim(ctx, channel)
                if not claimed:
                    break
                results = await _send(ctx, session, claimed)
                if recording is not None:
                    await recording  # one batch's outcomes at a time
                recording = asyncio.create_task(_record(ctx, claimed, results))
                total += len(claimed)
    finally:
        if recording is not None:
            await recording
    return total


def _session(ctx: Context, channel: str, client: httpx.AsyncClient) -> AbstractAsyncContextManager[Session]:
    return ctx.email.session() if channel == "email" else ctx.gateways[channel].session(client)


async def held_channels(ctx: Context) -> set[str]:
    """Channels nothing is sent on now: all while NOTIFICATIONS_DELIVERY_PAUSED, else
    those an operator holds."""
    if ctx.delivery_paused:
        return set(CHANNELS)
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).held_channels()


async def _claim(ctx: Context, channel: str) -> list[Notification]:
    """Take a batch of due notifications of `channel` and mark them `sending`, in one
    transaction of a few statements (committed before anything is sent)."""
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
        await _store(ctx, repo, claimed)
    bucket.give_back(wanted - len(claimed))
    return claimed


async def _store(
    ctx: Context,
    repo: NotificationRepository,
    changed: Sequence[Notification],
    latencies: Mapping[uuid.UUID, float] | None = None,
) -> None:
    """Save changed notifications, their new history and their events, set-based (the
    events in the notifications' order, each one's in its own)."""
    await repo.save_all(changed)
    envelopes = [e for n in changed for e in _envelopes(ctx, n, (latencies or {}).get(n.id))]
    await add_events(repo.conn, envelopes, schema.TOPIC)


def _open_address(ctx: Context, n: Notification) -> str | None:
    if not n.address_sealed:
        return None
    opened = open_contact(ctx.contact_key, SealedContact(sealed=n.address_sealed, channels=[]))
    return opened.get("email") if n.channel == "email" else opened.get("phone")


def _message(ctx: Context, n: Notification) -> OutgoingMessage | SendResult:
    """What to send for `n`, or why nothing can be."""
    try:
        address = _open_address(ctx, n)
    except ValueError as exc:
        return SendResult(Outcome.TECHNICAL, str(exc))
    if not address:
        return SendResult(Outcome.TECHNICAL, "no address kept for this notification (purged?)")
    if n.body is None:
        return SendResult(Outcome.TECHNICAL, "no message kept for this notification (purged?)")
    return OutgoingMessage(
        notification_id=str(n.id),
        channel=n.channel,
        to=address,
        subject=n.subject,
        body=n.body,
        locale=n.locale,
        tracking_code=n.tracking_code,
    )


async def _send(ctx: Context, session: Session, claimed: Sequence[Notification]) -> list[SendResult]:
    """Send a claimed batch of one channel, outside any transaction; one result each."""
    prepared = [_message(ctx, n) for n in claimed]
    messages = [m for m in prepared if isinstance(m, OutgoingMessage)]
    try:
        sent = await session.send_many(messages) if messages else []
    except Exception as exc:  # a channel bug must not leave the batch in `sending`
        log.exception("channel failed unexpectedly")
        failed = SendResult(Outcome.TECHNICAL, redact(f"{type(exc).__name__}: {exc}")[:500])
        sent = [failed] * len(messages)
    outcomes = iter(sent)
    return [m if isinstance(m, SendResult) else next(outcomes) for m in prepared]


async def _record(ctx: Context, claimed: Sequence[Notification], results: Sequence[SendResult]) -> None:
    """Record the outcomes of a claimed batch in one transaction: the attempts still in
    flight (a recovered lease or an erasure may have moved one on meanwhile) under lock,
    the quiet hours of their citizens in one query, then statuses, history and events
    set-based. Retried on a deadlock (an erasure locking a citizen's rows meanwhile):
    outcomes left unrecorded would be sent again once the lease expires."""
    for attempt in range(1, 4):
        try:
            await _record_once(ctx, claimed, results)
            return
        except asyncpg.DeadlockDetectedError:
            if attempt == 3:
                raise


async def _record_once(ctx: Context, claimed: Sequence[Notification], results: Sequence[SendResult]) -> None:
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        current = await repo.get_many([n.id for n in claimed], for_update=True)
        recorded: list[Notification] = []
        outcomes: list[SendResult] = []
        for claimed_n, result in zip(claimed, results, strict=True):
            n = current.get(claimed_n.id)
            if n is None or n.status != "sending" or n.attempt != claimed_n.attempt:
                _log_about(
                    claimed_n, logging.WARNING, "attempt outcome arrived after its lease was recovered"
                )
                continue
            recorded.append(n)
            outcomes.append(result)
        refs = {n.citizen_ref for n in recorded if n.citizen_ref and not n.urgent}
        preferences = await repo.preferences_of(refs, ctx.tz)
        latencies: dict[uuid.UUID, float] = {}
        for n, result in zip(recorded, outcomes, strict=True):
            prefs = preferences.get(n.citizen_ref) if n.citizen_ref and not n.urgent else None
            defer = prefs.quiet_hours.defer if prefs is not None and prefs.quiet_hours is not None else None
            n.record(result, now, ctx.retry, defer)
            if n.status == "delivered":
                latencies[n.id] = max(0.0, (now - n.event_time).total_seconds())
        await _store(ctx, repo, recorded, latencies)
    for n in recorded:
        _observe(ctx, n, latencies.get(n.id))


def _observe(ctx: Context, n: Notification, latency: float | None) -> None:
    m = ctx.metrics
    if n.status == "delivered":
        m.sent.labels(n.channel, n.template_name).inc()
        if latency is not None:
            m.latency.labels(n.channel).observe(latency)
        return
    m.failed.labels(n.channel, n.template_name, n.status.value).inc()
    _log_about(
        n,
        logging.INFO,
        "notification attempt failed",
        status=n.status.value,
        attempt=n.attempt,
        error=n.last_error,
    )


def _log_about(n: Notification, level: int, message: str, **extra: Any) -> None:
    """Log about one notification of a batch under its source event's correlation id
    (set in a copy of the context: the worker's own lines keep theirs)."""

    def emit() -> None:
        set_correlation_id(n.correlation_id)
        log.log(level, message, extra={"notification": str(n.id), **extra})

    contextvars.copy_context().run(emit)


async def recover_expired_leases(ctx: Context) -> int:
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        stale = await repo.expired_leases(now)
        await _store(ctx, repo, [n for n in stale if n.lease_expired(now, ctx.retry)])
    return len(stale)


# ----- holding deliveries ----------------------------------------------------------------------


async def delivery_state(ctx: Context) -> dict[str, Any]:
    async with ctx.pool().acquire() as conn:
        repo = NotificationRepository(conn)
        return {
            "paused": ctx.delivery_paused,
            "holds": await repo.holds(),
            "queued": await repo.queue_depth(),
        }


async def hold(ctx: Context, channel: str, reason: str, officer: Officer) -> None:
    """Stop sending on `channel` (every instance); notifications keep being created."""
    async with ctx.pool().acquire() as conn, conn.transaction():
        await NotificationRepository(conn).hold(channel, reason, officer.subject)
        await audit.record(conn, [f"delivery:{channel}"], [])
    log.warning("deliveries held", extra={"channel": channel})


async def release(ctx: Context, channel: str, officer: Officer) -> bool:
    """Send on `channel` again: what waited goes out at once. False if it was not held."""
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        released = await repo.release(channel)
        if released:
            await repo.wake_delivery()
            await audit.record(conn, [f"delivery:{channel}"], [])
    if released:
        log.warning("deliveries resumed", extra={"channel": channel})
    return released


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
