"""The service's connection to the Kafka-protocol broker, through FastStream.

One `KafkaBroker` per process carries both the outbox relay's publishing and the
service's subscribers. It is started in the background and retried until the broker
answers, so the HTTP API comes up (and keeps taking writes into the outbox) while the
broker is away; `/ready` reports the broker as down meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from shared.kit.settings import PlatformSettings
from shared.schemas import CONTENT_TYPE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: str
    value: bytes
    headers: dict[str, str]


class EventBus:
    def __init__(self, settings: PlatformSettings, *, client_id: str, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=client_id,
            enable_idempotence=settings.kafka_idempotence,
            acks="all",
            linger_ms=5,
            request_timeout_ms=15_000,
            max_batch_size=256 * 1024,
            graceful_timeout=20.0,
            middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name=client_id)],
            logger=logging.getLogger("faststream"),
            log_level=logging.DEBUG,
        )
        self.connected = asyncio.Event()
        self._starter: asyncio.Task[None] | None = None

    def start_in_background(self) -> None:
        self._starter = asyncio.create_task(self._start_until_connected(), name="bus-start")

    async def _start_until_connected(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.broker.start()
            except Exception as exc:
                log.warning(
                    "broker not reachable, retrying",
                    extra={"error": str(exc)[:200], "retry_in_s": delay},
                )
                with contextlib.suppress(Exception):
                    await self.broker.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.connected.set()
            log.info("broker connected", extra={"bootstrap": self.settings.kafka_bootstrap})
            return

    async def connect_publisher(self) -> None:
        """Connect for publishing only, without starting the subscribers (maintenance
        commands such as replaying dead letters)."""
        await self.broker.connect()
        self.connected.set()

    async def stop(self) -> None:
        if self._starter is not None and not self._starter.done():
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
        with contextlib.suppress(Exception):
            await self.broker.stop()

    async def ping(self, timeout: float = 2.0) -> bool:
        if not self.connected.is_set():
            return False
        try:
            return bool(await self.broker.ping(timeout=timeout))
        except Exception:
            return False

    async def publish(self, records: Sequence[OutgoingRecord], timeout: float = 15.0) -> list[bool]:
        """Send records concurrently (the producer batches them per partition) and
        report which were acknowledged. Order within a key is kept by the producer:
        one partition, one in-flight batch."""
        futures: list[asyncio.Future[object] | None] = []
        for record in records:
            try:
                fut = await self.broker.publish(
                    record.value,
                    record.topic,
                    key=record.key.encode(),
                    headers={"content-type": CONTENT_TYPE, **record.headers},
                    correlation_id=record.headers.get("correlation_id"),
                    no_confirm=True,
                )
                futures.append(fut)
            except Exception as exc:
                log.warning("publish failed", extra={"error": str(exc)[:200]})
                futures.append(None)
        results: list[bool] = []
        pending = [f for f in futures if f is not None]
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(pending, timeout=timeout)
        for fut in futures:
            ok = fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None
            if fut is not None and not fut.done():
                fut.cancel()
            results.append(ok)
        return results
