"""Unit of work: one PostgreSQL transaction in which a use case changes its aggregate,
stages the resulting events in the outbox and, for an officer's action, writes the
audit row, so all commit or none does."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import asyncpg
from opentelemetry.trace import SpanKind

from shared.kit import audit, tracing
from shared.kit.data_keys import DataKeys, seal_now, seal_pending
from shared.kit.errors import NotFound
from shared.kit.logs import correlation_id
from shared.kit.outbox import add_event, add_events
from shared.schemas import Envelope, EventData, make_envelope
from shared.schemas.common import SealedContact


@dataclass(frozen=True)
class EventSource:
    """Where a service's events go: its topic, CloudEvents source and region."""

    topic: str
    source: str
    region: str
    # The service's per-citizen data keys, sealing the contacts its events carry (the
    # domain services'; None for a service that puts no contact on the bus).
    keys: DataKeys | None = None


class UnitOfWork:
    def __init__(self, conn: asyncpg.Connection, origin: EventSource) -> None:
        self.conn = conn
        self.origin = origin
        self.emitted = 0
        self.subjects: list[str] = []
        self.event_types: list[str] = []

    async def emit(self, events: Iterable[EventData], *, subject: str) -> None:
        """Stage the aggregate's events, with the request's correlation id (and their
        contacts sealed with the citizen's data key in this transaction)."""
        events = await seal_pending(self.conn, self.origin.keys, events)
        envelopes = [
            make_envelope(
                data,
                subject=subject,
                source=self.origin.source,
                region=self.origin.region,
                correlation_id=correlation_id(),
            )
            for data in events
        ]
        await self.stage(envelopes)

    async def seal(self, contact: SealedContact | None) -> SealedContact | None:
        """A contact sealed ahead of `emit` (which would seal it otherwise), for a use case
        whose events are built under a contended lock."""
        return await seal_now(self.conn, self.origin.keys, contact)

    async def stage(self, envelopes: Sequence[Envelope]) -> None:
        """Stage ready-made envelopes (e.g. carrying the correlation and causation of the
        event that caused them), in order, in one statement."""
        # Events that all carry their cause's trace, staged outside any (the delivery
        # worker's statuses), join that trace through their rows: no trace of their own.
        if (
            envelopes
            and tracing.enabled()
            and (tracing.in_trace() or any(e.traceparent is None for e in envelopes))
        ):
            await self._stage_traced(envelopes)
        else:
            await self._stage(envelopes)

    async def _stage_traced(self, envelopes: Sequence[Envelope]) -> None:
        """Stage within a span whose context the events carry (unless one was given
        already: the context of the event that caused them), in the envelope and in
        their outbox rows."""
        with tracing.span(
            f"outbox stage {self.origin.topic}",
            kind=SpanKind.PRODUCER,
            attributes={
                tracing.DESTINATION: self.origin.topic,
                tracing.BATCH_SIZE: len(envelopes),
                tracing.EVENT_TYPE: sorted({e.type for e in envelopes}),
                tracing.TRACKING_CODE: tracing.tracking_codes(e.data for e in envelopes),
            },
        ):
            traceparent, tracestate = tracing.current_traceparent()
            await self._stage(
                [
                    e
                    if e.traceparent is not None or traceparent is None
                    else e.model_copy(update={"traceparent": traceparent, "tracestate": tracestate})
                    for e in envelopes
                ]
            )

    async def _stage(self, envelopes: Sequence[Envelope]) -> None:
        if len(envelopes) == 1:
            await add_event(self.conn, envelopes[0], self.origin.topic)
        elif envelopes:
            await add_events(self.conn, envelopes, self.origin.topic)
        for envelope in envelopes:
            self.touch(envelope.subject)
            # The case's tracking code too: what officers and citizens know it by, so
            # the audit trail is searched by it as for a read.
            code = envelope.data.get("tracking_code")
            if isinstance(code, str):
                self.touch(code)
            self.event_types.append(envelope.type)
        self.emitted += len(envelopes)

    def touch(self, subject: str) -> None:
        """Name what the action changed, for the officer's audit row (also for a change
        that publishes no event)."""
        self.subjects.append(subject)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, origin: EventSource) -> AsyncIterator[UnitOfWork]:
    # Traced within a request or a consumer's batch only: a periodic job's rounds (most
    # of which find nothing to do) would each start a trace of their own. Events staged
    # there still start one (`_stage_traced`).
    if not tracing.in_trace():
        async with _transaction(pool, origin) as uow:
            yield uow
        return
    with tracing.span("unit of work", attributes={"db.system.name": "postgresql"}) as current:
        async with _transaction(pool, origin) as uow:
            yield uow
        current.set_attribute(tracing.EVENT_TYPE, uow.event_types)


@asynccontextmanager
async def _transaction(pool: asyncpg.Pool, origin: EventSource) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, origin)
        yield uow
        await audit.record(conn, uow.subjects, uow.event_types)


class Aggregate(Protocol):
    """What `act` needs of an aggregate: its id (the events' subject) and the events its
    last command queued."""

    @property
    def id(self) -> Any: ...

    @property
    def events(self) -> Sequence[EventData]: ...


A = TypeVar("A", bound=Aggregate)


class AggregateRepository(Protocol[A]):
    async def get(self, code: str, *, for_update: bool = False) -> A | None: ...

    async def save(self, aggregate: A) -> None: ...


async def act(
    pool: asyncpg.Pool,
    origin: EventSource,
    repository: Callable[[asyncpg.Connection], AggregateRepository[A]],
    code: str,
    command: Callable[[A], object],
    *,
    missing: str,
) -> A:
    """The common use case on an existing aggregate, in one unit of work: load it by its
    public code (row-locked), run `command` on it (sync or async), save it and stage its
    events if it queued any. `missing` is the 404's message when no aggregate has that
    code."""
    async with unit_of_work(pool, origin) as uow:
        repo = repository(uow.conn)
        aggregate = await repo.get(code, for_update=True)
        if aggregate is None:
            raise NotFound(missing)
        result = command(aggregate)
        if inspect.isawaitable(result):
            await result
        # Every change of an aggregate is an event: a command that queued none (a watcher
        # that found the work already done by another instance) changed nothing to save.
        if aggregate.events:
            await repo.save(aggregate)
            await uow.emit(aggregate.events, subject=str(aggregate.id))
    return aggregate


T = TypeVar("T")
CODE_ATTEMPTS = 5  # a collision of two 65-bit codes is ~1 in 10^9 a month: one retry is plenty


async def retry_on_code_collision(create: Callable[[], Awaitable[T]], *, constraint: str) -> T:
    """Run `create` (a unit of work storing a new aggregate under a freshly drawn public
    code) again when PostgreSQL reports that code taken (`constraint`, the unique
    constraint of the code column). Any other unique violation is the caller's."""
    for _ in range(CODE_ATTEMPTS):
        try:
            return await create()
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != constraint:
                raise
    raise RuntimeError(f"could not draw an unused public code in {CODE_ATTEMPTS} attempts")
