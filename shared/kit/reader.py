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
from aiokafka.admin import AIOKafkaAdminClient


async def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics` (by topic, then number); none of a topic that does not
    exist. Asked of the cluster's metadata for those topics: a consumer's own metadata
    cache holds only what it subscribed to (Apache Kafka answers a consumer's first
    metadata request with no topic at all; the embedded Tansu broker with every one)."""
    topics = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    numbers = {
        t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described if not t["error_code"]
    }
    return [TopicPartition(topic, n) for topic in topics for n in numbers.get(topic, ())]


@asynccontextmanager
async def assigned_reader(
    bootstrap: str, topics: Iterable[str], **options: Any
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A started consumer with every partition of `topics` assigned to it (by topic, then
    partition number), and those partitions (none when no topic exists yet). Auto-commit
    is off; `options` go to AIOKafkaConsumer (`group_id` to commit offsets under,
    `client_id`, `auto_offset_reset`). The consumer is stopped when the block ends."""
    topics = list(topics)
    partitions = await partitions_of(bootstrap, topics)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await reader.start()
    try:
        reader.assign(partitions)
        yield reader, partitions
    finally:
        await reader.stop()
