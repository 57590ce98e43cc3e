"""A real, legal request for every officer operation of every service: the role matrix
(test_role_matrix.py) sends it to each caller and expects exactly the documented answer.

Each builder brings a fresh item into the state the operation is legal in, through the
services' own HTTP API as an officer would (a complaint filed, verified and disposed to
`OPD`; an application through its checks; a visit booked at `FACILITY` and checked in),
and returns the request. An operation that changes its item gets a new one for every
caller allowed to change it; a refused caller must leave the item as it was, so the same
request serves every refusal first.

Items are in scope of the in-scope callers: disposed to `OPD`, at `FACILITY`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from shared.kit.settings import PlatformSettings
from shared.runtime.fake_gateway import FakeGateway
from tests.attachment_support import pdf, phone_photo
from tests.citizen_support import minted_session
from tests.harness import SteppingClock, send_event, wait_for
from tests.notifications_support import verified
from tests.practice_days import practice_days

Request = dict[str, Any]  # httpx.AsyncClient.request keyword arguments
OPD = "DPUPR"
OTHER_OPD = "DLH"
FACILITY = "RSUD-TJITRO"
OTHER_FACILITY = "PKM-BAYAN"
NIK = "3306061708900001"
OTHER_NIK = "3306061708900777"
CITIZEN_REF = "cr1_" + "0" * 32  # well-formed, known to no one


@dataclass
class Running:
    """One service under test, and what its builders need to prepare an item."""

    client: httpx.AsyncClient
    app: FastAPI
    admin: dict[str, str]  # an officer who may do anything: prepares the items
    platform: PlatformSettings | None = None
    producer: AIOKafkaProducer | None = None
    gateway: FakeGateway | None = None
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def ok(self, method: str, url: str, **request: Any) -> dict[str, Any]:
        """An officer's step on the way to an item's state; it must succeed."""
        answer = await self.client.request(method, url, headers=self.admin, **request)
        assert answer.is_success, f"preparing: {method} {url}: {answer.status_code} {answer.text[:300]}"
        return answer.json() if answer.content else {}

    async def public(self, method: str, url: str, **request: Any) -> dict[str, Any]:
        answer = await self.client.request(method, url, **request)
        assert answer.is_success, f"preparing: {method} {url}: {answer.status_code} {answer.text[:300]}"
        return answer.json()


Build = Callable[[Running], Awaitable[Request]]


def request(method: str, url: str, body: Any = None, **more: Any) -> Request:
    return {"method": method, "url": url, **({"json": body} if body is not None else {}), **more}


def fixed(method: str, url: str, body: Any = None, **more: Any) -> Build:
    """An operation that needs no item of its own."""

    async def build(_: Running) -> Request:
        return request(method, url, body, **more)

    return build


def kit_operations() -> dict[str, Build]:
    """The kit's operator endpoints, the same in every service."""
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return {
        "GET /admin/outbox": fixed("GET", "/admin/outbox"),
        "POST /admin/outbox/republish": fixed("POST", "/admin/outbox/republish", {"since": since}),
        "GET /admin/dead-letters": fixed("GET", "/admin/dead-letters"),
        "POST /admin/dead-letters/replay": fixed("POST", "/admin/dead-letters/replay"),
        "GET /admin/audit": fixed("GET", "/admin/audit"),
    }


def citizen_data_operations(held: Callable[[Running], Awaitable[object]]) -> dict[str, Build]:
    """Export and erasure of the citizen `NIK`, once `held` has made the service hold
    something about them (an erasure before took it all), and a citizen's data key."""

    def about_the_citizen(step: str) -> Build:
        async def build(s: Running) -> Request:
            await held(s)
            return request("POST", f"/admin/citizens/{step}", {"nik": NIK})

        return build

    def key_of(kind: str) -> Build:
        async def build(s: Running) -> Request:
            ctx = s.app.state.service.context
            async with ctx.pool().acquire() as conn:
                key_id, _ = await ctx.data_keys.key_for(conn, CITIZEN_REF)
            return request("GET", f"/internal/{kind}/{key_id}")

        return build

    return {
        **{f"POST /admin/citizens/{step}": about_the_citizen(step) for step in ("export", "erase")},
        **{f"GET /internal/{kind}/{{key_id}}": key_of(kind) for kind in ("data-keys", "text-keys")},
    }


# ----- complaints ------------------------------------------------------------------------------


async def filed_complaint(s: Running, photos: tuple[str, ...] = ()) -> str:
    body = {
        "kind": "pengaduan",
        "category": "jalan_rusak",  # the category of `OPD`
        "title": "Jalan berlubang di depan balai desa",
        "description": "Lubang besar di jalan desa membahayakan pengendara motor.",
        "desa_code": "33.06.01.2001",
        "reporter": {"nik": NIK, "phone": "081234567890"},
        "photos": list(photos),
    }
    return str((await s.public("POST", "/complaints", json=body))["tracking_code"])


async def verified_complaint(s: Running, photos: tuple[str, ...] = ()) -> str:
    code = await filed_complaint(s, photos)
    await s.ok("POST", f"/officer/complaints/{code}/verify")
    return code


async def disposed_complaint(s: Running, photos: tuple[str, ...] = ()) -> str:
    code = await verified_complaint(s, photos)
    await s.ok(
        "POST", f"/officer/complaints/{code}/dispatch", json={"opd": OPD, "note": "Mohon ditindaklanjuti"}
    )
    return code


def on_complaint(prepare: Callable[[Running], Awaitable[str]], step: str | None, body: Any = None) -> Build:
    async def build(s: Running) -> Request:
        code = await prepare(s)
        url = f"/officer/complaints/{code}" + (f"/{step}" if step else "")
        return request("POST" if step else "GET", url, body)

    return build


async def complaint_photo(s: Running) -> Request:
    photo = await s.public(
        "POST", "/complaints/photos", files={"file": ("foto.jpg", phone_photo(), "image/jpeg")}
    )
    code = await disposed_complaint(s, (photo["id"],))
    return request("GET", f"/officer/complaints/{code}/photos/{photo['id']}")


async def merge(s: Running) -> Request:
    original = await verified_complaint(s)
    duplicate = await filed_complaint(s)
    return request("POST", f"/officer/complaints/{duplicate}/merge", {"duplicate_of": original})


OPEN311_CLIENT = {"client": "Aplikasi Lapor Desa (Komunitas X)"}


async def open311_key(s: Running) -> Request:
    key = await s.ok("POST", "/admin/open311/keys", json=OPEN311_CLIENT)
    return request("POST", f"/admin/open311/keys/{key['id']}/revoke")


COMPLAINTS: dict[str, Build] = {
    "GET /officer/complaints": fixed("GET", "/officer/complaints"),
    "GET /officer/complaints/{tracking_code}": on_complaint(disposed_complaint, None),
    "GET /officer/complaints/{tracking_code}/photos/{photo_id}": complaint_photo,
    "POST /officer/complaints/{tracking_code}/verify": on_complaint(filed_complaint, "verify"),
    "POST /officer/complaints/{tracking_code}/dispatch": on_complaint(
        verified_complaint, "dispatch", {"opd": OPD, "note": "Mohon ditindaklanjuti"}
    ),
    "POST /officer/complaints/{tracking_code}/reject": on_complaint(
        filed_complaint, "reject", {"reason_code": "not_a_complaint", "reason": "Bukan pengaduan"}
    ),
    "POST /officer/complaints/{tracking_code}/merge": merge,
    "POST /officer/complaints/{tracking_code}/progress": on_complaint(
        disposed_complaint, "progress", {"note": "Tim sudah meninjau lokasi"}
    ),
    "POST /officer/complaints/{tracking_code}/responses": on_complaint(
        disposed_complaint, "responses", {"response": "Perbaikan dijadwalkan pekan depan"}
    ),
    "POST /officer/complaints/{tracking_code}/resolve": on_complaint(
        disposed_complaint, "resolve", {"resolution": "Jalan sudah ditambal"}
    ),
    "GET /admin/open311/keys": fixed("GET", "/admin/open311/keys"),
    "POST /admin/open311/keys": fixed("POST", "/admin/open311/keys", OPEN311_CLIENT),
    "POST /admin/open311/keys/{key_id}/revoke": open311_key,
    **kit_operations(),
    **citizen_data_operations(filed_complaint),
}


# ----- permits ---------------------------------------------------------------------------------

PBG_DOCUMENTS = ["ktp", "bukti_tanah", "krk", "gambar_arsitektur", "gambar_struktur", "gambar_mep"]


def next_working_day_at_ten(s: Running) -> str:
    ctx = s.app.state.service.context
    day = ctx.calendar.next_working_day(ctx.calendar.local_date(ctx.clock()))
    return datetime.combine(day, time(10, 0), tzinfo=ctx.calendar.tz).isoformat()


async def application(s: Running, *steps: tuple[str, dict[str, Any]], ktp_upload: str | None = None) -> str:
    """A building approval (PBG, inspected) applied for, then taken through `steps`."""
    documents = [{"code": code, "ref": f"dms://{code}/1"} for code in PBG_DOCUMENTS]
    if ktp_upload:
        documents[0] = {"code": "ktp", "upload": ktp_upload}
    body = {
        "permit_type": "pbg",
        "applicant": {"nik": NIK, "name": "Budi Santoso", "phone": "081234567890"},
        "desa_code": "33.06.01.2001",
        "details": {"building_function": "hunian", "building_area_m2": 120, "floors": 2},
        "documents": documents,
    }
    code = str((await s.public("POST", "/applications", json=body))["tracking_code"])
    for step, step_body in steps:
        await s.ok("POST", f"/officer/applications/{code}/{step}", json=step_body)
    return code


def permit_steps(s: Running) -> list[tuple[str, dict[str, Any]]]:
    """Every officer step of an inspected application, in order, with its body."""
    return [
        ("document-check", {"outcome": "complete"}),
        ("inspection", {"scheduled_for": next_working_day_at_ten(s), "inspector": "Tim Teknis"}),
        ("inspection/result", {"result": "passed", "findings": "Sesuai gambar rencana"}),
        ("approve", {"note": "Memenuhi persyaratan teknis"}),
        ("issue", {}),
        ("revoke", {"reason": "Bangunan tidak sesuai izin"}),
    ]


def at_step(name: str) -> Build:
    """The officer step `name` on an application that has just passed the steps before it."""

    async def build(s: Running) -> Request:
        steps = permit_steps(s)
        index = [step for step, _ in steps].index(name)
        code = await application(s, *steps[:index])
        return request("POST", f"/officer/applications/{code}/{name}", steps[index][1])

    return build


async def application_read(s: Running) -> Request:
    return request("GET", f"/officer/applications/{await application(s)}")


async def application_rejected(s: Running) -> Request:
    code = await application(s)
    return request("POST", f"/officer/applications/{code}/reject", {"reasons": ["Lokasi di luar zona"]})


async def application_document(s: Running) -> Request:
    ktp = await s.public(
        "POST", "/applications/documents", files={"file": ("ktp.pdf", pdf(), "application/pdf")}
    )
    code = await application(s, ktp_upload=ktp["id"])
    return request("GET", f"/officer/applications/{code}/documents/{ktp['id']}")


PERMITS: dict[str, Build] = {
    "GET /officer/applications": fixed("GET", "/officer/applications"),
    "GET /officer/applications/{tracking_code}": application_read,
    "GET /officer/applications/{tracking_code}/documents/{document_id}": application_document,
    **{
        f"POST /officer/applications/{{tracking_code}}/{step}": at_step(step)
        for step in ("document-check", "inspection", "inspection/result", "approve", "issue", "revoke")
    },
    "POST /officer/applications/{tracking_code}/reject": application_rejected,
    **kit_operations(),
    **citizen_data_operations(application),
}


# ----- health ----------------------------------------------------------------------------------

POLYCLINIC = "MTX"  # the matrix's own polyclinic at `FACILITY`: one doctor, every day
DOCTOR = f"{POLYCLINIC}-D01"
HOURS = {"start": "08:00", "end": "12:00", "minutes_per_patient": 10, "quota_jkn": 30, "quota_non_jkn": 10}


async def opened_polyclinic(s: Running) -> None:
    await s.ok(
        "PUT",
        f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}",
        json={"name": "Poli Matriks", "queue_prefix": "M"},
    )
    await s.ok(
        "PUT",
        f"/doctors/{DOCTOR}",
        json={"name": "dr. Matriks", "facility": FACILITY, "polyclinic": POLYCLINIC},
    )
    for weekday in range(7):
        await s.ok("PUT", f"/doctors/{DOCTOR}/schedules/{weekday}", json=HOURS)


async def visit(s: Running, *tasks: int, nik: str | None = None) -> tuple[str, date]:
    """A booking at the matrix polyclinic on the next day without a holiday, checked in
    on that morning and taken through the BPJS `tasks` (each visit on a day of its own,
    so the queue holds one patient)."""
    ctx = s.app.state.service.context
    await opened_polyclinic(s)
    [day] = practice_days(ctx.calendar, ctx.today())
    booking = {
        "nik": nik or f"3306061708900{next(s.serial):03d}",
        "phone": "081234567890",
        "facility": FACILITY,
        "polyclinic": POLYCLINIC,
        "date": day.isoformat(),
        "payment": "non_jkn",
        "new_patient": False,
    }
    patient = minted_session(s.app.state.settings.platform, booking["phone"])
    code = str((await s.public("POST", "/appointments", json=booking, headers=patient))["booking_code"])
    # The health service's clock, moved to the visit's morning to check a patient in.
    ctx.clock = SteppingClock(datetime.combine(day, time(7, 15), tzinfo=ctx.tz), timedelta(seconds=1))
    await s.public("POST", f"/appointments/{code}/check-in")
    for task in tasks:
        if task == 4:
            await s.ok("POST", f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}/call-next?date={day}")
        else:
            await s.ok("POST", f"/appointments/{code}/tasks", json={"task_id": task})
    return code, day


async def next_task(s: Running) -> Request:
    code, _ = await visit(s)
    return request("POST", f"/appointments/{code}/tasks", {"task_id": 2})


async def call_next(s: Running) -> Request:
    _, day = await visit(s, 2, 3)
    return request(
        "POST", f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}/call-next", params={"date": str(day)}
    )


async def day_list(s: Running) -> Request:
    await opened_polyclinic(s)
    return request("GET", f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}/appointments")


async def fhir_export(s: Running) -> Request:
    code, _ = await visit(s, 2, 3, 4, 5, 6, 7)
    return request("GET", f"/appointments/{code}/fhir")


async def facility_update(s: Running) -> Request:
    current = await s.public("GET", f"/facilities/{FACILITY}")
    body = {key: current[key] for key in ("name", "kind", "kecamatan_code", "address")}
    return request("PUT", f"/facilities/{FACILITY}", body)


async def session_change(s: Running) -> Request:
    """Other quotas on a day of the matrix doctor's (every day: `opened_polyclinic`), weeks
    after the visits the other operations book."""
    await opened_polyclinic(s)
    day = s.app.state.service.context.today() + timedelta(days=20)
    return request("PUT", f"/doctors/{DOCTOR}/sessions/{day}", {"quota_jkn": 3, "quota_non_jkn": 2})


async def polyclinic_setting(s: Running, url: str, body: dict[str, Any]) -> Request:
    await opened_polyclinic(s)
    return request("PUT", url, body)


HEALTH: dict[str, Build] = {
    "POST /appointments/{booking_code}/tasks": next_task,
    "POST /facilities/{facility}/polyclinics/{polyclinic}/call-next": call_next,
    "GET /appointments/{booking_code}/fhir": fhir_export,
    "GET /facilities/{facility}/polyclinics/{polyclinic}/appointments": day_list,
    "PUT /facilities/{facility}/wards/{ward}/beds": fixed(
        "PUT", f"/facilities/{FACILITY}/wards/MAWAR/beds", {"total": 40, "occupied": 31}
    ),
    "PUT /facilities/{facility}": facility_update,
    "PUT /facilities/{facility}/polyclinics/{polyclinic}": fixed(
        "PUT",
        f"/facilities/{FACILITY}/polyclinics/{POLYCLINIC}",
        {"name": "Poli Matriks", "queue_prefix": "M"},
    ),
    "PUT /doctors/{doctor}": lambda s: polyclinic_setting(
        s, f"/doctors/{DOCTOR}", {"name": "dr. Matriks", "facility": FACILITY, "polyclinic": POLYCLINIC}
    ),
    "PUT /doctors/{doctor}/schedules/{weekday}": lambda s: polyclinic_setting(
        s, f"/doctors/{DOCTOR}/schedules/2", HOURS
    ),
    "PUT /doctors/{doctor}/sessions/{date}": session_change,
    **kit_operations(),
    **citizen_data_operations(lambda s: visit(s, nik=NIK)),
}


# ----- notifications ---------------------------------------------------------------------------


async def failed_notification(s: Running) -> str:
    """A notification the SMS/WhatsApp gateway refused for good (a permanent failure)."""
    assert s.platform is not None and s.producer is not None and s.gateway is not None
    phone = "+62812" + f"{next(s.serial):08d}"
    s.gateway.fail_always(status=400, to=phone)
    # Not the citizen the other services' erasure requests name (`NIK`): the notification
    # service honours an erasure it reads, for every later event about that citizen.
    event = verified(s.platform, phone=phone, nik=OTHER_NIK)
    await send_event(s.producer, "complaints.events", event)
    code = event.data["tracking_code"]

    async def gave_up() -> str | None:
        listed = await s.ok("GET", "/notifications", params={"tracking_code": code})
        failed = [n for n in listed["items"] if n["status"] == "permanent-failure"]
        return str(failed[0]["id"]) if failed else None

    try:
        return str(await wait_for(gave_up, timeout=60))
    except TimeoutError:
        listed = await s.ok("GET", "/notifications", params={"tracking_code": code})
        raise AssertionError(
            f"no permanent failure for {code}: {listed}, {await s.ok('GET', '/delivery')}"
        ) from None


async def notification_read(s: Running) -> Request:
    return request("GET", f"/notifications/{await failed_notification(s)}")


async def resend(s: Running) -> Request:
    return request("POST", f"/notifications/{await failed_notification(s)}/resend")


async def held_channel(s: Running) -> Request:
    await s.ok("PUT", "/delivery/holds/email", json={"reason": "Gangguan relay SMTP, tiket 1234"})
    return request("DELETE", "/delivery/holds/email")


NOTIFICATIONS: dict[str, Build] = {
    "GET /notifications": fixed("GET", "/notifications"),
    "GET /notifications/{notification_id}": notification_read,
    "POST /notifications/{notification_id}/resend": resend,
    "GET /rules": fixed("GET", "/rules"),
    "GET /delivery": fixed("GET", "/delivery"),
    "PUT /delivery/holds/{channel}": fixed(
        "PUT", "/delivery/holds/sms", {"reason": "Gangguan gateway SMS, tiket 1235"}
    ),
    "DELETE /delivery/holds/{channel}": held_channel,
    "POST /admin/citizens/export": fixed("POST", "/admin/citizens/export", {"nik": NIK}),
    **kit_operations(),
}


# ----- integration view ------------------------------------------------------------------------

INTEGRATION: dict[str, Build] = {
    "GET /api/officer/citizens/{citizen_ref}/timeline": fixed(
        "GET", f"/api/officer/citizens/{CITIZEN_REF}/timeline"
    ),
    "POST /api/officer/timeline": fixed("POST", "/api/officer/timeline", {"citizen": NIK}),
    # Rebuilding replays every topic, minutes of work on a shared broker: the documented
    # refusal of a timeout that is not positive stands for it (after the role check).
    "POST /admin/rebuild": fixed("POST", "/admin/rebuild", params={"timeout": "0"}),
    "POST /admin/citizens/export": fixed("POST", "/admin/citizens/export", {"nik": NIK}),
    **kit_operations(),
}
INTEGRATION_PAGES: dict[str, Build] = {
    "GET /petugas": fixed("GET", "/petugas", params={"ref": CITIZEN_REF}),
    "POST /petugas": fixed(
        "POST",
        "/petugas",
        content=f"ref={CITIZEN_REF}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
}
# What each of those answers besides the OpenAPI's success (the page's answers are not in it).
EXPECTED: dict[tuple[str, str], int] = {
    ("integration", "POST /admin/rebuild"): 422,
    ("integration", "GET /petugas"): 200,
    ("integration", "POST /petugas"): 200,
}

BUILDERS: dict[str, dict[str, Build]] = {
    "complaints": COMPLAINTS,
    "permits": PERMITS,
    "health": HEALTH,
    "notifications": NOTIFICATIONS,
    "integration": {**INTEGRATION, **INTEGRATION_PAGES},
}


def unique_group() -> str:
    return f"matrix-{uuid.uuid4().hex[:8]}"
