"""asyncpg queries for the permits service's own tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.permits.catalogue import Catalogue
from services.permits.domain import (
    APPLICANTS_WORDS,
    OPEN_STATUSES,
    Applicant,
    Application,
    Document,
    SlaClock,
    SlaState,
    Status,
    Terms,
)
from shared.kit.citizen_data import ERASED_TEXT, Citizen, CitizenTable
from shared.kit.history import HistoryEntry
from shared.kit.sql import (
    Where,
    add_with_history,
    load_history,
    save_history,
    save_sql,
    select_sql,
)
from shared.schemas.common import AttachmentRef

# The SLA clock's columns, by the SlaClock field each holds.
_CLOCK = {
    "working_days": "sla_days",
    "started_at": "sla_started_at",
    "resumed_at": "sla_resumed_at",
    "due_at": "sla_due_at",
    "warn_at": "sla_warn_at",
    "consumed_days": "sla_consumed_days",
    "paused_at": "sla_paused_at",
    "stopped_at": "sla_stopped_at",
    "warned_at": "sla_warned_at",
    "breached_at": "sla_breached_at",
}
# Columns written at submission and rewritten on every save, named as the Application's
# fields and holding them as they are...
_PLAIN_STATE = (
    "inspection_scheduled_for",
    "inspector",
    "inspection_result",
    "inspection_findings",
    "inspected_at",
    "decision",
    "decided_at",
    "decided_by",
    "decision_note",
    "processing_days",
    "permit_number",
    "issued_at",
    "valid_until",
    "remind_at",
    "expiry_reminded_at",
    "revoked_at",
    "revocation_reason",
)
# ... and all of them, in the order of `_state`.
_STATE = ("status", "documents", "missing_documents", "rejection_reasons", *_CLOCK.values(), *_PLAIN_STATE)
# The applicant's columns, by the Applicant field each holds.
_APPLICANT = {name: f"applicant_{name}" for name in ("kind", "name", "nik", "nib", "phone", "email")}
# The terms besides the SLA's days (a clock column), named as the Terms' fields.
_TERMS = ("inspection_required", "deemed_approval", "validity_years", "reminder_days")
_IDENTITY = (
    "id",
    "tracking_code",
    "permit_type",
    "number_code",
    "opd",
    "dimension",
    *_APPLICANT.values(),
    "citizen_ref",
    "locale",
    "desa_code",
    "kecamatan_code",
    "details",
    "renewal_of",
    *_TERMS,
    "submitted_at",
)
_COLUMNS = (*_IDENTITY, *_STATE, "version")
_HISTORY = ("application_history", "application_id")  # the history table and its key
# What an officer's work list shows of each application, besides its SLA.
_LISTED = (
    "tracking_code",
    "permit_type",
    "status",
    "applicant_kind",
    "desa_code",
    "kecamatan_code",
    "submitted_at",
    "updated_at",
    "permit_number",
    "decision",
)
# Applications whose holder is erased completely; decided permits the OPD must hold
# (what their type retains); the others are being decided and keep what that needs.
_ERASABLE = sorted({Status.REJECTED, Status.REVOKED, Status.EXPIRED})
_HELD_BY_LAW = sorted({Status.APPROVED, Status.ISSUED})


@dataclass(frozen=True)
class ListFilter:
    status: str | None = None
    permit_type: str | None = None
    kecamatan_code: str | None = None
    applicant_kind: str | None = None
    sla: str | None = None  # one of LIVE_SLA_STATES
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    page: int = 1
    page_size: int = 20


def _clock(row: Any) -> SlaClock:
    return SlaClock(**{name: row[column] for name, column in _CLOCK.items()})


def _document(stored: dict[str, Any]) -> Document:
    file = stored.get("file")
    return Document(stored["code"], stored.get("ref"), AttachmentRef.model_validate(file) if file else None)


def _stored_document(d: Document) -> dict[str, Any]:
    return {"code": d.code, "ref": d.ref, "file": d.file.model_dump(mode="json") if d.file else None}


def _state(a: Application) -> list[Any]:
    return [
        a.status.value,
        [_stored_document(d) for d in a.documents],
        a.missing_documents,
        a.rejection_reasons,
        *(getattr(a.clock, name) for name in _CLOCK),
        *(getattr(a, name) for name in _PLAIN_STATE),
    ]


def _listed(row: Any, now: datetime) -> dict[str, Any]:
    clock = _clock(row)
    return {
        **{column: row[column] for column in _LISTED},
        "sla_due_at": clock.due_at if clock.running else None,
        "sla_state": clock.state(now).value,
    }


class ApplicationRepository:
    def __init__(self, conn: asyncpg.Connection, catalogue: Catalogue) -> None:
        self.conn = conn
        self.catalogue = catalogue

    async def add(self, a: Application) -> None:
        values = [
            a.id,
            a.tracking_code,
            a.permit_type.code,
            a.permit_type.number_code,
            a.permit_type.opd,
            a.permit_type.dimension,
            *(getattr(a.applicant, name) for name in _APPLICANT),
            a.citizen_ref,
            a.locale,
            a.desa_code,
            a.kecamatan_code,
            a.details,
            a.renewal_of,
            *(getattr(a.terms, name) for name in _TERMS),
            a.submitted_at,
            *_state(a),
            a.version,
        ]
        await add_with_history(self.conn, "applications", _COLUMNS, values, *_HISTORY, a)

    async def save(self, a: Application) -> None:
        await self.conn.execute(save_sql("applications", _STATE), a.id, *_state(a))
        await save_history(self.conn, *_HISTORY, a)

    async def next_sequence(self, number_code: str, year: int) -> int:
        """The next permit number sequence of a type and year, in the caller's
        transaction: rolled back with it, and serialised by the row lock."""
        return await self.conn.fetchval(
            "INSERT INTO permit_sequences (number_code, year, last) VALUES ($1, $2, 1)"
            " ON CONFLICT (number_code, year) DO UPDATE SET last = permit_sequences.last + 1"
            " RETURNING last",
            number_code,
            year,
        )

    async def get(self, tracking_code: str, *, for_update: bool = False) -> Application | None:
        query = select_sql("applications", _COLUMNS, "tracking_code", for_update=for_update)
        row = await self.conn.fetchrow(query, tracking_code)
        if row is None:
            return None
        history = await load_history(self.conn, "application_history", "application_id", row["id"], Status)
        return self._to_domain(row, history)

    async def by_permit_number(self, permit_number: str) -> Application | None:
        code = await self.conn.fetchval(
            "SELECT tracking_code FROM applications WHERE permit_number = $1", permit_number
        )
        return await self.get(code) if code else None

    def _to_domain(self, row: Any, history: list[HistoryEntry[Status]]) -> Application:
        permit_type = self.catalogue.permit_type(
            row["permit_type"], number_code=row["number_code"], opd=row["opd"], dimension=row["dimension"]
        )
        return Application(
            id=row["id"],
            tracking_code=row["tracking_code"],
            permit_type=permit_type,
            terms=Terms(sla_days=row["sla_days"], **{name: row[name] for name in _TERMS}),
            applicant=Applicant(**{name: row[column] for name, column in _APPLICANT.items()}),
            citizen_ref=row["citizen_ref"],
            desa_code=row["desa_code"],
            kecamatan_code=row["kecamatan_code"],
            details=dict(row["details"]),
            documents=[_document(d) for d in row["documents"]],
            locale=row["locale"],
            submitted_at=row["submitted_at"],
            clock=_clock(row),
            renewal_of=row["renewal_of"],
            status=Status(row["status"]),
            missing_documents=list(row["missing_documents"]),
            rejection_reasons=list(row["rejection_reasons"]),
            **{name: row[name] for name in _PLAIN_STATE},
            version=row["version"],
            history=history,
        )

    async def list(self, f: ListFilter, now: datetime) -> tuple[list[dict[str, Any]], int]:
        w = Where()
        for column in ("status", "permit_type", "kecamatan_code", "applicant_kind"):
            w.equal(f"a.{column}", getattr(f, column))
        w.within("a.submitted_at", f.submitted_from, f.submitted_to)
        # The clock's state, by the thresholds of SlaClock.state.
        running = "a.sla_stopped_at IS NULL AND a.sla_paused_at IS NULL"
        if f.sla == SlaState.BREACHED:
            w.add(f"{running} AND a.sla_due_at <= {w.param(now)}")
        elif f.sla == SlaState.AT_RISK:
            at = w.param(now)
            w.add(f"{running} AND a.sla_warn_at <= {at} AND a.sla_due_at > {at}")
        elif f.sla == SlaState.ON_TRACK:
            w.add(f"{running} AND a.sla_warn_at > {w.param(now)}")
        elif f.sla == SlaState.PAUSED:
            w.add("a.sla_stopped_at IS NULL AND a.sla_paused_at IS NOT NULL")
        total = await self.conn.fetchval(f"SELECT count(*) FROM applications a {w.clause}", *w.args)
        rows = await self.conn.fetch(
            f"SELECT {', '.join((*_LISTED, *_CLOCK.values()))} FROM applications a {w.clause}"
            f" ORDER BY a.submitted_at DESC, a.id {w.page(f.page, f.page_size)}",
            *w.args,
        )
        return [_listed(r, now) for r in rows], int(total)

    async def with_sla_due(self, now: datetime, limit: int = 100) -> list[str]:
        """Tracking codes whose running clock owes a warning or a breach (and so maybe a
        deemed approval). The watcher then loads each FOR UPDATE and emits from the
        persisted clock, so two instances never emit the same event twice."""
        rows = await self.conn.fetch(
            "SELECT tracking_code FROM applications"
            " WHERE sla_stopped_at IS NULL AND sla_paused_at IS NULL AND sla_breached_at IS NULL"
            " AND ((sla_warned_at IS NULL AND sla_warn_at <= $1) OR sla_due_at <= $1)"
            " ORDER BY sla_due_at LIMIT $2",
            now,
            limit,
        )
        return [r["tracking_code"] for r in rows]

    async def with_expiry_due(self, now: datetime, limit: int = 100) -> list[str]:
        """Issued permits owing a renewal reminder or their expiry."""
        rows = await self.conn.fetch(
            "SELECT tracking_code FROM applications"
            " WHERE status = $3 AND valid_until IS NOT NULL"
            " AND ((expiry_reminded_at IS NULL AND remind_at <= $1) OR valid_until <= $1)"
            " ORDER BY valid_until LIMIT $2",
            now,
            limit,
            Status.ISSUED,
        )
        return [r["tracking_code"] for r in rows]

    async def open_by_status(self) -> list[tuple[str, str, int]]:
        rows = await self.conn.fetch(
            "SELECT permit_type, status, count(*) AS n FROM applications"
            " WHERE status = ANY($1::text[]) GROUP BY 1, 2",
            sorted(OPEN_STATUSES),
        )
        return [(r["permit_type"], r["status"], r["n"]) for r in rows]


class CitizenRecords(
    CitizenTable,
    table="applications",
    nik_column="applicant_nik",
    order_by="tracking_code",
    files="documents",
    contact_columns=("applicant_phone", "applicant_email"),
):
    """An applicant's applications, for export and erasure.

    - Rejected, revoked and expired applications are anonymised completely: the holder,
      the type's details, the documents and their files go; type, status, desa, dates
      and SLA stay for statistics.
    - An approved or issued permit is a public record the OPD must hold: it keeps its
      holder's name and number and what its type retains (`retained` in
      permit_types.yaml: the permitted object's fields and documents); the NIK, the
      contact and every other field and document (the KTP scan among them) go.
    - An application still being decided keeps what the decision needs (the applicant
      withdraws it first); only the contact goes.

    Everywhere the applicant's own words (`APPLICANTS_WORDS` notes) go. docs/privacy.md
    has the table."""

    columns = (
        "tracking_code, permit_type, status, permit_number, applicant_name, applicant_nib,"
        " applicant_phone, applicant_email, desa_code, details, documents"
    )

    def __init__(self, catalogue: Catalogue) -> None:
        self.retention = catalogue.retention  # jsonb: the pool's codec encodes it

    async def erase(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, int]:
        # Files and notes first, while the applications still name the citizen.
        retained = f"coalesce(({self.arg(2)}::jsonb -> permit_type -> 'documents') ? attachment.label, false)"
        documents = await self.erase_files(conn, citizen, _ERASABLE) + await self.erase_files(
            conn, citizen, _HELD_BY_LAW, retained, self.retention
        )
        notes = await self.change_about(
            conn,
            citizen,
            "UPDATE application_history SET note = NULL WHERE note IS NOT NULL"
            f" AND action = ANY({self.arg(1)}::text[])"
            f" AND application_id IN (SELECT id FROM applications WHERE {self.about})",
            sorted(APPLICANTS_WORDS),
        )
        closed = await self.anonymise(
            conn,
            citizen,
            f"applicant_nik = NULL, applicant_name = '{ERASED_TEXT}', applicant_phone = NULL,"
            " applicant_email = NULL, details = '{}', documents = '[]', missing_documents = '[]'",
            _ERASABLE,
            row_id="tracking_code",
        )
        held = await self.change(
            conn,
            citizen,
            "applicant_phone = NULL, applicant_email = NULL,"
            " details = coalesce((SELECT jsonb_object_agg(f.key, f.value) FROM jsonb_each(details) f"
            f"   WHERE ({self.arg(2)}::jsonb -> permit_type -> 'fields') ? f.key), '{{}}'),"
            " documents = coalesce((SELECT jsonb_agg(d) FROM jsonb_array_elements(documents) d"
            f"   WHERE ({self.arg(2)}::jsonb -> permit_type -> 'documents') ? (d ->> 'code')), '[]')",
            _HELD_BY_LAW,
            self.retention,
            only=f"status = ANY({self.arg(1)}::text[])",
        )
        undecided = await self.change(
            conn,
            citizen,
            "applicant_phone = NULL, applicant_email = NULL",
            _HELD_BY_LAW,
            only=f"NOT status = ANY({self.arg(1)}::text[])",
        )
        return {
            "applications": closed,
            "applications_kept_by_law": held,
            "applications_undecided": undecided,
            "documents": documents,
            "notes": notes,
        }
