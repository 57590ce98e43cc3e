"""Transactional outbox and its relay.

`add_event` inserts the event in the caller's transaction, so the state change and
its event commit together or not at all. The relay (one active per service, chosen by
a PostgreSQL advisory lock) publishes pending rows in id order, keyed by aggregate, in
batches; it is woken by LISTEN/NOTIFY at commit and polls slowly as a fallback.

Order: an aggregate's events are written while its row is locked, so their ids follow
commit order; the relay never publishes a later event of an aggregate before an
earlier one that failed (it stops that aggregate for the batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from opentelemetry.trace import SpanKind, StatusCode

from shared.kit import tracing
from shared.kit.bus import EventBus, OutgoingRecord
from shared.kit.db import connect
from shared.kit.metrics import KitMetrics
from shared.kit.settings import PlatformSettings
from shared.schemas import Envelope

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "sinergi_outbox"
RELAY_LOCK = 0x4F55_5442  # "OUTB"; one database per service, so a constant key suffices


def _row(envelope: Envelope) -> tuple[str, str, str, bytes, dict[str, str], str | None, str | None]:
    """(event id, key, type, value, headers, traceparent, tracestate) of the outbox row
    for `envelope`."""
    message = envelope.to_kafka()
    headers = {k: v.decode() for k, v in message.headers.items() if k != "content-type"}
    headers["correlation_id"] = envelope.correlationid or envelope.id
    return (
        envelope.id,
        envelope.subject,
        envelope.type,
        message.value,
        headers,
        envelope.traceparent,
        envelope.tracestate,
    )


async def add_event(conn: asyncpg.Connection, envelope: Envelope, topic: str) -> None:
    """Stage `envelope` for publication on `topic`, inside the caller's transaction."""
    event_id, key, event_type, value, headers, traceparent, tracestate = _row(envelope)
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, event_type, value, headers, traceparent, tracestate)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        event_id,
        topic,
        key,
        event_type,
        value,
        headers,
        traceparent,
        tracestate,
    )
    # The relay is woken by the outbox_notify trigger (migration 002) at commit.


async def add_events(conn: asyncpg.Connection, envelopes: Sequence[Envelope], topic: str) -> None:
    """Stage many envelopes in one statement (a consumer's batch can make hundreds), in
    the given order: rows are inserted in array order, so their ids (the publication
    order) follow it."""
    if not envelopes:
        return
    ids, keys, types, values, headers, parents, states = zip(*(_row(e) for e in envelopes), strict=True)
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, event_type, value, headers, traceparent, tracestate)"
        " SELECT e, $1, k, t, v, h, p, s FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bytea[],"
        " $6::jsonb[], $7::text[], $8::text[]) WITH ORDINALITY AS u(e, k, t, v, h, p, s, n) ORDER BY n",
        topic,
        list(ids),
        list(keys),
        list(types),
        list(values),
        list(headers),
        list(parents),
        list(states),
    )


async def republish_since(pool: asyncpg.Pool, since: datetime, topic: str | None = None) -> int:
    """Mark events created since `since` as pending again; the relay republishes them in
    their original order. Safe because every consumer deduplicates by event id."""
    result = await pool.execute(
        "UPDATE outbox SET published_at = NULL WHERE created_at >= $1 AND ($2::text IS NULL OR topic = $2)",
        since,
        topic,
    )
    return int(result.split()[-1])


def _published(row: asyncpg.Record) -> tracing.Continued:
    """The relay's producer span of an event, a child of the span that staged it."""
    return tracing.Continued(
        row["traceparent"],
        row["tracestate"],
        f"publish {row['topic']}",
        tracing.messaging("send", row["topic"], str(row["event_id"]), row["key"]),
    )


class _Marking:
    """The relay's second connection and the batch it is marking published, if any.
    A failed marking (a lost connection) surfaces in `settle` and restarts the relay,
    which then publishes those rows again (consumers deduplicate by event id)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.ids: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def start(self, work: Coroutine[Any, Any, None], ids: list[int]) -> None:
        self._task, self.ids = asyncio.create_task(work), ids

    async def settle(self) -> None:
        task, self._task = self._task, None
        try:
            if task is not None:
                await task
        finally:
            self.ids = []

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.close(), 2)


class OutboxRelay:
    def __init__(
        self, database_url: str, bus: EventBus, settings: PlatformSettings, metrics: KitMetrics
    ) -> None:
        self.database_url = database_url
        self.bus = bus
        self.settings = settings
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_prune = 0.0
        self._last_observed = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for pending events now (e.g. after marking events for republishing)."""
        self._wake.set()

    async def run(self) -> None:
        """Hold the relay lock and publish until stopped; survive database and broker
        outages by reconnecting."""
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.database_url)
                if not await self._acquire_lock(conn):
                    return
                self.metrics.relay_active.set(1)
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                await self._publish_loop(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("outbox relay lost its database connection", extra={"error": str(exc)})
                await self._sleep(1.0)
            except Exception as exc:
                # Anything else (a client error mid-outage) must not end the relay
                # silently: every later write would wait in the outbox for nobody.
                log.error("outbox relay failed; starting again", extra={"error": repr(exc)[:300]})
                await self._sleep(1.0)
            finally:
                self.metrics.relay_active.set(0)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _acquire_lock(self, conn: asyncpg.Connection) -> bool:
        """Standby until this instance may relay (another instance holds the lock)."""
        while not self._stopping.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK):
                return True
            await self._sleep(5.0)
        return False

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _publish_loop(self, conn: asyncpg.Connection) -> None:
        """Fetch, publish and mark batches. Marking a batch published (an UPDATE of up
        to a batch of rows and its commit) runs on a second connection while the next
        batch is fetched and published: it costs as much as publishing, and nothing
        depends on it but the next fetch, which skips the rows being marked."""
        marking = _Marking(await connect(self.database_url))
        try:
            failures = 0
            while not self._stopping.is_set():
                self._wake.clear()
                await self._observe(conn)
                if not self.bus.connected.is_set():
                    await self._wait_for_work(self.settings.outbox_poll_seconds)
                    continue
                rows = await self._fetch(conn, marking.ids)
                if rows:
                    done, failed = await self._send(rows)
                    await marking.settle()
                    marking.start(self._mark(marking.conn, done, failed), done + failed)
                    if failed:
                        # Failed rows are fetched again after a pause, in id order,
                        # before anything that follows them.
                        await marking.settle()
                        failures += 1
                        await self._sleep(min(0.5 * 2**failures, 10.0))
                        continue
                    failures = 0
                    if len(rows) == self.settings.outbox_batch_size:
                        continue
                await marking.settle()
                await self._prune(conn)
                await self._wait_for_work(self.settings.outbox_poll_seconds)
            await marking.settle()  # stopping: what was published is marked first
        finally:
            await marking.close()

    async def _wait_for_work(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _fetch(self, conn: asyncpg.Connection, in_flight: list[int]) -> list[asyncpg.Record]:
        # A fresh snapshot every time (never "after the last id"): a transaction that
        # commits late with a lower id is still published before its aggregate's later
        # events. Rows whose marking has not committed yet are skipped (`<> ALL` keeps
        # the scan on the outbox_pending index; `NOT IN (subquery)` made it a full sort).
        return await conn.fetch(
            "SELECT id, event_id, topic, key, value, headers, traceparent, tracestate FROM outbox"
            " WHERE published_at IS NULL"
            " AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $1",
            self.settings.outbox_batch_size,
            in_flight,
        )

    async def _send(self, rows: list[asyncpg.Record]) -> tuple[list[int], list[int]]:
        """Publish rows; returns the ids acknowledged and the ids that must be retried."""
        records = [OutgoingRecord(r["topic"], r["key"], r["value"], r["headers"]) for r in rows]
        self.metrics.relay_batch.observe(len(records))
        if tracing.enabled():
            with tracing.continued([_published(r) for r in rows], kind=SpanKind.PRODUCER) as spans:
                results = await self.bus.publish(records)
                for current, ok in zip(spans, results, strict=True):
                    if current is not None and not ok:
                        current.set_status(StatusCode.ERROR, "broker did not acknowledge")
        else:
            results = await self.bus.publish(records)
        done: list[int] = []
        failed: list[int] = []
        failed_keys: set[str] = set()
        per_topic: dict[str, int] = {}
        for row, ok in zip(rows, results, strict=True):
            # A later event of an aggregate whose earlier event failed waits for the
            # retry, so consumers never see them out of order.
            if ok and row["key"] not in failed_keys:
                done.append(row["id"])
                per_topic[row["topic"]] = per_topic.get(row["topic"], 0) + 1
            else:
                failed.append(row["id"])
                failed_keys.add(row["key"])
        for topic, count in per_topic.items():
            self.metrics.outbox_published.labels(topic).inc(count)
        if failed:
            self.metrics.outbox_failures.inc(len(failed))
            log.warning("outbox publish incomplete", extra={"failed": len(failed)})
        return done, failed

    async def _mark(self, conn: asyncpg.Connection, done: list[int], failed: list[int]) -> None:
        # One statement (its own transaction): a round trip per batch, not three.
        await conn.execute(
            "UPDATE outbox SET published_at = CASE WHEN id = ANY($1::bigint[]) THEN now() END,"
            " attempts = attempts + (id = ANY($2::bigint[]))::int,"
            " last_error = CASE WHEN id = ANY($2::bigint[]) THEN $3 ELSE last_error END"
            " WHERE id = ANY($1::bigint[]) OR id = ANY($2::bigint[])",
            done,
            failed,
            "broker did not acknowledge",
        )

    async def _observe(self, conn: asyncpg.Connection) -> None:
        # A gauge: once a second is enough, and counting a large backlog per batch
        # would slow down draining it.
        now = asyncio.get_running_loop().time()
        if now - self._last_observed < 1.0:
            return
        self._last_observed = now
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age"
            " FROM outbox WHERE published_at IS NULL"
        )
        self.metrics.outbox_pending.set(row["n"])
        self.metrics.outbox_oldest_age.set(float(row["age"] or 0))

    async def _prune(self, conn: asyncpg.Connection) -> None:
        """Drop published events older than the retention window (kept meanwhile so a
        lost broker can be refilled with `republish_since`)."""
        now = asyncio.get_running_loop().time()
        if now - self._last_prune < 300:
            return
        self._last_prune = now
        await conn.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            self.settings.outbox_retention_hours * 3600,
        )
