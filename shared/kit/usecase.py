"""The base of a domain service's use-case context (`handlers.Context`): what every use
case of complaints, permits and health needs (the pool, the platform settings, the
clock, where the service's events go) and the ways a use case reaches its repository,
written once here instead of in each service's handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

import asyncpg

from shared.kit import audit
from shared.kit.attachments import Attachments, store_for
from shared.kit.clock import utc_now
from shared.kit.data_keys import DataKeys
from shared.kit.errors import NotFound
from shared.kit.privacy import seal_for_notifications, text_sealer
from shared.kit.settings import PlatformSettings
from shared.kit.uow import Aggregate, EventSource, UnitOfWork, act, retry_on_code_collision, unit_of_work
from shared.schemas.common import SealedContact, SealedText

if TYPE_CHECKING:
    from shared.kit.app import Service


class Repository(Protocol):
    """What the context needs of a service's repository besides `act`'s `get` and `save`."""

    async def add(self, aggregate: Any) -> None: ...


class Person(Protocol):
    """Whom a case is about, as a domain keeps them (a reporter, an applicant, a patient):
    their NIK, when they gave it, and the contact they gave."""

    @property
    def nik(self) -> str | None: ...

    @property
    def phone(self) -> str | None: ...


R = TypeVar("R", bound=Repository)  # the service's repository
T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)


@dataclass(kw_only=True)
class UseCaseContext(Generic[R]):
    """What the use cases need; built once by the app, replaced freely in tests (e.g. a
    controllable `clock`). A service subclasses it with its own reference data and
    policies, names its topic and CloudEvents source, and says which repository its
    use cases work through (`repository`)."""

    pool: Callable[[], asyncpg.Pool]
    platform: PlatformSettings
    clock: Callable[[], datetime] = utc_now
    # Photos and documents of the service's cases (shared/kit/attachments.py); `of` gives
    # each service its own folder of the platform's attachment store.
    attachment_store: Attachments | None = None
    # The citizens' data keys (shared/kit/data_keys.py) of a service whose settings have
    # a master key: the contacts its events carry are sealed with them.
    data_keys: DataKeys | None = None

    # The service's topic and CloudEvents source: its contract module's TOPIC and SOURCE.
    topic: ClassVar[str]
    source: ClassVar[str]

    @classmethod
    def of(cls, service: Service[Any, Any], **fields: Any) -> Self:
        """The context of `service` (the app's `ServiceSpec.context`): its pool, read when
        used (it opens after the context is built), its platform settings, and the
        service's own `fields`."""
        platform = service.settings.platform

        def pool() -> asyncpg.Pool:
            return service.pool

        store = store_for(platform, service.settings.service or "service")
        fields.setdefault("attachment_store", Attachments(pool, store, fields.get("clock", utc_now)))
        master = getattr(service.settings, "master_key", None)
        if master is not None:
            fields.setdefault("data_keys", DataKeys(master))
        return cls(pool=pool, platform=platform, **fields)

    @property
    def attachments(self) -> Attachments:
        """The service's photos and documents (a context built without a store, as some
        unit tests build one, has none)."""
        if self.attachment_store is None:
            raise RuntimeError("this use-case context was built without an attachment store")
        return self.attachment_store

    @property
    def origin(self) -> EventSource:
        """Where the service's events go in the platform's region: the use cases' and the
        kit's own endpoints' (the citizen's data erasure, through `Service.event_source`)."""
        return EventSource(self.topic, self.source, self.platform.region, self.data_keys)

    def repository(self, conn: asyncpg.Connection) -> R:
        """The service's repository on `conn`."""
        raise NotImplementedError

    def contact_for(self, person: Person) -> SealedContact | None:
        """The contact `person` gave, as the service's events carry it (sealed for the
        notification service; None without a phone or email). A patient gives no email."""
        email: str | None = getattr(person, "email", None)
        return seal_for_notifications(self.platform, nik=person.nik, phone=person.phone, email=email)

    def text_sealer_for(self, person: Person) -> Callable[[str], SealedText]:
        """How what `person` wrote travels: sealed with the text key of the same data key
        their contact is sealed with (`contact_for`)."""
        email: str | None = getattr(person, "email", None)
        return text_sealer(self.platform, nik=person.nik, phone=person.phone, email=email)

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work of the service (its events go to `origin`)."""
        return unit_of_work(self.pool(), self.origin)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[R]:
        """The repository over a pooled connection, outside a unit of work: the reads of
        views, work lists, gauges and watchers."""
        async with self.pool().acquire() as conn:
            yield self.repository(conn)

    async def read(self, query: Callable[[R], Awaitable[T]]) -> T:
        """What `query` reads from the repository (see `reading`)."""
        async with self.reading() as repo:
            return await query(repo)

    async def record_read(self, records: list[str]) -> None:
        """Audit that the current officer read the personal data of `records` (UU PDP:
        who saw what, when, from where)."""
        await audit.record_read(self.pool(), records)

    async def found(self, lookup: Callable[[R], Awaitable[T | None]], missing: str) -> T:
        """What `lookup` finds, read as `read` does; NotFound (404) with the message
        `missing` when it finds nothing."""
        result = await self.read(lookup)
        if result is None:
            raise NotFound(missing)
        return result

    async def create(
        self,
        make: Callable[[], A],
        *,
        constraint: str,
        also: Callable[[A, asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> A:
        """A new aggregate, stored (the repository's `add`) with its events in one unit
        of work. `make` builds it under a freshly drawn public code, and is run again
        while PostgreSQL reports the code taken (`constraint`, the unique constraint of
        the code column; see `retry_on_code_collision`). `also` does the rest of the
        creation in the same unit of work (e.g. claims the uploads the case names)."""

        async def attempt() -> A:
            aggregate = make()
            async with self.unit_of_work() as uow:
                await self.repository(uow.conn).add(aggregate)
                if also is not None:
                    await also(aggregate, uow.conn)
                await uow.emit(aggregate.events, subject=str(aggregate.id))
            return aggregate

        return await retry_on_code_collision(attempt, constraint=constraint)

    async def act(self, code: str, command: Callable[[A, R], object], *, missing: str) -> A:
        """The kit's `act` (one unit of work: load the aggregate by its public code,
        row-locked, run `command`, save it and stage its events) with the unit of work's
        repository lent to `command`, for the commands that need more of it than the
        aggregate (a permit number, a session's quota)."""
        lent: list[R] = []

        def repository(conn: asyncpg.Connection) -> R:
            lent.append(self.repository(conn))
            return lent[0]

        return await act(
            self.pool(), self.origin, repository, code, lambda a: command(a, lent[0]), missing=missing
        )
