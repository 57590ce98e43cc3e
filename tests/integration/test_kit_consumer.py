"""The kit's idempotent consumer, retries and dead letters, on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared.kit.bus import EventBus
from shared.kit.consumer import (
    IdempotentConsumer,
    LetterChoice,
    dead_letter_topic,
    list_dead_letters,
    replay_chosen_letters,
    replay_dead_letters,
)
from shared.kit.db import create_pool, migrate
from shared.kit.metrics import KitMetrics
from shared.kit.settings import PlatformSettings
from shared.kit.watchdog import ConsumerWatchdog
from shared.runtime.embedded import create_topics
from shared.runtime.select import Infrastructure
from shared.schemas import Envelope, ParsedEvent
from shared.schemas.complaints import ComplaintVerified
from tests.events import complaint_event
from tests.harness import db_fetch, read_topic, wait_for


@dataclass
class KitHarness:
    name: str
    topic: str
    database: str
    consumer: IdempotentConsumer
    metrics: KitMetrics
    producer: AIOKafkaProducer
    failing: set[str] = field(default_factory=set)
    batches: list[int] | None = None  # sizes of the batches the batch handler applied
    restart: Callable[[], Awaitable[None]] | None = None
    unavailable: set[str] = field(default_factory=set)

    async def send(self, envelope: Envelope | None = None, raw: bytes | None = None, key: str = "k") -> None:
        value = envelope.to_kafka().value if envelope is not None else raw
        await self.producer.send_and_wait(self.topic, value, key=key.encode())

    async def effects(self) -> list[str]:
        rows = await db_fetch(self.database, "SELECT event_id FROM effects ORDER BY id")
        return [r["event_id"] for r in rows]

    def sample(self) -> float:
        return (
            self.metrics.registry.get_sample_value(
                "sinergi_inbox_duplicates_skipped_total", {"consumer": self.name}
            )
            or 0.0
        )


async def _with_effects(database: str, folder: Path) -> None:
    """The test handlers' one table (each effect an event id), migrated into `database`."""
    (folder / "001_effects.sql").write_text(
        "CREATE TABLE effects (id bigserial PRIMARY KEY, event_id text NOT NULL)"
    )
    await migrate(database, folder)


def event(n: int = 0) -> Envelope:
    return complaint_event(
        ComplaintVerified,
        f"c{n}",
        n,
        status="verified",
        category="sampah",
        dimension="environment",
        verified_by="koordinator",
    )


@pytest.fixture(params=["per_event", "batch"])
async def kit(
    request: pytest.FixtureRequest,
    infra: Infrastructure,
    platform: PlatformSettings,
    fresh_database: str,
    fresh_topic: str,
    tmp_path: Path,
) -> AsyncIterator[KitHarness]:
    """The same consumer with a per-event handler only, and with a set-based batch
    handler as well (whose failure must fall back to the per-event path)."""
    await _with_effects(fresh_database, tmp_path)
    pool = await create_pool(fresh_database)
    name = f"kit-test-{uuid.uuid4().hex[:8]}"
    await create_topics(infra.kafka_bootstrap, {dead_letter_topic(name): 1})
    metrics = KitMetrics(name)
    bus = EventBus(platform, client_id=name, registry=metrics.registry)
    failing: set[str] = set()
    unavailable: set[str] = set()  # the database "drops" once while applying these

    def outage(event_ids: list[str]) -> None:
        for event_id in event_ids:
            if event_id in unavailable:
                unavailable.discard(event_id)
                raise ConnectionResetError("connection to the database lost")

    async def handler(conn: asyncpg.Connection, parsed: ParsedEvent) -> None:
        await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", parsed.envelope.id)
        outage([parsed.envelope.id])
        if parsed.envelope.id in failing:
            # Quoting what it failed on, as errors do: none of it may reach the dead letter.
            raise RuntimeError("handler cannot apply this event: reporter 'Budi Santoso', 081234567890")

    batches: list[int] = []

    async def batch_handler(conn: asyncpg.Connection, events: Sequence[ParsedEvent]) -> None:
        await conn.executemany(
            "INSERT INTO effects (event_id) VALUES ($1)", [(e.envelope.id,) for e in events]
        )
        outage([e.envelope.id for e in events])
        if any(e.envelope.id in failing for e in events):
            raise RuntimeError("handler cannot apply this batch")
        batches.append(len(events))

    def consumer_on(bus: EventBus, metrics: KitMetrics) -> IdempotentConsumer:
        return IdempotentConsumer(
            name,
            [fresh_topic],
            handler,
            pool=lambda: pool,
            bus=bus,
            settings=platform,
            metrics=metrics,
            batch_handler=batch_handler if request.param == "batch" else None,
        )

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    harness = KitHarness(
        name,
        fresh_topic,
        fresh_database,
        consumer_on(bus, metrics),
        metrics,
        producer,
        failing,
        batches if request.param == "batch" else None,
    )
    buses = [bus]

    async def restart() -> None:
        """Stop the consumer and start a new one in the same group on the same database,
        as a restarted process would (fresh metrics, nothing remembered in memory)."""
        await buses[-1].stop()
        harness.metrics = KitMetrics(name)
        buses.append(EventBus(platform, client_id=name, registry=harness.metrics.registry))
        harness.consumer = consumer_on(buses[-1], harness.metrics)
        buses[-1].start_in_background()
        await wait_for(buses[-1].connected.is_set, timeout=30)

    harness.restart = restart
    harness.unavailable = unavailable
    bus.start_in_background()
    await wait_for(bus.connected.is_set, timeout=30)
    try:
        yield harness
    finally:
        await producer.stop()
        await buses[-1].stop()
        await pool.close()


async def test_an_event_delivered_twice_takes_effect_once(kit: KitHarness) -> None:
    first, second = event(1), event(2)
    await kit.send(first)
    await kit.send(first)  # redelivery: same event id
    await kit.send(second)
    await wait_for(lambda: _count(kit, 2), timeout=30)
    await wait_for(lambda: kit.sample() >= 1, timeout=10)
    assert await kit.effects() == [first.id, second.id]
    assert kit.sample() == 1.0
    lags = [
        sample.value
        for metric in kit.metrics.registry.collect()
        if metric.name == "sinergi_consumer_lag_messages"
        for sample in metric.samples
        if sample.labels["topic"] == kit.topic
    ]
    assert lags and all(lag == 0 for lag in lags)  # caught up, and reported per partition
    inbox = await db_fetch(kit.database, "SELECT consumer, event_id FROM inbox")
    assert sorted((r["consumer"], r["event_id"]) for r in inbox) == sorted(
        [(kit.name, first.id), (kit.name, second.id)]
    )
    if kit.batches is not None:
        assert sum(kit.batches) == 2  # both fresh events went through the batch handler
    # Batch sizes as delivered: all three records (the redelivery too), in one to three batches.
    consumer = {"consumer": kit.name}
    sample = kit.metrics.registry.get_sample_value
    assert sample("sinergi_consumer_batch_records_sum", consumer) == 3
    assert 1 <= (sample("sinergi_consumer_batch_records_count", consumer) or 0) <= 3
    # Each record's delay from publishing to applied (the view-freshness SLO's measure).
    assert sample("sinergi_consumer_delay_seconds_count", consumer) == 3


async def test_a_duplicate_in_a_later_batch_or_after_a_restart_takes_no_effect(kit: KitHarness) -> None:
    """The inbox, not the batch, recognises a redelivery: the original's batch has
    committed (and its offsets) before the copy arrives; then the consumer restarts."""
    first, marker, after_restart = event(11), event(12), event(13)
    await kit.send(first)
    await wait_for(lambda: _count(kit, 1), timeout=30)
    await kit.send(first)  # a later batch
    await kit.send(marker)
    await wait_for(lambda: _count(kit, 2), timeout=30)
    await wait_for(lambda: kit.sample() >= 1, timeout=10)
    assert await kit.effects() == [first.id, marker.id]

    # The record-by-record path (a failed batch's fallback, dead-letter replay) as well.
    copy = ConsumerRecord(kit.topic, 0, 0, 0, 0, b"k", first.to_kafka().value, None, 0, 0, ())
    await kit.consumer.process(copy)
    assert await kit.effects() == [first.id, marker.id]

    assert kit.restart is not None
    await kit.restart()
    await kit.send(first)
    await kit.send(marker)
    await kit.send(after_restart)
    await wait_for(lambda: _count(kit, 3), timeout=30)
    await wait_for(lambda: kit.sample() >= 2, timeout=10)
    assert await kit.effects() == [first.id, marker.id, after_restart.id]


async def test_a_database_outage_mid_batch_rewinds_it_and_the_event_is_applied_once(
    kit: KitHarness, infra: Infrastructure
) -> None:
    """Offsets are committed only after the batch's effects: a batch whose transaction
    fails for the database's sake is fetched again, not skipped, and not dead-lettered."""
    lost, after = event(21), event(22)
    kit.unavailable.add(lost.id)
    await kit.send(lost)
    await wait_for(lambda: not kit.unavailable, timeout=30)  # the outage happened
    await kit.send(after)
    await wait_for(lambda: _count(kit, 2), timeout=30)
    assert await kit.effects() == [lost.id, after.id]
    assert await read_topic(infra.kafka_bootstrap, dead_letter_topic(kit.name)) == []


async def test_a_failing_handler_dead_letters_and_the_partition_keeps_flowing(
    kit: KitHarness, infra: Infrastructure
) -> None:
    bad, good = event(3), event(4)
    kit.failing.add(bad.id)
    await kit.send(bad, key="same-key")
    await kit.send(raw=b"{this is not json", key="same-key")
    await kit.send(good, key="same-key")  # same partition, behind both poison messages
    await wait_for(lambda: _count(kit, 1), timeout=30)
    assert await kit.effects() == [good.id]  # the failing handler's writes were rolled back

    letters = await wait_for(lambda: _letters(infra, kit, 2), timeout=20)
    reasons = {dict(r.headers)["x-dlq-reason"].decode() for r in letters}
    assert reasons == {"handler_error", "invalid_cloudevent"}
    handler_letter = next(r for r in letters if dict(r.headers)["x-dlq-reason"] == b"handler_error")
    headers = dict(handler_letter.headers)
    assert headers["x-dlq-original-topic"].decode() == kit.topic
    assert headers["x-dlq-attempts"] == b"3"
    assert b"handler cannot apply this event" in headers["x-dlq-error"]
    assert b"Budi" not in headers["x-dlq-error"] and b"081234567890" not in headers["x-dlq-error"]
    assert handler_letter.value == bad.to_kafka().value
    assert (
        kit.metrics.registry.get_sample_value(
            "sinergi_dead_letters_total", {"consumer": kit.name, "reason": "handler_error"}
        )
        == 1.0
    )

    # After the fix, replaying the dead letters applies the event once; the invalid JSON
    # is still invalid and becomes a dead letter again rather than being lost.
    kit.failing.clear()
    replayed = await replay_dead_letters(kit.consumer)
    assert replayed == 2
    assert await kit.effects() == [good.id, bad.id]
    assert await replay_dead_letters(kit.consumer) == 1  # only the re-dead-lettered JSON
    assert await kit.effects() == [good.id, bad.id]


async def test_an_operator_lists_dead_letters_and_replays_one_or_a_reason(
    kit: KitHarness, infra: Infrastructure
) -> None:
    first, second = event(5), event(6)
    kit.failing.update({first.id, second.id})
    await kit.send(first, key="one")
    await kit.send(second, key="two")
    await kit.send(raw=b"{this is not json", key="three")
    await _letters_of(kit, 3)

    letters = await list_dead_letters(kit.consumer)
    assert len(letters) == 3 and not any(letter["applied"] for letter in letters)
    by_event = {letter["event_id"]: letter for letter in letters}
    assert by_event[first.id]["event_type"] == first.type and by_event[first.id]["subject"] == first.subject
    assert by_event[first.id]["tracking_code"] == first.data["tracking_code"]
    assert by_event[first.id]["reason"] == "handler_error" and by_event[first.id]["topic"] == kit.topic
    assert by_event[None]["reason"] == "invalid_cloudevent" and by_event[None]["event_type"] is None
    # What the operator sees never holds the event's data.
    assert all("data" not in letter and "value" not in letter for letter in letters)

    # One letter: only its event is applied.
    kit.failing.clear()
    one = by_event[first.id]
    assert (
        await replay_chosen_letters(
            kit.consumer, LetterChoice(partition=one["partition"], offset=one["offset"])
        )
        == 1
    )  # type: ignore[arg-type]
    assert await kit.effects() == [first.id]
    applied = {letter["event_id"]: letter["applied"] for letter in await list_dead_letters(kit.consumer)}
    assert applied == {first.id: True, second.id: False, None: False}
    # One reason: the other handler error only (the first is applied already).
    assert await replay_chosen_letters(kit.consumer, LetterChoice(reason="handler_error")) == 1
    assert sorted(await kit.effects()) == sorted([first.id, second.id])
    assert len(await list_dead_letters(kit.consumer)) == 3  # the invalid JSON was left alone


async def _letters_of(kit: KitHarness, n: int) -> None:
    async def enough() -> bool:
        return len(await list_dead_letters(kit.consumer)) >= n

    await wait_for(enough, timeout=30)


async def test_a_consumer_that_stops_fetching_is_restarted_by_the_watchdog(
    kit: KitHarness, platform: PlatformSettings
) -> None:
    """A member alive in its group that gets nothing while records wait (as after a lone
    Apache Kafka broker's crash: docs/reliability.md, finding 9) is declared stalled and
    restarted; the waiting event is then applied, once. Idle, it is left alone."""
    first, waiting = event(21), event(22)
    await kit.send(first)
    await wait_for(lambda: _count(kit, 1), timeout=30)
    stuck = kit.consumer.subscriber.consumer
    assert stuck is not None
    stuck.pause(*stuck.assignment())  # still in its group, heartbeating, fetching nothing
    await kit.send(waiting)
    settings = platform.model_copy(update={"consumer_stall_seconds": 1.0})
    watchdog = ConsumerWatchdog([kit.consumer], settings, kit.metrics, kit.consumer.bus.ping)
    restarts = {"group": kit.name, "reason": "no_progress"}

    async def restarted() -> bool:
        await watchdog.check()
        return kit.metrics.registry.get_sample_value("sinergi_consumer_restarts_total", restarts) == 1

    try:
        assert kit.metrics.registry.get_sample_value("sinergi_consumer_restarts_total", restarts) == 0
        await wait_for(restarted, timeout=60, interval=0.5)
        assert kit.consumer.subscriber.consumer is not stuck  # a new member of the group
        await wait_for(lambda: _count(kit, 2), timeout=30)
        for _ in range(4):  # caught up and idle for longer than the limit: not stalled
            await watchdog.check()
            await asyncio.sleep(0.5)
    finally:
        await watchdog.close()
    assert await kit.effects() == [first.id, waiting.id]
    assert kit.metrics.registry.get_sample_value("sinergi_consumer_restarts_total", restarts) == 1


async def test_an_instance_without_partitions_is_not_restarted_for_its_groups_backlog(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str, tmp_path: Path
) -> None:
    """Two instances of one group on a one-partition topic: one holds the partition, the
    other has nothing to consume. While the holder leaves a backlog, the watchdog
    restarts the holder and never the idle instance: it judges each instance by the
    partitions assigned to it, not by its group's."""
    await _with_effects(fresh_database, tmp_path)
    pool = await create_pool(fresh_database)
    name, topic = f"kit-test-{uuid.uuid4().hex[:8]}", f"test.{uuid.uuid4().hex[:10]}"
    await create_topics(infra.kafka_bootstrap, {topic: 1, dead_letter_topic(name): 1})

    async def handler(conn: asyncpg.Connection, parsed: ParsedEvent) -> None:
        await conn.execute("INSERT INTO effects (event_id) VALUES ($1)", parsed.envelope.id)

    instances: list[IdempotentConsumer] = []
    for n in range(2):
        metrics = KitMetrics(name)
        bus = EventBus(platform, client_id=f"{name}-{n}", registry=metrics.registry)
        instances.append(
            IdempotentConsumer(
                name, [topic], handler, pool=lambda: pool, bus=bus, settings=platform, metrics=metrics
            )
        )
        bus.start_in_background()
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    settings = platform.model_copy(update={"consumer_stall_seconds": 1.0})
    watchdogs: list[ConsumerWatchdog] = []
    try:
        holder, idle = await wait_for(lambda: _one_holds_the_partition(instances), timeout=60, interval=0.2)
        holding = holder.subscriber.consumer
        assert holding is not None
        holding.pause(*holding.assignment())  # in its group, heartbeating, fetching nothing
        waiting = [event(31), event(32), event(33)]
        for envelope in waiting:
            await producer.send_and_wait(topic, envelope.to_kafka().value, key=b"k")
        # One watchdog each; the idle one is asked first at every round, so without the
        # rule it would have been restarted by the round that restarts the holder.
        watchdogs = [ConsumerWatchdog([c], settings, c.metrics, c.bus.ping) for c in (idle, holder)]

        async def holder_restarted() -> bool:
            for watchdog in watchdogs:
                await watchdog.check()
            assert _restarts(idle) == 0, "the idle instance was restarted for a backlog it does not hold"
            return _restarts(holder) == 1

        await wait_for(holder_restarted, timeout=60, interval=0.5)

        async def applied() -> list[str] | None:
            rows = await db_fetch(fresh_database, "SELECT event_id FROM effects ORDER BY id")
            return [r["event_id"] for r in rows] if len(rows) >= len(waiting) else None

        assert await wait_for(applied, timeout=60) == [e.id for e in waiting]  # once each
    finally:
        for watchdog in watchdogs:
            await watchdog.close()
        await producer.stop()
        for instance in instances:
            await instance.bus.stop()
        await pool.close()


def _restarts(consumer: IdempotentConsumer) -> float:
    """How often the watchdog restarted `consumer`, whatever the reason."""
    return sum(
        sample.value
        for metric in consumer.metrics.registry.collect()
        if metric.name == "sinergi_consumer_restarts"
        for sample in metric.samples
        if sample.name == "sinergi_consumer_restarts_total"
    )


def _one_holds_the_partition(
    instances: list[IdempotentConsumer],
) -> tuple[IdempotentConsumer, IdempotentConsumer] | None:
    """(holder, idle) once both instances are members of the same generation of their
    group (the rebalance that took in the second is over) and exactly one holds the
    partition; None before. The generation is aiokafka's own (no public accessor)."""
    members = [instance.subscriber.consumer for instance in instances]
    if any(member is None for member in members):
        return None
    generations = {member._coordinator.generation for member in members}  # type: ignore[union-attr]
    if len(generations) != 1 or min(generations) < 0:  # -1: not joined yet
        return None
    holding = [instance for instance, member in zip(instances, members, strict=True) if member.assignment()]  # type: ignore[union-attr]
    if len(holding) != 1:
        return None
    return holding[0], next(instance for instance in instances if instance is not holding[0])


async def _count(kit: KitHarness, n: int) -> bool:
    return len(await kit.effects()) >= n


async def _letters(infra: Infrastructure, kit: KitHarness, n: int) -> list | None:
    records = await read_topic(infra.kafka_bootstrap, dead_letter_topic(kit.name))
    return records if len(records) >= n else None
