"""Apache Kafka, the production engine, started from its own jars (shared/runtime/
apache_kafka.py): the broker itself, then a service's outbox relay publishing through the
idempotent producer (acks=all), as production runs it. The rest of the suite runs on the
embedded Tansu broker; docs/reliability.md says which behaviour belongs to which broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.complaints.app import ComplaintsSettings, build
from shared.kit.settings import PlatformSettings
from shared.runtime.apache_kafka import ApacheKafka
from shared.runtime.embedded import create_topics
from shared.runtime.select import Infrastructure
from tests.harness import events_of, read_topic, running, wait_for
from tests.integration.test_complaints_service import complaint_body


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    with ApacheKafka(tmp_path_factory.mktemp("apache-kafka")) as broker:
        yield broker


@pytest.fixture
async def topic(kafka: ApacheKafka) -> AsyncIterator[str]:
    name = f"test.{time.monotonic_ns()}"
    await create_topics(kafka.bootstrap, {name: 3})
    yield name


async def test_an_idempotent_producer_with_acks_all_is_read_back_in_order(
    kafka: ApacheKafka, topic: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for i in range(50):
            await producer.send(topic, f"{i}".encode(), key=b"one-aggregate")
        await producer.flush()
    finally:
        await producer.stop()
    records = await read_topic(kafka.bootstrap, topic)
    assert [int(r.value) for r in records] == list(range(50))
    assert len({r.partition for r in records}) == 1  # one key, one partition, in order


async def test_committed_offsets_and_data_survive_a_restart(kafka: ApacheKafka, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    await producer.send_and_wait(topic, b"before", key=b"k")
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap, group_id=f"{topic}-g", auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        first = await consumer.getone()
        await consumer.commit()
    finally:
        await consumer.stop()
    assert first.value == b"before"

    await asyncio.to_thread(kafka.restart)

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    await producer.send_and_wait(topic, b"after", key=b"k")
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap, group_id=f"{topic}-g", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        resumed = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert resumed.value == b"after", "the group resumes after its committed offset, on the data kept"
    assert [r.value for r in await read_topic(kafka.bootstrap, topic)] == [b"before", b"after"]


async def test_a_service_publishes_through_its_outbox_with_the_idempotent_producer(
    kafka: ApacheKafka, infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> None:
    await create_topics(kafka.bootstrap, {"complaints.events": 6})
    on_kafka = platform.model_copy(update={"kafka_bootstrap": kafka.bootstrap, "kafka_idempotence": True})
    app = build(ComplaintsSettings(database_url=fresh_database, platform=on_kafka, sla_check_seconds=3600))
    async with running(app) as client:
        codes = []
        for _ in range(20):
            answer = await client.post("/complaints", json=complaint_body())
            assert answer.status_code == 201, answer.text
            codes.append(answer.json()["tracking_code"])

        async def all_published() -> list | None:
            records = await read_topic(kafka.bootstrap, "complaints.events")
            found = [code for code in codes if events_of(records, tracking_code=code)]
            return found if len(found) == len(codes) else None

        assert await wait_for(all_published, timeout=60) == codes
        assert (await client.get("/ready")).json()["checks"]["broker"] == "up"
    records = await read_topic(kafka.bootstrap, "complaints.events")
    assert len(records) == len(codes), "each event exactly once"
