"""Use cases of officers, operators and citizens, each write in one unit of work.

Officers list, inspect and resend notifications; operators hold and release a channel's
deliveries; citizens prove a contact with a one-time code and get a session, with which
they set their preferences (stored under the citizen reference only); and the service's
own housekeeping. Consuming domain events is in intake.py, the
delivery worker in delivery.py.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.notifications.context import Context
from services.notifications.delivery import address_refs
from services.notifications.domain import (
    CODE_RULE,
    CODE_VALIDITY,
    PHONE_CHANNELS,
    CodeChallenge,
    CodeRefused,
    Notification,
    Preferences,
    code_hash,
    code_message,
    code_notification,
    new_code,
)
from services.notifications.intake import render_into, reopened_texts
from services.notifications.repository import CodeRepository, ListFilter, NotificationRepository
from services.notifications.status_events import emit
from shared.kit.auth import Officer
from shared.kit.citizen import Citizen
from shared.kit.errors import Conflict, Forbidden, NotFound
from shared.kit.logs import correlation_id
from shared.kit.privacy import citizen_ref, contact_ref, seal_contact, seal_text
from shared.kit.uow import unit_of_work
from shared.reference import mask_email, mask_phone

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
    # What the citizen wrote is kept sealed: its key is asked for before the row is locked.
    texts = await reopened_texts(ctx, (await get(ctx, notification_id)).context)
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
        render_into(ctx, n, texts)
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
    """Forget the personal data of final notifications older than `retention`, and the
    citizens' code challenges that are over."""
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        await CodeRepository(uow.conn).purge(ctx.clock())
        return await NotificationRepository(uow.conn).purge_content(ctx.clock() - retention)


# What a message whose address the contact key no longer opens (a key since changed) gets
# for its address hash: never a contact's, and not tried again at every start-up.
UNOPENED_ADDRESS = "unopened"
ADDRESS_REF_BATCH = 500


async def backfill_address_refs(ctx: Context) -> int:
    """Give the citizen messages stored before their address was hashed (migration 007)
    the keyed hash of it, so a citizen proving that contact finds them in their own
    export; how many. Run at start-up: once done, it finds nothing."""
    done = 0
    while True:
        async with unit_of_work(ctx.pool(), ctx.origin) as uow:
            repo = NotificationRepository(uow.conn)
            found = await repo.without_address_ref(ADDRESS_REF_BATCH)
            await repo.set_address_refs(
                {n.id: (address_refs(ctx, n) or [UNOPENED_ADDRESS])[0] for n in found}
            )
        done += len(found)
        if len(found) < ADDRESS_REF_BATCH:
            return done


# ----- citizens' one-time codes and sessions ---------------------------------------------------------


@dataclass(frozen=True)
class CitizenContact:
    """A phone number (+62…) or email address (lower case), as the citizen gave it."""

    kind: str  # phone | email
    value: str


@dataclass(frozen=True)
class CodeSent:
    destination: str  # masked
    channel: str
    expires_in: int  # seconds


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: int  # seconds since the epoch
    citizen_ref: str | None


def _code_channel(ctx: Context, contact: CitizenContact) -> str:
    """Email for an address; for a phone the first of WhatsApp, SMS with a gateway."""
    if contact.kind == "email":
        return "email"
    return (ctx.phone_channels() or list(PHONE_CHANNELS))[0]


async def request_code(ctx: Context, contact: CitizenContact) -> CodeSent:
    """Send a new code to `contact` through the delivery worker (the answer is the same
    whether or not the contact was ever seen). The route applies the rate limits."""
    now = ctx.clock()
    ref = contact_ref(contact.value, ctx.citizen_key)
    code = new_code()
    channel = _code_channel(ctx, contact)
    subject, body = code_message(code)
    if contact.kind == "email":
        sealed, masked = seal_contact(ctx.contact_key, email=contact.value), mask_email(contact.value)
    else:
        sealed, masked = seal_contact(ctx.contact_key, phone=contact.value), mask_phone(contact.value)
    assert sealed is not None
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        codes = CodeRepository(uow.conn)
        await codes.lock(ref)  # the last code (if any) is replaced: it is dead from now on
        challenge = CodeChallenge.issue(
            contact_ref=ref, kind=contact.kind, hashed=code_hash(ctx.citizen_key, ref, code), now=now
        )
        await codes.put(challenge)
        message = code_notification(
            now=now,
            contact_ref=ref,
            channel=channel,
            address_sealed=sealed.sealed,
            address_masked=masked,
            subject=subject,
            body_sealed=seal_text(ctx.contact_key, body),
            correlation_id=correlation_id(),
        )
        created = await NotificationRepository(uow.conn).add_all([message])
        await emit(uow, ctx, created)
    ctx.metrics.created.labels(channel, CODE_RULE).inc()
    return CodeSent(masked, channel, int(CODE_VALIDITY.total_seconds()))


async def open_session(ctx: Context, contact: CitizenContact, code: str, nik: str | None) -> Session:
    """A session for `contact` if `code` is the one last sent to it, unused, unexpired
    and within its attempts; every try is counted. CodeRefused otherwise (one answer)."""
    if ctx.sessions is None:
        raise Conflict("citizen sessions are not configured on this deployment")
    now = ctx.clock()
    ref = contact_ref(contact.value, ctx.citizen_key)
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        codes = CodeRepository(uow.conn)
        challenge = await codes.lock(ref)
        accepted = challenge is not None and challenge.verify(code_hash(ctx.citizen_key, ref, code), now)
        if challenge is not None:
            await codes.put(challenge)  # the attempt counts even when refused
        if accepted:
            await codes.mark_verified(ref, now)
    if not accepted:
        raise CodeRefused()  # after the commit, so the attempt stays counted
    stated = citizen_ref(nik, ctx.citizen_key) if nik else None
    token, expires = ctx.sessions.issue(
        contact_ref=ref,
        kind=contact.kind,
        citizen_ref=stated,
        now=int(time.time()),  # wall clock: every service checks the expiry with its own
        minutes=ctx.session_minutes,
    )
    log.info("citizen session opened", extra={"kind": contact.kind, "with_nik": stated is not None})
    return Session(token, expires, stated)


# ----- citizens' preferences -----------------------------------------------------------------------


def _preferences_ref(ctx: Context, citizen: Citizen, nik: str | None) -> str:
    """The citizen reference a session acts on: the NIK stated when it was opened; a NIK
    in the request must be that one."""
    if citizen.citizen_ref is None:
        raise Forbidden(
            "sesi ini tanpa NIK: sebutkan NIK saat verifikasi kode (POST /citizen/sessions dengan nik)"
        )
    if nik is not None and citizen_ref(nik, ctx.citizen_key) != citizen.citizen_ref:
        raise Forbidden("NIK ini bukan NIK yang disebutkan saat verifikasi kode")
    return citizen.citizen_ref


async def set_preferences(ctx: Context, citizen: Citizen, nik: str | None, prefs: Preferences) -> Preferences:
    ref = _preferences_ref(ctx, citizen, nik)
    async with unit_of_work(ctx.pool(), ctx.origin) as uow:
        await NotificationRepository(uow.conn).put_preferences(ref, citizen.contact_ref, prefs)
    return prefs


async def get_preferences(ctx: Context, citizen: Citizen, nik: str | None) -> Preferences | None:
    ref = _preferences_ref(ctx, citizen, nik)
    async with ctx.pool().acquire() as conn:
        return await NotificationRepository(conn).get_preferences(ref, citizen.contact_ref, ctx.tz)
