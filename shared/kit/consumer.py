"""Idempotent consumer with retries and dead letters.

A consumer group reads batches through FastStream with offsets committed only after
the batch's effects have committed (`AckPolicy.NACK_ON_ERROR`, never FastStream's
default at-most-once). A batch is applied in one PostgreSQL transaction that first
records (consumer, event id) of every record in the inbox, so a redelivered event is
skipped; if the batch fails it is applied record by record, each in its own
transaction, so only the bad record is retried and dead-lettered.

A record that cannot be parsed, or whose handler keeps failing after the configured
attempts, is copied to the consumer's dead-letter topic with the reason in headers and
the partition moves on. A database outage is not the message's fault: the batch is
rewound and retried, nothing goes to dead letters for it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import Link, SpanKind

from shared.kit import tracing
from shared.kit.bus import EventBus, OutgoingRecord
from shared.kit.logs import ERROR_TEXT_LIMIT, describe_error, event_context
from shared.kit.metrics import KitMetrics
from shared.kit.reader import assigned_reader
from shared.kit.settings import PlatformSettings
from shared.runtime.topology import dead_letter_topic
from shared.schemas import EventRejected, ParsedEvent, parse_record

log = logging.getLogger(__name__)

EventHandler = Callable[[asyncpg.Connection, ParsedEvent], Awaitable[None]]
# Applies several fresh events (in delivery order) in one go: a read model or a fan-out
# that works set-based saves a round trip per event.
BatchHandler = Callable[[asyncpg.Connection, Sequence[ParsedEvent]], Awaitable[None]]

# Errors that mean "the database is unavailable", not "this message is bad".
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


FETCH_BYTES_PER_PARTITION = 256 * 1024  # a few hundred events; > one batch per fetch
FETCH_BYTES = 2 * 1024 * 1024
MAX_LINKS = 128  # a batch span's links to its events' traces (the SDK's default limit)


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord
    reason: str
    error: str
    attempts: int


class IdempotentConsumer:
    def __init__(
        self,
        name: str,
        topics: Iterable[str],
        handler: EventHandler,
        *,
        pool: Callable[[], asyncpg.Pool],
        bus: EventBus,
        settings: PlatformSettings,
        metrics: KitMetrics,
        max_records: int = 500,
        skip_unknown_types: bool = False,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        self.handler = handler
        # Used for whole batches when given; `handler` still applies single records
        # (the record-by-record fallback and dead-letter replay), so both must agree.
        self.batch_handler = batch_handler
        self._pool = pool
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self.max_records = max_records
        # A read model must not be broken by tomorrow's producers: it may count and
        # skip event types it does not know instead of dead-lettering them.
        self.skip_unknown_types = skip_unknown_types
        self.subscriber = bus.broker.subscriber(
            *self.topics,
            group_id=name,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=100,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=settings.consumer_heartbeat_ms,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            # Bounded read-ahead: a consumer far behind (a rebuild, a backlog) would
            # otherwise buffer up to 50 MB of records it has not processed yet.
            max_partition_fetch_bytes=FETCH_BYTES_PER_PARTITION,
            fetch_max_bytes=FETCH_BYTES,
            decoder=_raw,
            title=f"{name} idempotent consumer",
        )
        self.subscriber(self._on_batch)
        # What the watchdog (shared/kit/watchdog.py) reads: when a batch last reached
        # the handler (monotonic; the start until one has), and whether one is in it now.
        self.delivered_at = time.monotonic()
        self.busy = False

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    async def _on_batch(self, msg: KafkaMessage) -> None:
        raw = msg.raw_message
        records: tuple[ConsumerRecord, ...] = raw if isinstance(raw, tuple) else (raw,)
        self.delivered_at, self.busy = time.monotonic(), True
        try:
            await self.process_batch(records)
        finally:
            self.delivered_at, self.busy = time.monotonic(), False
        self._observe_lag(getattr(msg, "consumer", None), records)
        self._observe_delay(records)

    async def restart(self) -> None:
        """Stop the subscriber (a batch in hand is finished and committed, as at
        shutdown) and start it again: a new aiokafka consumer joins the group and resumes
        at the committed offsets. Retried until the broker takes the new member."""
        delay = 0.5
        while True:
            with contextlib.suppress(Exception):
                await self.subscriber.stop()
            try:
                await self.subscriber.start()
            except Exception as exc:
                log.warning(
                    "consumer restart failed, retrying",
                    extra={"consumer": self.name, "error": repr(exc)[:200], "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.delivered_at = time.monotonic()
            log.info("consumer restarted", extra={"consumer": self.name})
            return

    def _observe_delay(self, records: Sequence[ConsumerRecord]) -> None:
        """How long after publishing each record was applied. Live batches only: a rebuild
        re-reads old events on purpose (it calls `process_batch` itself)."""
        delay = self.metrics.consumer_delay.labels(self.name)
        now_ms = time.time() * 1000
        for record in records:
            if record.timestamp > 0:  # the producer's create time, milliseconds
                delay.observe(max(0.0, now_ms - record.timestamp) / 1000)

    def _observe_lag(self, consumer: object, records: Sequence[ConsumerRecord]) -> None:
        """Lag per partition = high watermark (from the last fetch) - next offset."""
        highwater = getattr(consumer, "highwater", None)
        if highwater is None:
            return
        last: dict[tuple[str, int], int] = {}
        for r in records:
            last[(r.topic, r.partition)] = max(last.get((r.topic, r.partition), -1), r.offset)
        for (topic, partition), offset in last.items():
            high = highwater(TopicPartition(topic, partition))
            if high is not None:
                lag = max(0, high - offset - 1)
                self.metrics.consumer_lag.labels(self.name, topic, str(partition)).set(lag)

    async def process_batch(self, records: Sequence[ConsumerRecord]) -> None:
        """Apply a batch in one transaction (one inbox insert for all, then the handler
        per fresh event). If any handler fails, the transaction is rolled back and the
        batch is applied record by record, so only the bad record is retried and
        dead-lettered."""
        self.metrics.consumer_batch.labels(self.name).observe(len(records))
        parsed: list[tuple[ConsumerRecord, ParsedEvent]] = []
        for record in records:
            try:
                parsed.append((record, parse_record(record.value)))
            except EventRejected as exc:
                await self._reject(record, exc)
        if not parsed:
            return
        with self._traced(parsed) if tracing.enabled() else contextlib.nullcontext():
            try:
                await self._apply_all(parsed)
            except TRANSIENT_ERRORS:
                await asyncio.sleep(1.0)
                raise
            except Exception as exc:
                log.info(
                    "batch failed, applying record by record",
                    extra={"consumer": self.name, "size": len(parsed), "error": repr(exc)[:200]},
                )
                for record, _ in parsed:
                    await self.process(record)

    @contextlib.contextmanager
    def _traced(self, parsed: Sequence[tuple[ConsumerRecord, ParsedEvent]]) -> Iterator[None]:
        """The batch's span, linked to the trace of every event in it, and for each event
        staged in a trace a span continuing that trace (a child of the span that staged
        it), linked to the batch's and open while the batch is applied."""
        links = [
            link
            for _, e in parsed
            if (link := tracing.link_to(e.envelope.traceparent, e.envelope.tracestate)) is not None
        ]
        with tracing.span(
            f"consume {' '.join(self.topics)}",
            kind=SpanKind.CONSUMER,
            attributes={tracing.CONSUMER_GROUP: self.name, tracing.BATCH_SIZE: len(parsed)},
            links=links[:MAX_LINKS],
        ) as batch:
            processed = [
                tracing.Continued(
                    event.envelope.traceparent,
                    event.envelope.tracestate,
                    f"process {event.envelope.type}",
                    {
                        **tracing.messaging(
                            "process", record.topic, event.envelope.id, event.envelope.subject
                        ),
                        tracing.CONSUMER_GROUP: self.name,
                        "messaging.kafka.offset": record.offset,
                        "messaging.destination.partition.id": str(record.partition),
                        tracing.EVENT_TYPE: event.envelope.type,
                        tracing.TRACKING_CODE: tracing.tracking_codes([event.envelope.data]),
                    },
                )
                for record, event in parsed
            ]
            to_batch = [Link(batch.get_span_context())]
            with tracing.continued(processed, kind=SpanKind.CONSUMER, links=to_batch):
                yield

    async def _apply_all(self, parsed: list[tuple[ConsumerRecord, ParsedEvent]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "INSERT INTO inbox (consumer, event_id, event_type, topic)"
                " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                self.name,
                [e.envelope.id for _, e in parsed],
                [e.envelope.type for _, e in parsed],
                [r.topic for r, _ in parsed],
            )
            fresh = {row["event_id"] for row in rows}
            events: list[ParsedEvent] = []
            for _, event in parsed:
                if event.envelope.id not in fresh:
                    continue
                fresh.discard(event.envelope.id)  # a duplicate within the batch applies once
                events.append(event)
            if self.batch_handler is not None:
                if events:
                    await self.batch_handler(conn, events)
            else:
                for event in events:
                    with event_context(event.envelope):
                        await self.handler(conn, event)
            applied = [e.envelope.type for e in events]
        skipped = len(parsed) - len(applied)
        if skipped:
            self.metrics.duplicates.labels(self.name).inc(skipped)
        for event_type, count in collections.Counter(applied).items():  # a label lookup per type
            self.metrics.consumed.labels(self.name, event_type).inc(count)

    async def process(self, record: ConsumerRecord) -> None:
        """Apply one record exactly once, or dead-letter it. Raises only for transient
        infrastructure errors, which make FastStream rewind the batch."""
        try:
            event = parse_record(record.value)
        except EventRejected as exc:
            await self._reject(record, exc)
            return
        attempts = self.settings.consumer_max_attempts
        last_error: Exception | None = None
        with event_context(event.envelope):
            for attempt in range(1, attempts + 1):
                try:
                    await self._apply(event, record.topic)
                    return
                except TRANSIENT_ERRORS:
                    await asyncio.sleep(1.0)
                    raise
                except Exception as exc:
                    last_error = exc
                    self.metrics.handler_retries.labels(self.name).inc()
                    log.warning(
                        "handler failed",
                        extra={"consumer": self.name, "attempt": attempt, "error": describe_error(exc)},
                    )
                    if attempt < attempts:
                        await asyncio.sleep(self.settings.consumer_backoff_seconds * 2 ** (attempt - 1))
            assert last_error is not None
            await self.dead_letter(DeadLetter(record, "handler_error", describe_error(last_error), attempts))

    async def _apply(self, event: ParsedEvent, topic: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                "INSERT INTO inbox (consumer, event_id, event_type, topic) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT DO NOTHING RETURNING true",
                self.name,
                event.envelope.id,
                event.envelope.type,
                topic,
            )
            if not fresh:
                self.metrics.duplicates.labels(self.name).inc()
                return
            await self.handler(conn, event)
        self.metrics.consumed.labels(self.name, event.envelope.type).inc()

    async def _reject(self, record: ConsumerRecord, exc: EventRejected) -> None:
        if exc.reason == "unknown_type" and self.skip_unknown_types:
            self.metrics.unknown_types.labels(self.name, exc.detail[:120]).inc()
            return
        # What the record failed on, never the record's content (the SDK's and pydantic's
        # messages may quote it): the dead letter copies the value, sealed where it must be.
        await self.dead_letter(DeadLetter(record, exc.reason, describe_error(exc.__cause__ or exc), 1))

    async def dead_letter(self, letter: DeadLetter) -> None:
        """Copy the record to the dead-letter topic; raising here rewinds the batch, so
        a record is never skipped without its dead letter being acknowledged."""
        record = letter.record
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
        headers.update(
            {
                "x-dlq-reason": letter.reason,
                "x-dlq-error": letter.error[:ERROR_TEXT_LIMIT],
                "x-dlq-consumer": self.name,
                "x-dlq-attempts": str(letter.attempts),
                "x-dlq-original-topic": record.topic,
                "x-dlq-original-partition": str(record.partition),
                "x-dlq-original-offset": str(record.offset),
                "x-dlq-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        key = record.key.decode(errors="replace") if record.key else ""
        value = record.value if record.value is not None else b""
        out = OutgoingRecord(dead_letter_topic(self.name), key, value, headers)
        (ok,) = await self.bus.publish([out])
        if not ok:
            raise ConnectionError("dead-letter topic did not acknowledge")
        self.metrics.dead_letters.labels(self.name, letter.reason).inc()
        log.error(
            "message dead-lettered",
            extra={
                "consumer": self.name,
                "reason": letter.reason,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        )


async def _raw(msg: object) -> None:
    """No decoding: the consumer parses records itself, so a poison value can never
    fail inside the framework and stall the partition."""
    return None


@dataclass(frozen=True)
class LetterChoice:
    """Which dead letters an operator replays: those of one reason, or one letter (its
    place in the dead-letter topic); nothing chosen is every letter not replayed yet."""

    reason: str | None = None
    partition: int | None = None
    offset: int | None = None

    def __call__(self, letter: dict[str, object]) -> bool:
        return all(
            wanted is None or letter[name] == wanted
            for name, wanted in (
                ("reason", self.reason),
                ("partition", self.partition),
                ("offset", self.offset),
            )
        )

    @property
    def everything(self) -> bool:
        return self == LetterChoice()


def letter_view(record: ConsumerRecord) -> dict[str, object]:
    """A dead letter as an operator sees it: where it sits and came from, why it failed
    and what event it was (type, id, subject, tracking code), never the event's data,
    which may carry sealed or personal fields."""
    headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
    view: dict[str, object] = {
        "partition": record.partition,
        "offset": record.offset,
        "reason": headers.get("x-dlq-reason", ""),
        "error": headers.get("x-dlq-error", ""),
        "attempts": int(headers.get("x-dlq-attempts") or 0),
        "topic": headers.get("x-dlq-original-topic", ""),
        "topic_partition": int(headers.get("x-dlq-original-partition") or 0),
        "topic_offset": int(headers.get("x-dlq-original-offset") or 0),
        "failed_at": headers.get("x-dlq-failed-at") or None,
        "event_type": None,
        "event_id": None,
        "subject": None,
        "tracking_code": None,
    }
    try:
        event = json.loads(record.value or b"")
    except ValueError:
        return view
    if isinstance(event, dict):
        data = event.get("data")
        code = data.get("tracking_code") if isinstance(data, dict) else None
        for name, value in (("event_type", event.get("type")), ("event_id", event.get("id"))):
            view[name] = value if isinstance(value, str) else None
        view["subject"] = event.get("subject") if isinstance(event.get("subject"), str) else None
        view["tracking_code"] = code if isinstance(code, str) else None
    return view


async def list_dead_letters(consumer: IdempotentConsumer, *, limit: int = 200) -> list[dict[str, object]]:
    """The newest `limit` dead letters of `consumer`, newest first, each marked `applied`
    once its event is in the consumer's inbox (a replay applied it)."""
    letters = [letter for _, letter in await _read_letters(consumer, newest=limit)]
    letters.sort(key=lambda letter: str(letter["failed_at"] or ""), reverse=True)
    applied = await _applied(consumer, letters)
    return [{**letter, "applied": letter["event_id"] in applied} for letter in letters[:limit]]


async def replay_chosen_letters(consumer: IdempotentConsumer, choice: LetterChoice) -> int:
    """Re-deliver the dead letters `choice` names that a replay has not applied yet,
    whatever the replay group has done; one that fails again becomes a new dead letter.
    The replay group's position is left as it is. Returns how many were re-delivered."""
    chosen = [(record, letter) for record, letter in await _read_letters(consumer) if choice(letter)]
    applied = await _applied(consumer, [letter for _, letter in chosen])
    replayed = 0
    for record, letter in chosen:
        if letter["event_id"] not in applied:
            await consumer.process(_original(record))
            replayed += 1
    return replayed


async def _read_letters(
    consumer: IdempotentConsumer, *, newest: int | None = None
) -> list[tuple[ConsumerRecord, dict[str, object]]]:
    """The dead letters of `consumer` there are now, each with its `letter_view`: every
    one, or the `newest` of each partition."""
    topic = dead_letter_topic(consumer.name)
    async with assigned_reader(consumer.settings.kafka_bootstrap, [topic]) as (reader, partitions):
        if not partitions:
            return []
        end = await reader.end_offsets(partitions)
        # Explicit offsets: a lazy seek_to_beginning left Apache Kafka's reader reading
        # nothing before `_up_to` gave up.
        start = await reader.beginning_offsets(partitions)
        for tp in partitions:
            reader.seek(tp, start[tp] if newest is None else max(start[tp], end[tp] - newest))
        return [(record, letter_view(record)) async for record in _up_to(reader, end)]


async def _applied(consumer: IdempotentConsumer, letters: list[dict[str, object]]) -> set[str]:
    """The event ids among `letters` that the consumer has applied (its inbox)."""
    ids = [str(letter["event_id"]) for letter in letters if letter["event_id"]]
    if not ids:
        return set()
    rows = await consumer.pool.fetch(
        "SELECT event_id FROM inbox WHERE consumer = $1 AND event_id = ANY($2::text[])", consumer.name, ids
    )
    return {r["event_id"] for r in rows}


async def _up_to(
    reader: AIOKafkaConsumer, end: dict[TopicPartition, int], timeout: float = 10.0
) -> AsyncIterator[ConsumerRecord]:
    """The records from the reader's positions up to `end` (what was there when asked),
    for at most `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await behind(reader, end) and asyncio.get_running_loop().time() < deadline:
        batch = await reader.getmany(timeout_ms=500, max_records=500)
        for tp, records in batch.items():
            for record in records:
                if record.offset < end[tp]:
                    yield record


def _original(record: ConsumerRecord) -> ConsumerRecord:
    """A dead letter as the record it was: its topic, its headers without ours."""
    headers = dict(record.headers or ())
    original = headers.get("x-dlq-original-topic", b"").decode() or record.topic
    clean = tuple((k, v) for k, v in record.headers or () if not k.startswith("x-dlq-"))
    return dataclasses.replace(record, topic=original, headers=clean)


async def replay_dead_letters(consumer: IdempotentConsumer, *, timeout: float = 10.0) -> int:
    """Re-deliver every dead letter of `consumer` (after a fix) through its handler.

    Reads the dead-letter topic up to its current end with its own consumer group, so a
    letter is replayed once; one that fails again becomes a new dead letter. Returns the
    number of letters replayed.
    """

    topic = dead_letter_topic(consumer.name)
    replayed = 0
    async with assigned_reader(
        consumer.settings.kafka_bootstrap,
        [topic],
        group_id=f"{consumer.name}.dlq-replay",
        auto_offset_reset="earliest",
    ) as (reader, partitions):
        if not partitions:
            return 0
        end = await reader.end_offsets(partitions)
        for tp in partitions:
            committed = await reader.committed(tp)
            reader.seek(tp, committed or 0)
        started = datetime.now(UTC).isoformat()
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(timeout_ms=500, max_records=500)
            # Caught up when a poll brings nothing (the embedded broker's end offsets can
            # fall short of a multi-record batch, so they alone are not trusted).
            active = {tp: offset for tp, offset in end.items() if tp not in reader.paused()}
            if not batch and not await behind(reader, active):
                break
            for tp, records in batch.items():
                next_offset = None
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("x-dlq-failed-at", b"").decode() >= started:
                        # Dead-lettered again by this very replay: leave it (and what
                        # follows) for the next replay, after the next fix.
                        reader.pause(tp)
                        break
                    await consumer.process(_original(record))
                    replayed += 1
                    next_offset = record.offset + 1
                if next_offset is not None:
                    await reader.commit({tp: next_offset})
            if set(reader.paused()) >= set(partitions):
                break
    return replayed


async def behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """Whether any assigned partition's position is still short of `end`."""
    for tp, offset in end.items():
        if await consumer.position(tp) < offset:
            return True
    return False
