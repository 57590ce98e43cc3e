"""The service's own events: each new status of a notification, published on
notifications.events through the outbox, in the transaction that stores the status.

They carry the source event's correlation id and name it as their cause, so they are
built here and staged as ready-made envelopes (`UnitOfWork.stage` in a use case, the
kit's `add_events` in the consumer's own transaction), a batch's in one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from services.notifications.context import Context
from services.notifications.domain import Notification, Status
from shared.kit.outbox import add_events
from shared.kit.uow import UnitOfWork
from shared.schemas import Envelope, make_envelope
from shared.schemas import notifications as schema


def envelopes(ctx: Context, n: Notification, latency: float | None = None) -> list[Envelope]:
    """The notifications.events event of each new status of `n` (its pending changes,
    which are then cleared)."""
    found: list[Envelope] = []
    for entry in n.changes:
        model = schema.EVENT_FOR_STATUS[entry.status.value]
        extra: dict[str, Any] = {}
        if entry.status == Status.DELIVERED and latency is not None:
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
        found.append(
            make_envelope(
                data,
                subject=str(n.id),
                source=ctx.origin.source,
                region=ctx.origin.region,
                correlation_id=n.correlation_id,
                causation_id=n.source_event_id,
                traceparent=n.traceparent,
            )
        )
    n.changes.clear()
    return found


async def stage(
    conn: asyncpg.Connection,
    ctx: Context,
    changed: Sequence[Notification],
    latencies: Mapping[uuid.UUID, float] | None = None,
) -> list[Envelope]:
    """Stage the events of the pending changes of `changed` in the caller's transaction,
    in one statement (in the notifications' order, each one's in its own); returns them.
    `latencies` (event time to delivery) go into the `delivered` events."""
    staged = [e for n in changed for e in envelopes(ctx, n, (latencies or {}).get(n.id))]
    await add_events(conn, staged, ctx.origin.topic)
    return staged


async def emit(
    uow: UnitOfWork,
    ctx: Context,
    changed: Sequence[Notification],
    latencies: Mapping[uuid.UUID, float] | None = None,
) -> None:
    """`stage` in a unit of work, which names the notifications and their events in the
    officer's audit row (if an officer acts)."""
    await uow.stage([e for n in changed for e in envelopes(ctx, n, (latencies or {}).get(n.id))])
