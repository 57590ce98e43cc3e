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
from pydantic import BaseModel, Field

from shared.kit import audit, data_keys
from shared.kit.auth import Officer, require_role
from shared.kit.errors import NotFound
from shared.kit.privacy import citizen_ref
from shared.kit.uow import unit_of_work
from shared.reference.fields import Nik
from shared.schemas.common import CITIZEN_REF_PREFIX
from shared.schemas.privacy import CitizenDataErased


@dataclass(frozen=True)
class Citizen:
    nik: str
    citizen_ref: str


class CitizenData(Protocol):
    """What one service holds about a citizen."""

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        """Every record about the citizen, by kind."""

    async def erase(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, int]:
        """Remove or anonymise the citizen's personal data; counts of records changed
        by kind. Records the law requires to keep (e.g. an issued permit's holder)
        may be kept: say so in the service's docs."""


async def rows_about(conn: asyncpg.Connection, citizen: Citizen, query: str) -> list[dict[str, Any]]:
    """The rows `query` selects about `citizen`, for an export. Its `$1` is the NIK and
    `$2` the citizen reference: a service finds a citizen's records by either (the
    reference alone where the NIK is not kept)."""
    return [dict(row) for row in await conn.fetch(query, citizen.nik, citizen.citizen_ref)]


async def change_about(conn: asyncpg.Connection, citizen: Citizen, statement: str, *args: Any) -> int:
    """Run `statement`, an UPDATE or DELETE of `citizen`'s records for an erasure (`$1`
    the NIK, `$2` the citizen reference, then `args`); how many rows it changed, what
    `CitizenData.erase` reports."""
    status = await conn.execute(statement, citizen.nik, citizen.citizen_ref, *args)
    return int(status.split()[-1])


class CitizenTable:
    """A service's `CitizenData` over the one table holding its records about citizens,
    each found by the NIK column or the citizen reference (`citizen_ref`), declared as
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

    def __init_subclass__(
        cls, *, table: str, nik_column: str, order_by: str, files: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.table, cls.nik_column, cls.order_by, cls.files = table, nik_column, order_by, files

    @property
    def about(self) -> str:
        """The WHERE condition of the citizen's records ($1 the NIK, $2 the reference)."""
        return f"({self.nik_column} = $1 OR citizen_ref = $2)"

    def owned_by(self, condition: str = "") -> str:
        """The attachments of the citizen's records (those also meeting `condition`)."""
        return f"owner IN (SELECT tracking_code FROM {self.table} WHERE {self.about}{condition})"

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        query = f"SELECT {self.columns} FROM {self.table} WHERE {self.about} ORDER BY {self.order_by}"
        exported = {self.table: await rows_about(conn, citizen, query)}
        if self.files is not None:
            files = (
                "SELECT owner, id, kind, label, media_type, size_bytes, sha256, created_at FROM attachment"
                f" WHERE erased_at IS NULL AND {self.owned_by()} ORDER BY created_at, id"
            )
            exported[self.files] = await rows_about(conn, citizen, files)
        return exported

    async def erase_files(self, conn: asyncpg.Connection, citizen: Citizen, statuses: Iterable[str]) -> int:
        """Mark the attachments of the citizen's records in `statuses` erased (their bytes
        go when the service's attachment purge runs after the erasure commits); how many."""
        return await change_about(
            conn,
            citizen,
            "UPDATE attachment SET erased_at = now()"
            f" WHERE erased_at IS NULL AND {self.owned_by(' AND status = ANY($3::text[])')}",
            sorted(statuses),
        )

    async def count(self, conn: asyncpg.Connection, citizen: Citizen) -> int:
        """How many records of the citizen there are."""
        query = f"SELECT count(*) FROM {self.table} WHERE {self.about}"
        return int(await conn.fetchval(query, citizen.nik, citizen.citizen_ref))

    async def change(self, conn: asyncpg.Connection, citizen: Citizen, assignments: str) -> int:
        """Set `assignments` on every record of the citizen; how many there were."""
        return await change_about(conn, citizen, f"UPDATE {self.table} SET {assignments} WHERE {self.about}")

    async def anonymise(
        self, conn: asyncpg.Connection, citizen: Citizen, cleared: str, statuses: Iterable[str], row_id: str
    ) -> int:
        """Set `cleared` (the personal columns) on the citizen's records in `statuses`
        and replace their reference by a random one of the same format, so counts and
        statistics stay while nothing leads back to the person; how many there were."""
        return await change_about(
            conn,
            citizen,
            f"UPDATE {self.table} SET {cleared}, citizen_ref = $3 || md5(random()::text || {row_id}::text)"
            f" WHERE {self.about} AND status = ANY($4::text[])",
            CITIZEN_REF_PREFIX,
            sorted(statuses),
        )


class CitizenIn(BaseModel):
    nik: Nik = Field(description="The citizen's NIK (never stored by this endpoint)")


router = APIRouter(prefix="/admin/citizens", tags=["personal data"])
admin = require_role("admin")


def _citizen(request: Request, nik: str) -> Citizen:
    key = request.app.state.service.settings.platform.citizen_ref_key.get_secret_value()
    return Citizen(nik=nik, citizen_ref=citizen_ref(nik, key))


@router.post("/export", summary="Everything this service holds about a citizen")
async def export(body: CitizenIn, request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    service = request.app.state.service
    citizen = _citizen(request, body.nik)
    async with service.pool.acquire() as conn:
        data = await service.spec.citizen_data.export(conn, citizen)
        await audit.record_read(conn, [citizen.citizen_ref])  # the reference, never the NIK
    if not any(data.values()):
        raise NotFound("this service holds no data about that citizen")
    return {"service": service.name, "citizen_ref": citizen.citizen_ref, "data": data}


@router.post("/erase", summary="Erase a citizen's personal data here and downstream")
async def erase(body: CitizenIn, request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    service = request.app.state.service
    citizen = _citizen(request, body.nik)
    async with unit_of_work(service.pool, service.event_source) as uow:
        records = await service.spec.citizen_data.erase(uow.conn, citizen)
        # The citizen's data key goes with the records: every sealed copy of their
        # contact on the log (topics, dead letters, outbox, backups) is unreadable after.
        await data_keys.destroy(uow.conn, citizen.citizen_ref)
        event = CitizenDataErased(
            citizen_ref=citizen.citizen_ref,
            service=service.name,
            erased_at=datetime.now(UTC),
            records=records,
        )
        await uow.emit([event], subject=citizen.citizen_ref)
    return {"service": service.name, "citizen_ref": citizen.citizen_ref, "erased": records}
