"""Noticing a consumer that has stopped consuming, and restarting it.

A consumer group member can end up alive but idle: in its group, heartbeating, yet
delivering nothing although its partitions hold new records (reported against aiokafka
after a broker restart, aio-libs/aiokafka#1037; the case suspected here turned out to be
the test's: docs/reliability.md, finding 9). No error reaches the service, so nothing
else would notice. The watchdog asks the broker every few seconds whether each consumer's
partitions hold records past the group's committed offsets; when they have for longer
than `SINERGI_CONSUMER_STALL_SECONDS` and no batch reached the consumer meanwhile, it
logs the stall once, counts it in `sinergi_consumer_restarts_total{group,reason}` and
restarts the subscriber (FastStream's stop, then start: a new aiokafka consumer that
joins the group afresh). Nothing is lost or applied twice: offsets are committed only
after a batch's transaction, so the new member resumes at the last committed offset and
the inbox skips anything delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.kit.consumer import IdempotentConsumer
from shared.kit.metrics import KitMetrics
from shared.kit.settings import PlatformSettings

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0  # how often each consumer's partitions are compared with the broker's
ASK_TIMEOUT = 5.0  # one question to the broker (end offsets, committed offsets)
# Why a consumer was restarted: it had partitions and received nothing from them. (An
# instance with no partitions is never judged: a group may have more instances than
# partitions, and the backlog then belongs to the members that hold them.)
REASONS = ("no_progress",)


@dataclass(frozen=True)
class Watched:
    """What the watchdog knows of one consumer at one check (monotonic seconds)."""

    # Since when its partitions have held records past the committed offsets, without a
    # break; None when they hold none (or the broker could not be asked).
    waiting_since: float | None
    # When a batch last reached the consumer's handler (its start if none has yet).
    delivered_at: float
    # A batch is in the handler now (a slow database is not a stalled consumer).
    busy: bool


def stalled(watched: Watched, now: float, limit: float) -> bool:
    """Whether the consumer has had records to consume for longer than `limit` seconds
    without a batch reaching it. Idle with nothing to read is not stalled, nor is a
    consumer whose batch is still being applied."""
    if watched.busy or watched.waiting_since is None:
        return False
    return now - max(watched.waiting_since, watched.delivered_at) > limit


class ConsumerWatchdog:
    """Watches every idempotent consumer of a service (`check`, run periodically by the
    app) and restarts a stalled one; `stalled_groups` feeds the readiness answer."""

    def __init__(
        self,
        consumers: Sequence[IdempotentConsumer],
        settings: PlatformSettings,
        metrics: KitMetrics,
        broker_answers: Callable[[], Awaitable[bool]],
    ) -> None:
        self.consumers = list(consumers)
        self.settings = settings
        self.broker_answers = broker_answers
        self.restarts = metrics.consumer_restarts
        for consumer in self.consumers:  # at 0 from the start, so the alert sees a first restart
            for reason in REASONS:
                self.restarts.labels(consumer.name, reason)
        self._waiting_since: dict[str, float] = {}
        self.stalled_groups: set[str] = set()
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> None:
        for consumer in self.consumers:
            try:
                await self._check(consumer)
            except Exception as exc:  # the next check tries again
                log.warning(
                    "consumer watchdog check failed",
                    extra={"consumer": consumer.name, "error": repr(exc)[:300]},
                )

    async def _check(self, consumer: IdempotentConsumer) -> None:
        kafka = consumer.subscriber.consumer
        if kafka is None:  # not started yet (the broker is away) or being restarted
            self._waiting_since.pop(consumer.name, None)
            return
        now = time.monotonic()
        assigned = kafka.assignment()
        if await self._waiting(consumer, kafka, assigned):
            self._waiting_since.setdefault(consumer.name, now)
        else:
            self._waiting_since.pop(consumer.name, None)
        watched = Watched(self._waiting_since.get(consumer.name), consumer.delivered_at, consumer.busy)
        if not stalled(watched, now, self.settings.consumer_stall_seconds):
            self.stalled_groups.discard(consumer.name)
            return
        reason = REASONS[0]
        self.stalled_groups.add(consumer.name)
        self.restarts.labels(consumer.name, reason).inc()
        log.error(
            "consumer stalled: its partitions hold records it has not consumed, restarting it",
            extra={
                "consumer": consumer.name,
                "reason": reason,
                "stalled_for_s": round(now - max(watched.delivered_at, watched.waiting_since or now), 1),
                "partitions": len(assigned),
            },
        )
        self._waiting_since.pop(consumer.name, None)
        await consumer.restart()
        self.stalled_groups.discard(consumer.name)

    async def _waiting(
        self, consumer: IdempotentConsumer, kafka: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> bool:
        """Whether the broker holds records past the group's committed offsets on the
        partitions assigned to this member, and only those: an instance without any is
        idle, whatever the group's backlog (another member holds it). A broker that does
        not answer is waited out, not restarted against."""
        partitions = sorted(assigned)
        if not partitions or not await self.broker_answers():
            return False
        try:
            ends = await asyncio.wait_for(kafka.end_offsets(partitions), ASK_TIMEOUT)
            admin = await self._admin_client()
            committed = await asyncio.wait_for(
                admin.list_consumer_group_offsets(consumer.name, partitions=partitions), ASK_TIMEOUT
            )
        except Exception as exc:
            # Not known is not behind: a restart is decided on what the broker said only.
            await self._close_admin()  # reopened at the next check
            log.warning(
                "consumer watchdog could not compare offsets",
                extra={"consumer": consumer.name, "error": repr(exc)[:200]},
            )
            return False
        # A partition the group never committed on (offset -1) waits from its start.
        done = {tp: max(offset.offset, 0) for tp, offset in committed.items()}
        return any(end > done.get(tp, 0) for tp, end in ends.items())

    async def _admin_client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap, request_timeout_ms=int(ASK_TIMEOUT * 1000)
            )
            await admin.start()
            self._admin = admin
        return self._admin

    async def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()

    async def close(self) -> None:
        await self._close_admin()
