"""A citizen's right to their data (UU PDP 27/2022): export and erasure on request.

Each domain service says what it holds about a citizen by giving its `ServiceSpec` a
`CitizenData` implementation; the kit provides the endpoints (role ``admin``, i.e. the
regency's data protection officer), runs the erasure in one unit of work with its
audit row, and publishes `id.sinergi.privacy.citizen.erased.v1` so the consumers of
the service's topic (notifications, the integration view) erase theirs too. Those
consumers export only (`CitizenExport`, `ServiceSpec.citizen_export`): they erase on the
event.

Two ways to ask for an export, on every service that has one:

- `POST /admin/citizens/export` (the data protection officer): by NIK, and the phone
  number or email address the citizen gave, if the officer has them;
- `POST /citizen/export` (the citizen, with the session of a contact they proved, as the
  portal's other calls for a citizen carry it): only what is linked to that contact. A
  session's stated NIK proves nothing (it is printed on every KTP), so it finds nothing
  here. The contact itself comes in the body, since some services keep it rather than
  its keyed hash; it must be the one the session proved (422 otherwise).

Both answer the same shape, with empty kinds for a citizen the service does not know
(never an answer that tells a stranger whether someone exists), and write the read to
the audit trail with the citizen's reference (never the NIK or the contact) and the
request's export id, which the portal's assembled document carries too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Protocol

import asyncpg
from fastapi import APIRouter, Depends, Request
from pydantic import EmailStr, Field

from shared.kit import audit, data_keys
from shared.kit.auth import Officer, require_role
from shared.kit.bodies import RequestBody
from shared.kit.citizen import CitizenSession
from shared.kit.errors import InvalidField
from shared.kit.privacy import citizen_ref, contact_refs
from shared.kit.uow import unit_of_work
from shared.reference.fields import Contact, MobilePhone, Nik
from shared.schemas.common import CITIZEN_REF_PREFIX
from shared.schemas.privacy import CitizenDataErased

# What an erased text column that may not be empty holds: shown as is, never a person's.
ERASED_TEXT = "[dihapus]"
# What an export's audit rows name it by, beside the citizen's reference.
EXPORT_RECORD = "export:"
EXPORT_EVENT = "citizen.export.delivered"


@dataclass(frozen=True)
class Citizen:
    """Whom a request is about. An erasure names the NIK (and its reference) and the
    contacts the request gave (never stored), which find what was filed without a NIK
    (an anonymous complaint's contact) and name the data keys sealed under a contact; an
    export may name the same, and a citizen's own export names only the contact they
    proved (`proven`: the service may then give that contact back in clear)."""

    nik: str | None
    citizen_ref: str | None
    contacts: tuple[str, ...] = ()  # +62… numbers and lower-case email addresses
    contact_refs: tuple[str, ...] = ()  # their keyed hashes (privacy.contact_refs)
    proven: bool = False

    @property
    def key_subjects(self) -> tuple[str, ...]:
        """Every subject a data key of this citizen may be made for (seal_for_notifications:
        the NIK's reference, or without a NIK the contact's)."""
        return tuple(s for s in (self.citizen_ref, *self.contact_refs) if s)

    @property
    def params(self) -> tuple[str | None, str | None, list[str], list[str]]:
        """A query's `$1` NIK, `$2` citizen reference, `$3` contacts, `$4` their keyed
        hashes (text arrays): what `CitizenTable.condition` finds them by."""
        return self.nik, self.citizen_ref, list(self.contacts), list(self.contact_refs)


_CITIZEN_ARGS = 4  # how many Citizen.params binds, before a statement's own arguments


class CitizenExport(Protocol):
    """What one service holds about a citizen, for the citizen to have."""

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        """Every record about the citizen, by kind (a kind with no record: empty)."""


class CitizenData(CitizenExport, Protocol):
    """What one service holds about a citizen, which the service erases on request."""

    async def erase(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, int]:
        """Remove or anonymise the citizen's personal data; counts of records changed
        by kind. Records the law requires to keep (e.g. an issued permit's holder)
        may be kept: say so in the service's docs."""


class CitizenTable:
    """A service's `CitizenData` over the one table holding its records about citizens,
    each found by the NIK column or the citizen reference (`citizen_ref`) and, for a
    table whose records may have no NIK, by the contact columns (`contact_columns=`:
    phone and email in clear, matched against the contacts the request gave), declared as
    `class CitizenRecords(CitizenTable, table=..., nik_column=..., order_by=...)` with
    the `columns` an export shows. `export` lists the records under the table's name;
    the service's `erase` says what erasure means for them, with `change`, `anonymise`
    and `count`. A table whose records have attachments (shared/kit/attachments.py, owned
    by the record's `tracking_code`) names the export's key for them (`files=`); erasure
    removes them with `erase_files`. An export finds the records of a contact the same
    way, and by the column holding the contact's keyed hash (`contact_ref`), declared
    beside `columns`."""

    table: ClassVar[str]
    nik_column: ClassVar[str]
    order_by: ClassVar[str]
    columns: ClassVar[str]
    files: ClassVar[str | None]
    contact_columns: ClassVar[tuple[str, ...]]
    contact_ref: ClassVar[str | None] = None  # a column of the contact's keyed hash, if any

    def __init_subclass__(
        cls,
        *,
        table: str,
        nik_column: str,
        order_by: str,
        files: str | None = None,
        contact_columns: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.table, cls.nik_column, cls.order_by, cls.files = table, nik_column, order_by, files
        cls.contact_columns = contact_columns

    def condition(self, contact_ref: str | None = None) -> str:
        """The WHERE condition of the citizen's records, on `Citizen.params` ($1 the NIK,
        $2 the citizen reference, $3 the contacts, $4 their keyed hashes): by the NIK
        column, the reference and the contact columns, and by the column `contact_ref`
        of the contact's keyed hash when given."""
        found = [f"{self.nik_column} = $1", "citizen_ref = $2"]
        found += [f"lower({column}) = ANY($3::text[])" for column in self.contact_columns]
        if contact_ref is not None:
            found.append(f"{contact_ref} = ANY($4::text[])")
        # Every parameter is named, so PostgreSQL knows each one's type.
        return f"(({' OR '.join(found)}) AND $3::text[] IS NOT NULL AND $4::text[] IS NOT NULL)"

    @property
    def about(self) -> str:
        """The condition of the records an erasure changes (and a statement of the
        service's own finds)."""
        return self.condition()

    @property
    def exported(self) -> str:
        """The condition of the records an export finds: also by `contact_ref`."""
        return self.condition(self.contact_ref)

    def arg(self, n: int) -> str:
        """The placeholder of a statement's `n`th own argument, after the citizen's."""
        return f"${_CITIZEN_ARGS + n}"

    async def rows_about(
        self, conn: asyncpg.Connection, citizen: Citizen, query: str
    ) -> list[dict[str, Any]]:
        """The rows `query` (on `about`) selects about `citizen`, for an export."""
        return [dict(row) for row in await conn.fetch(query, *citizen.params)]

    async def change_about(
        self, conn: asyncpg.Connection, citizen: Citizen, statement: str, *args: Any
    ) -> int:
        """Run `statement`, an UPDATE or DELETE on `about` with `args` as `arg(1)`…; how
        many rows it changed, what `CitizenData.erase` reports."""
        status = await conn.execute(statement, *citizen.params, *args)
        return int(status.split()[-1])

    def owned_by(self, condition: str = "", about: str | None = None) -> str:
        """The attachments of the citizen's records (those also meeting `condition`)."""
        return f"owner IN (SELECT tracking_code FROM {self.table} WHERE {about or self.about}{condition})"

    @property
    def export_query(self) -> str:
        """The statement of the records an export lists (`Citizen.params`); each of its
        conditions has an index (the NIK, the reference, the lower-case contacts)."""
        return f"SELECT {self.columns} FROM {self.table} WHERE {self.exported} ORDER BY {self.order_by}"

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        exported = {self.table: [dict(r) for r in await conn.fetch(self.export_query, *citizen.params)]}
        if self.files is not None:
            files = (
                "SELECT owner, id, kind, label, media_type, size_bytes, sha256, created_at FROM attachment"
                f" WHERE erased_at IS NULL AND {self.owned_by(about=self.exported)} ORDER BY created_at, id"
            )
            exported[self.files] = [dict(r) for r in await conn.fetch(files, *citizen.params)]
        return exported

    async def erase_files(
        self,
        conn: asyncpg.Connection,
        citizen: Citizen,
        statuses: Iterable[str],
        unless: str = "",
        *args: Any,
    ) -> int:
        """Mark the attachments of the citizen's records in `statuses` erased (their bytes
        go when the service's attachment purge runs after the erasure commits), but those
        meeting `unless` (a condition on the record and `attachment.label`, with `args`
        from `arg(2)`); how many."""
        keep = f" AND NOT ({unless})" if unless else ""
        return await self.change_about(
            conn,
            citizen,
            "UPDATE attachment SET erased_at = now()"
            f" WHERE erased_at IS NULL AND {self.owned_by(f' AND status = ANY({self.arg(1)}::text[]){keep}')}",
            sorted(statuses),
            *args,
        )

    async def count(self, conn: asyncpg.Connection, citizen: Citizen) -> int:
        """How many records of the citizen there are."""
        query = f"SELECT count(*) FROM {self.table} WHERE {self.about}"
        return int(await conn.fetchval(query, *citizen.params))

    async def change(
        self, conn: asyncpg.Connection, citizen: Citizen, assignments: str, *args: Any, only: str = ""
    ) -> int:
        """Set `assignments` on every record of the citizen (those meeting `only`, if
        given), with `args` as `arg(1)`…; how many there were."""
        statement = (
            f"UPDATE {self.table} SET {assignments} WHERE {self.about}{f' AND ({only})' if only else ''}"
        )
        return await self.change_about(conn, citizen, statement, *args)

    async def anonymise(
        self, conn: asyncpg.Connection, citizen: Citizen, cleared: str, statuses: Iterable[str], row_id: str
    ) -> int:
        """Set `cleared` (the personal columns) on the citizen's records in `statuses`
        and replace their reference by a random one of the same format, so counts and
        statistics stay while nothing leads back to the person; how many there were."""
        return await self.change_about(
            conn,
            citizen,
            f"UPDATE {self.table} SET {cleared}, citizen_ref = {self.arg(1)} || md5(random()::text || {row_id}::text)"
            f" WHERE {self.about} AND status = ANY({self.arg(2)}::text[])",
            CITIZEN_REF_PREFIX,
            sorted(statuses),
        )


class CitizenIn(RequestBody):
    nik: Nik = Field(description="The citizen's NIK (never stored by this endpoint)")
    # What a citizen filed without their NIK (an anonymous complaint with a contact) is
    # found by the contact only; the request may name them, used for this request alone.
    phone: MobilePhone | None = Field(
        None, description="The citizen's mobile number, if they gave one (not stored)"
    )
    email: EmailStr | None = Field(
        None, description="The citizen's email address, if they gave one (not stored)"
    )


class ExportIn(RequestBody):
    nik: Nik = Field(description="The citizen's NIK (never stored by this endpoint)")
    phone: MobilePhone | None = Field(None, description="A mobile number the citizen gave (optional)")
    email: EmailStr | None = Field(None, description="An email address the citizen gave (optional)")
    export_id: uuid.UUID | None = Field(
        None, description="The export this answer is part of (recorded with the audit row)"
    )


class OwnExportIn(RequestBody):
    contact: Contact = Field(description="The phone number or email address the session proved")
    export_id: uuid.UUID | None = Field(
        None, description="The export this answer is part of (recorded with the audit row)"
    )


router = APIRouter(prefix="/admin/citizens", tags=["personal data"])
erase_router = APIRouter(prefix="/admin/citizens", tags=["personal data"])
citizen_router = APIRouter(prefix="/citizen", tags=["personal data"])
admin = require_role("admin")


def _key(request: Request) -> str:
    return str(request.app.state.service.settings.platform.citizen_ref_key.get_secret_value())


def _citizen(request: Request, nik: str, phone: str | None = None, email: str | None = None) -> Citizen:
    """Whom an officer's request names: the NIK, and the contacts given (email in lower
    case, as contact_refs hashes it)."""
    key = _key(request)
    email = email.lower() if email else None
    return Citizen(
        nik=nik,
        citizen_ref=citizen_ref(nik, key),
        contacts=tuple(c for c in (phone, email) if c),
        contact_refs=tuple(contact_refs(key, phone=phone, email=email)),
    )


def _by_kind(contact: str) -> dict[str, str]:
    return {"email" if "@" in contact else "phone": contact}


async def _export(request: Request, citizen: Citizen, export_id: uuid.UUID | None) -> dict[str, Any]:
    """The service's part of an export, its read written to the audit trail (the
    citizen's and contacts' references, never the NIK or a contact)."""
    service = request.app.state.service
    exporter: CitizenExport = service.spec.citizen_data or service.spec.citizen_export
    refs = [r for r in (citizen.citizen_ref, *citizen.contact_refs) if r]
    async with service.pool.acquire() as conn:
        data = await exporter.export(conn, citizen)
        records = [*refs, *([f"{EXPORT_RECORD}{export_id}"] if export_id else [])]
        await audit.record_read(conn, records, [EXPORT_EVENT])
    return {"service": service.name, "citizen_ref": citizen.citizen_ref, "data": data}


@router.post("/export", summary="Everything this service holds about a citizen")
async def export(body: ExportIn, request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    """By NIK, and the citizen's phone and email when given: a citizen this service does
    not know gets empty kinds."""
    citizen = _citizen(request, body.nik, body.phone, body.email)
    return await _export(request, citizen, body.export_id)


@citizen_router.post("/export", summary="Everything this service holds about the contact a citizen proved")
async def export_own(body: OwnExportIn, request: Request, session: CitizenSession) -> dict[str, Any]:
    """With the citizen's session: what is linked to the contact it proved (never found
    by the NIK it states). 401 without a valid session; 422 on `contact` for a contact
    the session did not prove."""
    if session.contact_ref not in contact_refs(_key(request), **_by_kind(body.contact)):
        raise InvalidField("contact", "not the contact this session proved")
    audit.set_actor(audit.Actor.of(request, session.contact_ref, "citizen"))
    citizen = Citizen(None, None, (body.contact,), (session.contact_ref,), proven=True)
    return await _export(request, citizen, body.export_id)


@erase_router.post("/erase", summary="Erase a citizen's personal data here and downstream")
async def erase(body: CitizenIn, request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    service = request.app.state.service
    citizen = _citizen(request, body.nik, body.phone, body.email)
    async with unit_of_work(service.pool, service.event_source) as uow:
        records = await service.spec.citizen_data.erase(uow.conn, citizen)
        # The citizen's data key goes with the records: every sealed copy of their
        # contact on the log (topics, dead letters, outbox, backups) is unreadable after.
        # Without a NIK a contact was sealed under the contact's key: those go too.
        await data_keys.destroy(uow.conn, citizen.key_subjects)
        event = CitizenDataErased(
            citizen_ref=citizen.citizen_ref,
            service=service.name,
            erased_at=datetime.now(UTC),
            records=records,
            # Keyed hashes only: the consumers find what they hold by contact with them.
            contact_refs=list(citizen.contact_refs),
        )
        await uow.emit([event], subject=citizen.citizen_ref)
    return {"service": service.name, "citizen_ref": citizen.citizen_ref, "erased": records}
