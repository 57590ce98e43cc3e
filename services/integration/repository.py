"""asyncpg queries for the integration view's read models (migrations/): applying
projections, the reads behind the pages and the API, the indicator functions' queries,
and the rebuild's reset and lock."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg

from services.integration.domain import (
    Erasure,
    HistoryEntry,
    Item,
    Notification,
    Projection,
    Window,
    erased,
    fold_item,
    fold_notification,
    scrub_item,
    scrub_notification,
)
from services.integration.indicators import (
    BedParams,
    CitizenParams,
    DurationParams,
    EventFilter,
    ItemFilter,
    NotificationParams,
    Params,
)
from shared.kit.citizen_data import Citizen
from shared.kit.sql import Column, Where, column_arrays, insert_many_sql, jsonb_texts, upsert_many_sql

# Two-key advisory locks (namespace, hash of the code) serialise the read-modify-write
# of one item across transactions (live consumer, a rebuild, a second instance).
_LOCK_ITEM = 0x494E5431  # "INT1"
_LOCK_NOTIFICATION = 0x494E5432
# Applying an event about a citizen holds this lock shared, an erasure exclusively: an
# erasure never misses a row that a concurrent transaction is writing.
_LOCK_CITIZEN = 0x494E5433
REBUILD_LOCK = 0x494E5452  # one rebuild at a time per database

READ_MODEL_TABLES = ("items", "history", "notifications", "erasures")


def _sql_type(hint: Any) -> str:
    """The column type of a read-model field, from its annotation (Phase is a text Literal)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) and len(args) == 1:
        hint = args[0]
    if hint is datetime:
        return "timestamptz"
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if typing.get_origin(hint) is dict:
        return "jsonb"
    return "text"


def _columns(cls: type) -> list[Column]:
    hints = typing.get_type_hints(cls)
    return [(f.name, _sql_type(hints[f.name])) for f in dataclasses.fields(cls)]


_HISTORY_COLUMNS = _columns(HistoryEntry)
_HISTORY_FIELDS = [n for n, _ in _HISTORY_COLUMNS]
_JSON_FIELDS = {n for n, t in _HISTORY_COLUMNS if t == "jsonb"}
_INSERT_HISTORY = insert_many_sql(
    "history", _HISTORY_COLUMNS, on_conflict="(event_id) DO NOTHING", returning="event_id"
)

Row = TypeVar("Row", Item, Notification)


@dataclass(frozen=True)
class _Rows(Generic[Row]):
    """A table of merged rows (items, notifications): read with the erasure of each row's
    citizen, fold the batch's facts in, scrub, write back in one statement."""

    table: str
    key: str
    row: type[Row]
    fold: Callable[[Row | None, Iterable[Row]], Row | None]
    scrub: Callable[[Row, datetime | None], Row]

    @functools.cached_property
    def fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.row)]

    @functools.cached_property
    def select(self) -> str:
        return (
            f"SELECT {', '.join(f't.{f}' for f in self.fields)}, e.erased_at AS erased_at"
            f" FROM {self.table} t LEFT JOIN erasures e ON e.citizen_ref = t.citizen_ref"
            f" WHERE t.{self.key} = ANY($1::text[])"
        )

    @functools.cached_property
    def upsert(self) -> str:
        return upsert_many_sql(self.table, _columns(self.row), self.key)


_ITEMS = _Rows("items", "code", Item, fold_item, scrub_item)
_NOTIFICATIONS = _Rows(
    "notifications", "notification_id", Notification, fold_notification, scrub_notification
)

# Every advisory lock a batch needs, taken in one statement in one global order (citizens,
# then items, then notifications; by lock key within each), so two batches never wait on
# each other in a cycle. An erased citizen's lock is exclusive, the others shared. The
# ORDER BY sits in a subquery, which PostgreSQL does not flatten, so the locks are taken
# in the sorted order. Sorting by the key (not the text) keeps hash collisions in order.
_LOCK_ALL = f"""
SELECT CASE WHEN exclusive THEN pg_advisory_xact_lock(ns, key)
            ELSE pg_advisory_xact_lock_shared(ns, key) END
FROM (
    SELECT ns, hashtext(name) AS key, bool_or(exclusive) AS exclusive
    FROM (
        SELECT {_LOCK_CITIZEN} AS ns, name, false AS exclusive FROM unnest($1::text[]) AS name
        UNION ALL SELECT {_LOCK_CITIZEN}, name, true FROM unnest($2::text[]) AS name
        UNION ALL SELECT {_LOCK_ITEM}, name, true FROM unnest($3::text[]) AS name
        UNION ALL SELECT {_LOCK_NOTIFICATION}, name, true FROM unnest($4::text[]) AS name
    ) t
    GROUP BY 1, 2
    ORDER BY ns <> {_LOCK_CITIZEN}, ns, key
) s
"""


def _scrub_history(entry: HistoryEntry, erasures: dict[str, datetime]) -> HistoryEntry:
    if entry.citizen_ref and erased(entry.at, erasures.get(entry.citizen_ref)):
        return dataclasses.replace(entry, citizen_ref=None)
    return entry


def _refs_of(row: Any) -> tuple[str | None, ...]:
    """The references an erasure finds a row by: its citizen's, and an item's contact's."""
    return (row.citizen_ref, getattr(row, "contact_ref", None))


def _stored_erasures(rows: list[asyncpg.Record]) -> dict[str, datetime]:
    """The erasures of the references already on the stored rows (an event may carry no
    reference, or the batch another one): a merged row is scrubbed against its own."""
    return {r["citizen_ref"]: r["erased_at"] for r in rows if r["erased_at"] is not None}


class ReadModel:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # ----- writing (inside the consumer's inbox transaction) -----------------------------

    async def apply(self, projection: Projection) -> bool:
        """Apply what one event says; False if this event was already applied."""
        return await self.apply_many([projection]) == 1

    async def apply_many(self, projections: Sequence[Projection]) -> int:
        """Apply what several events say (in delivery order) in a constant number of round
        trips; returns how many were not applied before. The result is the same as
        applying them one by one: the merges are order-independent, and erasures, applied
        last, scrub everything up to the latest erasure time whatever came before them."""
        first: dict[str, Projection] = {}  # a repeated event applies once, like one by one
        for p in projections:
            first.setdefault(p.history.event_id, p)
        unique = list(first.values())
        if not unique:
            return 0
        erased_refs = {r for p in unique if p.erasure for r in p.erasure.refs}
        refs = {
            r
            for p in unique
            for r in (
                p.history.citizen_ref,
                *(_refs_of(p.item) if p.item else ()),
                p.notification.citizen_ref if p.notification else None,
            )
            if r
        }
        await self._lock(
            refs,
            erased_refs,
            {p.item.code for p in unique if p.item},
            {p.notification.notification_id for p in unique if p.notification},
        )
        erasures = await self._erasures(refs)
        fresh_ids = await self._insert_history([_scrub_history(p.history, erasures) for p in unique])
        fresh = [p for p in unique if p.history.event_id in fresh_ids]
        await self._merge(_ITEMS, [p.item for p in fresh if p.item is not None], erasures)
        await self._merge(
            _NOTIFICATIONS, [p.notification for p in fresh if p.notification is not None], erasures
        )
        for p in fresh:  # rare: one by one, after everything else of the batch
            if p.erasure is not None:
                await self._erase(p.erasure)
        return len(fresh)

    async def _lock(
        self, refs: set[str], erased_refs: set[str], codes: set[str], notification_ids: set[str]
    ) -> None:
        """Applying an event about a citizen holds the citizen's lock shared, an erasure
        exclusively; the read-modify-write of an item or notification holds its lock."""
        if refs or erased_refs or codes or notification_ids:
            await self.conn.execute(
                _LOCK_ALL, list(refs - erased_refs), list(erased_refs), list(codes), list(notification_ids)
            )

    async def _erasures(self, refs: set[str]) -> dict[str, datetime]:
        if not refs:
            return {}
        rows = await self.conn.fetch(
            "SELECT citizen_ref, erased_at FROM erasures WHERE citizen_ref = ANY($1::text[])", list(refs)
        )
        return {r["citizen_ref"]: r["erased_at"] for r in rows}

    async def _insert_history(self, entries: list[HistoryEntry]) -> set[str]:
        """Insert the entries not there yet; returns their event ids (the fresh events)."""
        columns = column_arrays(entries, _HISTORY_FIELDS)
        for i, name in enumerate(_HISTORY_FIELDS):
            if name in _JSON_FIELDS:
                columns[i] = jsonb_texts(columns[i])
        rows = await self.conn.fetch(_INSERT_HISTORY, *columns)
        return {r["event_id"] for r in rows}

    async def _merge(self, rows: _Rows[Row], facts: list[Row], erasures: dict[str, datetime]) -> None:
        """Fold the facts (several per row, in any order) into their stored rows."""
        if not facts:
            return
        by_key: dict[str, list[Row]] = {}
        for fact in facts:
            by_key.setdefault(getattr(fact, rows.key), []).append(fact)
        stored = await self.conn.fetch(rows.select, list(by_key))
        current = {r[rows.key]: rows.row(*tuple(r)[:-1]) for r in stored}
        erasures = {**erasures, **_stored_erasures(stored)}
        merged = []
        for key, group in by_key.items():
            row = rows.fold(current.get(key), group)
            assert row is not None
            latest = max((erasures[r] for r in _refs_of(row) if r in erasures), default=None)
            merged.append(rows.scrub(row, latest))
        await self.conn.execute(rows.upsert, *column_arrays(merged, rows.fields))

    async def _erase(self, erasure: Erasure) -> None:
        """Drop a citizen's reference (and their items' titles) from everything up to the
        latest erasure of that reference, and likewise the items keyed by a contact the
        erasure named. The caller holds each reference's lock exclusively."""
        for ref in erasure.refs:
            await self._erase_ref(ref, erasure.erased_at)

    async def _erase_ref(self, ref: str, erased_at: datetime) -> None:
        until = await self.conn.fetchval(
            "INSERT INTO erasures (citizen_ref, erased_at) VALUES ($1, $2) ON CONFLICT (citizen_ref)"
            " DO UPDATE SET erased_at = greatest(erasures.erased_at, EXCLUDED.erased_at) RETURNING erased_at",
            ref,
            erased_at,
        )
        await self.conn.execute(
            "UPDATE items SET citizen_ref = NULL, contact_ref = NULL, title = NULL, sealed_title = NULL,"
            " title_key_id = NULL, title_producer = NULL"
            " WHERE (citizen_ref = $1 OR contact_ref = $1) AND opened_at <= $2",
            ref,
            until,
        )
        await self.conn.execute(
            "UPDATE history SET citizen_ref = NULL WHERE citizen_ref = $1 AND at <= $2", ref, until
        )
        await self.conn.execute(
            "UPDATE notifications SET citizen_ref = NULL WHERE citizen_ref = $1 AND first_at <= $2",
            ref,
            until,
        )

    async def reset(self, consumer: str) -> None:
        """Empty the read models and the consumer's inbox, atomically (the caller's
        transaction). The inbox is locked first, in the order the consumer takes locks."""
        await self.conn.execute("LOCK TABLE inbox, history, items, notifications IN ACCESS EXCLUSIVE MODE")
        await self.conn.execute("TRUNCATE history, items, notifications")
        await self.conn.execute("DELETE FROM inbox WHERE consumer = $1", consumer)

    # ----- reading ------------------------------------------------------------------------

    async def item(self, code: str) -> asyncpg.Record | None:
        return await self.conn.fetchrow("SELECT * FROM items WHERE code = $1", code)

    async def history_of(self, code: str) -> list[asyncpg.Record]:
        """Every event about the item, its notifications' included, oldest first."""
        return await self.conn.fetch(
            "SELECT at, domain, aggregate, action, status, detail FROM history WHERE code = $1"
            " ORDER BY at, event_id",
            code,
        )

    async def citizen_items(self, ref: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT * FROM items WHERE citizen_ref = $1 ORDER BY opened_at DESC, code", ref
        )

    async def contact_items(
        self, contact_ref: str, page: int, size: int, code: str | None = None
    ) -> tuple[list[asyncpg.Record], int]:
        """One page of the items started with a contact (only the one of `code`, if
        given), newest first, and how many there are."""
        where = Where()
        where.add(f"contact_ref = {where.param(contact_ref)}")
        if code is not None:
            where.add(f"code = {where.param(code)}")
        total = await self.conn.fetchval(f"SELECT count(*) FROM items {where.clause}", *where.args)
        rows = await self.conn.fetch(
            f"SELECT * FROM items {where.clause} ORDER BY opened_at DESC, code {where.page(page, size)}",
            *where.args,
        )
        return rows, int(total)

    async def citizen_history(self, ref: str, limit: int = 500) -> list[asyncpg.Record]:
        # The citizen's own events, and events about their items that carry no
        # reference (e.g. a notification naming only the tracking code).
        return await self.conn.fetch(
            "SELECT h.at, h.domain, h.aggregate, h.action, h.status, h.code, h.category, h.opd, h.detail"
            " FROM history h WHERE h.citizen_ref = $1"
            " OR (h.citizen_ref IS NULL AND h.code IN (SELECT code FROM items WHERE citizen_ref = $1))"
            " ORDER BY h.at DESC, h.event_id DESC LIMIT $2",
            ref,
            limit,
        )

    async def feed(self, *, after: int = 0, limit: int = 30) -> list[asyncpg.Record]:
        """Newest events (after `after`, by arrival), joined with their item's title,
        confidentiality and current status."""
        return await self.conn.fetch(
            "SELECT * FROM (SELECT h.seq, h.at, h.domain, h.aggregate, h.action, h.status, h.code,"
            " h.category, h.opd, h.kecamatan_code, h.confidential, h.detail, i.title, i.sealed_title,"
            " i.title_key_id, i.title_producer,"
            " i.confidential AS item_confidential, i.status AS item_status"
            " FROM history h LEFT JOIN items i ON i.code = h.code"
            " WHERE h.seq > $1 ORDER BY h.seq DESC LIMIT $2) newest ORDER BY seq",
            after,
            limit,
        )

    async def max_seq(self) -> int:
        return int(await self.conn.fetchval("SELECT coalesce(max(seq), 0) FROM history"))

    async def opd_stats(self) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT opd,"
            " count(*) FILTER (WHERE phase = 'open') AS open,"
            " count(*) FILTER (WHERE phase = 'done') AS done,"
            " count(*) FILTER (WHERE phase = 'done' AND sla_breaches = 0) AS within_sla,"
            " count(*) FILTER (WHERE sla_breaches > 0) AS breached_items,"
            " coalesce(sum(sla_breaches), 0) AS breaches,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM done_at - opened_at))"
            "   FILTER (WHERE phase = 'done' AND done_at IS NOT NULL) AS median_seconds"
            " FROM items WHERE opd IS NOT NULL AND domain IN ('complaints', 'permits')"
            " GROUP BY opd ORDER BY opd"
        )

    async def region_counts(self) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT kecamatan_code, domain, count(*) FILTER (WHERE phase = 'open') AS open,"
            " count(*) AS total FROM items WHERE kecamatan_code IS NOT NULL GROUP BY 1, 2"
        )

    async def desa_counts(self, kecamatan_code: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT coalesce(desa_code, '') AS desa_code, domain, coalesce(category, '') AS category,"
            " count(*) FILTER (WHERE phase = 'open') AS open, count(*) AS total FROM items"
            " WHERE kecamatan_code = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            kecamatan_code,
        )

    async def open_by_dimension(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT dimension, count(*) AS n FROM items WHERE phase = 'open' AND dimension IS NOT NULL"
            " GROUP BY dimension"
        )
        return {r["dimension"]: r["n"] for r in rows}

    async def daily_counts(self, since: datetime, timezone: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT (at AT TIME ZONE $2)::date AS day, domain, count(*) AS n FROM history"
            " WHERE at >= $1 GROUP BY 1, 2 ORDER BY 1, 2",
            since,
            timezone,
        )

    async def open_by_domain(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT domain, count(*) AS n FROM items WHERE phase = 'open' GROUP BY domain"
        )
        return {r["domain"]: r["n"] for r in rows}

    async def last_event_at(self) -> datetime | None:
        return await self.conn.fetchval("SELECT max(at) FROM history")

    async def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every read-model row in a stable order, without the arrival sequence: what a
        rebuild must reproduce exactly."""
        return {
            "items": [dict(r) for r in await self.conn.fetch("SELECT * FROM items ORDER BY code")],
            "history": [
                {k: v for k, v in dict(r).items() if k != "seq"}
                for r in await self.conn.fetch("SELECT * FROM history ORDER BY event_id")
            ],
            "notifications": [
                dict(r) for r in await self.conn.fetch("SELECT * FROM notifications ORDER BY notification_id")
            ],
            "erasures": [
                dict(r) for r in await self.conn.fetch("SELECT * FROM erasures ORDER BY citizen_ref")
            ],
        }

    async def indicator(self, function: str, params: Params, window: Window) -> asyncpg.Record:
        """The row an indicator function turns into its value (indicators.py)."""
        query = indicator_query(function, params, window)
        row = await self.conn.fetchrow(query.sql, *query.args)
        assert row is not None  # an aggregate without GROUP BY returns one row
        return row


async def reset(pool: asyncpg.Pool, consumer: str) -> None:
    """Empty the read models and the consumer's inbox, in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        await ReadModel(conn).reset(consumer)


@asynccontextmanager
async def rebuild_lock(pool: asyncpg.Pool) -> AsyncIterator[bool]:
    """The database-wide rebuild lock (a session advisory lock, on a connection of its own
    for as long as it is held): yields whether it was free and is now held."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_LOCK):
            yield False
            return
        try:
            yield True
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", REBUILD_LOCK)


# ----- indicator functions ------------------------------------------------------------
# One query per named function of indicators.py, for a reporting window; the function
# turns the row into the value.


@dataclass(frozen=True)
class Query:
    sql: str
    args: list[Any]


def _any_of(where: Where, column: str, values: Sequence[str]) -> None:
    if values:
        where.add(f"{column} = ANY({where.param(list(values))})")


def _within(where: Where, column: str, window: Window) -> None:
    """`column` in [start, end) of the window."""
    where.add(f"{column} >= {where.param(window.start)}")
    where.add(f"{column} < {where.param(window.end)}")


def _items(where: Where, p: ItemFilter) -> None:
    _any_of(where, "domain", p.domains)
    _any_of(where, "category", p.categories)
    _any_of(where, "opd", p.opds)
    _any_of(where, "kecamatan_code", p.kecamatan)


def _share_within_sla(p: ItemFilter, window: Window) -> Query:
    where = Where()
    where.add("phase = 'done'")
    _within(where, "done_at", window)
    _items(where, p)
    return Query(
        "SELECT count(*) AS done, count(*) FILTER (WHERE sla_breaches = 0) AS within"
        f" FROM items {where.clause}",
        where.args,
    )


def _count_events(p: EventFilter, window: Window) -> Query:
    where = Where()
    _within(where, "at", window)
    if p.event_types and p.actions:
        types_, actions = where.param(list(p.event_types)), where.param(list(p.actions))
        where.add(f"(event_type = ANY({types_}) OR action = ANY({actions}))")
    else:
        _any_of(where, "event_type", p.event_types)
        _any_of(where, "action", p.actions)
    _any_of(where, "domain", p.domains)
    _any_of(where, "category", p.categories)
    _any_of(where, "kecamatan_code", p.kecamatan)
    return Query(f"SELECT count(*) AS n FROM history {where.clause}", where.args)


def _open_items(p: ItemFilter, window: Window) -> Query:
    where = Where()
    as_of = where.param(window.as_of)
    # Open at `as_of`: opened by then, and still open now or ended after it.
    where.add(f"opened_at <= {as_of}")
    where.add(
        f"(phase = 'open' OR COALESCE(CASE WHEN phase = 'done' THEN done_at END, last_event_at) > {as_of})"
    )
    _items(where, p)
    return Query(f"SELECT count(*) AS n FROM items {where.clause}", where.args)


def _median_duration(p: DurationParams, window: Window) -> Query:
    if p.measure == "wait":
        span, ended, condition = (
            "wait_ended_at - wait_started_at",
            "wait_ended_at",
            "wait_started_at IS NOT NULL",
        )
    else:
        span, ended, condition = "done_at - opened_at", "done_at", "phase = 'done'"
    where = Where()
    _within(where, ended, window)
    where.add(condition)
    _items(where, p)
    return Query(
        f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM {span})) AS seconds,"
        f" count(*) AS n FROM items {where.clause}",
        where.args,
    )


def _bed_availability(p: BedParams, window: Window) -> Query:
    where = Where()
    where.add(f"at <= {where.param(window.as_of)}")
    where.add("action = 'bed_availability_changed'")
    _any_of(where, "detail->>'facility'", p.facilities)
    _any_of(where, "detail->>'bed_class'", p.bed_classes)
    return Query(
        "SELECT coalesce(sum((detail->>'available')::int), 0) AS available,"
        " coalesce(sum((detail->>'total')::int), 0) AS total, count(*) AS wards FROM ("
        f" SELECT DISTINCT ON (code) detail FROM history {where.clause}"
        " ORDER BY code, at DESC, event_id DESC) latest",
        where.args,
    )


def _notification_reach(p: NotificationParams, window: Window) -> Query:
    where = Where()
    _within(where, "first_at", window)
    _any_of(where, "channel", p.channels)
    _any_of(where, "recipient_kind", p.recipients)
    return Query(
        f"SELECT count(*) AS sent, count(delivered_at) AS delivered FROM notifications {where.clause}",
        where.args,
    )


def _distinct_citizens(p: CitizenParams, window: Window) -> Query:
    where = Where()
    _within(where, "at", window)
    where.add("citizen_ref IS NOT NULL")
    _any_of(where, "domain", p.domains)
    return Query(f"SELECT count(DISTINCT citizen_ref) AS n FROM history {where.clause}", where.args)


INDICATOR_QUERIES: dict[str, Callable[[Any, Window], Query]] = {
    "share_within_sla": _share_within_sla,
    "count_events": _count_events,
    "open_items": _open_items,
    "median_duration": _median_duration,
    "bed_availability": _bed_availability,
    "notification_reach": _notification_reach,
    "distinct_citizens": _distinct_citizens,
}


def indicator_query(function: str, params: Params, window: Window) -> Query:
    return INDICATOR_QUERIES[function](params, window)


# The items a citizen's export finds: by their citizen reference (the data protection
# officer's, by NIK) or by the keyed hash of the contact the case was started with.
_CITIZEN_ITEMS = "SELECT code FROM items WHERE citizen_ref = $1 OR contact_ref = ANY($2::text[])"


class CitizenTimeline:
    """What the integration view holds about a citizen, for their export: their cases as
    the read model keeps them and the timeline of each (every event about them, the
    notifications' included). It keeps no NIK and no contact: nothing to open."""

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        args = (citizen.citizen_ref, list(citizen.contact_refs))
        items = await conn.fetch(
            "SELECT code, domain, aggregate, status, phase, opd, category, kind, desa_code, title,"
            " confidential, opened_at, done_at, last_event_at FROM items"
            f" WHERE code IN ({_CITIZEN_ITEMS}) ORDER BY opened_at, code",
            *args,
        )
        timeline = await conn.fetch(
            "SELECT at, domain, aggregate, action, code, status, detail FROM history"
            f" WHERE code IN ({_CITIZEN_ITEMS}) OR citizen_ref = $1 ORDER BY at, event_id",
            *args,
        )
        notifications = await conn.fetch(
            "SELECT notification_id, code, channel, status, template, first_at, delivered_at FROM notifications"
            f" WHERE recipient_kind = 'citizen' AND (code IN ({_CITIZEN_ITEMS}) OR citizen_ref = $1)"
            " ORDER BY first_at, notification_id",
            *args,
        )
        return {
            "items": [dict(r) for r in items],
            "timeline": [dict(r) for r in timeline],
            "notifications": [dict(r) for r in notifications],
        }
