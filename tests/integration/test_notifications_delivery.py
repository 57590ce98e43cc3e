"""The notification service's delivery worker against the real PostgreSQL, a local SMTP
relay that counts connections and misbehaves on demand, and the fake SMS/WhatsApp gateway.

The worker sends a claimed batch of emails over a few reused SMTP connections and
records all outcomes in one transaction, set-based. It must record exactly what the
worker recorded before, one connection and one transaction per notification (kept below
as the reference): statuses, attempts, backoff and quiet hours, history, events, metrics.
A relay that drops connections mid-batch must cost no email and double none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.notifications import delivery, handlers, intake
from services.notifications.app import HERE
from services.notifications.context import Context
from services.notifications.domain import (
    CHANNELS,
    WIB,
    Notification,
    Preferences,
    QuietHours,
    SendResult,
    preferences_for,
)
from services.notifications.repository import CitizenMessages, NotificationRepository
from services.notifications.status_events import stage
from services.notifications.tests.relay import Relay
from shared.kit.citizen_data import Citizen
from shared.kit.settings import PlatformSettings
from shared.runtime.fake_gateway import FakeGateway
from shared.schemas import Envelope
from tests.citizen_support import verified_citizen
from tests.harness import migrated_pool_fixture, parsed
from tests.notifications_support import (
    ASYNCPG_INTROSPECTION,
    GATEWAY_TOKEN,
    context_for,
    filed,
    metrics_of,
    snapshot,
    unique_email,
    unique_phone,
)

NIK_QUIET = "3306065708900002"


def next_evening() -> datetime:
    """The worker's clock: the next 20:59:30 WIB, so that a first retry a minute later
    falls in the quiet hours (21:00-06:00) below, and delivery latencies are real."""
    local = datetime.now(WIB)
    evening = local.replace(hour=20, minute=59, second=30, microsecond=0)
    return evening if evening > local else evening + timedelta(days=1)


NOW = next_evening()

# Two databases with the service's migrations: one for the worker as it was, one for today's.
one_by_one = batched = migrated_pool_fixture(HERE / "migrations")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def worker_context(
    pool: asyncpg.Pool, platform: PlatformSettings, relay: Relay, gateway: FakeGateway, clock: Clock
) -> Context:
    return context_for(
        pool,
        clock,
        platform,
        smtp_host=relay.host,
        smtp_port=relay.port,
        smtp_local_hostname="sinergi.test",
        sms_gateway_url=gateway.sms_url,
        whatsapp_gateway_url=gateway.whatsapp_url,
        gateway_token=GATEWAY_TOKEN,
        max_attempts=3,
        retry_base_seconds=60.0,
        email_rate_per_second=1000.0,
        email_burst=1000,
    )


@dataclass
class Worker:
    """Today's worker on the `batched` database, sending through `relay` at `clock`."""

    ctx: Context
    relay: Relay
    clock: Clock


@pytest.fixture
def worker(batched: asyncpg.Pool, platform: PlatformSettings, fake_gateway: FakeGateway) -> Iterator[Worker]:
    """The worker at NOW with a relay that takes every email."""
    clock = Clock(NOW)
    with Relay() as relay:
        yield Worker(worker_context(batched, platform, relay, fake_gateway, clock), relay, clock)


def filed_complaints(platform: PlatformSettings, n: int) -> list[Envelope]:
    """`n` filed complaints, each from a citizen with an address of their own."""
    return [filed(platform, email=unique_email()) for _ in range(n)]


async def create(ctx: Context, events: list[Envelope]) -> None:
    async with ctx.pool().acquire() as conn, conn.transaction():
        await intake.on_events(ctx, conn, parsed(events))


async def statuses(ctx: Context) -> dict[str, int]:
    async with ctx.pool().acquire() as conn:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM notifications GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


# ----- the worker as it was: one SMTP connection and one transaction per notification ----------


async def deliver_one_by_one(ctx: Context) -> int:
    total = 0
    async with httpx.AsyncClient() as client:
        for channel in CHANNELS:
            claimed = await _claim_one_by_one(ctx, channel)
            await asyncio.gather(*(_deliver_one(ctx, n, client) for n in claimed))
            total += len(claimed)
    return total


async def _claim_one_by_one(ctx: Context, channel: str) -> list[Notification]:
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        claimed = await repo.claim_due(channel, now, ctx.batch_size)
        for n in claimed:
            n.start_sending(now, ctx.lease)
            await repo.save(n)
            await stage(conn, ctx, [n], None)
    return claimed


async def _deliver_one(ctx: Context, claimed: Notification, client: httpx.AsyncClient) -> None:
    message = delivery.message_for(ctx, claimed)
    if isinstance(message, SendResult):
        result = message
    elif claimed.channel == "email":
        result = await ctx.email.send(message)
    else:
        result = await ctx.gateways[claimed.channel].send(message, client)
    now = ctx.clock()
    async with ctx.pool().acquire() as conn, conn.transaction():
        repo = NotificationRepository(conn)
        n = await repo.get(claimed.id, for_update=True)
        assert n is not None and n.status == "sending" and n.attempt == claimed.attempt
        defer = None
        if n.citizen_ref and not n.urgent:
            stored = (await repo.preferences_of([n.citizen_ref], ctx.tz)).get(n.citizen_ref, {})
            prefs = preferences_for(stored, delivery.address_refs(ctx, n))
            if prefs is not None and prefs.quiet_hours is not None:
                defer = prefs.quiet_hours.defer
        n.changes.clear()
        n.record(result, now, ctx.retry, defer)
        await repo.save(n)
        latency = max(0.0, (now - n.event_time).total_seconds()) if n.status == "delivered" else None
        await stage(conn, ctx, [n], None if latency is None else {n.id: latency})
    delivery.observe(ctx, n, latency)


def comparable(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A snapshot without the gateway's own message numbers (fake-<n>)."""
    for n in found:
        if (n["provider_ref"] or "").startswith("fake-"):
            n["provider_ref"] = "fake-n"
    return sorted(found, key=repr)


# ----- tests ------------------------------------------------------------------------------------


async def test_a_mixed_batch_records_what_one_by_one_recorded(
    one_by_one: asyncpg.Pool,
    batched: asyncpg.Pool,
    platform: PlatformSettings,
    fake_gateway: FakeGateway,
) -> None:
    ok = [unique_email() for _ in range(6)]
    refused, busy, busy_quiet, busy_last, purged = (unique_email() for _ in range(5))
    phone_ok, phone_down = unique_phone(), unique_phone()
    fake_gateway.fail_always(503, to=phone_down)
    events = [
        *(filed(platform, email=address) for address in ok),
        filed(platform, email=refused),
        filed(platform, email=busy),
        filed(platform, email=busy_quiet, nik=NIK_QUIET),
        last := filed(platform, email=busy_last),
        gone := filed(platform, email=purged),
        filed(platform, phone=phone_ok),
        filed(platform, phone=phone_down),
    ]
    clock = Clock(NOW)
    with Relay() as relay:
        relay.refuse = {
            refused: "550 5.1.1 no such mailbox",
            busy: "451 4.3.0 try again later",
            busy_quiet: "452 4.2.2 mailbox full",
            busy_last: "421 4.7.0 too busy, closing",  # also closes its connection
        }
        contexts = [
            worker_context(pool, platform, relay, fake_gateway, clock) for pool in (one_by_one, batched)
        ]
        for ctx in contexts:
            quiet = QuietHours(time(21, 0), time(6, 0), ctx.tz)
            citizen = verified_citizen(ctx.platform, NIK_QUIET, busy_quiet)  # proved that address
            await handlers.set_preferences(ctx, citizen, None, Preferences(quiet_hours=quiet))
            await create(ctx, events)
            async with ctx.pool().acquire() as conn:
                code = "tracking_code = $1"
                await conn.execute(
                    f"UPDATE notifications SET max_attempts = 1 WHERE {code}", last.data["tracking_code"]
                )
                # Its text gone (retention) before it could be sent: a technical failure.
                await conn.execute(
                    f"UPDATE notifications SET body = NULL WHERE {code}", gone.data["tracking_code"]
                )

        assert await deliver_one_by_one(contexts[0]) == len(events)
        before = relay.connections
        assert await delivery.deliver_due(contexts[1]) == len(events)
        emails = len(events) - 3  # two by WhatsApp, one not sent at all
        assert before == emails and relay.connections - before < emails

        expected = comparable(await snapshot(contexts[0]))
        assert comparable(await snapshot(contexts[1])) == expected
        assert metrics_of(contexts[1]) == metrics_of(contexts[0])
        assert await statuses(contexts[1]) == {
            "delivered": 7,
            "permanent-failure": 2,
            "temporary-failure": 3,
            "technical-failure": 1,
        }
        by_code = {n["tracking_code"]: n for n in expected}
        outcome = {
            address: by_code[e.data["tracking_code"]]
            for address, e in zip(
                [*ok, refused, busy, busy_quiet, busy_last, purged, phone_ok, phone_down], events, strict=True
            )
        }
        assert outcome[busy]["due_at"] == NOW + timedelta(seconds=60)
        morning = (NOW + timedelta(days=1)).replace(hour=6, minute=0, second=0)
        assert outcome[busy_quiet]["due_at"] == morning  # out of the quiet hours
        assert outcome[busy_last]["last_error"] == "gave up after 1 attempts: recipient refused: [421]"
        assert outcome[refused]["status"] == "permanent-failure"
        assert outcome[purged]["status"] == "technical-failure"
        assert outcome[phone_ok]["status"] == "delivered" and outcome[phone_ok]["channel"] == "whatsapp"
        assert outcome[phone_down]["status"] == "temporary-failure"
        latency = metrics_of(contexts[1])[
            ("sinergi_notifications_delivery_latency_seconds_sum", (("channel", "email"),))
        ]
        assert latency > 0
        for address in ok:  # once by each worker
            assert len(relay.to(address)) == 2

        # A minute and a half later: the first retries, the relay takes one of them now.
        del relay.refuse[busy]
        clock.now = NOW + timedelta(seconds=90)
        assert await deliver_one_by_one(contexts[0]) == 2
        assert await delivery.deliver_due(contexts[1]) == 2
        assert comparable(await snapshot(contexts[1])) == comparable(await snapshot(contexts[0]))
        assert metrics_of(contexts[1]) == metrics_of(contexts[0])
        assert len(relay.to(busy)) == 2


async def test_a_relay_dropping_connections_mid_batch_loses_and_doubles_no_email(
    batched: asyncpg.Pool, platform: PlatformSettings, fake_gateway: FakeGateway
) -> None:
    clock = Clock(NOW)
    addresses = [unique_email() for _ in range(24)]
    # The 6th email drops its connection (it may or may not have arrived: it is retried);
    # from the 15th on the relay drops every connection, as when it goes down.
    with Relay(drop_at={6}, drop_from=15) as relay:
        ctx = worker_context(batched, platform, relay, fake_gateway, clock)
        await create(ctx, [filed(platform, email=address) for address in addresses])
        assert await delivery.deliver_due(ctx) == 24
        accepted = {str(m["To"]) for m in relay.accepted}
        assert len(relay.accepted) == len(accepted) == 13
        found = await statuses(ctx)
        assert found == {"delivered": 13, "temporary-failure": 11}
        first_round = relay.connections
        assert first_round < 24

        # The relay is back; the retries are due a minute later.
        relay.drop_at.clear()
        relay.drop_from = None
        clock.now = NOW + timedelta(seconds=61)
        assert await delivery.deliver_due(ctx) == 11
        assert relay.connections - first_round <= 4
    for address in addresses:
        assert len(relay.to(address)) == 1, address
    async with batched.acquire() as conn:
        rows = await conn.fetch("SELECT id, status, attempt FROM notifications")
        assert all(r["status"] == "delivered" for r in rows)
        delivered = await conn.fetch(
            "SELECT notification_id, count(*) AS n FROM notification_history WHERE status = 'delivered'"
            " GROUP BY notification_id"
        )
        assert len(delivered) == 24 and all(r["n"] == 1 for r in delivered)
        retried = [r for r in rows if r["attempt"] == 2]
        assert len(retried) == 11
        history = await conn.fetch(
            "SELECT status FROM notification_history WHERE notification_id = $1 ORDER BY id", retried[0]["id"]
        )
        assert [h["status"] for h in history] == [
            "created",
            "sending",
            "temporary-failure",
            "sending",
            "delivered",
        ]


async def test_an_outcome_after_the_lease_was_recovered_is_not_recorded(
    worker: Worker, platform: PlatformSettings
) -> None:
    ctx = worker.ctx
    await create(ctx, filed_complaints(platform, 3))
    claimed = await delivery.claim(ctx, "email")
    assert len(claimed) == 3
    async with ctx.email.session() as session:
        results = await delivery.send(ctx, session, claimed)
    # The worker stalled past its lease: another round has counted the attempt failed.
    worker.clock.now = NOW + ctx.lease + timedelta(seconds=1)
    assert await delivery.recover_expired_leases(ctx) == 3
    await delivery.record(ctx, claimed, results)
    assert await statuses(ctx) == {"temporary-failure": 3}
    assert len(worker.relay.accepted) == 3


async def test_a_round_takes_the_same_few_statements_however_large_the_batch(
    worker: Worker, batched: asyncpg.Pool, platform: PlatformSettings
) -> None:
    ctx = worker.ctx
    counts = []
    for size in (2, 40):
        await create(ctx, filed_complaints(platform, size))
        queries: list[str] = []
        ctx.pool = logging_to(batched, queries)
        assert await delivery.deliver_due(ctx) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert len(worker.relay.accepted) == 42


def logging_to(pool: asyncpg.Pool, queries: list[str]) -> Any:
    """A `Context.pool` whose connections log each statement they run into `queries`."""

    class Acquire:
        def __init__(self) -> None:
            self.inner = pool.acquire()

        async def __aenter__(self) -> asyncpg.Connection:
            self.conn = await self.inner.__aenter__()
            self.conn.add_query_logger(self.log)
            return self.conn

        async def __aexit__(self, *exc: Any) -> None:
            self.conn.remove_query_logger(self.log)
            await self.inner.__aexit__(*exc)

        def log(self, record: Any) -> None:
            if not any(mark in record.query for mark in ASYNCPG_INTROSPECTION):
                queries.append(record.query)

    class Pool:
        def acquire(self) -> Acquire:
            return Acquire()

    return lambda: Pool()


async def test_messages_stored_before_addresses_were_hashed_are_found_by_their_contact(
    worker: Worker, platform: PlatformSettings
) -> None:
    # Start-up gives the messages stored before migration 007 (no address hash) theirs:
    # a citizen's own export finds them by the contact they prove.
    ctx = worker.ctx
    email, other = unique_email(), unique_email()
    await create(ctx, [filed(platform, email=email), filed(platform, email=other)])
    ref, other_ref = ctx.address_ref("email", email), ctx.address_ref("email", other)
    async with ctx.pool().acquire() as conn:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM notifications WHERE address_ref = $1", ref)]
        assert ids
        # As 007 left them; no unsolicited-message hash either (the rule of a status change).
        await conn.execute(
            "UPDATE notifications SET address_ref = NULL, contact_ref = NULL WHERE id = ANY($1::uuid[])", ids
        )
        # One whose address the contact key no longer opens (a key since changed).
        await conn.execute(
            "UPDATE notifications SET address_ref = NULL, address_sealed = 'not-a-token' WHERE address_ref = $1",
            other_ref,
        )
        citizen = Citizen(None, None, (email,), (ref,), proven=True)
        assert (await CitizenMessages(ctx.contact_key).export(conn, citizen))["notifications"] == []

    assert await handlers.backfill_address_refs(ctx) >= len(ids) + 1
    async with ctx.pool().acquire() as conn:
        found = (await CitizenMessages(ctx.contact_key).export(conn, citizen))["notifications"]
        assert {m["id"] for m in found} == set(ids)
        assert all(m["address"] == email for m in found)
        left = await conn.fetchval(
            "SELECT count(*) FROM notifications WHERE recipient_kind = 'citizen' AND address_ref IS NULL"
            " AND address_sealed IS NOT NULL"
        )
        assert left == 0
    assert await handlers.backfill_address_refs(ctx) == 0  # once done, nothing to do
