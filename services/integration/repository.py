"""asyncpg queries for the integration view's read models (migrations/)."""

from __future__ import annotations

import dataclasses
import json
import operator
import types
import typing
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.integration.domain import (
    Erasure,
    HistoryEntry,
    Item,
    Notification,
    Projection,
    erased,
    fold_item,
    fold_notification,
    scrub_item,
    scrub_notification,
)

# Two-key advisory locks (namespace, hash of the code) serialise the read-modify-write
# of one item across transactions (live consumer, a rebuild, a second instance).
_LOCK_ITEM = 0x494E5431  # "INT1"
_LOCK_NOTIFICATION = 0x494E5432
# Applying an event about a citizen holds this lock shared, an erasure exclusively: an
# erasure never misses a row that a concurrent transaction is writing.
_LOCK_CITIZEN = 0x494E5433
REBUILD_LOCK = 0x494E5452  # one rebuild at a time per database

_ITEM_FIELDS = [f.name for f in dataclasses.fields(Item)]
_NOTIFICATION_FIELDS = [f.name for f in dataclasses.fields(Notification)]
_HISTORY_FIELDS = [f.name for f in dataclasses.fields(HistoryEntry)]
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


def _columns(cls: type) -> list[tuple[str, str]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, _sql_type(hints[f.name])) for f in dataclasses.fields(cls)]


def _insert_many_sql(table: str, columns: list[tuple[str, str]], conflict: str) -> str:
    """INSERT of many rows as one statement, one array parameter per column (jsonb as
    JSON text, cast in SQL: the pool's jsonb codec is for single values)."""
    params = ", ".join(
        f"${i}::{'text' if t == 'jsonb' else t}[]" for i, (_, t) in enumerate(columns, start=1)
    )
    names = [n for n, _ in columns]
    select = ", ".join(f"{n}::jsonb" if t == "jsonb" else n for n, t in columns)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {select}"
        f" FROM unnest({params}) AS t({', '.join(names)}) ON CONFLICT {conflict}"
    )


def _upsert_many_sql(table: str, columns: list[tuple[str, str]], key: str) -> str:
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n, _ in columns if n != key)
    return _insert_many_sql(table, columns, f"({key}) DO UPDATE SET {updates}")


_UPSERT_ITEMS = _upsert_many_sql("items", _columns(Item), "code")
_UPSERT_NOTIFICATIONS = _upsert_many_sql("notifications", _columns(Notification), "notification_id")
_INSERT_HISTORY = _insert_many_sql(
    "history", _columns(HistoryEntry), "(event_id) DO NOTHING RETURNING event_id"
)
_JSON_FIELDS = {n for n, t in _columns(HistoryEntry) if t == "jsonb"}

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


def _stored_erasures(rows: list[asyncpg.Record]) -> dict[str, datetime]:
    """The erasures of the references already on the stored rows (an event may carry no
    reference, or the batch another one): a merged row is scrubbed against its own."""
    return {r["citizen_ref"]: r["erased_at"] for r in rows if r["erased_at"] is not None}


def _arrays(rows: Sequence[Any], columns: list[str]) -> list[list[Any]]:
    """Column-wise lists of dataclass rows, the parameters of an unnest statement."""
    if not rows:
        return [[] for _ in columns]
    return [list(column) for column in zip(*map(operator.attrgetter(*columns), rows), strict=True)]


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
        erased_refs = {p.erasure.citizen_ref for p in unique if p.erasure}
        refs = {
            r
            for p in unique
            for r in (
                p.history.citizen_ref,
                p.item.citizen_ref if p.item else None,
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
        item_facts: dict[str, list[Item]] = {}
        notification_facts: dict[str, list[Notification]] = {}
        for p in fresh:
            if p.item is not None:
                item_facts.setdefault(p.item.code, []).append(p.item)
            if p.notification is not None:
                notification_facts.setdefault(p.notification.notification_id, []).append(p.notification)
        if item_facts:
            await self._merge_items(item_facts, erasures)
        if notification_facts:
            await self._merge_notifications(notification_facts, erasures)
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
        columns = _arrays(entries, _HISTORY_FIELDS)
        for i, name in enumerate(_HISTORY_FIELDS):
            if name in _JSON_FIELDS:
                columns[i] = [json.dumps(v) for v in columns[i]]
        rows = await self.conn.fetch(_INSERT_HISTORY, *columns)
        return {r["event_id"] for r in rows}

    async def _merge_items(self, facts: dict[str, list[Item]], erasures: dict[str, datetime]) -> None:
        rows = await self.conn.fetch(
            f"SELECT {', '.join(f'i.{f}' for f in _ITEM_FIELDS)}, e.erased_at AS erased_at"
            " FROM items i LEFT JOIN erasures e ON e.citizen_ref = i.citizen_ref"
            " WHERE i.code = ANY($1::text[])",
            list(facts),
        )
        current = {r["code"]: Item(*tuple(r)[:-1]) for r in rows}
        erasures = {**erasures, **_stored_erasures(rows)}
        merged = []
        for code, item_facts in facts.items():
            item = fold_item(current.get(code), item_facts)
            assert item is not None
            merged.append(scrub_item(item, erasures.get(item.citizen_ref or "")))
        await self.conn.execute(_UPSERT_ITEMS, *_arrays(merged, _ITEM_FIELDS))

    async def _merge_notifications(
        self, facts: dict[str, list[Notification]], erasures: dict[str, datetime]
    ) -> None:
        rows = await self.conn.fetch(
            f"SELECT {', '.join(f'n.{f}' for f in _NOTIFICATION_FIELDS)}, e.erased_at AS erased_at"
            " FROM notifications n LEFT JOIN erasures e ON e.citizen_ref = n.citizen_ref"
            " WHERE n.notification_id = ANY($1::text[])",
            list(facts),
        )
        current = {r["notification_id"]: Notification(*tuple(r)[:-1]) for r in rows}
        erasures = {**erasures, **_stored_erasures(rows)}
        merged = []
        for notification_id, notification_facts in facts.items():
            notification = fold_notification(current.get(notification_id), notification_facts)
            assert notification is not None
            merged.append(scrub_notification(notification, erasures.get(notification.citizen_ref or "")))
        await self.conn.execute(_UPSERT_NOTIFICATIONS, *_arrays(merged, _NOTIFICATION_FIELDS))

    async def _erase(self, erasure: Erasure) -> None:
        """Drop a citizen's reference (and their items' titles) from everything up to the
        latest erasure of that reference. The caller holds the citizen's lock exclusively."""
        ref = erasure.citizen_ref
        until = await self.conn.fetchval(
            "INSERT INTO erasures (citizen_ref, erased_at) VALUES ($1, $2) ON CONFLICT (citizen_ref)"
            " DO UPDATE SET erased_at = greatest(erasures.erased_at, EXCLUDED.erased_at) RETURNING erased_at",
            ref,
            erasure.erased_at,
        )
        await self.conn.execute(
            "UPDATE items SET citizen_ref = NULL, title = NULL WHERE citizen_ref = $1 AND opened_at <= $2",
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
        # Notifications to officers about the item are internal: the public sees the
        # citizen's own notifications only.
        return await self.conn.fetch(
            "SELECT at, domain, aggregate, action, status, detail FROM history WHERE code = $1"
            " AND (domain <> 'notifications' OR coalesce(detail->>'recipient', 'citizen') = 'citizen')"
            " ORDER BY at, event_id",
            code,
        )

    async def citizen_items(self, ref: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT * FROM items WHERE citizen_ref = $1 ORDER BY opened_at DESC, code", ref
        )

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
        """Newest events (after `after`, by arrival), joined with their item's public
        title and confidentiality."""
        return await self.conn.fetch(
            "SELECT * FROM (SELECT h.seq, h.at, h.domain, h.aggregate, h.action, h.status, h.code,"
            " h.category, h.opd, h.kecamatan_code, h.confidential, h.detail, i.title,"
            " i.confidential AS item_confidential FROM history h LEFT JOIN items i ON i.code = h.code"
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
