"""Unit of work: one PostgreSQL transaction in which a use case changes its aggregate,
stages the resulting events in the outbox and, for an officer's action, writes the
audit row, so all commit or none does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from shared.kit import audit
from shared.kit.logs import correlation_id
from shared.kit.outbox import add_event
from shared.schemas import EventData, make_envelope


@dataclass(frozen=True)
class EventSource:
    """Where a service's events go: its topic, CloudEvents source and region."""

    topic: str
    source: str
    region: str


class UnitOfWork:
    def __init__(self, conn: asyncpg.Connection, origin: EventSource) -> None:
        self.conn = conn
        self.origin = origin
        self.emitted = 0
        self.subjects: list[str] = []
        self.event_types: list[str] = []

    async def emit(self, events: Iterable[EventData], *, subject: str) -> None:
        for data in events:
            envelope = make_envelope(
                data,
                subject=subject,
                source=self.origin.source,
                region=self.origin.region,
                correlation_id=correlation_id(),
            )
            await add_event(self.conn, envelope, self.origin.topic)
            self.emitted += 1
            self.subjects.append(subject)
            self.event_types.append(envelope.type)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, origin: EventSource) -> AsyncIterator[UnitOfWork]:
    async with pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, origin)
        yield uow
        await audit.record(conn, uow.subjects, uow.event_types)
