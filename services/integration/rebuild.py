"""Rebuild the read models from the topics: proof that the view is derived from the
events alone.

Empties the read models and the integration consumer's inbox rows in one transaction,
then re-reads every subscribed topic from the beginning up to (at least) the end
offsets taken at that moment, applying each record through the kit's IdempotentConsumer (the same
handler, inbox and dead-letter path as live consumption). The reader has no consumer
group, so the live group's committed offsets are left alone and the live consumer keeps
running: an event both apply is recognised by the inbox, and because every projection
is order-independent the result equals the live view.

On Apache Kafka the domain topics must keep their events (retention.ms=-1, or long
enough) for a rebuild to be complete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.integration.handlers import Context
from services.integration.repository import REBUILD_LOCK, ReadModel
from shared.kit.consumer import IdempotentConsumer
from shared.kit.errors import Conflict

log = logging.getLogger(__name__)


async def rebuild(
    consumer: IdempotentConsumer,
    ctx: Context,
    *,
    timeout: float = 600.0,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Rebuild; `progress(applied, total, events_per_s)` is called as batches apply."""
    if ctx.rebuild_lock.locked():
        raise Conflict("a rebuild is already running")
    async with ctx.rebuild_lock, consumer.pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_LOCK):
            raise Conflict("a rebuild is already running (another instance)")
        ctx.rebuilding = True
        started = time.monotonic()
        try:
            async with consumer.pool.acquire() as conn, conn.transaction():
                await ReadModel(conn).reset(consumer.name)
            applied, partitions, complete = await _reread(consumer, timeout, progress)
        finally:
            ctx.rebuilding = False
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", REBUILD_LOCK)
    result = {
        "consumer": consumer.name,
        "topics": consumer.topics,
        "partitions": partitions,
        "records": applied,
        "complete": complete,
        "seconds": round(time.monotonic() - started, 3),
    }
    result["events_per_s"] = round(applied / result["seconds"], 1) if result["seconds"] else None
    log.info("read models rebuilt", extra=result)
    return result


async def _reread(
    consumer: IdempotentConsumer, timeout: float, progress: Callable[[int, int, float], None] | None
) -> tuple[int, int, bool]:
    reader = AIOKafkaConsumer(
        bootstrap_servers=consumer.settings.kafka_bootstrap,
        client_id=f"{consumer.name}-rebuild",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await reader.start()
    applied = 0
    try:
        await reader.topics()  # loads metadata for every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in consumer.topics
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return 0, 0, True
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        beginning = await reader.beginning_offsets(partitions)
        total = sum(end[tp] - beginning[tp] for tp in partitions)
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await _behind(reader, end):
            if loop.time() > deadline:
                return applied, len(partitions), False
            batch = await reader.getmany(timeout_ms=500, max_records=500)
            for tp, records in batch.items():
                # Every fetched record is applied, also past the end offset: a later one is
                # a live event the inbox recognises either way, and the embedded broker
                # (Tansu) reports a high watermark short of a multi-record batch's last
                # record, so filtering on it would lose events.
                # One transaction per batch (the kit falls back to one per record if a
                # handler fails), as live consumption does.
                await consumer.process_batch(records)
                applied += len(records)
                if progress is not None:
                    progress(applied, total, applied / max(time.monotonic() - started, 1e-6))
                if await reader.position(tp) >= end[tp]:
                    reader.pause(tp)  # what follows is the live consumer's
        return applied, len(partitions), True
    finally:
        await reader.stop()


async def _behind(reader: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for tp, offset in end.items():
        if await reader.position(tp) < offset:
            return True
    return False
