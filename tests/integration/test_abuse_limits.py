"""Abuse limits of anonymous writes (issue 16, part 4; shared/kit/limits.py), against the
real PostgreSQL and broker: the deployment's numbers (the suite otherwise raises them a
thousandfold, tests/conftest.py), a script booking out a polyclinic, two instances
counting together, a refusal that writes nothing, and the limiter's statement under
concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.complaints.api import FileComplaintIn
from services.complaints.app import ComplaintsSettings
from services.complaints.app import build as build_complaints
from services.health.app import HealthSettings
from services.health.app import build as build_health
from services.notifications.app import NotificationsSettings
from services.notifications.app import build as build_notifications
from services.permits.app import PermitsSettings
from services.permits.app import build as build_permits
from shared.kit.bodies import example_of
from shared.kit.db import create_pool, migrate
from shared.kit.limits import Limit, RateLimited, limit_key, prune, take
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from tests.citizen_support import minted_session, trust_development_sessions
from tests.harness import db_fetch, db_fetchval, new_database, officer_headers, running, scrape
from tests.practice_days import practice_days

FACILITY = "RSUD-TJITRO"
CARD = "0001234567890"
COMPLAINT = example_of(FileComplaintIn)  # as the API documents it
# Every anonymous write and its rule's default count per hour (docs/operations.md).
LIMITED = {
    "complaints": [
        "POST /complaints",
        "POST /complaints/{tracking_code}/rating",
        "POST /complaints/{tracking_code}/reopen",
    ],
    "permits": ["POST /applications", "POST /applications/{tracking_code}/resubmission"],
    "health": [
        "POST /appointments",
        "POST /appointments/{booking_code}/check-in",
        "POST /appointments/{booking_code}/cancel",
    ],
    "notifications": ["PUT /preferences", "POST /preferences/lookup"],
}


def nik(n: int) -> str:
    """Valid, distinct NIKs (a script's generator): same kecamatan and birth date."""
    return f"3306061708900{n:03d}"


@pytest.fixture
def limited(platform: PlatformSettings) -> PlatformSettings:
    """The suite's platform with the deployment's limits (factor 1)."""
    return platform.model_copy(update={"rate_limit_factor": 1.0})


def with_rule(platform: PlatformSettings, name: str, count: int, per_seconds: float) -> PlatformSettings:
    rates = {**platform.rate_limits, name: {"count": count, "per_seconds": per_seconds}}
    return PlatformSettings.model_validate({**platform.model_dump(), "rate_limits": rates})


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    assert str(seconds) in response.json()["detail"]
    return seconds


# ----- the statement --------------------------------------------------------------------------


@pytest.fixture
async def pool(infra: Infrastructure, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    """A database with the kit's migrations only (an empty service folder), and twenty
    connections, so concurrent takes really race."""
    url = await new_database(infra)
    await migrate(url, tmp_path)
    created = await create_pool(url, min_size=20, max_size=20)
    try:
        yield created
    finally:
        await created.close()


async def test_concurrent_takes_pass_exactly_the_limit(
    pool: asyncpg.Pool, platform: PlatformSettings
) -> None:
    rule = Limit("test.burst", 7, 3600)
    key = limit_key(platform, "198.51.100.1")

    async def attempt() -> int | None:
        try:
            await take(pool, rule, key)
            return None
        except RateLimited as exc:
            return exc.retry_after_seconds

    outcomes = await asyncio.gather(*(attempt() for _ in range(60)))
    assert outcomes.count(None) == 7
    # Refused: the next place frees after one interval (3600 / 7 s), never sooner.
    assert all(1 <= wait <= 515 for wait in outcomes if wait is not None)
    # Another key and another rule count apart.
    await take(pool, rule, limit_key(platform, "198.51.100.2"))
    await take(pool, Limit("test.other", 1, 3600), key)
    rows = await pool.fetch("SELECT name, key FROM rate_limit ORDER BY name, key")
    assert len(rows) == 3 and all("198.51.100" not in r["key"] for r in rows)


async def test_expired_rows_are_pruned(pool: asyncpg.Pool, platform: PlatformSettings) -> None:
    await take(pool, Limit("test.short", 10, 0.5), limit_key(platform, "a"))
    await take(pool, Limit("test.long", 10, 3600), limit_key(platform, "a"))
    await asyncio.sleep(0.2)  # past the short rule's arrival time (0.05 s after the take)
    assert await prune(pool) == 1
    assert await pool.fetchval("SELECT name FROM rate_limit") == "test.long"


# ----- the services ---------------------------------------------------------------------------


@pytest.fixture
async def health(
    limited: PlatformSettings, fresh_database: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    settings = HealthSettings(database_url=fresh_database, platform=limited, no_show_check_seconds=3600)
    app = trust_development_sessions(build_health(settings))
    async with running(app) as client:
        yield client, app.state.service.context


async def make_polyclinic(client: httpx.AsyncClient, code: str, quota_jkn: int, quota_non_jkn: int) -> None:
    officer = officer_headers("health_officer", facility=FACILITY)
    steps: list[tuple[str, dict[str, Any]]] = [
        (f"/facilities/{FACILITY}/polyclinics/{code}", {"name": f"Poli {code}", "queue_prefix": "U"}),
        (f"/doctors/{code}-D01", {"name": "dr. Uji Coba", "facility": FACILITY, "polyclinic": code}),
    ]
    day = {"start": "08:00", "end": "12:00", "minutes_per_patient": 5}
    quotas = {"quota_jkn": quota_jkn, "quota_non_jkn": quota_non_jkn}
    steps += [(f"/doctors/{code}-D01/schedules/{weekday}", day | quotas) for weekday in range(7)]
    for path, body in steps:
        response = await client.put(path, json=body, headers=officer)
        assert response.status_code == 200, (path, response.text)


def phone(n: int) -> str:
    return f"0812{n:08d}"


def booking(day: date, polyclinic: str, n: int, by: int | None = None) -> dict[str, Any]:
    """A booking for the patient of NIK `n`, made by the holder of phone `by` (default `n`)."""
    return {
        "nik": nik(n),
        "phone": phone(n if by is None else by),
        "facility": FACILITY,
        "polyclinic": polyclinic,
        "date": day.isoformat(),
        "payment": "jkn",
        "jkn_card": CARD,
    }


async def test_a_script_booking_forty_places_from_one_address_is_held_off(
    health, limited: PlatformSettings
) -> None:
    """Each booking from a contact of its own (a script holding many verified numbers: the
    per-contact limits do not stop it, the address limit does)."""
    client, ctx = health
    await make_polyclinic(client, "ABU", quota_jkn=50, quota_non_jkn=10)
    [day] = practice_days(ctx.calendar, ctx.today())
    gate = asyncio.Semaphore(8)  # a script's few connections, as fast as they answer

    async def book(n: int) -> httpx.Response:
        body = booking(day, "ABU", n)
        async with gate:
            return await client.post(
                "/appointments", json=body, headers=minted_session(limited, body["phone"])
            )

    started = time.monotonic()
    answers = await asyncio.gather(*(book(n) for n in range(1, 41)))
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    booked = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    # The rule's number (health.bookings_per_address, 20 an hour), not one more.
    assert len(booked) == 20, [a.text for a in refused if a.status_code != 429]
    assert len(refused) == 20 and all(retry_after(a) > 60 for a in refused)
    sessions = await client.get(f"/facilities/{FACILITY}/polyclinics/ABU/sessions", params={"date": str(day)})
    assert sessions.status_code == 200
    [session] = sessions.json()
    assert session["remaining_jkn"] == 30 and session["remaining_non_jkn"] == 10


async def test_strangers_booking_a_nik_from_many_addresses_never_lock_its_holder_out(
    health, limited: PlatformSettings
) -> None:
    """No limit is keyed by the NIK: five strangers, each with a verified number of their
    own and their own address (the edge's X-Forwarded-For; loopback is trusted), book the
    patient of NIK 7 at one polyclinic on one day; the patient's own booking is made."""
    client, ctx = health
    await make_polyclinic(client, "NIK", quota_jkn=50, quota_non_jkn=10)
    [day] = practice_days(ctx.calendar, ctx.today())
    for stranger in range(100, 105):
        body = booking(day, "NIK", 7, by=stranger)
        headers = {"X-Forwarded-For": f"198.51.100.{stranger}", **minted_session(limited, body["phone"])}
        answer = await client.post("/appointments", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
    own = booking(day, "NIK", 7)
    mine = await client.post("/appointments", json=own, headers=minted_session(limited, own["phone"]))
    assert mine.status_code == 201, mine.text
    assert mine.json()["queue_number"] == 6


def complaints_app(platform: PlatformSettings, database_url: str) -> FastAPI:
    return build_complaints(
        ComplaintsSettings(database_url=database_url, platform=platform, sla_check_seconds=3600)
    )


async def written(database_url: str) -> tuple[int, int]:
    complaints = await db_fetchval(database_url, "SELECT count(*) FROM complaints")
    events = await db_fetchval(database_url, "SELECT count(*) FROM outbox")
    return int(complaints), int(events)  # type: ignore[call-overload]


async def test_two_instances_share_one_limit(limited: PlatformSettings, fresh_database: str) -> None:
    platform = with_rule(limited, "complaints.filing", 3, 3600)
    one = complaints_app(platform, fresh_database)
    two = complaints_app(platform, fresh_database)
    async with running(one) as first, running(two) as second:
        statuses = [
            (await client.post("/complaints", json=COMPLAINT)).status_code
            for client in (first, second, first, second, first)
        ]
    assert statuses == [201, 201, 201, 429, 429]
    assert (await written(fresh_database))[0] == 3


async def test_over_the_limit_nothing_is_written_and_after_retry_after_it_is_served(
    limited: PlatformSettings, fresh_database: str
) -> None:
    platform = with_rule(limited, "complaints.filing", 2, 4)
    async with running(complaints_app(platform, fresh_database)) as client:
        for _ in range(2):
            assert (await client.post("/complaints", json=COMPLAINT)).status_code == 201
        before = await written(fresh_database)
        assert before == (2, 2)
        refused = await client.post("/complaints", json=COMPLAINT)
        wait = retry_after(refused)
        assert wait == 2  # one place frees every 4 s / 2
        assert await written(fresh_database) == before
        await asyncio.sleep(wait)
        again = await client.post("/complaints", json=COMPLAINT)
        assert again.status_code == 201, again.text
        assert await written(fresh_database) == (3, 3)
    keys = await db_fetch(fresh_database, "SELECT name, key FROM rate_limit")
    assert [r["name"] for r in keys] == ["complaints.filing"]
    assert "127.0.0.1" not in keys[0]["key"]


async def test_every_refusal_is_counted_under_its_rule_on_metrics(
    limited: PlatformSettings, fresh_database: str
) -> None:
    """Operators see a rule biting: sinergi_rate_limited_total{rule} on /metrics, one per 429."""
    platform = with_rule(limited, "complaints.filing", 1, 3600)

    async def refusals(client: httpx.AsyncClient) -> float | None:
        return (await scrape(client)).value("sinergi_rate_limited_total", rule="complaints.filing")

    async with running(complaints_app(platform, fresh_database)) as client:
        assert (await client.post("/complaints", json=COMPLAINT)).status_code == 201
        assert await refusals(client) is None  # a request let through counts nothing
        for _ in range(2):
            retry_after(await client.post("/complaints", json=COMPLAINT))
        assert await refusals(client) == 2


def _operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    }


@pytest.mark.parametrize("service", sorted(LIMITED))
def test_openapi_documents_429_on_every_limited_route(service: str, limited: PlatformSettings) -> None:
    builders = {
        "complaints": lambda: build_complaints(ComplaintsSettings(platform=limited)),
        "permits": lambda: build_permits(PermitsSettings(platform=limited)),
        "health": lambda: build_health(HealthSettings(platform=limited)),
        "notifications": lambda: build_notifications(NotificationsSettings(platform=limited)),
    }
    operations = _operations(builders[service]())
    for name in LIMITED[service]:
        documented = operations[name]["responses"]["429"]
        assert "Retry-After" in documented["headers"], name


@pytest.mark.parametrize(
    ("service", "operation"), [(s, o) for s in ("complaints", "permits", "health") for o in LIMITED[s]]
)
async def test_every_anonymous_write_is_limited(
    service: str, operation: str, limited: PlatformSettings, fresh_database: str
) -> None:
    """Each rule counts every request, a malformed one too: with one request per hour,
    the second answer is 429 whatever the first was."""
    platform = limited.model_copy(update={"rate_limit_factor": 0.0001})
    builders = {
        "complaints": lambda: build_complaints(
            ComplaintsSettings(database_url=fresh_database, platform=platform, sla_check_seconds=3600)
        ),
        "permits": lambda: trust_development_sessions(
            build_permits(
                PermitsSettings(
                    database_url=fresh_database,
                    platform=platform,
                    sla_check_seconds=3600,
                    expiry_check_seconds=3600,
                )
            )
        ),
        "health": lambda: trust_development_sessions(
            build_health(
                HealthSettings(
                    database_url=fresh_database, platform=platform, no_show_check_seconds=3600, seed_path=""
                )
            )
        ),
    }
    method, path = operation.split(" ")
    url = path.replace("{tracking_code}", "UNKNOWN-CODE").replace("{booking_code}", "UNKNOWN-CODE")
    # Bookings, cancellations and resubmissions are a verified citizen's: the rule counts
    # them all the same.
    citizen = minted_session(platform, "081234567890") if service != "complaints" else {}
    async with running(builders[service]()) as client:
        first = await client.request(method, url, json={}, headers=citizen)
        assert first.status_code in (404, 422), first.text
        retry_after(await client.request(method, url, json={}, headers=citizen))
        # Another client address (through the trusted edge) is served as before.
        elsewhere = await client.request(
            method, url, json={}, headers={"X-Forwarded-For": "198.51.100.9", **citizen}
        )
        assert elsewhere.status_code == first.status_code, elsewhere.text
