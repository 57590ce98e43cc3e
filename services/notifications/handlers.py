"""Use cases of officers, operators and citizens, each write in one unit of work.

Officers list, inspect and resend notifications; operators hold and release a channel's
deliveries; citizens set their preferences by NIK, stored under the citizen reference
only; and the service's own housekeeping. Consuming domain events is in intake.py, the
delivery worker in delivery.py.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from services.notifications.context import Context
from services.notifications.domain import Notification, Preferences
from services.notifications.intake import render_into
from services.notifications.repository import ListFilter, NotificationRepository
from services.notifications.status_events import emit
from shared.kit.auth import Officer
from shared.kit.errors import Conflict, NotFound
from shared.kit.privacy import citizen_ref
from shared.kit.uow import unit_of_work

log = logging.getLogger(__name__)


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
    """Send a failed notification again, composed afresh with the current templates;
    the audit trail records who resent what."""
    now = ctx.clock()
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        repo = NotificationRepository(uow.conn)
        n = await repo.get(notification_id, for_update=True)
        if n is None:
            raise NotFound(f"no notification {notification_id}")
        n.changes.clear()
        n.resend(now, officer.subject)
        if n.context is None or n.address_sealed is None:
            raise Conflict("this notification's content is no longer kept (retention); it cannot be resent")
        render_into(ctx, n)
        await repo.save(n)
        await emit(uow, ctx, [n])
    return n


# ----- holding deliveries (operators) ----------------------------------------------------------------


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
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        await NotificationRepository(uow.conn).hold(channel, reason, officer.subject)
        uow.touch(f"delivery:{channel}")  # what the audit row names
    log.warning("deliveries held", extra={"channel": channel})


async def release(ctx: Context, channel: str) -> None:
    """Send on `channel` again: what waited goes out at once. NotFound (and nothing
    audited) if it was not held."""
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        repo = NotificationRepository(uow.conn)
        if not await repo.release(channel):
            raise NotFound(f"{channel} is not held")
        await repo.wake_delivery()
        uow.touch(f"delivery:{channel}")
    log.warning("deliveries resumed", extra={"channel": channel})


# ----- housekeeping ----------------------------------------------------------------------------


async def queue_depth(ctx: Context) -> dict[str, int]:
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).queue_depth()


async def purge(ctx: Context, retention: timedelta) -> int:
    """Forget the personal data of final notifications older than `retention`."""
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        return await NotificationRepository(uow.conn).purge_content(ctx.clock() - retention)


# ----- citizens' preferences -----------------------------------------------------------------------


def _citizen_ref(ctx: Context, nik: str) -> str:
    return citizen_ref(nik, ctx.platform.citizen_ref_key.get_secret_value())


async def set_preferences(ctx: Context, nik: str, prefs: Preferences) -> Preferences:
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        await NotificationRepository(uow.conn).put_preferences(_citizen_ref(ctx, nik), prefs)
    return prefs


async def get_preferences(ctx: Context, nik: str) -> Preferences | None:
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).get_preferences(_citizen_ref(ctx, nik), ctx.tz)
