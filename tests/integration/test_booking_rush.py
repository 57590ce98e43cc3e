"""The booking-window rush on a real service (health, its PostgreSQL and the broker): far
more distinct verified citizens than places book the same session at once, against a
service with few places in flight. Exactly the quota is booked; everyone else is told
"kuota penuh" (409), after being told to come back (503 with Retry-After) as often as
the service is busy, never a 5xx; the database
and the events on health.events agree on what was booked. Its speed is measured by the
benchmark (`python -m bench.run --only rush`), not here."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from services.health import handlers
from services.health.app import HealthSettings, build
from services.health.domain import Payment
from shared.kit.db import connect
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from tests.citizen_support import minted_session, trust_development_sessions
from tests.harness import db_fetchval, events_of, read_topic, running, wait_for
from tests.integration.test_health_service import FACILITY, TOPIC, booking, make_polyclinic, nik, visit_day

PLACES = 20
CITIZENS = 300
TAKERS = 12  # transactions taking a place of one session at once, more than its FEW_PLACES
FEW_PLACES = 5


def citizen_phone(n: int) -> str:
    """A distinct mobile number per citizen."""
    return f"08134{n:07d}"


@pytest.fixture
async def busy_health(
    platform: PlatformSettings, fresh_database: str
) -> AsyncIterator[tuple[httpx.AsyncClient, handlers.Context, str]]:
    """The health service with eight places in flight, so a rush meets admission control."""
    small = platform.model_copy(update={"max_in_flight": 8})
    settings = HealthSettings(database_url=fresh_database, platform=small, no_show_check_seconds=3600)
    app = trust_development_sessions(build(settings))
    async with running(app) as client:
        yield client, app.state.service.context, fresh_database


async def test_the_locked_statement_alone_takes_exactly_a_sessions_places(
    busy_health: tuple[httpx.AsyncClient, handlers.Context, str],
) -> None:
    """The guarantee without the reads that come before it: more transactions than places,
    each on its own connection and none having read the session's count, take a place of
    one session at once. Whatever the timing, the statement that takes a place (under the
    session row's lock) gives out exactly the places there are, each position and queue
    number once."""
    client, ctx, db = busy_health
    poli = await make_polyclinic(client, f"L{uuid.uuid4().hex[:6].upper()}", quota_jkn=FEW_PLACES)
    day = visit_day(ctx)
    conns = [await connect(db) for _ in range(TAKERS)]
    try:
        repo = ctx.repository(conns[0])
        [schedule] = [
            s for s in await repo.schedules_of_polyclinic(FACILITY, poli) if s.weekday == day.weekday()
        ]
        [schedule_id] = await repo.open_sessions([schedule], day)

        async def take(conn: asyncpg.Connection) -> tuple[int, int] | None:
            async with conn.transaction():
                return await ctx.repository(conn).take_place(schedule_id, day, Payment.JKN, FACILITY, poli)

        taken = [t for t in await asyncio.gather(*map(take, conns)) if t is not None]
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    assert sorted(position for position, _ in taken) == list(range(1, FEW_PLACES + 1))
    assert sorted(number for _, number in taken) == list(range(1, FEW_PLACES + 1))


async def test_a_rush_books_exactly_the_quota_and_refuses_the_rest(
    busy_health: tuple[httpx.AsyncClient, handlers.Context, str],
    platform: PlatformSettings,
    infra: Infrastructure,
) -> None:
    client, ctx, db = busy_health
    # A polyclinic of its own: health.events holds the other tests' bookings too.
    poli = await make_polyclinic(client, f"R{uuid.uuid4().hex[:6].upper()}", quota_jkn=PLACES)
    day = visit_day(ctx)
    attempts = [
        (booking(day, poli, nik=nik(n), phone=citizen_phone(n)), minted_session(platform, citizen_phone(n)))
        for n in range(1, CITIZENS + 1)
    ]

    busy: list[httpx.Response] = []

    async def attempt(body: dict[str, object], session: dict[str, str]) -> httpx.Response:
        """One citizen: told to come back, they do, after a random wait that doubles each
        time (shorter than the Retry-After a person waits: the test is about outcomes)."""
        for tries in itertools.count():
            answer = await client.post("/appointments", json=body, headers=session)
            if answer.status_code != 503:
                return answer
            busy.append(answer)
            await asyncio.sleep(random.uniform(0, 0.1 * 2 ** min(tries, 5)))
        raise AssertionError("unreachable")

    answers = await asyncio.gather(*(attempt(body, session) for body, session in attempts))

    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, sorted(set(statuses))
    assert busy and all(a.headers["Retry-After"] for a in busy), "admission control refused some at once"
    booked = [a.json()["booking_code"] for a in answers if a.status_code == 201]
    assert len(booked) == PLACES == len(set(booked))
    assert all("kuota JKN penuh" in a.json()["detail"] for a in answers if a.status_code == 409)
    assert statuses.count(409), "the rush outlasts the quota: later citizens hear it is full"

    # Asking again (an answer lost on the way) gets the booking made, full as the session is.
    first = statuses.index(201)
    again = await client.post("/appointments", json=attempts[first][0], headers=attempts[first][1])
    assert again.status_code == 201 and again.json() == answers[first].json()

    stored = await db_fetchval(db, "SELECT count(*) FROM appointments WHERE polyclinic_code = $1", poli)
    assert stored == PLACES
    assert await db_fetchval(db, "SELECT sum(used_jkn) FROM sessions WHERE date = $1", day) == PLACES

    async def booked_events() -> set[str] | None:
        found = {
            event["data"]["booking_code"]
            for _, event in events_of(await read_topic(infra.kafka_bootstrap, TOPIC), polyclinic=poli)
            if ".appointment.booked." in event["type"]
        }
        return found if len(found) >= PLACES else None

    assert await wait_for(booked_events) == set(booked)
