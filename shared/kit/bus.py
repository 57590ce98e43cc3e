"""The service's connection to the Kafka-protocol broker.

Subscribers run on FastStream's `KafkaBroker` (with its Prometheus middleware). Events
leave through one aiokafka producer owned here: the outbox relay and the dead-letter
path send records that are already serialised CloudEvents, in bulk, so FastStream's
per-message codec and middleware pipeline would only add cost.

Both are started in the background and retried until the broker answers, so the HTTP
API comes up (and keeps taking writes into the outbox) while the broker is away;
`/ready` reports the broker as down meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from murmurhash2 import murmurhash2
from prometheus_client import CollectorRegistry

from shared.kit.settings import PlatformSettings, bootstrap_servers
from shared.schemas import CONTENT_TYPE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]


def producer_options(settings: PlatformSettings) -> dict[str, Any]:
    """How every service's producer publishes (tests/deploy checks compose against it)."""
    return {
        # Apache Kafka: idempotent producer (no duplicates on retry); Tansu lacks it.
        "enable_idempotence": settings.kafka_idempotence,
        # An event counts as published once every in-sync replica has it.
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 15_000,
    }


async def _send_whole(
    producer: AIOKafkaProducer, batch: BatchBuilder, topic: str, partition: int
) -> asyncio.Future[object]:
    """Send a batch the relay has filled: closed, so nothing else is appended to it and
    the producer sends it at once instead of lingering (`linger_ms`) for more records."""
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


class EventBus:
    def __init__(self, settings: PlatformSettings, *, client_id: str, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.client_id = client_id
        self.broker = KafkaBroker(
            bootstrap_servers(settings.kafka_bootstrap),
            client_id=client_id,
            request_timeout_ms=15_000,
            graceful_timeout=20.0,
            middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name=client_id)],
            logger=logging.getLogger("faststream"),
            log_level=logging.DEBUG,
            # Subscribers only: this service publishes through `self.producer`.
            consumer_only=True,
        )
        self.producer: AIOKafkaProducer | None = None
        self.connected = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id=f"{self.client_id}-publisher",
            **producer_options(self.settings),
        )

    def start_in_background(self) -> None:
        self._starter = asyncio.create_task(self._start_until_connected(), name="bus-start")

    async def _start_until_connected(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.connect_publisher()
                await self.broker.start()
            except Exception as exc:
                log.warning(
                    "broker not reachable, retrying",
                    extra={"error": str(exc)[:200], "retry_in_s": delay},
                )
                self.connected.clear()
                await self._stop_clients()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            log.info("broker connected", extra={"bootstrap": self.settings.kafka_bootstrap})
            return

    async def connect_publisher(self) -> None:
        """Connect the producer only (also used alone by maintenance commands such as
        replaying dead letters, which must not start the subscribers)."""
        if self.producer is None:
            producer = self._new_producer()
            await producer.start()
            self.producer = producer
        self.connected.set()

    async def _stop_clients(self) -> None:
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
            self.producer = None

    async def stop(self) -> None:
        """Stop subscribers first (FastStream lets in-flight handlers finish and commit),
        then flush and close the producer."""
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
        self.connected.clear()
        await self._stop_clients()

    async def ping(self, timeout: float = 2.0) -> bool:
        """Whether the broker answers a metadata request now."""
        if self.producer is None:
            return False
        try:
            metadata = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout)
        except Exception:
            return False
        return bool(metadata.brokers())

    async def publish(self, records: Sequence[OutgoingRecord], timeout: float = 15.0) -> list[bool]:
        """Send records and report which were acknowledged.

        Records are grouped per partition (the default Kafka partitioner: murmur2 of the
        key) into producer batches, in their given order; a partition has one request in
        flight at a time, so one key's records arrive in order. Batching by hand rather
        than one `send` per record keeps the relay's cost per event small."""
        producer = self.producer
        if producer is None:
            return [False] * len(records)
        results = [False] * len(records)
        try:
            groups = await self._by_partition(producer, records)
        except Exception as exc:
            log.warning("publish failed", extra={"error": str(exc)[:200]})
            return results
        sent: list[tuple[asyncio.Future[object], list[int]]] = []
        for (topic, partition), indexes in groups.items():
            batch, members = producer.create_batch(), []
            for i in indexes:
                record = records[i]
                headers = [
                    ("content-type", _CONTENT_TYPE),
                    *((k, v.encode()) for k, v in record.headers.items()),
                ]
                key = record.key.encode()
                if batch.append(key=key, value=record.value, timestamp=None, headers=headers) is None:
                    if members:
                        sent.append((await _send_whole(producer, batch, topic, partition), members))
                    batch, members = producer.create_batch(), []
                    if batch.append(key=key, value=record.value, timestamp=None, headers=headers) is None:
                        # Larger than a batch: send it on its own.
                        fut = await producer.send(
                            topic, record.value, key=key, partition=partition, headers=headers
                        )
                        sent.append((fut, [i]))
                        continue
                members.append(i)
            if members:
                sent.append((await _send_whole(producer, batch, topic, partition), members))
        if sent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait([f for f, _ in sent], timeout=timeout)
        for fut, members in sent:
            ok = fut.done() and not fut.cancelled() and fut.exception() is None
            if not fut.done():
                fut.cancel()
            for i in members:
                results[i] = ok
        return results

    async def _by_partition(
        self, producer: AIOKafkaProducer, records: Sequence[OutgoingRecord]
    ) -> dict[tuple[str, int], list[int]]:
        partitions: dict[str, list[int]] = {}
        groups: dict[tuple[str, int], list[int]] = {}
        for i, record in enumerate(records):
            if record.topic not in partitions:
                partitions[record.topic] = sorted(await producer.partitions_for(record.topic))
            all_partitions = partitions[record.topic]
            partition = kafka_partition(record.key.encode(), all_partitions)
            groups.setdefault((record.topic, partition), []).append(i)
        return groups


_CONTENT_TYPE = CONTENT_TYPE.encode()
_MURMUR2_SEED = 0x9747B28C


def kafka_partition(key: bytes, partitions: Sequence[int]) -> int:
    """The partition Kafka's default partitioner picks for `key` (murmur2, positive,
    modulo the partition count), so every producer of a key agrees. aiokafka's own
    murmur2 is pure Python and was a quarter of the relay's time; this one is C."""
    return partitions[(murmurhash2(key, _MURMUR2_SEED) & 0x7FFFFFFF) % len(partitions)]
