"""The health service against the real broker and real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import httpx
from fhir.resources.R4B.bundle import Bundle

from services.health import handlers
from services.health.app import HealthSettings, build
from services.health.seed import load_seed
from shared.runtime.select import Infrastructure
from shared.schemas import CONTENT_TYPE, parse_record
from tests.citizen_support import minted_session, trust_development_sessions
from tests.harness import (
    SteppingClock,
    db_fetch,
    db_fetchval,
    officer_headers,
    post_raw,
    published,
    service_fixture,
)
from tests.practice_days import practice_days

TOPIC = "health.events"
FACILITY = "RSUD-TJITRO"
NIK = "3306061708900001"
PHONE_IN = "081234567890"
PHONE = "+6281234567890"
CARD = "0001234567890"
NIK_SYSTEM = "https://fhir.kemkes.go.id/id/nik"


def nik(n: int) -> str:
    """Valid, distinct NIKs: same kecamatan and birth date, serial n (1..999)."""
    return f"3306061708900{n:03d}"


MINUTE = timedelta(minutes=1)  # a step of the service's clock set by a test


# Not about what a contact may hold (tests/integration/test_health_bookings.py is): the
# client books as the citizen holding PHONE_IN, as many bookings as a test needs.
health = service_fixture(
    build,
    HealthSettings,
    wrap=trust_development_sessions,
    headers=lambda platform: minted_session(platform, PHONE_IN),
    no_show_check_seconds=3600,
    active_bookings_per_contact=100,
    active_bookings_per_nik=20,
)


def visit_day(ctx: handlers.Context, after: date | None = None) -> date:
    """The test polyclinic's first practice day after `after` (default the service's today)."""
    [day] = practice_days(ctx.calendar, after or ctx.today())
    return day


def at(ctx: handlers.Context, day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=ctx.tz)


async def make_polyclinic(
    client: httpx.AsyncClient, code: str = "UJI", *, quota_jkn: int = 15, quota_non_jkn: int = 5
) -> str:
    """A polyclinic of the RSUD with one doctor practising every day 08:00-12:00."""
    officer = officer_headers("health_officer", facility=FACILITY)
    steps = [
        (f"/facilities/{FACILITY}/polyclinics/{code}", {"name": f"Poli {code}", "queue_prefix": "U"}),
        (f"/doctors/{code}-D01", {"name": "dr. Uji Coba", "facility": FACILITY, "polyclinic": code}),
    ]
    steps += [
        (
            f"/doctors/{code}-D01/schedules/{weekday}",
            {
                "start": "08:00",
                "end": "12:00",
                "minutes_per_patient": 10,
                "quota_jkn": quota_jkn,
                "quota_non_jkn": quota_non_jkn,
            },
        )
        for weekday in range(7)
    ]
    for path, body in steps:
        response = await client.put(path, json=body, headers=officer)
        assert response.status_code == 200, (path, response.text)
    return code


def booking(day: date, polyclinic: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "nik": NIK,
        "phone": PHONE_IN,
        "facility": FACILITY,
        "polyclinic": polyclinic,
        "date": day.isoformat(),
        "payment": "jkn",
        "jkn_card": CARD,
        "new_patient": False,
    }
    body.update(overrides)
    return body


def patient_session(ctx: handlers.Context, body: dict[str, object]) -> dict[str, str]:
    """A session of the citizen holding the phone `body` names (services in these tests
    trust the development key: tests/citizen_support.py)."""
    return minted_session(ctx.platform, str(body["phone"]))


async def book(client: httpx.AsyncClient, day: date, polyclinic: str, **overrides: object) -> dict:
    response = await client.post("/appointments", json=booking(day, polyclinic, **overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def events_for(infra: Infrastructure, expected: int, **match: object) -> list:
    return await published(infra.kafka_bootstrap, TOPIC, expected, **match)


def with_clock(ctx: handlers.Context, clock: Callable[[], datetime]) -> Callable[[], datetime]:
    previous = ctx.clock
    ctx.clock = clock
    return previous


# ----- quotas under concurrency ---------------------------------------------------------------


async def test_two_hundred_concurrent_bookings_for_the_last_ten_places(health) -> None:
    client, ctx, db = health
    poli = await make_polyclinic(client, quota_jkn=15)
    day = visit_day(ctx)
    for n in range(1, 6):
        await book(client, day, poli, nik=nik(n))

    responses = await asyncio.gather(
        *(client.post("/appointments", json=booking(day, poli, nik=nik(n))) for n in range(6, 206))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 10 and statuses.count(409) == 190, sorted(set(statuses))
    refused = [r.json()["detail"] for r in responses if r.status_code == 409]
    assert all("kuota JKN penuh" in d for d in refused)

    # The database agrees: 15 live bookings, the counter at the quota, distinct numbers.
    assert await db_fetchval(db, "SELECT count(*) FROM appointments WHERE polyclinic_code=$1", poli) == 15
    assert await db_fetchval(db, "SELECT sum(used_jkn) FROM sessions WHERE date=$1", day) == 15
    numbers = [
        r["queue_number"]
        for r in await db_fetch(db, "SELECT queue_number FROM appointments WHERE polyclinic_code=$1", poli)
    ]
    assert sorted(numbers) == list(range(1, 16))
    sessions = (await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/sessions?date={day}")).json()
    assert [(s["remaining_jkn"], s["remaining_non_jkn"]) for s in sessions] == [(0, 5)]
    # Non-JKN places are a separate quota.
    cash = await book(client, day, poli, nik=nik(300), payment="non_jkn", jkn_card=None)
    assert cash["queue_code"] == "U-016" and cash["payment"] == "non_jkn"
    metrics = (await client.get("/metrics")).text
    assert (
        'sinergi_health_bookings_total{facility="RSUD-TJITRO",outcome="quota_full",payment="jkn"} 190.0'
        in metrics
    )


async def test_cancel_frees_a_place_and_a_repeated_booking_answers_the_first(
    health, infra: Infrastructure
) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client, quota_jkn=2)
    day = visit_day(ctx)
    first = await book(client, day, poli, nik=nik(1))
    await book(client, day, poli, nik=nik(2))
    full = await client.post("/appointments", json=booking(day, poli, nik=nik(3)))
    assert full.status_code == 409 and "kuota JKN penuh" in full.json()["detail"]

    # The same citizen booking the same patient again gets the booking already made.
    twice = await client.post("/appointments", json=booking(day, poli, nik=nik(1), payment="non_jkn"))
    assert twice.status_code == 201 and twice.json() == first

    reason = "demam tinggi sejak kemarin"
    cancelled = await client.post(f"/appointments/{first['booking_code']}/cancel", json={"reason": reason})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["task_id"] == 99
    # What the patient wrote travels sealed with their text key, never in clear.
    found = await events_for(infra, 2, booking_code=first["booking_code"], status="cancelled")
    assert not any(reason in record.value.decode() for record, _ in found)
    [event] = [e for _, e in found if e["type"] == "id.sinergi.health.appointment.cancelled.v1"]
    assert event["data"]["sealed_reason"]["key_id"]
    third = await book(client, day, poli, nik=nik(3))
    assert third["queue_number"] == 3  # numbers are never reused
    again = await client.post(f"/appointments/{first['booking_code']}/cancel")
    assert again.status_code == 409
    # The patient may book again after cancelling (the quota is full again now).
    rebook = await client.post("/appointments", json=booking(day, poli, nik=nik(1)))
    assert rebook.status_code == 409 and "kuota" in rebook.json()["detail"]


# ----- the visit ------------------------------------------------------------------------------


async def _visit_to_done(client: httpx.AsyncClient, ctx: handlers.Context, poli: str) -> tuple[str, dict]:
    day = visit_day(ctx)
    booked = await book(client, day, poli, name="Budi Santoso")
    assert booked["queue_code"] == "U-001" and booked["estimated_at"].startswith(f"{day}T08:00:00+07:00")
    code = booked["booking_code"]
    officer = officer_headers("health_officer", facility=FACILITY, subject="petugas-rsud")
    with_clock(ctx, SteppingClock(at(ctx, day, 7, 15), MINUTE))
    checked_in = await client.post(f"/appointments/{code}/check-in")
    assert checked_in.status_code == 200 and checked_in.json()["task_id"] == 1, checked_in.text
    for task in (2, 3):
        r = await client.post(f"/appointments/{code}/tasks", json={"task_id": task}, headers=officer)
        assert r.status_code == 200 and r.json()["task_id"] == task, r.text
    called = await client.post(
        f"/facilities/{FACILITY}/polyclinics/{poli}/call-next?date={day}", headers=officer
    )
    assert called.status_code == 200 and called.json()["booking_code"] == code, called.text
    board = (await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/queue?date={day}")).json()
    assert board["now_serving"] == ["U-001"] and board["waiting"] == 0
    for task in (5, 6, 7):
        r = await client.post(f"/appointments/{code}/tasks", json={"task_id": task}, headers=officer)
        assert r.status_code == 200 and r.json()["task_id"] == task, r.text
    return code, r.json()


async def test_a_visit_from_booking_to_done_publishes_ordered_events_under_one_key(health, infra) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client)
    code, done = await _visit_to_done(client, ctx, poli)
    assert done["status"] == "done" and [t["task_id"] for t in done["tasks"]] == [1, 2, 3, 4, 5, 6, 7]
    stamps = [t["at"] for t in done["tasks"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == 7

    found = await events_for(infra, 12, booking_code=code)
    names = [e["type"].removeprefix("id.sinergi.health.appointment.") for _, e in found]
    assert names == [
        "booked.v1",
        "queue_task_changed.v1",
        "checked_in.v1",
        "queue_task_changed.v1",
        "queue_task_changed.v1",
        "queue_task_changed.v1",
        "called.v1",
        "queue_task_changed.v1",
        "served.v1",
        "queue_task_changed.v1",
        "queue_task_changed.v1",
        "completed.v1",
    ]
    tasks = [e["data"]["task_id"] for _, e in found if e["type"].endswith("queue_task_changed.v1")]
    assert tasks == [1, 2, 3, 4, 5, 6, 7]
    records = [r for r, _ in found]
    assert len({r.key for r in records}) == 1 and len({r.partition for r in records}) == 1
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    assert records[0].key == found[0][1]["subject"].encode() == found[0][1]["data"]["appointment_id"].encode()
    for record, event in found:
        assert dict(record.headers)["content-type"] == CONTENT_TYPE.encode()
        assert parse_record(record.value).envelope.id == event["id"]
        # UU PDP: no NIK, phone, JKN card or name on the bus; a pseudonymous reference.
        for secret in (NIK, PHONE, PHONE_IN, CARD, "Budi"):
            assert secret.encode() not in record.value
        assert event["data"]["citizen_ref"].startswith("cr1_") and event["data"]["dimension"] == "living"
        assert event["data"]["kecamatan_code"] == "33.06.06"


async def test_fhir_export_of_a_finished_visit_validates_as_r4(health) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client)
    officer = officer_headers("health_officer", facility=FACILITY)
    code, _ = await _visit_to_done(client, ctx, poli)
    unfinished = await book(client, visit_day(ctx), poli, nik=nik(9))
    early = await client.get(f"/appointments/{unfinished['booking_code']}/fhir", headers=officer)
    assert early.status_code == 409 and "task 7" in early.json()["detail"]
    assert (await client.get(f"/appointments/{code}/fhir")).status_code == 401
    response = await client.get(f"/appointments/{code}/fhir", headers=officer)
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "transaction"
    patient, encounter = (entry.resource for entry in bundle.entry)
    assert patient.get_resource_type() == "Patient" and encounter.get_resource_type() == "Encounter"
    assert [(i.system, i.value) for i in patient.identifier] == [(NIK_SYSTEM, NIK)]
    assert patient.gender == "male" and str(patient.birthDate) == "1990-08-17"
    assert encounter.status == "finished" and encounter.class_fhir.code == "AMB"
    assert encounter.subject.reference == bundle.entry[0].fullUrl
    assert encounter.identifier[0].value == code
    assert encounter.period.start < encounter.period.end
    assert encounter.serviceProvider.display == "RSUD Dr. Tjitrowardojo Purworejo"


async def test_call_next_takes_the_lowest_waiting_number_and_the_board_follows(health) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client)
    day = visit_day(ctx)
    codes = [(await book(client, day, poli, nik=nik(n)))["booking_code"] for n in (1, 2, 3)]
    officer = officer_headers("health_officer", facility=FACILITY)
    with_clock(ctx, SteppingClock(at(ctx, day, 7, 0), MINUTE))
    for code in codes:
        assert (await client.post(f"/appointments/{code}/check-in")).status_code == 200
    for code in (codes[2], codes[0]):  # number 3 reaches the poli before number 1
        for task in (2, 3):
            r = await client.post(f"/appointments/{code}/tasks", json={"task_id": task}, headers=officer)
            assert r.status_code == 200, r.text
    board = (await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/queue?date={day}")).json()
    assert (board["waiting"], board["next_up"], board["at_admission"]) == (2, "U-001", 1)
    assert board["estimated_wait_minutes"] == 20 and board["now_serving"] == []

    call = f"/facilities/{FACILITY}/polyclinics/{poli}/call-next?date={day}"
    first = await client.post(call, headers=officer)
    second = await client.post(call, headers=officer)
    assert [first.json()["queue_code"], second.json()["queue_code"]] == ["U-001", "U-003"]
    empty = await client.post(call, headers=officer)
    assert empty.status_code == 409 and "no patient is waiting" in empty.json()["detail"]
    board = (await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/queue?date={day}")).json()
    assert board["now_serving"] == ["U-001", "U-003"] and board["waiting"] == 0
    assert (await client.get(f"/facilities/{FACILITY}/polyclinics/NOPE/queue")).status_code == 404


async def test_the_day_list_shows_each_visit_in_queue_order_to_its_facility_only(health) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client, "HARI")
    day = visit_day(ctx)
    codes = [(await book(client, day, poli, nik=nik(n)))["booking_code"] for n in (11, 12, 13)]
    officer = officer_headers("health_officer", facility=FACILITY)
    with_clock(ctx, SteppingClock(at(ctx, day, 7, 0), MINUTE))
    assert (await client.post(f"/appointments/{codes[1]}/check-in")).status_code == 200
    for task in (2, 3):
        r = await client.post(f"/appointments/{codes[1]}/tasks", json={"task_id": task}, headers=officer)
        assert r.status_code == 200, r.text
    assert (await client.post(f"/appointments/{codes[2]}/check-in")).status_code == 200
    listing = f"/facilities/{FACILITY}/polyclinics/{poli}/appointments?date={day}"

    found = await client.get(listing, headers=officer)
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["next_up"], body["waiting"], body["at_admission"], body["not_arrived"]) == ("U-002", 1, 1, 1)
    assert body["upcoming"] == ["U-002"] and body["now_serving"] == []
    rows = [(a["queue_code"], a["status"], a["task_id"], a["next_task_id"]) for a in body["appointments"]]
    assert rows == [
        ("U-001", "booked", None, 1),
        ("U-002", "waiting", 3, 4),
        ("U-003", "checked_in", 1, 2),
    ]
    checked_in = [a["checked_in_at"] is not None for a in body["appointments"]]
    assert checked_in == [False, True, True]
    # Queue numbers and booking codes only: nothing that names the patient.
    assert not {"nik", "name", "phone", "jkn_card", "patient"} & set(body["appointments"][0])

    elsewhere = officer_headers("health_officer", facility="PKM-BAYAN")
    refused = await client.get(listing, headers=elsewhere)
    assert refused.status_code == 403
    assert (await client.get(listing)).status_code == 401
    assert (
        await client.get(f"/facilities/{FACILITY}/polyclinics/NOPE/appointments", headers=officer)
    ).status_code == 404


async def test_a_doctor_on_leave_cancels_the_days_bookings_and_tells_each_patient(health, infra) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client, "CUTI", quota_jkn=5, quota_non_jkn=5)
    day = visit_day(ctx)
    codes = [(await book(client, day, poli, nik=nik(n)))["booking_code"] for n in (21, 22)]
    officer = officer_headers("health_officer", facility=FACILITY)
    session = f"/doctors/{poli}-D01/sessions/{day}"

    elsewhere = officer_headers("health_officer", facility="PKM-BAYAN")
    assert (await client.put(session, json={"cancelled": True}, headers=elsewhere)).status_code == 403
    past = await client.put(
        f"/doctors/{poli}-D01/sessions/{ctx.today() - timedelta(days=1)}", json={}, headers=officer
    )
    assert past.status_code == 422 and past.json()["detail"][0]["loc"][-1] == "date"
    too_many = await client.put(session, json={"quota_jkn": 1001}, headers=officer)
    assert too_many.status_code == 422

    fewer = await client.put(session, json={"quota_non_jkn": 1}, headers=officer)
    assert fewer.status_code == 200 and fewer.json()["cancelled_bookings"] == 0
    [offered] = (await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/sessions?date={day}")).json()
    assert (offered["quota_jkn"], offered["quota_non_jkn"], offered["remaining_non_jkn"]) == (5, 1, 1)

    leave = await client.put(session, json={"cancelled": True, "reason": "dokter cuti"}, headers=officer)
    assert leave.status_code == 200, leave.text
    assert (leave.json()["cancelled"], leave.json()["cancelled_bookings"]) == (True, 2)
    for code in codes:
        assert (await client.get(f"/appointments/{code}")).json()["status"] == "cancelled"
    found = await events_for(infra, 2, polyclinic=poli, reason="dokter cuti")
    assert sorted(e["data"]["booking_code"] for _, e in found) == sorted(codes)
    assert {e["type"] for _, e in found} == {"id.sinergi.health.appointment.session_cancelled.v1"}
    assert all(e["data"]["contact"] and e["data"]["task_id"] == 99 for _, e in found)

    # Nothing bookable that day any more; the facility lists the change.
    assert (await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/sessions?date={day}")).json() == []
    refused = await client.post("/appointments", json=booking(day, poli, nik=nik(23)))
    assert refused.status_code == 422 and "doctor on leave" in refused.text
    changes = (await client.get(f"/facilities/{FACILITY}")).json()["session_changes"]
    assert {"doctor": f"{poli}-D01", "date": day.isoformat(), "cancelled": True}.items() <= next(
        c for c in changes if c["doctor"] == f"{poli}-D01"
    ).items()
    # Said again, it cancels nothing more.
    again = await client.put(session, json={"cancelled": True, "reason": "dokter cuti"}, headers=officer)
    assert again.json()["cancelled_bookings"] == 0


async def test_no_show_job_marks_each_missed_booking_exactly_once(health, infra) -> None:
    client, ctx, db = health
    poli = await make_polyclinic(client)
    day = visit_day(ctx)
    missed = (await book(client, day, poli, nik=nik(1)))["booking_code"]
    arrived = (await book(client, day, poli, nik=nik(2)))["booking_code"]
    with_clock(ctx, SteppingClock(at(ctx, day, 7, 30), MINUTE))
    assert (await client.post(f"/appointments/{arrived}/check-in")).status_code == 200

    ctx.clock = SteppingClock(at(ctx, day, 12, 30), MINUTE)  # session ended, grace not yet over
    assert await handlers.mark_no_shows(ctx) == 0
    ctx.clock = SteppingClock(at(ctx, day, 13, 5), MINUTE)
    results = await asyncio.gather(handlers.mark_no_shows(ctx), handlers.mark_no_shows(ctx))
    assert sorted(results) == [0, 1] and await handlers.mark_no_shows(ctx) == 0
    view = (await client.get(f"/appointments/{missed}")).json()
    assert (view["status"], view["task_id"]) == ("no_show", 99)
    assert (await client.get(f"/appointments/{arrived}")).json()["status"] == "checked_in"
    late = await client.post(f"/appointments/{missed}/check-in")
    assert late.status_code == 409
    rows = await db_fetch(db, "SELECT event_type FROM outbox WHERE event_type LIKE '%no_show%'")
    assert len(rows) == 1
    found = await events_for(infra, 3, booking_code=missed)
    assert [e["type"].split(".")[-2] for _, e in found] == ["booked", "queue_task_changed", "no_show"]


# ----- beds ---------------------------------------------------------------------------------


async def test_bed_availability_is_validated_published_and_public(health, infra) -> None:
    client, _, db = health
    seeded = (await client.get(f"/facilities/{FACILITY}/wards")).json()
    assert {w["code"] for w in seeded} >= {"MAWAR", "ICU"}
    officer = officer_headers("health_officer", facility=FACILITY, subject="petugas-bangsal")
    path = f"/facilities/{FACILITY}/wards/MAWAR/beds"
    assert (await client.put(path, json={"total": 40, "occupied": 38})).status_code == 401
    coordinator = officer_headers("coordinator")
    assert (
        await client.put(path, json={"total": 40, "occupied": 38}, headers=coordinator)
    ).status_code == 403

    updated = await client.put(path, json={"total": 40, "occupied": 38}, headers=officer)
    assert updated.status_code == 200, updated.text
    assert (updated.json()["available"], updated.json()["bed_class"]) == (2, "kelas_3")
    same = await client.put(path, json={"total": 40, "occupied": 38}, headers=officer)
    assert same.status_code == 200
    count = "SELECT count(*) FROM outbox WHERE event_type LIKE '%bed_availability_changed%'"
    all_wards = (await client.get("/beds")).json()
    assert await db_fetchval(db, count) == len(all_wards) + 1  # the seed's, then one change

    too_many = await client.put(path, json={"total": 40, "occupied": 41}, headers=officer)
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "occupied"]
    nameless = await client.put(
        f"/facilities/{FACILITY}/wards/BARU/beds", json={"total": 4, "occupied": 0}, headers=officer
    )
    assert nameless.status_code == 422 and nameless.json()["detail"][0]["loc"] == ["body", "name"]
    unknown = await client.put(
        "/facilities/NOPE/wards/X/beds", json={"total": 1, "occupied": 0}, headers=officer
    )
    assert unknown.status_code == 404

    beds = {(w["facility"], w["code"]): w for w in (await client.get("/beds")).json()}
    assert beds[(FACILITY, "MAWAR")]["available"] == 2
    found = await events_for(infra, 1, facility=FACILITY, ward="MAWAR", occupied=38)
    event = found[-1][1]
    assert event["type"] == "id.sinergi.health.ward.bed_availability_changed.v1"
    assert event["data"]["updated_by"] == "petugas-bangsal" and event["data"]["available"] == 2


# ----- bad input, auth, illegal steps -----------------------------------------------------------


async def test_bad_input_gets_field_level_422_never_500(health) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client)
    day = visit_day(ctx)
    # A Monday the service takes bookings on, but the puskesmas's dentist does not practise.
    monday = next(d for d in practice_days(ctx.calendar, ctx.today(), 14) if d.weekday() == 0)
    cases = {
        "day 32 in NIK": (booking(day, poli, nik="3306063208900001"), "nik"),
        "month 13 in NIK": (booking(day, poli, nik="3306061713900001"), "nik"),
        "15-digit NIK": (booking(day, poli, nik="330606170890000"), "nik"),
        "short phone": (booking(day, poli, phone="08123"), "phone"),
        "JKN without card": (booking(day, poli, jkn_card=None), "jkn_card"),
        "JKN card of 12 digits": (booking(day, poli, jkn_card="000123456789"), "jkn_card"),
        "unknown payment": (booking(day, poli, payment="asuransi"), "payment"),
        "unknown facility": (booking(day, poli, facility="RS-ENTAH"), "facility"),
        "unknown polyclinic": (booking(day, "XYZ"), "polyclinic"),
        "unknown doctor": (booking(day, poli, doctor="RSUD-D01"), "doctor"),
        "date in the past": (booking(ctx.today() - timedelta(days=1), poli), "date"),
        "not a date": (booking(day, poli, date="besok"), "date"),
        "too far ahead": (booking(ctx.today() + timedelta(days=60), poli), "date"),
        # Poli Gigi of Puskesmas Kutoarjo practises on Tuesdays and Thursdays only (seed).
        "day without practice": (booking(monday, "GIG", facility="PKM-KUTOARJO"), "date"),
        "unknown field": (booking(day, poli, diagnosis="J06.9"), "diagnosis"),
    }
    for name, (body, field) in cases.items():
        response = await client.post("/appointments", json=body)
        assert response.status_code == 422, (name, response.text)
        detail = response.json()["detail"]
        assert any(field in [str(p) for p in d["loc"]] for d in detail), (name, detail)
        assert NIK not in response.text, name

    officer = officer_headers("health_officer", facility=FACILITY)
    code = (await book(client, day, poli))["booking_code"]
    for task, message in ((99, "cancelling"), (8, "tasks are 1 to 7"), ("x", "")):
        r = await client.post(f"/appointments/{code}/tasks", json={"task_id": task}, headers=officer)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "task_id"], r.text
        assert message in r.json()["detail"][0]["msg"]
    schedule = await client.put(
        f"/doctors/{poli}-D01/schedules/1",
        json={
            "start": "12:00",
            "end": "08:00",
            "minutes_per_patient": 10,
            "quota_jkn": 1,
            "quota_non_jkn": 1,
        },
        headers=officer,
    )
    assert schedule.status_code == 422 and schedule.json()["detail"][0]["loc"] == ["body", "end"]
    facility = await client.put(
        "/facilities/PKM-BARU",
        json={"name": "Puskesmas Baru", "kind": "puskesmas", "kecamatan_code": "33.06.99"},
        headers=officer,
    )
    assert facility.status_code == 422 and facility.json()["detail"][0]["loc"] == ["body", "kecamatan_code"]
    board = await client.get(f"/facilities/{FACILITY}/polyclinics/{poli}/queue?date=kemarin")
    assert board.status_code == 422 and board.json()["detail"][0]["loc"] == ["query", "date"]
    assert (await post_raw(client, "/appointments", b"{not json")).status_code == 422
    assert (await post_raw(client, "/appointments", b"x" * 200_000)).status_code == 413


async def test_unknown_ids_404_tokens_401_403_and_out_of_order_tasks_409(health) -> None:
    client, ctx, _ = health
    poli = await make_polyclinic(client)
    day = visit_day(ctx)
    code = (await book(client, day, poli))["booking_code"]
    officer = officer_headers("health_officer", facility=FACILITY)

    assert (await client.get("/appointments/KES-0000-XXXXXX")).status_code == 404
    assert (await client.post("/appointments/KES-0000-XXXXXX/check-in")).status_code == 404
    assert (await client.post("/appointments/KES-0000-XXXXXX/cancel")).status_code == 404
    missing = await client.post("/appointments/KES-0000-XXXXXX/tasks", json={"task_id": 2}, headers=officer)
    assert missing.status_code == 404
    assert (await client.get("/facilities/NOPE")).status_code == 404

    task = f"/appointments/{code}/tasks"
    assert (await client.post(task, json={"task_id": 2})).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.post(task, json={"task_id": 2}, headers=bad)).status_code == 401
    citizen_role = officer_headers("opd_officer", opd="DLH")
    assert (await client.post(task, json={"task_id": 2}, headers=citizen_role)).status_code == 403
    assert (
        await client.put("/doctors/X-1", json={"name": "dr. X", "facility": FACILITY, "polyclinic": poli})
    ).status_code == 401
    call = f"/facilities/{FACILITY}/polyclinics/{poli}/call-next?date={day}"
    assert (await client.post(call, headers=citizen_role)).status_code == 403

    early = await client.post(f"/appointments/{code}/check-in")  # the day before the visit
    assert early.status_code == 409 and "check-in opens at" in early.json()["detail"]
    out_of_order = await client.post(task, json={"task_id": 5}, headers=officer)
    assert out_of_order.status_code == 409
    body = out_of_order.json()
    assert body["current_status"] == "booked" and body["command"] == "task 5"
    assert "the next task is 1" in body["detail"]

    with_clock(ctx, SteppingClock(at(ctx, day, 7, 30), MINUTE))
    assert (await client.post(f"/appointments/{code}/check-in")).status_code == 200
    skip = await client.post(task, json={"task_id": 3}, headers=officer)
    assert skip.status_code == 409 and "the next task is 2" in skip.json()["detail"]
    again = await client.post(f"/appointments/{code}/check-in")
    assert again.status_code == 409
    view = (await client.get(f"/appointments/{code}")).json()
    assert view["task_id"] == 1 and NIK not in json.dumps(view)


async def test_reference_data_seeded_once_and_health_endpoints(health) -> None:
    client, ctx, db = health
    facilities = (await client.get("/facilities")).json()
    assert facilities[0]["code"] == FACILITY and len(facilities) >= 4
    assert await handlers.seed_if_empty(ctx, load_seed()) is False
    detail = (await client.get(f"/facilities/{FACILITY}")).json()
    assert {p["code"] for p in detail["polyclinics"]} >= {"INT", "ANA"}
    assert any(s["doctor"] == "RSUD-D01" and s["day"] == "Senin" for s in detail["schedules"])
    assert await db_fetchval(db, "SELECT count(*) FROM facilities") == len(facilities)
    assert (await client.get("/health")).json()["status"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert "sinergi_health_queue_waiting" in metrics and "sinergi_outbox_pending_events" in metrics
    schema = (await client.get("/openapi.json")).json()
    assert (
        "/appointments" in schema["paths"] and "/facilities/{facility}/wards/{ward}/beds" in schema["paths"]
    )
