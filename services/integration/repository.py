"""asyncpg queries for the integration view's read models (migrations/)."""

from __future__ import annotations

import dataclasses
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
    merge_item,
    merge_notification,
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


def _upsert_sql(table: str, fields: list[str], key: str) -> str:
    columns = ", ".join(fields)
    values = ", ".join(f"${i}" for i in range(1, len(fields) + 1))
    updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in fields if f != key)
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE SET {updates}"


_UPSERT_ITEM = _upsert_sql("items", _ITEM_FIELDS, "code")
_UPSERT_NOTIFICATION = _upsert_sql("notifications", _NOTIFICATION_FIELDS, "notification_id")
_INSERT_HISTORY = (
    f"INSERT INTO history ({', '.join(_HISTORY_FIELDS)}) VALUES"
    f" ({', '.join(f'${i}' for i in range(1, len(_HISTORY_FIELDS) + 1))})"
    " ON CONFLICT (event_id) DO NOTHING RETURNING true"
)


class ReadModel:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # ----- writing (inside the consumer's inbox transaction) -----------------------------

    async def apply(self, projection: Projection) -> bool:
        """Apply what one event says; False if this event was already applied."""
        h = projection.history
        refs = {
            r
            for r in (
                h.citizen_ref,
                *(f.citizen_ref for f in (projection.item, projection.notification) if f),
            )
            if r
        }
        for ref in sorted(refs):
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))", _LOCK_CITIZEN, ref
            )
        erasures = await self._erasures(refs)
        if h.citizen_ref and erased(h.at, erasures.get(h.citizen_ref)):
            h = dataclasses.replace(h, citizen_ref=None)
        fresh = await self.conn.fetchval(_INSERT_HISTORY, *(getattr(h, f) for f in _HISTORY_FIELDS))
        if not fresh:
            return False
        if projection.item is not None:
            await self._merge_item(projection.item, erasures)
        if projection.notification is not None:
            await self._merge_notification(projection.notification, erasures)
        if projection.erasure is not None:
            await self._erase(projection.erasure)
        return True

    async def _erasures(self, refs: set[str]) -> dict[str, datetime]:
        if not refs:
            return {}
        rows = await self.conn.fetch(
            "SELECT citizen_ref, erased_at FROM erasures WHERE citizen_ref = ANY($1)", list(refs)
        )
        return {r["citizen_ref"]: r["erased_at"] for r in rows}

    async def _merge_item(self, fact: Item, erasures: dict[str, datetime]) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_ITEM, fact.code)
        row = await self.conn.fetchrow("SELECT * FROM items WHERE code = $1", fact.code)
        merged = merge_item(Item(**dict(row)) if row else None, fact)
        merged = scrub_item(merged, erasures.get(merged.citizen_ref or ""))
        await self.conn.execute(_UPSERT_ITEM, *(getattr(merged, f) for f in _ITEM_FIELDS))

    async def _merge_notification(self, fact: Notification, erasures: dict[str, datetime]) -> None:
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_NOTIFICATION, fact.notification_id
        )
        row = await self.conn.fetchrow(
            "SELECT * FROM notifications WHERE notification_id = $1", fact.notification_id
        )
        merged = merge_notification(Notification(**dict(row)) if row else None, fact)
        merged = scrub_notification(merged, erasures.get(merged.citizen_ref or ""))
        await self.conn.execute(_UPSERT_NOTIFICATION, *(getattr(merged, f) for f in _NOTIFICATION_FIELDS))

    async def _erase(self, erasure: Erasure) -> None:
        """Drop a citizen's reference (and their items' titles) from everything up to the
        latest erasure of that reference."""
        ref = erasure.citizen_ref
        await self.conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_CITIZEN, ref)
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
