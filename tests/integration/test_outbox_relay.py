"""One relay per service: two instances of a service share one database, and only the
instance holding the relay lock publishes (docs/architecture.md, reliability table).

Two relays run against one outbox while a burst of events for many aggregates is
committed under them. Each event must reach the topic exactly once and each aggregate's
events in commit order. When the active relay stops, the standby takes over and
publishes what is left, still once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.kit.bus import EventBus
from shared.kit.db import create_pool, migrate
from shared.kit.metrics import KitMetrics
from shared.kit.outbox import OutboxRelay, add_events
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from shared.schemas import Envelope
from shared.schemas.complaints import ComplaintProgressUpdated
from tests.events import complaint_event
from tests.harness import db_fetchval, read_topic, wait_for

AGGREGATES = 40


@dataclass
class Relay:
    relay: OutboxRelay
    bus: EventBus
    metrics: KitMetrics
    task: asyncio.Task[None]

    def active(self) -> bool:
        return self.metrics.registry.get_sample_value("sinergi_outbox_relay_active") == 1.0

    async def stop(self) -> None:
        self.relay.stop()
        await asyncio.wait_for(self.task, 20)
        await self.bus.stop()


@contextlib.asynccontextmanager
async def relay(database_url: str, platform: PlatformSettings, name: str) -> AsyncIterator[Relay]:
    metrics = KitMetrics(name)
    bus = EventBus(platform, client_id=name, registry=metrics.registry)
    bus.start_in_background()
    await wait_for(bus.connected.is_set, timeout=30)
    outbox_relay = OutboxRelay(database_url, bus, platform, metrics)
    running = Relay(outbox_relay, bus, metrics, asyncio.create_task(outbox_relay.run()))
    try:
        yield running
    finally:
        if not running.task.done():
            await running.stop()


def progress(aggregate: int, step: int) -> Envelope:
    return complaint_event(
        ComplaintProgressUpdated,
        f"agg-{aggregate}",
        aggregate,
        status="in_progress",
        opd="DPUPR",
        note=f"langkah {step}",
        updated_by="petugas",
    )


async def commit_burst(database_url: str, topic: str, steps: range) -> list[Envelope]:
    """One transaction per step, each adding one event for every aggregate."""
    pool = await create_pool(database_url, max_size=2)
    staged: list[Envelope] = []
    try:
        for step in steps:
            envelopes = [progress(a, step) for a in range(AGGREGATES)]
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, envelopes, topic)
            staged += envelopes
    finally:
        await pool.close()
    return staged


def published(records: list) -> list[tuple[str, str, str]]:
    """(key, event id, progress note) of every record, in offset order per partition."""
    out = []
    for record in records:
        event = json.loads(record.value)
        out.append((record.key.decode(), event["id"], event["data"]["note"]))
    return out


@pytest.fixture
async def outbox_database(fresh_database: str, tmp_path: Path) -> str:
    await migrate(fresh_database, tmp_path)  # the kit's tables only
    return fresh_database


async def test_two_instances_publish_each_event_once_in_order_and_the_standby_takes_over(
    infra: Infrastructure, platform: PlatformSettings, outbox_database: str, fresh_topic: str
) -> None:
    settings = platform.model_copy(update={"outbox_batch_size": 50, "outbox_poll_seconds": 0.2})
    tag = uuid.uuid4().hex[:6]
    async with (
        relay(outbox_database, settings, f"relay-a-{tag}") as a,
        relay(outbox_database, settings, f"relay-b-{tag}") as b,
    ):
        await wait_for(lambda: a.active() or b.active(), timeout=10)
        # Both are up and listening before anything is committed: a second relay that
        # wrongly thought it held the lock would be woken by the same commits.
        await asyncio.sleep(0.5)
        first = await commit_burst(outbox_database, fresh_topic, range(0, 10))
        pending = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        await wait_for(lambda: _zero(outbox_database, pending), timeout=30)
        assert [a.active(), b.active()].count(True) == 1, "exactly one instance holds the relay lock"

        # The active instance stops; the standby takes the lock and publishes the rest.
        active, standby = (a, b) if a.active() else (b, a)
        await active.stop()
        second = await commit_burst(outbox_database, fresh_topic, range(10, 20))
        await wait_for(standby.active, timeout=15)
        await wait_for(lambda: _zero(outbox_database, pending), timeout=30)

    records = published(await read_topic(infra.kafka_bootstrap, fresh_topic, timeout=10))
    ids = [event_id for _, event_id, _ in records]
    staged = first + second
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events published more than once"
    assert set(ids) == {e.id for e in staged}
    for aggregate in range(AGGREGATES):
        notes = [note for key, _, note in records if key == f"agg-{aggregate}"]
        assert notes == [f"langkah {step}" for step in range(20)], f"agg-{aggregate} out of order"


async def _zero(database_url: str, query: str) -> bool:
    return await db_fetchval(database_url, query) == 0
