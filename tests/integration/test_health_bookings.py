"""Bookings bound to a verified contact, against the real broker and PostgreSQL: who may
book and cancel, answers that never tell whether someone else booked a NIK, no lock-out
of a NIK's holder, and what one contact may hold (docs/operations.md). Sessions are
minted with the development key (tests/citizen_support.py); the path from a one-time
code to a booking and the message to the earlier booking's contact are in
tests/integration/test_citizen_sessions.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from services.health import handlers
from services.health.app import HealthSettings, build
from shared.kit.privacy import contact_ref
from shared.kit.settings import PlatformSettings
from shared.runtime.select import Infrastructure
from tests.citizen_support import minted_session, trust_development_sessions
from tests.harness import db_fetchval, opened_contact, running
from tests.integration.test_health_service import (
    FACILITY,
    booking,
    events_for,
    make_polyclinic,
    nik,
    visit_day,
)

HOLDER = "081311110001"  # the patient's own phone
STRANGER = "081322220002"
HOLDER_E164 = "+6281311110001"
STRANGER_E164 = "+6281322220002"


@pytest.fixture
async def health(
    infra: Infrastructure, platform: PlatformSettings, fresh_database: str
) -> AsyncIterator[tuple[httpx.AsyncClient, handlers.Context, str]]:
    """The service with the deployment's booking limits."""
    settings = HealthSettings(database_url=fresh_database, platform=platform, no_show_check_seconds=3600)
    app = trust_development_sessions(build(settings))
    async with running(app) as client:
        yield client, app.state.service.context, fresh_database


def shape(answer: httpx.Response) -> tuple[int, dict[str, str]]:
    """What an answer looks like, not what it says: status, keys and the type of each value."""
    return answer.status_code, {key: type(value).__name__ for key, value in answer.json().items()}


async def post_booking(
    client: httpx.AsyncClient, platform: PlatformSettings, by: str, day: date, polyclinic: str, **fields: Any
) -> httpx.Response:
    """A booking naming phone `by`, made with a session of `by`."""
    body = booking(day, polyclinic, phone=by, **fields)
    return await client.post("/appointments", json=body, headers=minted_session(platform, by))


async def test_booking_needs_a_session_of_the_contact_it_names(health, platform: PlatformSettings) -> None:
    client, ctx, db = health
    poli = await make_polyclinic(client)
    body = booking(visit_day(ctx), poli, phone=HOLDER)

    anonymous = await client.post("/appointments", json=body)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert "POST /citizen/codes" in anonymous.json()["detail"]
    forged = await client.post("/appointments", json=body, headers={"Authorization": "Bearer not-a-session"})
    assert forged.status_code == 401

    for session in (minted_session(platform, STRANGER), minted_session(platform, "warga@example.com")):
        answer = await client.post("/appointments", json=body, headers=session)
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["detail"]
        assert error["loc"][-1] == "phone" and error["msg"] == handlers.NOT_VERIFIED
        assert HOLDER not in answer.text and HOLDER_E164 not in answer.text
    assert await db_fetchval(db, "SELECT count(*) FROM appointments") == 0

    made = await client.post("/appointments", json=body, headers=minted_session(platform, HOLDER))
    assert made.status_code == 201, made.text
    stored = await db_fetchval(db, "SELECT contact_ref FROM appointments")
    assert stored == contact_ref(HOLDER_E164, platform.citizen_ref_key.get_secret_value())


async def test_the_answer_never_tells_whether_someone_else_booked_the_nik(
    health, platform: PlatformSettings, infra: Infrastructure
) -> None:
    """A first booking, the same booking repeated, a booking of a NIK another contact
    already booked there that day: one shape of answer. Nobody is locked out: the holder
    books after a stranger, and the stranger's booking tells the holder's contact."""
    client, ctx, db = health
    poli = await make_polyclinic(client)
    day = visit_day(ctx)
    patient = nik(1)

    first = await post_booking(client, platform, HOLDER, day, poli, nik=patient)
    repeated = await post_booking(client, platform, HOLDER, day, poli, nik=patient, payment="non_jkn")
    by_stranger = await post_booking(client, platform, STRANGER, day, poli, nik=patient)
    unrelated = await post_booking(client, platform, STRANGER, day, poli, nik=nik(2))
    answers = [first, repeated, by_stranger, unrelated]
    assert [shape(a) for a in answers] == [shape(first)] * 4 and first.status_code == 201, [
        a.text for a in answers
    ]
    assert repeated.json() == first.json()  # the booking already made, nothing new
    assert by_stranger.json()["booking_code"] != first.json()["booking_code"]
    assert by_stranger.json()["queue_number"] == 2
    assert await db_fetchval(db, "SELECT count(*) FROM appointments WHERE patient_nik = $1", patient) == 2

    # The holder is not locked out by the stranger's booking: theirs stands, and booking
    # again answers with it.
    again = await post_booking(client, platform, HOLDER, day, poli, nik=patient)
    assert again.json() == first.json()

    # The holder's contact on file is told, on the holder's booking; the event holds
    # nothing of the stranger's booking or contact.
    key = platform.citizen_ref_key.get_secret_value()
    found = await events_for(infra, 2, booking_code=first.json()["booking_code"])
    by_type = {event["type"].rsplit(".", 2)[-2]: event for _, event in found}
    assert sorted(by_type) == ["booked", "booked_again"], [e["type"] for _, e in found]
    told = by_type["booked_again"]
    assert told["subject"] == by_type["booked"]["subject"] and told["data"]["status"] == "booked"
    assert await opened_contact(ctx, told["data"]["contact"]) == {"phone": HOLDER_E164}
    assert by_stranger.json()["booking_code"] not in json.dumps(told)
    assert contact_ref(STRANGER_E164, key) not in json.dumps(told)
    assert by_type["booked"]["data"]["contact_ref"] == contact_ref(HOLDER_E164, key)
    [(_, stranger_booked)] = await events_for(infra, 1, booking_code=by_stranger.json()["booking_code"])
    assert stranger_booked["data"]["contact_ref"] == contact_ref(STRANGER_E164, key)


async def test_a_contact_holds_at_most_its_own_limits(health, platform: PlatformSettings) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client, quota_jkn=30)
    day = visit_day(ctx)
    per_contact, per_nik = ctx.policy.active_per_contact, ctx.policy.active_per_nik
    assert (per_contact, per_nik) == (6, 2)  # the documented defaults (docs/operations.md)

    # Per NIK: the same patient on later days, up to the limit.
    days = [day]
    while len(days) < per_nik + 1:
        days.append(visit_day(ctx, days[-1]))
    held = [await post_booking(client, platform, HOLDER, d, poli, nik=nik(1)) for d in days[:per_nik]]
    assert [a.status_code for a in held] == [201] * per_nik
    over_nik = await post_booking(client, platform, HOLDER, days[per_nik], poli, nik=nik(1))
    assert over_nik.status_code == 409 and "for this NIK" in over_nik.json()["detail"]
    # A stranger cannot use up the patient's allowance, nor the patient the stranger's.
    other = await post_booking(client, platform, STRANGER, days[per_nik], poli, nik=nik(1))
    assert other.status_code == 201, other.text

    # Per contact: a household's patients, up to the limit.
    for n in range(2, per_contact - per_nik + 2):
        assert (await post_booking(client, platform, HOLDER, day, poli, nik=nik(n))).status_code == 201
    over_contact = await post_booking(client, platform, HOLDER, day, poli, nik=nik(50))
    assert over_contact.status_code == 409, over_contact.text
    assert "active bookings" in over_contact.json()["detail"] and "NIK" not in over_contact.json()["detail"]

    # A cancelled booking no longer counts.
    code = held[0].json()["booking_code"]
    cancelled = await client.post(f"/appointments/{code}/cancel", headers=minted_session(platform, HOLDER))
    assert cancelled.status_code == 200, cancelled.text
    assert (await post_booking(client, platform, HOLDER, day, poli, nik=nik(50))).status_code == 201


async def test_only_the_contact_that_booked_cancels(health, platform: PlatformSettings) -> None:
    client, ctx, db = health
    poli = await make_polyclinic(client, quota_jkn=1)
    day = visit_day(ctx)
    code = (await post_booking(client, platform, HOLDER, day, poli, nik=nik(1))).json()["booking_code"]
    places = f"/facilities/{FACILITY}/polyclinics/{poli}/sessions"
    assert [s["remaining_jkn"] for s in (await client.get(places, params={"date": str(day)})).json()] == [0]

    assert (await client.post(f"/appointments/{code}/cancel")).status_code == 401
    stranger = minted_session(platform, STRANGER)
    unknown_code = "KES-0000-AAAA-BBBB-CCCCC"
    refused = await client.post(f"/appointments/{code}/cancel", headers=stranger)
    unknown = await client.post(f"/appointments/{unknown_code}/cancel", headers=stranger)
    assert refused.status_code == unknown.status_code == 404
    assert refused.json()["detail"].replace(code, unknown_code) == unknown.json()["detail"]
    assert (await client.get(f"/appointments/{code}")).json()["status"] == "booked"

    holder = minted_session(platform, HOLDER)
    cancelled = await client.post(f"/appointments/{code}/cancel", json={"reason": "sembuh"}, headers=holder)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert [s["remaining_jkn"] for s in (await client.get(places, params={"date": str(day)})).json()] == [1]
    # The place is bookable again, by anyone.
    rebooked = await post_booking(client, platform, STRANGER, day, poli, nik=nik(2))
    assert rebooked.status_code == 201, rebooked.text
    # A booking made before contacts were kept is nobody's to cancel through the API.
    await db_fetchval(
        db,
        "UPDATE appointments SET contact_ref = NULL WHERE booking_code = $1",
        rebooked.json()["booking_code"],
    )
    orphan = await client.post(
        f"/appointments/{rebooked.json()['booking_code']}/cancel", headers=minted_session(platform, STRANGER)
    )
    assert orphan.status_code == 404
