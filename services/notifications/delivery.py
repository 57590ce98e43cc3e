"""The delivery worker: claim what is due, send it, record the outcomes.

`deliver_due` works per channel (side by side): it claims a batch of due notifications
with FOR UPDATE SKIP LOCKED, marks them `sending` and commits (so no other instance
takes them), sends the batch outside any transaction (email over a few SMTP
connections kept for the next batch), then records all outcomes in one unit of work,
set-based, while it claims and sends the next batch. A worker that dies mid-send leaves
a lease that expires; the attempt then counts as a temporary failure and is retried.
Held channels (NOTIFICATIONS_DELIVERY_PAUSED, or an operator's hold) are not claimed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
import httpx
from opentelemetry.trace import SpanKind

from services.notifications.channels import OutgoingMessage, Session
from services.notifications.context import Context
from services.notifications.domain import (
    CHANNELS,
    CODE_RULE,
    Notification,
    Outcome,
    SendResult,
    Status,
    code_fallback,
    preferences_for,
)
from services.notifications.repository import NotificationRepository
from services.notifications.status_events import emit
from shared.kit import tracing
from shared.kit.logs import redact, set_correlation_id
from shared.kit.privacy import open_contact, open_text
from shared.kit.uow import UnitOfWork, unit_of_work
from shared.schemas.common import SealedContact

log = logging.getLogger(__name__)

RECORD_ATTEMPTS = 3  # recording a batch's outcomes, retried on a deadlock


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
                claimed = await claim(ctx, channel)
                if not claimed:
                    break
                results = await send(ctx, session, claimed)
                if recording is not None:
                    await recording  # one batch's outcomes at a time
                recording = asyncio.create_task(record(ctx, claimed, results))
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


async def _store(
    ctx: Context,
    uow: UnitOfWork,
    changed: Sequence[Notification],
    latencies: Mapping[uuid.UUID, float] | None = None,
) -> None:
    """Save changed notifications, their new history and their events, set-based."""
    await NotificationRepository(uow.conn).save_all(changed)
    await emit(uow, ctx, changed, latencies)


async def claim(ctx: Context, channel: str) -> list[Notification]:
    """Take a batch of due notifications of `channel` and mark them `sending`, in one
    unit of work of a few statements (committed before anything is sent)."""
    bucket = ctx.buckets[channel]
    wanted = bucket.take(ctx.batch_size, ctx.monotonic())
    if wanted == 0:
        ctx.metrics.throttled.labels(channel).inc()
        return []
    now = ctx.clock()
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        claimed = await NotificationRepository(uow.conn).claim_due(channel, now, wanted)
        for n in claimed:
            n.start_sending(now, ctx.lease)
        await _store(ctx, uow, claimed)
    bucket.give_back(wanted - len(claimed))
    return claimed


def _open_address(ctx: Context, n: Notification) -> str | None:
    if not n.address_sealed:
        return None
    opened = open_contact(ctx.contact_key, SealedContact(sealed=n.address_sealed, channels=[]))
    return opened.get("email") if n.channel == "email" else opened.get("phone")


def address_refs(ctx: Context, n: Notification) -> list[str]:
    """The keyed hash of the address `n` goes to: whose preferences govern it."""
    try:
        address = _open_address(ctx, n)
    except ValueError:
        return []
    return [ctx.address_ref(n.channel, address)] if address else []


def message_for(ctx: Context, n: Notification) -> OutgoingMessage | SendResult:
    """What to send for `n`, or why nothing can be."""
    try:
        address = _open_address(ctx, n)
    except ValueError as exc:
        return SendResult(Outcome.TECHNICAL, str(exc))
    if not address:
        return SendResult(Outcome.TECHNICAL, "no address kept for this notification (purged?)")
    if n.body is None:
        return SendResult(Outcome.TECHNICAL, "no message kept for this notification (purged?)")
    body = n.body
    if n.rule_id == CODE_RULE:  # a one-time code is kept sealed until this moment
        try:
            body = open_text(ctx.contact_key, n.body)
        except ValueError as exc:
            return SendResult(Outcome.TECHNICAL, str(exc))
    return OutgoingMessage(
        notification_id=str(n.id),
        channel=n.channel,
        to=address,
        subject=n.subject,
        body=body,
        locale=n.locale,
        tracking_code=n.tracking_code,
    )


async def send(ctx: Context, session: Session, claimed: Sequence[Notification]) -> list[SendResult]:
    """Send a claimed batch of one channel, outside any transaction; one result each.
    With tracing on, each message's sending is a span in the trace of the event it was
    made for (the citizen's request, for a complaint's message)."""
    if not tracing.enabled():
        return await _send(ctx, session, claimed)
    with tracing.continued([_delivery(n) for n in claimed], kind=SpanKind.CLIENT) as spans:
        results = await _send(ctx, session, claimed)
        for current, result in zip(spans, results, strict=True):
            if current is not None:
                current.set_attribute(tracing.OUTCOME, result.outcome.value)
        return results


def _delivery(n: Notification) -> tracing.Continued:
    return tracing.Continued(
        n.traceparent,
        None,
        f"deliver {n.channel}",
        {
            tracing.NOTIFICATION_ID: str(n.id),
            tracing.CHANNEL: n.channel,
            tracing.TRACKING_CODE: [n.tracking_code] if n.tracking_code else [],
            "sinergi.rule": n.rule_id,
            "sinergi.attempt": n.attempt,
        },
    )


async def _send(ctx: Context, session: Session, claimed: Sequence[Notification]) -> list[SendResult]:
    prepared = [message_for(ctx, n) for n in claimed]
    messages = [m for m in prepared if isinstance(m, OutgoingMessage)]
    try:
        sent = await session.send_many(messages) if messages else []
    except Exception as exc:  # a channel bug must not leave the batch in `sending`
        log.exception("channel failed unexpectedly")
        failed = SendResult(Outcome.TECHNICAL, redact(f"{type(exc).__name__}: {exc}")[:500])
        sent = [failed] * len(messages)
    outcomes = iter(sent)
    return [m if isinstance(m, SendResult) else next(outcomes) for m in prepared]


async def record(ctx: Context, claimed: Sequence[Notification], results: Sequence[SendResult]) -> None:
    """Record the outcomes of a claimed batch in one unit of work: the attempts still
    in flight (a recovered lease or an erasure may have moved one on meanwhile) under
    lock, the quiet hours of their citizens in one query, then statuses, history and
    events set-based. Retried on a deadlock (an erasure locking a citizen's rows
    meanwhile): outcomes left unrecorded would be sent again once the lease expires."""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            await _record_once(ctx, claimed, results)
            return
        except asyncpg.DeadlockDetectedError:
            if attempt == RECORD_ATTEMPTS:
                raise


async def _record_once(ctx: Context, claimed: Sequence[Notification], results: Sequence[SendResult]) -> None:
    now = ctx.clock()
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        repo = NotificationRepository(uow.conn)
        current = await repo.get_many([n.id for n in claimed], for_update=True)
        recorded: list[Notification] = []
        outcomes: list[SendResult] = []
        for claimed_n, result in zip(claimed, results, strict=True):
            n = current.get(claimed_n.id)
            if n is None or n.status != Status.SENDING or n.attempt != claimed_n.attempt:
                _log_about(
                    claimed_n, logging.WARNING, "attempt outcome arrived after its lease was recovered"
                )
                continue
            recorded.append(n)
            outcomes.append(result)
        refs = {n.citizen_ref for n in recorded if n.citizen_ref and not n.urgent}
        preferences = await repo.preferences_of(refs, ctx.tz)
        latencies: dict[uuid.UUID, float] = {}
        fallbacks: list[Notification] = []
        for n, outcome in zip(recorded, outcomes, strict=True):
            result, fallback = code_fallback(n, outcome, now, ctx.phone_channels())
            if fallback is not None:
                fallbacks.append(fallback)
            # The address is opened only for a citizen who has set preferences at all.
            stored = preferences.get(n.citizen_ref) if n.citizen_ref and not n.urgent else None
            prefs = preferences_for(stored, address_refs(ctx, n)) if stored else None
            defer = prefs.quiet_hours.defer if prefs is not None and prefs.quiet_hours is not None else None
            n.record(result, now, ctx.retry, defer)
            if n.status == Status.DELIVERED:
                latencies[n.id] = max(0.0, (now - n.event_time).total_seconds())
        await _store(ctx, uow, recorded, latencies)
        fell_back = await _fall_back(ctx, uow, fallbacks)
    for n in recorded:
        observe(ctx, n, latencies.get(n.id))
    for n in fell_back:
        ctx.metrics.created.labels(n.channel, CODE_RULE).inc()


async def _fall_back(ctx: Context, uow: UnitOfWork, fallbacks: Sequence[Notification]) -> list[Notification]:
    """Queue codes on their fallback channel and wake the workers at commit, so they go
    out now, not at the next round (a code lives 5 minutes). A record retried after a
    deadlock queues none twice (one per request and channel)."""
    added = await NotificationRepository(uow.conn).add_all(fallbacks)
    if added:
        await emit(uow, ctx, added)
        await NotificationRepository(uow.conn).wake_delivery()
    return added


def observe(ctx: Context, n: Notification, latency: float | None) -> None:
    """Count a recorded attempt in the metrics (and log a failed one)."""
    m = ctx.metrics
    if n.status == Status.DELIVERED:
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

    def emit_line() -> None:
        set_correlation_id(n.correlation_id)
        log.log(level, message, extra={"notification": str(n.id), **extra})

    contextvars.copy_context().run(emit_line)


async def recover_expired_leases(ctx: Context) -> int:
    """Count the attempts whose worker vanished (lease expired) as temporary failures,
    so they are retried; returns how many expired leases were found."""
    now = ctx.clock()
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        stale = await NotificationRepository(uow.conn).expired_leases(now)
        await _store(ctx, uow, [n for n in stale if n.lease_expired(now, ctx.retry)])
    return len(stale)
