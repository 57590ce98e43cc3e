"""A use case's state change, its events and its audit row commit together or not at all,
in every domain service (docs/architecture.md, "state change and event commit together").

The fault comes from outside the code under test: a trigger makes PostgreSQL refuse the
outbox insert (a use case failing after its state change) or the audit insert (an officer
action failing after it has staged its events). Whatever the service answers, nothing of
the failed use case may remain; once the trigger is gone, the same request succeeds, so
the trigger and nothing else was what failed it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from tests.harness import Served, db_fetch, db_fetchval, officer_headers
from tests.integration.test_complaints_service import complaint_body
from tests.integration.test_health_service import (
    FACILITY,
    booking,
    make_polyclinic,
    nik,
    patient_session,
    visit_day,
)
from tests.integration.test_permits_service import OFFICER as PERMIT_OFFICER
from tests.integration.test_permits_service import pbg_body

REFUSE = """
CREATE OR REPLACE FUNCTION test_injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'injected fault on %', TG_TABLE_NAME;
END $$;
"""


@contextlib.asynccontextmanager
async def refusing(database_url: str, table: str) -> AsyncIterator[None]:
    """PostgreSQL refuses every insert into `table` while inside."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(REFUSE)
        await conn.execute(
            f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION test_injected_fault()"
        )
        yield
    finally:
        await conn.execute(f"DROP TRIGGER IF EXISTS test_refuse ON {table}")
        await conn.close()


@dataclass
class Snapshot:
    """Everything a use case can leave behind: every table's rows (audit included) as
    text; the outbox by event id, since the relay marks rows published meanwhile. Not
    the rate limiter's counts: a request is counted before its use case runs, and a
    failed one counts too, on purpose (shared/kit/limits.py)."""

    tables: dict[str, list[str]]

    @classmethod
    async def take(cls, database_url: str) -> Snapshot:
        names = await db_fetch(
            database_url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT IN ('schema_migrations', 'rate_limit')",
        )
        tables = {}
        for row in names:
            name = row["tablename"]
            query = (
                "SELECT event_id::text AS r FROM outbox"
                if name == "outbox"
                else f'SELECT t::text AS r FROM "{name}" t'
            )
            rows = await db_fetch(database_url, query)
            tables[name] = sorted(r["r"] for r in rows)
        return cls(tables)

    def changed(self, other: Snapshot) -> dict[str, int]:
        return {
            name: len(set(other.tables.get(name, [])) ^ set(rows))
            for name, rows in self.tables.items()
            if set(other.tables.get(name, [])) != set(rows)
        }


@dataclass(frozen=True)
class Call:
    """One HTTP request of a use case, as a citizen's or an officer's client sends it."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(self.method, self.path, json=self.body, headers=self.headers)


async def assert_all_or_nothing(service: Served, table: str, call: Call, expected: int) -> httpx.Response:
    """`call` to `service` fails while `table` refuses inserts and leaves every table as
    it was; without the fault it succeeds and writes to `table` (so the fault did hit it)."""
    database_url = service.database_url
    before = await Snapshot.take(database_url)
    async with refusing(database_url, table):
        failed = await call.send(service.client)
    assert failed.status_code >= 500, failed.text
    after = await Snapshot.take(database_url)
    assert before.changed(after) == {}, f"a failed use case left rows behind: {before.changed(after)}"

    done = await call.send(service.client)
    assert done.status_code == expected, done.text
    assert await db_fetchval(database_url, f"SELECT count(*) FROM {table}") > len(before.tables[table])
    return done


async def test_complaints_filing_and_officer_action_commit_with_their_event_and_audit(
    complaints_service: Served,
) -> None:
    filed = await assert_all_or_nothing(
        complaints_service, "outbox", Call("POST", "/complaints", complaint_body()), 201
    )
    officer = f"/officer/complaints/{filed.json()['tracking_code']}"
    coordinator = officer_headers("coordinator", subject="koordinator-uow")
    verify = Call("POST", f"{officer}/verify", headers=coordinator)
    await assert_all_or_nothing(complaints_service, "audit_log", verify, 200)
    dispatch = Call(
        "POST", f"{officer}/dispatch", {"opd": "DPUPR", "note": "Mohon ditindaklanjuti"}, coordinator
    )
    await assert_all_or_nothing(complaints_service, "outbox", dispatch, 200)


async def test_permits_submission_and_officer_action_commit_with_their_event_and_audit(
    permits_service: Served,
) -> None:
    submitted = await assert_all_or_nothing(
        permits_service, "outbox", Call("POST", "/applications", pbg_body()), 201
    )
    check = Call(
        "POST",
        f"/officer/applications/{submitted.json()['tracking_code']}/document-check",
        {"outcome": "incomplete", "missing": ["krk"], "note": "KRK kedaluwarsa"},
        PERMIT_OFFICER,
    )
    await assert_all_or_nothing(permits_service, "audit_log", check, 200)


async def test_health_booking_and_officer_actions_commit_with_their_event_and_audit(
    health_service: Served,
) -> None:
    polyclinic = await make_polyclinic(health_service.client, "UOW")
    day = visit_day(health_service.context)
    body = booking(day, polyclinic, nik=nik(7))
    book = Call("POST", "/appointments", body, patient_session(health_service.context, body))
    await assert_all_or_nothing(health_service, "outbox", book, 201)

    officer = officer_headers("health_officer", facility=FACILITY, subject="petugas-uow")
    beds = Call("PUT", f"/facilities/{FACILITY}/wards/MAWAR/beds", {"total": 40, "occupied": 31}, officer)
    await assert_all_or_nothing(health_service, "audit_log", beds, 200)
    weekday = (day + timedelta(days=1)).weekday()
    hours = {"start": "08:00", "end": "11:00", "minutes_per_patient": 10, "quota_jkn": 9, "quota_non_jkn": 3}
    schedule = Call("PUT", f"/doctors/{polyclinic}-D01/schedules/{weekday}", hours, officer)
    await assert_all_or_nothing(health_service, "audit_log", schedule, 200)
