"""HTTP routes of the health service: parse, authorise, call a use case, shape the answer.

Citizens (no login) see facilities, schedules, queues and beds and check in by booking
code; booking and cancelling need a citizen session (a contact proved with a one-time
code, shared/kit/citizen.py); officers (`health_officer`, `admin`) manage reference data,
move the queue, update beds and export finished visits as FHIR."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field, PlainValidator, ValidationInfo, WithJsonSchema, field_validator

from services.health import handlers
from services.health.domain import (
    DAY_NAMES,
    MOST_QUOTA,
    REFERENCE_CODE,
    Appointment,
    Beds,
    Doctor,
    Facility,
    Patient,
    Payment,
    Polyclinic,
    Schedule,
    SessionChange,
    Task,
    Ward,
)
from shared.kit.app import context_dependency
from shared.kit.auth import Officer, require_role
from shared.kit.bodies import RequestBody, with_example
from shared.kit.citizen import CitizenSession
from shared.kit.codes import normalise_code
from shared.kit.limits import Limit, limited
from shared.reference import UnknownRegion, default_calendar, require_kecamatan
from shared.reference.fields import MobilePhone, Nik
from shared.schemas.common import Locale
from shared.schemas.health import FacilityKind

router = APIRouter()

Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]
HealthOfficer = Annotated[Officer, Depends(require_role("health_officer"))]
# Abuse limits (numbers and reasons: docs/operations.md). Per client address: a family
# sharing a phone, a posyandu cadre booking for the elderly, a facility's check-in kiosk.
# No limit keyed by the NIK alone: anyone could use it up for its holder (what a verified
# contact may hold is the booking policy's, counted in the use case).
BOOKINGS_PER_ADDRESS = Limit("health.bookings_per_address", 20, 3600)
CHECK_INS = Limit("health.check_ins", 300, 3600)
CANCELLATIONS = Limit("health.cancellations", 60, 3600)
# A reference-data code as people type it (any case); routes upper-case it.
TYPED_CODE = REFERENCE_CODE.replace("A-Z", "A-Za-z")
FacilityCode = Annotated[str, Path(pattern=TYPED_CODE, examples=["RSUD-TJITRO"])]
PolyCode = Annotated[str, Path(pattern=TYPED_CODE, examples=["INT"])]
WardCode = Annotated[str, Path(pattern=TYPED_CODE, examples=["MAWAR"])]
DoctorCode = Annotated[str, Path(pattern=TYPED_CODE, examples=["RSUD-D01"])]
BookingCode = Annotated[str, Path(max_length=40, examples=["KES-2611-7K3M-9QW2-XAB4D"])]
Code = Annotated[str, Field(pattern=TYPED_CODE)]


# ----- requests --------------------------------------------------------------------------


def next_visit_day() -> str:
    """The first working day after today: the example polyclinic (RSUD-TJITRO's INT,
    deploy's seed) practises Monday to Friday, and a booking is for a day ahead."""
    calendar = default_calendar()
    return calendar.next_working_day(calendar.local_date(dt.datetime.now(dt.UTC))).isoformat()


class BookIn(RequestBody):
    model_config = with_example(
        {
            "nik": "3306061708900001",
            "phone": "081234567890",
            "facility": "RSUD-TJITRO",
            "polyclinic": "INT",
            "date": next_visit_day,
            "payment": "jkn",
            "jkn_card": "0001234567890",
            "new_patient": False,
        }
    )

    nik: Nik
    phone: MobilePhone
    name: str | None = Field(None, max_length=100)
    facility: Code = Field(description="See GET /facilities")
    polyclinic: Code
    doctor: Code | None = Field(None, description="A doctor of the polyclinic; default: any with room")
    date: dt.date
    payment: Literal[tuple(p.value for p in Payment)]
    jkn_card: str | None = Field(
        None, validate_default=True, description="13-digit JKN card number; required for JKN"
    )
    new_patient: bool = Field(False, description="First visit to this facility (pasien baru)")
    locale: Locale = "id"

    @field_validator("facility", "polyclinic", "doctor")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @field_validator("jkn_card")
    @classmethod
    def _jkn_card(cls, value: str | None, info: ValidationInfo) -> str | None:
        payment = info.data.get("payment")
        if payment != "jkn":
            return None  # only JKN bookings carry the card
        if value is None or not value.strip():
            raise ValueError("a JKN booking needs the 13-digit JKN card number")
        card = value.strip()
        if not (card.isascii() and card.isdigit() and len(card) == 13):
            raise ValueError(f"the JKN card number has 13 digits, got {len(card)} characters")
        return card


class FacilityIn(RequestBody):
    name: str = Field(min_length=3, max_length=150)
    kind: FacilityKind
    kecamatan_code: str = Field(description="Kemendagri code of a Purworejo kecamatan, e.g. 33.06.06")
    address: str | None = Field(None, max_length=300)

    @field_validator("kecamatan_code")
    @classmethod
    def _kecamatan(cls, value: str) -> str:
        try:
            return require_kecamatan(value).code
        except UnknownRegion as exc:
            raise ValueError(str(exc)) from None


class PolyclinicIn(RequestBody):
    name: str = Field(min_length=3, max_length=150)
    queue_prefix: str = Field(
        pattern=r"^[A-Z]{1,2}$", description="Letter(s) of the queue number: A in A-012"
    )


class DoctorIn(RequestBody):
    name: str = Field(min_length=3, max_length=150)
    facility: Code
    polyclinic: Code


class ScheduleIn(RequestBody):
    start: dt.time = Field(examples=["08:00"])
    end: dt.time = Field(examples=["12:00"])
    minutes_per_patient: int = Field(ge=1, le=240)
    quota_jkn: int = Field(ge=0, le=1000)
    quota_non_jkn: int = Field(ge=0, le=1000)
    active: bool = True


class SessionChangeIn(RequestBody):
    model_config = with_example({"cancelled": True, "reason": "dokter cuti"})

    cancelled: bool = Field(
        False, description="The doctor does not practise that day: the day's bookings are cancelled and told"
    )
    quota_jkn: int | None = Field(
        None, ge=0, le=MOST_QUOTA, description="That day's JKN quota; none: the schedule's"
    )
    quota_non_jkn: int | None = Field(None, ge=0, le=MOST_QUOTA, description="That day's quota for others")
    reason: str | None = Field(None, max_length=300, description="Told to the patients, e.g. 'dokter cuti'")


class TaskIn(RequestBody):
    task_id: int = Field(
        description="BPJS task: 1 admission wait, 2 admission, 3 poli wait, 4 poli service, "
        "5 pharmacy wait, 6 pharmacy, 7 done"
    )

    @field_validator("task_id")
    @classmethod
    def _task(cls, value: int) -> int:
        if value == 99:
            raise ValueError("task 99 is set by cancelling (POST /appointments/{code}/cancel) or as no-show")
        if not 1 <= value <= 7:
            raise ValueError(f"unknown task id {value}: tasks are 1 to 7")
        return value


class CancelIn(RequestBody):
    reason: str | None = Field(None, max_length=500)


class BedsIn(RequestBody):
    total: int = Field(ge=0, le=5000)
    occupied: int = Field(ge=0, le=5000)
    name: str | None = Field(None, min_length=3, max_length=150, description="Required for a new ward")
    bed_class: str | None = Field(None, max_length=30, examples=["kelas_3", "vip", "icu"])

    @field_validator("occupied")
    @classmethod
    def _within_total(cls, value: int, info: ValidationInfo) -> int:
        total = info.data.get("total")
        if total is not None and value > total:
            raise ValueError(f"occupied beds ({value}) cannot exceed total beds ({total})")
        return value


# ----- responses -------------------------------------------------------------------------


class BookedOut(BaseModel):
    booking_code: str
    queue_number: int
    queue_code: str = Field(examples=["A-012"])
    estimated_at: dt.datetime = Field(description="Estimated service time (Asia/Jakarta)")
    status: str
    facility: str
    polyclinic: str
    doctor: str
    date: dt.date
    session_start: dt.datetime
    session_end: dt.datetime
    payment: str


class TaskOut(BaseModel):
    task_id: int
    name: str
    at: dt.datetime


class AppointmentOut(BookedOut):
    task_id: int | None
    task_name: str | None
    task_at: dt.datetime | None
    new_patient: bool
    tasks: list[TaskOut]


WallClock = Annotated[
    str,
    PlainValidator(lambda v: v.strftime("%H:%M") if isinstance(v, dt.time) else str(v)),
    WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}$", "examples": ["08:00"]}),
    Field(description="Local time (WIB), HH:MM"),
]


class ScheduleOut(BaseModel):
    doctor: str
    weekday: int
    day: str
    start: WallClock
    end: WallClock
    minutes_per_patient: int
    quota_jkn: int
    quota_non_jkn: int
    active: bool


class PolyclinicOut(BaseModel):
    code: str
    name: str
    queue_prefix: str


class FacilityOut(BaseModel):
    code: str
    name: str
    kind: str
    kecamatan_code: str
    address: str | None = None
    polyclinics: list[PolyclinicOut] = []


class DoctorOut(BaseModel):
    code: str
    name: str
    facility: str
    polyclinic: str


class WardOut(BaseModel):
    facility: str
    code: str
    name: str
    bed_class: str | None
    total: int
    occupied: int
    available: int
    updated_at: dt.datetime | None


class SessionChangeOut(BaseModel):
    doctor: str
    date: dt.date
    cancelled: bool
    quota_jkn: int | None = Field(description="That day's JKN quota; none: the weekly schedule's")
    quota_non_jkn: int | None
    reason: str | None


class SessionChangedOut(SessionChangeOut):
    cancelled_bookings: int = Field(
        description="Bookings of that day cancelled now (their patients are told)"
    )


class FacilityDetailOut(FacilityOut):
    doctors: list[DoctorOut]
    schedules: list[ScheduleOut]
    wards: list[WardOut]
    session_changes: list[SessionChangeOut] = Field(
        description="Dates from today on whose session an officer changed (a doctor on leave, other quotas)"
    )


class SessionOut(BaseModel):
    doctor: str
    doctor_name: str
    start: dt.datetime
    end: dt.datetime
    minutes_per_patient: int
    quota_jkn: int
    quota_non_jkn: int
    remaining_jkn: int
    remaining_non_jkn: int


class QueueOut(BaseModel):
    facility: str
    polyclinic: str
    polyclinic_name: str
    date: dt.date
    now_serving: list[str] = Field(description="Queue codes with the doctor now (task 4)")
    next_up: str | None
    upcoming: list[str] = Field(description="The next queue codes waiting (task 3), up to 10, in call order")
    waiting: int = Field(description="Waiting for the polyclinic (task 3)")
    at_admission: int
    not_arrived: int
    served: int
    cancelled: int
    estimated_wait_minutes: int


class DayListEntryOut(BaseModel):
    booking_code: str
    queue_number: int
    queue_code: str = Field(examples=["A-012"])
    status: str
    task_id: int | None
    task_name: str | None
    task_at: dt.datetime | None
    checked_in_at: dt.datetime | None = Field(description="Task 1 (check-in), if checked in")
    estimated_at: dt.datetime
    payment: str
    new_patient: bool
    next_task_id: int | None = Field(description="The one task that may be set next (none once final)")


class DayListOut(QueueOut):
    appointments: list[DayListEntryOut]


def _local(moment: dt.datetime | None, tz: dt.tzinfo) -> dt.datetime | None:
    return moment.astimezone(tz) if moment is not None else None


def booked_view(a: Appointment, tz: dt.tzinfo) -> dict[str, Any]:
    """Times in the regency's zone (Asia/Jakarta), as patients read them."""
    return {
        "booking_code": a.booking_code,
        "queue_number": a.queue_number,
        "queue_code": a.queue_code,
        "estimated_at": _local(a.estimated_at, tz),
        "status": a.status.value,
        "facility": a.facility_code,
        "polyclinic": a.polyclinic_code,
        "doctor": a.doctor_code,
        "date": a.date,
        "session_start": _local(a.session_start, tz),
        "session_end": _local(a.session_end, tz),
        "payment": a.payment.value,
    }


def appointment_view(a: Appointment, tz: dt.tzinfo) -> dict[str, Any]:
    """Public: no NIK, phone or JKN card (the booking code is the patient's key)."""
    return {
        **booked_view(a, tz),
        "task_id": int(a.task) if a.task is not None else None,
        "task_name": a.task.label if a.task is not None else None,
        "task_at": _local(a.task_at, tz),
        "new_patient": a.new_patient,
        "tasks": [{"task_id": int(t.task), "name": t.task.label, "at": _local(t.at, tz)} for t in a.tasks],
    }


def polyclinic_view(p: Polyclinic) -> dict[str, Any]:
    return {"code": p.code, "name": p.name, "queue_prefix": p.queue_prefix}


def doctor_view(d: Doctor) -> dict[str, Any]:
    return {"code": d.code, "name": d.name, "facility": d.facility_code, "polyclinic": d.polyclinic_code}


def facility_view(f: Facility, polyclinics: list[Polyclinic]) -> dict[str, Any]:
    return {
        "code": f.code,
        "name": f.name,
        "kind": f.kind,
        "kecamatan_code": f.kecamatan_code,
        "address": f.address,
        "polyclinics": [polyclinic_view(p) for p in polyclinics],
    }


def schedule_view(s: Schedule) -> dict[str, Any]:
    return {
        "doctor": s.doctor_code,
        "weekday": s.weekday,
        "day": DAY_NAMES[s.weekday],
        "start": s.start,
        "end": s.end,
        "minutes_per_patient": s.minutes_per_patient,
        "quota_jkn": s.quota_jkn,
        "quota_non_jkn": s.quota_non_jkn,
        "active": s.active,
    }


def ward_view(w: Ward, tz: dt.tzinfo) -> dict[str, Any]:
    return {
        "facility": w.facility_code,
        "code": w.code,
        "name": w.name,
        "bed_class": w.bed_class,
        "total": w.total,
        "occupied": w.occupied,
        "available": w.available,
        "updated_at": _local(w.updated_at, tz),
    }


def _ward_row(r: dict[str, Any], tz: dt.tzinfo) -> dict[str, Any]:
    return {**r, "facility": r["facility_code"], "updated_at": _local(r["updated_at"], tz)}


# ----- citizen routes --------------------------------------------------------------------


@router.get("/facilities", response_model=list[FacilityOut], tags=["reference"])
async def list_facilities(ctx: Ctx) -> list[dict[str, Any]]:
    """Facilities (RSUD, puskesmas) and their polyclinics."""
    return [facility_view(f, polis) for f, polis in await handlers.list_facilities(ctx)]


@router.get("/facilities/{facility}", response_model=FacilityDetailOut, tags=["reference"])
async def get_facility(facility: FacilityCode, ctx: Ctx) -> dict[str, Any]:
    """A facility with its polyclinics, doctors, weekly schedules and wards."""
    d = await handlers.facility_detail(ctx, facility.upper())
    return {
        **facility_view(d.facility, d.polyclinics),
        "doctors": [doctor_view(x) for x in d.doctors],
        "schedules": [schedule_view(s) for s in d.schedules],
        "wards": [_ward_row(w, ctx.tz) for w in d.wards],
        "session_changes": d.changed_sessions,
    }


@router.get(
    "/facilities/{facility}/polyclinics/{polyclinic}/sessions",
    response_model=list[SessionOut],
    tags=["reference"],
)
async def sessions(
    facility: FacilityCode, polyclinic: PolyCode, ctx: Ctx, date: dt.date | None = None
) -> list[dict[str, Any]]:
    """The polyclinic's practice sessions on a date (default today) and the places left."""
    views = await handlers.availability(ctx, facility.upper(), polyclinic.upper(), date)
    return [
        {
            "doctor": v.doctor.code,
            "doctor_name": v.doctor.name,
            "start": v.start,
            "end": v.end,
            "minutes_per_patient": v.minutes_per_patient,
            "quota_jkn": v.quota_jkn,
            "quota_non_jkn": v.quota_non_jkn,
            "remaining_jkn": v.remaining_jkn,
            "remaining_non_jkn": v.remaining_non_jkn,
        }
        for v in views
    ]


@dataclass
class PolyclinicDay:
    """The polyclinic a queue route names and its date (none: today)."""

    facility: FacilityCode
    polyclinic: PolyCode
    date: dt.date | None = None

    @property
    def codes(self) -> tuple[str, str, dt.date | None]:
        """Facility and polyclinic codes (upper case) and the date, as the use cases take them."""
        return self.facility.upper(), self.polyclinic.upper(), self.date


Day = Annotated[PolyclinicDay, Depends()]


@router.get("/facilities/{facility}/polyclinics/{polyclinic}/queue", response_model=QueueOut, tags=["queue"])
async def queue_board(day: Day, ctx: Ctx) -> dict[str, Any]:
    """Live queue of a polyclinic (default today): now serving, waiting, estimated wait."""
    return _board(await handlers.queue(ctx, *day.codes))


def _board(board: handlers.QueueBoard) -> dict[str, Any]:
    s = board.state
    return {
        "facility": board.facility.code,
        "polyclinic": board.polyclinic.code,
        "polyclinic_name": board.polyclinic.name,
        "date": board.date,
        "now_serving": s.now_serving,
        "next_up": s.next_up,
        "upcoming": s.upcoming,
        "waiting": s.waiting,
        "at_admission": s.at_admission,
        "not_arrived": s.not_arrived,
        "served": s.served,
        "cancelled": s.cancelled,
        "estimated_wait_minutes": s.estimated_wait_minutes,
    }


@router.get("/facilities/{facility}/wards", response_model=list[WardOut], tags=["beds"])
async def facility_wards(facility: FacilityCode, ctx: Ctx) -> list[dict[str, Any]]:
    """Bed availability per ward of a facility."""
    return [_ward_row(w, ctx.tz) for w in await handlers.list_wards(ctx, facility.upper())]


@router.get("/beds", response_model=list[WardOut], tags=["beds"])
async def all_beds(ctx: Ctx) -> list[dict[str, Any]]:
    """Bed availability of every ward of every facility."""
    return [_ward_row(w, ctx.tz) for w in await handlers.list_wards(ctx)]


@router.post(
    "/appointments",
    status_code=201,
    response_model=BookedOut,
    tags=["citizen"],
    **limited(BOOKINGS_PER_ADDRESS),
)
async def book(body: BookIn, ctx: Ctx, citizen: CitizenSession) -> dict[str, Any]:
    """Book a polyclinic visit with a citizen session (`Authorization: Bearer <session>`,
    from POST /citizen/sessions of the notification service); the phone must be the one
    the session proved. Booking the same patient, polyclinic and day again answers with
    the booking already made. Answer: booking code, queue number, estimated time."""
    appointment = await handlers.book(
        ctx,
        handlers.Book(
            patient=Patient(nik=body.nik, phone=body.phone, name=body.name, jkn_card=body.jkn_card),
            facility=body.facility,
            polyclinic=body.polyclinic,
            date=body.date,
            payment=Payment(body.payment),
            new_patient=body.new_patient,
            citizen=citizen,
            doctor=body.doctor,
            locale=body.locale,
        ),
    )
    return booked_view(appointment, ctx.tz)


@router.get("/appointments/{booking_code}", response_model=AppointmentOut, tags=["citizen"])
async def get_appointment(booking_code: BookingCode, ctx: Ctx) -> dict[str, Any]:
    """Status, queue number, task history of a booking (no personal data)."""
    return appointment_view(await handlers.get(ctx, normalise_code(booking_code)), ctx.tz)


def booking_step(step: str, limit: Limit) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`POST /appointments/{booking_code}/<step>`: the citizen's command on their booking,
    limited per client address by `limit`."""
    return router.post(
        f"/appointments/{{booking_code}}/{step}",
        response_model=AppointmentOut,
        tags=["citizen"],
        **limited(limit),
    )


@booking_step("check-in", CHECK_INS)
async def check_in(booking_code: BookingCode, ctx: Ctx) -> dict[str, Any]:
    """Check in on the visit day (kiosk or Mobile JKN): task 1, admission wait."""
    return appointment_view(await handlers.check_in(ctx, normalise_code(booking_code)), ctx.tz)


@booking_step("cancel", CANCELLATIONS)
async def cancel(
    booking_code: BookingCode, ctx: Ctx, citizen: CitizenSession, body: CancelIn | None = None
) -> dict[str, Any]:
    """Cancel before poli service (task 99), with a session of the contact that booked
    (404 otherwise, as for an unknown code); the place goes back to the quota."""
    reason = body.reason if body else None
    a = await handlers.cancel(ctx, normalise_code(booking_code), reason, citizen)
    return appointment_view(a, ctx.tz)


# ----- officer routes --------------------------------------------------------------------


@router.post("/appointments/{booking_code}/tasks", response_model=AppointmentOut, tags=["officer"])
async def set_task(
    booking_code: BookingCode, body: TaskIn, ctx: Ctx, officer: HealthOfficer
) -> dict[str, Any]:
    """Move a visit to its next BPJS task (strictly in order: 1 → 2 → … → 7)."""
    a = await handlers.advance(ctx, normalise_code(booking_code), Task(body.task_id), officer)
    return appointment_view(a, ctx.tz)


@router.get(
    "/facilities/{facility}/polyclinics/{polyclinic}/appointments",
    response_model=DayListOut,
    tags=["officer"],
)
async def day_list(day: Day, ctx: Ctx, officer: HealthOfficer) -> dict[str, Any]:
    """The polyclinic's queue on a date (default today) for its facility's officers: the
    board and every appointment in queue order with its task and the task that may follow
    (queue numbers, no names)."""
    board, listed = await handlers.day_list(ctx, *day.codes, officer)
    return {
        **_board(board),
        "appointments": [
            {
                "booking_code": e.booking_code,
                "queue_number": e.queue_number,
                "queue_code": e.queue_code,
                "status": e.status.value,
                "task_id": int(e.task) if e.task is not None else None,
                "task_name": e.task.label if e.task is not None else None,
                "task_at": _local(e.task_at, ctx.tz),
                "checked_in_at": _local(e.checked_in_at, ctx.tz),
                "estimated_at": _local(e.estimated_at, ctx.tz),
                "payment": e.payment.value,
                "new_patient": e.new_patient,
                "next_task_id": int(e.next_task) if e.next_task is not None else None,
            }
            for e in listed
        ],
    }


@router.post(
    "/facilities/{facility}/polyclinics/{polyclinic}/call-next",
    response_model=AppointmentOut,
    tags=["officer"],
)
async def call_next(day: Day, ctx: Ctx, officer: HealthOfficer) -> dict[str, Any]:
    """Call the lowest queue number waiting for the polyclinic (task 3 → 4)."""
    a = await handlers.call_next(ctx, *day.codes, officer)
    return appointment_view(a, ctx.tz)


@router.get("/appointments/{booking_code}/fhir", tags=["officer"])
async def export_fhir(booking_code: BookingCode, ctx: Ctx, officer: HealthOfficer) -> dict[str, Any]:
    """The finished visit (task 7) as a FHIR R4 transaction Bundle (Patient by NIK +
    Encounter), the shape SATUSEHAT takes."""
    return await handlers.fhir_bundle(ctx, normalise_code(booking_code), officer)


@router.put("/facilities/{facility}/wards/{ward}/beds", response_model=WardOut, tags=["beds"])
async def put_beds(
    facility: FacilityCode, ward: WardCode, body: BedsIn, ctx: Ctx, officer: HealthOfficer
) -> dict[str, Any]:
    """Update a ward's beds (opens the ward when new and named); published when changed."""
    beds = Beds(body.total, body.occupied, body.name, body.bed_class)
    w = await handlers.update_beds(ctx, facility.upper(), ward.upper(), beds, officer)
    return ward_view(w, ctx.tz)


@router.put("/facilities/{facility}", response_model=FacilityOut, tags=["officer"])
async def put_facility(
    facility: FacilityCode, body: FacilityIn, ctx: Ctx, officer: HealthOfficer
) -> dict[str, Any]:
    f = Facility(facility.upper(), body.name, body.kind, body.kecamatan_code, body.address)
    return facility_view(await handlers.put_facility(ctx, f, officer), [])


@router.put("/facilities/{facility}/polyclinics/{polyclinic}", response_model=PolyclinicOut, tags=["officer"])
async def put_polyclinic(
    facility: FacilityCode, polyclinic: PolyCode, body: PolyclinicIn, ctx: Ctx, officer: HealthOfficer
) -> dict[str, Any]:
    p = Polyclinic(facility.upper(), polyclinic.upper(), body.name, body.queue_prefix)
    return polyclinic_view(await handlers.put_polyclinic(ctx, p, officer))


@router.put("/doctors/{doctor}", response_model=DoctorOut, tags=["officer"])
async def put_doctor(doctor: DoctorCode, body: DoctorIn, ctx: Ctx, officer: HealthOfficer) -> dict[str, Any]:
    d = Doctor(doctor.upper(), body.name, body.facility.upper(), body.polyclinic.upper())
    return doctor_view(await handlers.put_doctor(ctx, d, officer))


@router.put("/doctors/{doctor}/schedules/{weekday}", response_model=ScheduleOut, tags=["officer"])
async def put_schedule(
    doctor: DoctorCode,
    body: ScheduleIn,
    ctx: Ctx,
    officer: HealthOfficer,
    weekday: int = Path(ge=0, le=6, description="0 = Monday (Senin) … 6 = Sunday (Minggu)"),
) -> dict[str, Any]:
    """The doctor's session on a weekday (one per weekday), with daily quotas."""
    s = Schedule(
        doctor_code=doctor.upper(),
        weekday=weekday,
        start=body.start.replace(tzinfo=None),
        end=body.end.replace(tzinfo=None),
        minutes_per_patient=body.minutes_per_patient,
        quota_jkn=body.quota_jkn,
        quota_non_jkn=body.quota_non_jkn,
        active=body.active,
    )
    return schedule_view(await handlers.put_schedule(ctx, s, officer))


@router.put("/doctors/{doctor}/sessions/{date}", response_model=SessionChangedOut, tags=["officer"])
async def change_session(
    doctor: DoctorCode, date: dt.date, body: SessionChangeIn, ctx: Ctx, officer: HealthOfficer
) -> dict[str, Any]:
    """One date of the doctor's weekly session: on leave (`cancelled`: nothing bookable;
    each booking of that day not yet with the doctor is cancelled and its patient told
    and offered another date) or other quotas that day."""
    change = SessionChange(body.cancelled, body.quota_jkn, body.quota_non_jkn, body.reason)
    done = await handlers.change_session(ctx, doctor.upper(), date, change, officer)
    s = done.session
    return {
        "doctor": s.schedule.doctor_code,
        "date": s.date,
        "cancelled": s.cancelled,
        "quota_jkn": s.quota_jkn,
        "quota_non_jkn": s.quota_non_jkn,
        "reason": s.note,
        "cancelled_bookings": done.cancelled_bookings,
    }
