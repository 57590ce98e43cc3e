"""Phase 1, baselines: the raw broker (produce, consume) and raw PostgreSQL, what the
platform's figures are a share of."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.events import sample_event
from shared.kit.bus import producer_options
from shared.kit.settings import PlatformSettings
from shared.runtime.embedded import create_topics
from shared.runtime.select import Infrastructure
from shared.runtime.topology import DOMAIN_PARTITIONS


async def raw_produce(settings: PlatformSettings, topic: str, n: int) -> dict[str, Any]:
    """Events sent straight from memory through a producer set up as the services' (on
    Apache Kafka the idempotent producer, acks=all): the relay's ceiling."""
    values = [sample_event(i) for i in range(n)]
    keys = [uuid.uuid4().hex.encode() for _ in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **producer_options(settings))
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, v, key=k) for v, k in zip(values, keys, strict=True)]
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return {"events": n, "seconds": seconds, "per_s": n / seconds, "bytes_per_event": len(values[0])}


async def raw_consume(bootstrap: str, topic: str, n: int) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        seen = 0
        started = None
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batch:
                started = time.perf_counter()
            seen += sum(len(r) for r in batch.values())
        seconds = time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
    return {"events": n, "seconds": seconds, "per_s": n / seconds}


async def raw_postgres(url: str, seconds: float, pool_size: int = 10) -> dict[str, Any]:
    pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_a (id bigserial PRIMARY KEY, payload text);"
        "CREATE TABLE IF NOT EXISTS bench_b (id bigserial PRIMARY KEY, payload bytea)"
    )
    payload = sample_event()
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO bench_a (payload) VALUES ($1)", "x" * 300)
                await conn.execute("INSERT INTO bench_b (payload) VALUES ($1)", payload)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(pool_size)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return {"transactions": done, "seconds": elapsed, "per_s": done / elapsed, "pool_size": pool_size}


async def broker_baselines(infra: Infrastructure, n: int) -> dict[str, Any]:
    """Raw produce then raw consume of `n` events on a fresh topic of this broker."""
    topic = f"bench.{uuid.uuid4().hex[:8]}"
    await create_topics(infra.kafka_bootstrap, {topic: DOMAIN_PARTITIONS})
    produce = await raw_produce(platform_settings_for(infra), topic, n)
    return {"produce": produce, "consume": await raw_consume(infra.kafka_bootstrap, topic, n)}


def platform_settings_for(infra: Infrastructure) -> PlatformSettings:
    """The platform settings a service would have on this broker (idempotence included)."""
    return PlatformSettings(kafka_bootstrap=infra.kafka_bootstrap, kafka_idempotence=infra.kafka_idempotence)
