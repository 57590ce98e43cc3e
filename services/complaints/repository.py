"""asyncpg queries for the complaints service's own tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.complaints.catalogue import Catalogue
from services.complaints.domain import (
    CITIZENS_WORDS,
    OPEN_STATUSES,
    Complaint,
    Reporter,
    SlaClock,
    SlaState,
    Status,
)
from services.complaints.open311 import ApiKey, RequestQuery
from shared.kit.citizen_data import ERASED_TEXT, Citizen, CitizenTable
from shared.kit.history import HistoryEntry
from shared.kit.sql import (
    Where,
    add_with_history,
    column_arrays,
    insert_many_sql,
    insert_sql,
    load_history,
    save_history,
    save_sql,
    select_sql,
)
from shared.schemas.common import GeoPoint

# The reporter's columns, by the Reporter field each holds.
_REPORTER = {name: f"reporter_{name}" for name in ("nik", "name", "phone", "email")}
# Columns written when a complaint is filed and never changed afterwards.
_IDENTITY = (
    "id",
    "tracking_code",
    "kind",
    "category",
    "dimension",
    "title",
    "description",
    "desa_code",
    "kecamatan_code",
    "lat",
    "lon",
    "anonymous",
    "confidential",
    *_REPORTER.values(),
    "citizen_ref",
    "locale",
    "channel",
    "filed_at",
)
# Columns written when filed and rewritten on every save: the status and these, named
# as the Complaint's fields.
_PLAIN_STATE = (
    "opd",
    "rating",
    "rating_comment",
    "duplicate_of",
    "resolved_at",
    "closed_at",
    "reopen_count",
    "resolution_photo",
)
_STATE = ("status", *_PLAIN_STATE)
_KEY_COLUMNS = ("id", "client", "prefix", "issued_at", "issued_by", "revoked_at", "revoked_by")
_COLUMNS = (*_IDENTITY, *_STATE, "version")
_HISTORY = ("complaint_history", "complaint_id")  # the history table and its key
_CLOCK_COLUMNS = (("complaint_id", "uuid"), ("name", "text"), *((n, "timestamptz") for n in (
    "started_at", "due_at", "warn_at", "stopped_at", "warned_at", "breached_at")))  # fmt: skip


# A complaint's SLA clocks, stored or updated in one statement (not one per clock).
def _clocks_sql(first: int = 1) -> str:
    """The statement storing a complaint's SLA clocks, its parameters from `$first`."""
    return insert_many_sql(
        "sla_clocks",
        _CLOCK_COLUMNS,
        on_conflict="(complaint_id, name) DO UPDATE SET "
        + ", ".join(f"{n}=EXCLUDED.{n}" for n, _ in _CLOCK_COLUMNS[2:]),
        first=first,
    )


_SAVE_CLOCKS = _clocks_sql()


def _identity(c: Complaint) -> list[Any]:
    return [
        c.id,
        c.tracking_code,
        c.kind,
        c.category.code,
        c.category.dimension,
        c.title,
        c.description,
        c.desa_code,
        c.kecamatan_code,
        c.location.lat if c.location else None,
        c.location.lon if c.location else None,
        c.anonymous,
        c.confidential,
        *(getattr(c.reporter, name) for name in _REPORTER),
        c.citizen_ref,
        c.locale,
        c.channel,
        c.filed_at,
    ]


def _clock_arrays(c: Complaint) -> list[list[Any]]:
    """The parameters of `_clocks_sql`: the complaint's clocks, column by column."""
    clocks = list(c.clocks.values())
    return [[c.id] * len(clocks), *column_arrays(clocks, [n for n, _ in _CLOCK_COLUMNS[1:]])]


def _state(c: Complaint) -> list[Any]:
    return [c.status.value, *(getattr(c, name) for name in _PLAIN_STATE)]


def _running_clock(condition: str) -> str:
    """The complaint has a running SLA clock meeting `condition`."""
    return (
        "EXISTS (SELECT 1 FROM sla_clocks k WHERE k.complaint_id = c.id"
        f" AND k.stopped_at IS NULL AND {condition})"
    )


@dataclass(frozen=True)
class ListFilter:
    status: str | None = None
    opd: str | None = None
    category: str | None = None
    kecamatan_code: str | None = None
    kind: str | None = None
    sla: str | None = None  # SlaState.BREACHED or SlaState.AT_RISK
    filed_from: datetime | None = None
    filed_to: datetime | None = None
    page: int = 1
    page_size: int = 20
    # "filed": newest first; "due": the soonest running SLA clock first (an inbox)
    sort: str = "filed"


# The orders a list may be asked in (the API's `sort`).
ORDERS = {"filed": "c.filed_at DESC, c.id", "due": "next_due ASC NULLS LAST, c.filed_at, c.id"}


class ComplaintRepository:
    def __init__(self, conn: asyncpg.Connection, catalogue: Catalogue) -> None:
        self.conn = conn
        self.catalogue = catalogue

    async def add(self, c: Complaint) -> None:
        """The complaint's row, its history and its SLA clocks: one statement."""
        values = [*_identity(c), *_state(c), c.version]
        await add_with_history(
            self.conn,
            "complaints",
            _COLUMNS,
            values,
            *_HISTORY,
            c,
            rows_of=_clocks_sql,
            rows=_clock_arrays(c),
        )

    async def save(self, c: Complaint) -> None:
        await self.conn.execute(save_sql("complaints", _STATE), c.id, *_state(c))
        await save_history(self.conn, *_HISTORY, c)
        await self._save_clocks(c)

    async def _save_clocks(self, c: Complaint) -> None:
        await self.conn.execute(_SAVE_CLOCKS, *_clock_arrays(c))

    async def get(self, tracking_code: str, *, for_update: bool = False) -> Complaint | None:
        query = select_sql("complaints", _COLUMNS, "tracking_code", for_update=for_update)
        row = await self.conn.fetchrow(query, tracking_code)
        if row is None:
            return None
        history = await load_history(self.conn, "complaint_history", "complaint_id", row["id"], Status)
        clocks = await self.conn.fetch(
            "SELECT name, started_at, due_at, warn_at, stopped_at, warned_at, breached_at"
            " FROM sla_clocks WHERE complaint_id = $1",
            row["id"],
        )
        return self._to_domain(row, history, clocks)

    def _to_domain(self, row: Any, history: list[HistoryEntry[Status]], clocks: list[Any]) -> Complaint:
        location = GeoPoint(lat=row["lat"], lon=row["lon"]) if row["lat"] is not None else None
        return Complaint(
            id=row["id"],
            tracking_code=row["tracking_code"],
            kind=row["kind"],
            category=self.catalogue.category(row["category"], opd=row["opd"], dimension=row["dimension"]),
            title=row["title"],
            description=row["description"],
            desa_code=row["desa_code"],
            kecamatan_code=row["kecamatan_code"],
            anonymous=row["anonymous"],
            confidential=row["confidential"],
            reporter=Reporter(**{name: row[column] for name, column in _REPORTER.items()}),
            citizen_ref=row["citizen_ref"],
            locale=row["locale"],
            filed_at=row["filed_at"],
            channel=row["channel"],
            location=location,
            status=Status(row["status"]),
            **{name: row[name] for name in _PLAIN_STATE},
            version=row["version"],
            clocks={r["name"]: SlaClock(**dict(r)) for r in clocks},
            history=history,
        )

    async def list(self, f: ListFilter, now: datetime) -> tuple[list[dict[str, Any]], int]:
        w = Where()
        for column in ("status", "opd", "category", "kecamatan_code", "kind"):
            w.equal(f"c.{column}", getattr(f, column))
        w.within("c.filed_at", f.filed_from, f.filed_to)
        # A running clock in the state asked for (the thresholds of SlaClock.state).
        if f.sla == SlaState.BREACHED:
            w.add(_running_clock(f"k.due_at <= {w.param(now)}"))
        elif f.sla == SlaState.AT_RISK:
            at = w.param(now)
            w.add(_running_clock(f"k.warn_at <= {at} AND k.due_at > {at}"))
        total = await self.conn.fetchval(f"SELECT count(*) FROM complaints c {w.clause}", *w.args)
        rows = await self.conn.fetch(
            "SELECT c.tracking_code, c.kind, c.category, c.opd, c.title, c.status, c.desa_code,"
            " c.kecamatan_code, c.anonymous, c.confidential, c.filed_at, c.updated_at,"
            " (SELECT min(k.due_at) FROM sla_clocks k WHERE k.complaint_id = c.id"
            "   AND k.stopped_at IS NULL) AS next_due"
            f" FROM complaints c {w.clause} ORDER BY {ORDERS[f.sort]} {w.page(f.page, f.page_size)}",
            *w.args,
        )
        return [dict(r) for r in rows], int(total)

    async def with_sla_due(self, now: datetime, limit: int = 100) -> list[str]:
        """Tracking codes whose clocks owe a warning or a breach. The watcher then loads
        each complaint FOR UPDATE and emits from its persisted clock state, so two
        instances running the watcher never emit the same warning twice."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT c.tracking_code FROM sla_clocks k JOIN complaints c ON c.id = k.complaint_id"
            " WHERE k.stopped_at IS NULL AND k.breached_at IS NULL"
            " AND ((k.warned_at IS NULL AND k.warn_at <= $1) OR k.due_at <= $1)"
            " LIMIT $2",
            now,
            limit,
        )
        return [r["tracking_code"] for r in rows]

    async def open_by_opd(self) -> list[tuple[str, int]]:
        rows = await self.conn.fetch(
            "SELECT coalesce(opd, '-') AS opd, count(*) AS n FROM complaints"
            " WHERE status = ANY($1::text[]) GROUP BY 1",
            sorted(OPEN_STATUSES),
        )
        return [(r["opd"], r["n"]) for r in rows]

    # ----- Open311 (services/complaints/open311.py) ----------------------------------------------

    async def add_api_key(self, key: ApiKey, hashed: str) -> None:
        await self.conn.execute(
            insert_sql("open311_keys", (*_KEY_COLUMNS, "key_hash")),
            *(getattr(key, c) for c in _KEY_COLUMNS),
            hashed,
        )

    async def revoke_api_key(self, key_id: uuid.UUID, by: str, at: datetime) -> ApiKey | None:
        """The key, revoked now unless it already was."""
        row = await self.conn.fetchrow(
            "UPDATE open311_keys SET revoked_at = coalesce(revoked_at, $2),"
            f" revoked_by = coalesce(revoked_by, $3) WHERE id = $1 RETURNING {', '.join(_KEY_COLUMNS)}",
            key_id,
            at,
            by,
        )
        return ApiKey(**dict(row)) if row else None

    async def api_keys(self) -> list[ApiKey]:
        rows = await self.conn.fetch(f"SELECT {', '.join(_KEY_COLUMNS)} FROM open311_keys ORDER BY issued_at")
        return [ApiKey(**dict(r)) for r in rows]

    async def active_api_key(self, hashed: str) -> ApiKey | None:
        row = await self.conn.fetchrow(
            f"SELECT {', '.join(_KEY_COLUMNS)} FROM open311_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hashed,
        )
        return ApiKey(**dict(row)) if row else None

    async def add_open311_request(
        self, token: uuid.UUID, tracking_code: str, key_id: uuid.UUID, at: datetime
    ) -> None:
        await self.conn.execute(
            insert_sql("open311_requests", ("token", "tracking_code", "key_id", "filed_at")),
            token,
            tracking_code,
            key_id,
            at,
        )

    async def open311_token(self, token: uuid.UUID) -> str | None:
        """The tracking code of the complaint a client filed under `token`."""
        value = await self.conn.fetchval("SELECT tracking_code FROM open311_requests WHERE token = $1", token)
        return str(value) if value is not None else None

    async def open311_requests(self, q: RequestQuery) -> list[dict[str, Any]]:
        """Complaints as GET requests lists them, newest first, with the completion clock
        still running (the expected date) and the latest step's note."""
        w = Where()
        for column, values in (
            ("tracking_code", q.tracking_codes),
            ("category", q.categories),
            ("status", q.statuses),
        ):
            if values is not None:
                w.add(f"c.{column} = ANY({w.param(values)}::text[])")
        w.within("c.filed_at", q.filed_from, q.filed_to)
        rows = await self.conn.fetch(
            "SELECT c.tracking_code, c.category, c.opd, c.status, c.description, c.desa_code, c.lat, c.lon,"
            " c.anonymous, c.confidential, c.filed_at, c.updated_at,"
            " (SELECT k.due_at FROM sla_clocks k WHERE k.complaint_id = c.id AND k.name = 'completion'"
            "   AND k.stopped_at IS NULL) AS expected_at,"
            " (SELECT h.note FROM complaint_history h WHERE h.complaint_id = c.id AND h.note IS NOT NULL"
            "   ORDER BY h.id DESC LIMIT 1) AS last_note"
            f" FROM complaints c {w.clause} ORDER BY c.filed_at DESC, c.id LIMIT {w.param(q.limit)}",
            *w.args,
        )
        return [dict(r) for r in rows]


class CitizenRecords(
    CitizenTable,
    table="complaints",
    nik_column="reporter_nik",
    order_by="filed_at",
    files="photos",
    contact_columns=("reporter_phone", "reporter_email"),
):
    """The complaints a citizen filed, named or (found by the contact the request gives)
    anonymous, for export and erasure.

    Erasure removes the reporter's identity and contact, the link to the citizen
    (citizen_ref), everything the citizen wrote or showed (title, description, the
    point on the map, photos, the rating's comment, the notes of `CITIZENS_WORDS`) and
    the complaint's attachments. What statistics and the OPD's record need stays:
    kind, category, desa and kecamatan, OPD, status, dates, SLA clocks, rating, the
    officers' notes on the work (docs/privacy.md)."""

    columns = (
        "tracking_code, kind, category, title, description, desa_code, lat, lon, status, filed_at,"
        " reporter_name, reporter_phone, reporter_email, rating, rating_comment"
    )

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        exported = await super().export(conn, citizen)
        exported["history"] = await self.rows_about(
            conn,
            citizen,
            "SELECT c.tracking_code, h.at, h.action, h.status, h.note FROM complaint_history h"
            f" JOIN complaints c ON c.id = h.complaint_id WHERE {self.about} ORDER BY h.at, h.id",
        )
        return exported

    async def erase(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, int]:
        # The photos and notes first, while the complaints still name the citizen.
        photos = await self.erase_files(conn, citizen, Status)
        notes = await self.change_about(
            conn,
            citizen,
            "UPDATE complaint_history SET note = NULL WHERE note IS NOT NULL"
            f" AND action = ANY({self.arg(1)}::text[])"
            f" AND complaint_id IN (SELECT id FROM complaints WHERE {self.about})",
            sorted(CITIZENS_WORDS),
        )
        erased = await self.change(
            conn,
            citizen,
            "reporter_nik = NULL, reporter_name = NULL, reporter_phone = NULL, reporter_email = NULL,"
            f" citizen_ref = NULL, title = {self.arg(1)}, description = {self.arg(1)}, lat = NULL, lon = NULL,"
            " rating_comment = NULL, resolution_photo = NULL, updated_at = now()",
            ERASED_TEXT,
        )
        return {"complaints": erased, "photos": photos, "notes": notes}
