"""Re-reading the topics for a rebuild (`handlers.rebuild`): proof that the view is
derived from the events alone.

Once the use case has emptied the read models and the integration consumer's inbox
rows, every subscribed topic is re-read from the beginning up to (at least) the end
offsets taken at that moment, applying each record through the kit's IdempotentConsumer
(the same handler, inbox and dead-letter path as live consumption). The reader has no
consumer group, so the live group's committed offsets are left alone and the live
consumer keeps running: an event both apply is recognised by the inbox, and because
every projection is order-independent the result equals the live view.

On Apache Kafka the domain topics must keep their events (retention.ms=-1, or long
enough) for a rebuild to be complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from shared.kit.consumer import IdempotentConsumer, behind
from shared.kit.reader import assigned_reader

Progress = Callable[[int, int, float], None]  # (applied, total, events per second)


async def reread(
    consumer: IdempotentConsumer, timeout: float, progress: Progress | None
) -> tuple[int, int, bool]:
    """Apply every record of the consumer's topics through it; returns the records
    applied, the partitions read and whether all were read to their end in time."""
    applied = 0
    async with assigned_reader(
        consumer.settings.kafka_bootstrap,
        consumer.topics,
        client_id=f"{consumer.name}-rebuild",
        group_id=None,
        auto_offset_reset="earliest",
    ) as (reader, partitions):
        if not partitions:
            return 0, 0, True
        await reader.seek_to_beginning(*partitions)
        end = await reader.end_offsets(partitions)
        beginning = await reader.beginning_offsets(partitions)
        total = sum(end[tp] - beginning[tp] for tp in partitions)
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await behind(reader, end):
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
