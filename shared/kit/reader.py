"""Reading whole topics by hand: a consumer that assigns itself every partition of some
topics, instead of joining a consumer group's rebalancing.

Why it is in the kit: the integration view's rebuild, the tests' `read_topic` and their
consumer groups positioned at the end of the topics all open such a reader the same way
(metadata loaded first, every partition assigned, auto-commit off, stopped on every
path); one copy keeps those details in one place. The dead-letter replay and `make tail`
open theirs by hand still and may adopt it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


@asynccontextmanager
async def assigned_reader(
    bootstrap: str, topics: Iterable[str], **options: Any
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A started consumer with every partition of `topics` assigned to it (by topic, then
    partition number), and those partitions (none when no topic exists yet). Auto-commit
    is off; `options` go to AIOKafkaConsumer (`group_id` to commit offsets under,
    `client_id`, `auto_offset_reset`). The consumer is stopped when the block ends."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await reader.start()
    try:
        await reader.topics()  # loads metadata for every topic
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        reader.assign(partitions)
        yield reader, partitions
    finally:
        await reader.stop()
