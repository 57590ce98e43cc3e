"""A citizen's right to their data (UU PDP 27/2022): export and erasure on request.

Each domain service says what it holds about a citizen by giving its `ServiceSpec` a
`CitizenData` implementation; the kit provides the endpoints (role ``admin``, i.e. the
regency's data protection officer), runs the erasure in one unit of work with its
audit row, and publishes `id.sinergi.privacy.citizen.erased.v1` so the consumers of
the service's topic (notifications, the integration view) erase theirs too.
"""

from __future__ import annotations

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
from shared.kit.errors import NotFound
from shared.kit.privacy import citizen_ref, contact_refs
from shared.kit.uow import unit_of_work
from shared.reference.fields import MobilePhone, Nik
from shared.schemas.common import CITIZEN_REF_PREFIX
from shared.schemas.privacy import CitizenDataErased

# What an erased text column that may not be empty holds: shown as is, never a person's.
ERASED_TEXT = "[dihapus]"


@dataclass(frozen=True)
class Citizen:
    """Whom an export or erasure is about: the NIK and its reference, and the contacts
    the request gave (never stored), which find what was filed without a NIK (an
    anonymous complaint's contact) and name the data keys sealed under a contact."""

    nik: str
    citizen_ref: str
    contacts: tuple[str, ...] = ()  # +62… numbers and lower-case email addresses
    contact_refs: tuple[str, ...] = ()  # their keyed hashes (privacy.contact_refs)

    @property
    def key_subjects(self) -> tuple[str, ...]:
        """Every subject a data key of this citizen may be made for (seal_for_notifications:
        the NIK's reference, or without a NIK the contact's)."""
        return (self.citizen_ref, *self.contact_refs)


class CitizenData(Protocol):
    """What one service holds about a citizen."""

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        """Every record about the citizen, by kind."""

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
    removes them with `erase_files`."""

    table: ClassVar[str]
    nik_column: ClassVar[str]
    order_by: ClassVar[str]
    columns: ClassVar[str]
    files: ClassVar[str | None]
    contact_columns: ClassVar[tuple[str, ...]]

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

    @property
    def about(self) -> str:
        """The WHERE condition of the citizen's records: $1 the NIK, $2 the citizen
        reference and, with contact columns, $3 the contacts (`_params`)."""
        by_contact = "".join(f" OR lower({column}) = ANY($3::text[])" for column in self.contact_columns)
        return f"({self.nik_column} = $1 OR citizen_ref = $2{by_contact})"

    def _params(self, citizen: Citizen) -> list[Any]:
        contacts = [list(citizen.contacts)] if self.contact_columns else []
        return [citizen.nik, citizen.citizen_ref, *contacts]

    def arg(self, n: int) -> str:
        """The placeholder of a statement's `n`th own argument, after the citizen's."""
        return f"${2 + bool(self.contact_columns) + n}"

    async def rows_about(
        self, conn: asyncpg.Connection, citizen: Citizen, query: str
    ) -> list[dict[str, Any]]:
        """The rows `query` (on `about`) selects about `citizen`, for an export."""
        return [dict(row) for row in await conn.fetch(query, *self._params(citizen))]

    async def change_about(
        self, conn: asyncpg.Connection, citizen: Citizen, statement: str, *args: Any
    ) -> int:
        """Run `statement`, an UPDATE or DELETE on `about` with `args` as `arg(1)`…; how
        many rows it changed, what `CitizenData.erase` reports."""
        status = await conn.execute(statement, *self._params(citizen), *args)
        return int(status.split()[-1])

    def owned_by(self, condition: str = "") -> str:
        """The attachments of the citizen's records (those also meeting `condition`)."""
        return f"owner IN (SELECT tracking_code FROM {self.table} WHERE {self.about}{condition})"

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        query = f"SELECT {self.columns} FROM {self.table} WHERE {self.about} ORDER BY {self.order_by}"
        exported = {self.table: await self.rows_about(conn, citizen, query)}
        if self.files is not None:
            files = (
                "SELECT owner, id, kind, label, media_type, size_bytes, sha256, created_at FROM attachment"
                f" WHERE erased_at IS NULL AND {self.owned_by()} ORDER BY created_at, id"
            )
            exported[self.files] = await self.rows_about(conn, citizen, files)
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
        return int(await conn.fetchval(query, *self._params(citizen)))

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


router = APIRouter(prefix="/admin/citizens", tags=["personal data"])
admin = require_role("admin")


def _citizen(request: Request, body: CitizenIn) -> Citizen:
    key = request.app.state.service.settings.platform.citizen_ref_key.get_secret_value()
    email = body.email.lower() if body.email else None  # as contact_refs hashes it
    return Citizen(
        nik=body.nik,
        citizen_ref=citizen_ref(body.nik, key),
        contacts=tuple(c for c in (body.phone, email) if c),
        contact_refs=tuple(contact_refs(key, phone=body.phone, email=email)),
    )


@router.post("/export", summary="Everything this service holds about a citizen")
async def export(body: CitizenIn, request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    service = request.app.state.service
    citizen = _citizen(request, body)
    async with service.pool.acquire() as conn:
        data = await service.spec.citizen_data.export(conn, citizen)
        await audit.record_read(conn, [citizen.citizen_ref])  # the reference, never the NIK
    if not any(data.values()):
        raise NotFound("this service holds no data about that citizen")
    return {"service": service.name, "citizen_ref": citizen.citizen_ref, "data": data}


@router.post("/erase", summary="Erase a citizen's personal data here and downstream")
async def erase(body: CitizenIn, request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    service = request.app.state.service
    citizen = _citizen(request, body)
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
        )
        await uow.emit([event], subject=citizen.citizen_ref)
    return {"service": service.name, "citizen_ref": citizen.citizen_ref, "erased": records}
