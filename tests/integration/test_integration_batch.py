"""The integration view's set-based batch path against the real PostgreSQL.

The kit hands a batch of fresh events to `handlers.apply_events` (one transaction, a
constant number of round trips); the record-by-record fallback and dead-letter replay
use `handlers.apply_event`. Both must leave the same read model, whatever the batch
holds: several events of one item out of order, duplicates, events without a citizen
reference, erasures before and after the citizen's events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.integration import handlers, repository
from services.integration.repository import ReadModel
from shared.schemas import Envelope, ParsedEvent
from shared.schemas import complaints as ce
from tests import view_support as view
from tests.harness import migrated_pool_fixture, parsed

MIGRATIONS = Path(repository.__file__).with_name("migrations")
T = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
REF_3 = "cr1_" + "3c" * 16

# Three databases with the view's migrations, for the three ways of applying the events.
one_by_one = batched = reversed_order = migrated_pool_fixture(MIGRATIONS)


def s(seconds: int) -> datetime:
    return T + timedelta(seconds=seconds)


async def apply_one_by_one(pool: asyncpg.Pool, events: Sequence[ParsedEvent]) -> None:
    """As the kit's fallback does: one transaction per record."""
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await handlers.apply_event(conn, event)


async def apply_batch(pool: asyncpg.Pool, events: Sequence[ParsedEvent]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await handlers.apply_events(conn, events)


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    async with pool.acquire() as conn:
        return await ReadModel(conn).snapshot()


def mixed_batch() -> tuple[list[Envelope], list[Envelope], dict[str, Any]]:
    """Events applied before (the stored state), a mixed batch, and what to look up."""
    old = view.Complaint(view.new_code("ADU"), "jalan_rusak", "mobility", view.REF_1)
    new = view.Complaint(
        view.new_code("ADU"), "sampah", "environment", view.REF_1
    )  # filed after the view.erasure
    flood = view.Complaint(
        view.new_code("ADU"), "banjir_drainase", "environment", view.REF_2, confidential=True
    )
    lamp = view.Complaint(view.new_code("ADU"), "lampu_jalan", "mobility", None)
    skewed = view.Complaint(view.new_code("ADU"), "jalan_rusak", "mobility", REF_3)
    permit, booking = view.new_code("IZN"), view.new_code("KES")
    permits = view.permit_events(permit, view.REF_1, s(1))
    notes_1 = view.notification_events(old.code, view.REF_1, s(2))
    notes_2 = view.notification_events(
        flood.code, view.REF_2, s(50)
    )  # after view.REF_2's view.erasure: stays
    stored = [
        old.filed(s(0), "Jalan rusak di depan rumah Pak Budi"),
        old.verified(s(5)),
        view.erasure(view.REF_2, s(8)),
        view.erasure(REF_3, s(30)),
        skewed.filed(s(40), "Jalan amblas"),  # after the view.erasure: keeps its reference ...
    ]
    batch = [
        view.erasure(view.REF_1, s(30)),  # before the citizen's events in the batch ...
        old.resolved(s(20), "DPUPR"),  # ... one item's events out of order
        old.breached(s(11), "DPUPR"),
        old.dispatched(s(10), "DPUPR"),
        stored[0],  # applied before: a duplicate
        # The complaints service drops the reference once it erased the citizen: a later
        # event of the same item carries none.
        replace(old, ref=None).event(ce.ComplaintRated, "closed", s(60), opd="DPUPR", rating=4),
        new.filed(s(40), "Sampah menumpuk"),
        # ... until a late event without a reference, from before the view.erasure, moves the
        # stored row's opening under it: the row's own reference is scrubbed.
        replace(skewed, ref=None).verified(s(25)),
        *reversed(permits),
        notes_1[2],
        notes_1[0],
        notes_1[2],  # a duplicate within the batch
        notes_1[1],
        flood.filed(s(3), "Banjir di rumah saya"),
        *view.appointment_events(booking, view.REF_2, s(0)),
        lamp.filed(s(4), "Lampu jalan mati"),
        view.ward_event(10, s(1)),
        view.ward_event(6, s(30)),
        *notes_2,
        view.erasure(view.REF_1, s(15)),  # an earlier view.erasure of the same citizen: the latest counts
        view.erasure(view.REF_2, s(45)),  # ... and one after the citizen's events
    ]
    codes = {
        "skewed": skewed.code,
        "old": old.code,
        "new": new.code,
        "flood": flood.code,
        "booking": booking,
        "permit": permit,
    }
    return stored, batch, codes


async def test_a_mixed_batch_gives_the_same_read_model_as_one_by_one(
    one_by_one: asyncpg.Pool, batched: asyncpg.Pool, reversed_order: asyncpg.Pool
) -> None:
    stored, batch, codes = mixed_batch()
    for pool in (one_by_one, batched, reversed_order):
        await apply_one_by_one(pool, parsed(stored))
    await apply_one_by_one(one_by_one, parsed(batch))
    await apply_batch(batched, parsed(batch))
    await apply_one_by_one(reversed_order, parsed(batch[::-1]))

    expected = await snapshot(one_by_one)
    assert await snapshot(batched) == expected
    assert await snapshot(reversed_order) == expected  # and order does not matter

    # The scenario really exercises what it is meant to.
    items = {i["code"]: i for i in expected["items"]}
    old = items[codes["old"]]
    assert old["status"] == "closed" and old["sla_breaches"] == 1 and old["opd"] == "DPUPR"
    assert old["citizen_ref"] is None and old["title"] is None  # opened before view.REF_1's view.erasure
    assert items[codes["new"]]["citizen_ref"] == view.REF_1  # opened after it
    assert items[codes["new"]]["title"] == "Sampah menumpuk"
    assert items[codes["permit"]]["citizen_ref"] is None and items[codes["booking"]]["citizen_ref"] is None
    assert items[codes["flood"]]["citizen_ref"] is None
    assert items[codes["skewed"]]["citizen_ref"] is None and items[codes["skewed"]]["title"] is None
    assert {(e["citizen_ref"], e["erased_at"]) for e in expected["erasures"]} == {
        (view.REF_1, s(30)),
        (view.REF_2, s(45)),
        (REF_3, s(30)),
    }
    kept = [(h["code"], h["action"]) for h in expected["history"] if h["citizen_ref"] is not None]
    # History goes by each event's own time: the skewed item's filing came after the view.erasure.
    assert sorted(kept) == sorted(
        [
            (codes["new"], "filed"),
            (codes["skewed"], "filed"),
            *((codes["flood"], a) for a in ("created", "sending", "delivered")),
        ]
    )
    notifications = {n["code"]: n for n in expected["notifications"]}
    assert notifications[codes["old"]]["citizen_ref"] is None
    assert notifications[codes["old"]]["status"] == "delivered"
    assert notifications[codes["flood"]]["citizen_ref"] == view.REF_2
    assert len(expected["history"]) == len({e.id for e in stored + batch})


async def test_the_batch_path_works_on_stored_rows_batch_after_batch(
    one_by_one: asyncpg.Pool, batched: asyncpg.Pool
) -> None:
    """Small batches: every batch merges into rows (and erasures) earlier ones wrote."""
    stored, batch, _ = mixed_batch()
    events = parsed(stored + batch)
    await apply_one_by_one(one_by_one, events)
    for start in range(0, len(events), 4):
        await apply_batch(batched, events[start : start + 4])
    await apply_batch(batched, events)  # everything again: nothing changes
    assert await snapshot(batched) == await snapshot(one_by_one)


async def test_a_batch_takes_a_constant_number_of_round_trips(batched: asyncpg.Pool) -> None:
    logged: list[str] = []

    def log(query: Any) -> None:
        logged.append(query.query)

    async def queries_for(conn: asyncpg.Connection, n: int) -> list[str]:
        events = []
        for i in range(n):
            c = view.Complaint(view.new_code("ADU"), "jalan_rusak", "mobility", view.REF_1 if i % 2 else None)
            events += [c.filed(s(i)), c.verified(s(i + 1))]
        logged.clear()
        async with conn.transaction():
            await handlers.apply_events(conn, parsed(events))
        return logged[:]

    async with batched.acquire() as conn:
        conn.add_query_logger(log)
        await queries_for(conn, 1)  # asyncpg looks up types once per connection
        few, many = await queries_for(conn, 2), await queries_for(conn, 250)
        conn.remove_query_logger(log)
    # BEGIN; locks, erasures, history, items read, items write; COMMIT
    assert len(few) == len(many) == 7, many


async def test_batch_locks_are_taken_in_one_sorted_order(batched: asyncpg.Pool) -> None:
    refs = [f"cr1_{uuid.uuid4().hex}" for _ in range(20)]
    erased = refs[3]  # an view.erasure in the batch: its citizen's lock is exclusive
    codes = [view.new_code("ADU") for _ in range(20)]
    notifications = [str(uuid.uuid4()) for _ in range(5)]
    arguments = (refs, [erased], codes, notifications)
    async with batched.acquire() as conn, conn.transaction():
        # The same statement with recording stand-ins for the lock functions: the order
        # in which PostgreSQL evaluates them.
        await conn.execute("CREATE TEMP TABLE calls (n serial, ns integer, key integer, exclusive boolean)")
        for suffix, flag in (("x", "true"), ("s", "false")):
            await conn.execute(
                f"CREATE FUNCTION pg_temp.lock_{suffix}(ns integer, key integer) RETURNS void"
                f" LANGUAGE sql VOLATILE AS 'INSERT INTO calls (ns, key, exclusive) VALUES (ns, key, {flag})'"
            )
        recording = repository._LOCK_ALL.replace("pg_advisory_xact_lock_shared(", "pg_temp.lock_s(").replace(
            "pg_advisory_xact_lock(", "pg_temp.lock_x("
        )
        await conn.execute(recording, *arguments)
        calls = [tuple(r) for r in await conn.fetch("SELECT ns, key, exclusive FROM calls ORDER BY n")]

        async def keys(names: list[str]) -> list[int]:
            return [r[0] for r in await conn.fetch("SELECT hashtext(n) FROM unnest($1::text[]) AS n", names)]

        citizens = sorted((key, name == erased) for key, name in zip(await keys(refs), refs, strict=True))
        want = [
            *((repository._LOCK_CITIZEN, key, x) for key, x in citizens),
            *((repository._LOCK_ITEM, key, True) for key in sorted(await keys(codes))),
            *((repository._LOCK_NOTIFICATION, key, True) for key in sorted(await keys(notifications))),
        ]
        assert calls == want

        # The real statement (via the repository) holds each lock in its mode until the
        # transaction ends.
        await ReadModel(conn)._lock(set(refs), {erased}, set(codes), set(notifications))
        held = await conn.fetch(
            "SELECT classid::integer AS ns, objid::integer AS key, mode FROM pg_locks"
            " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        modes = {(r["ns"], r["key"]): r["mode"] for r in held}
        assert modes == {(ns, key): "ExclusiveLock" if x else "ShareLock" for ns, key, x in want}
