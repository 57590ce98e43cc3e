"""Use cases of the health service. Each change runs one unit of work: load (row-locked),
call the domain, save, and stage the aggregate's events in the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, ClassVar

import asyncpg

from services.health import fhir
from services.health.domain import (
    DAY_NAMES,
    Appointment,
    Beds,
    BookingPolicy,
    DayListEntry,
    Doctor,
    Facility,
    Patient,
    Payment,
    Polyclinic,
    QueueState,
    QuotaFull,
    Schedule,
    Session,
    SessionChange,
    Task,
    TooManyBookings,
    Ward,
    check_holdings,
    open_sessions,
    queue_state,
    quota_full,
)
from services.health.repository import HealthRepository
from services.health.seed import Seed
from shared.kit import audit
from shared.kit.auth import Officer
from shared.kit.citizen import Citizen
from shared.kit.errors import Conflict, Forbidden, IllegalTransition, InvalidField, NotFound
from shared.kit.privacy import citizen_ref, contact_ref
from shared.kit.uow import retry_on_code_collision
from shared.kit.usecase import UseCaseContext
from shared.reference import WorkingCalendar
from shared.schemas import health as schema
from shared.schemas.common import SealedContact

# Unique constraint of appointments' booking codes (migrations/001).
BOOKING_CODE_KEY = "appointments_booking_code_key"
NOT_VERIFIED = "use the phone number or email you verified"


def _missing(booking_code: str) -> str:
    return f"no appointment with booking code {booking_code}"


def _ignore_booking(facility: str, payment: Payment, outcome: str) -> None:
    return None


@dataclass
class Context(UseCaseContext[HealthRepository]):
    """What the use cases need besides the kit's (`UseCaseContext`)."""

    calendar: WorkingCalendar
    policy: BookingPolicy = field(default_factory=BookingPolicy)
    fhir_system_base: str = fhir.DEFAULT_SYSTEM_BASE
    # Told of every booking attempt: facility, payment, outcome (booked | repeated |
    # quota_full | too_many).
    on_booking: Callable[[str, Payment, str], None] = _ignore_booking

    topic: ClassVar[str] = schema.TOPIC
    source: ClassVar[str] = schema.SOURCE

    @property
    def tz(self) -> tzinfo:
        return self.calendar.tz

    def today(self) -> date:
        return self.calendar.local_date(self.clock())

    def repository(self, conn: asyncpg.Connection) -> HealthRepository:
        return HealthRepository(conn, self.tz)


# ----- reference data -----------------------------------------------------------------


async def seed_if_empty(ctx: Context, seed: Seed) -> bool:
    """Load the seed when the tables are empty (idempotent; safe with several instances).
    Wards go through the domain, so their initial bed counts are published."""
    now = ctx.clock()
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        await repo.lock_seeding()
        if not await repo.is_empty():
            return False
        await repo.load_seed(seed)
        facilities = {f.code: f for f in seed.facilities}
        for w in seed.wards:
            ward = Ward.open(facilities[w.facility_code], w.code, w.name, w.bed_class)
            ward.update_beds(Beds(w.total, w.occupied), "seed", now)
            await repo.save_ward(ward)
            await uow.emit(ward.events, subject=str(ward.id))
    return True


async def _facility(repo: HealthRepository, code: str) -> Facility:
    found = await repo.facility(code)
    if found is None:
        raise NotFound(f"no facility with code {code}; see GET /facilities")
    return found


async def _polyclinic(repo: HealthRepository, facility: Facility, code: str) -> Polyclinic:
    found = await repo.polyclinic(facility.code, code)
    if found is None:
        raise NotFound(f"{facility.name} has no polyclinic {code}; see GET /facilities/{facility.code}")
    return found


async def list_facilities(ctx: Context) -> list[tuple[Facility, list[Polyclinic]]]:
    async with ctx.reading() as repo:
        return [(f, await repo.polyclinics(f.code)) for f in await repo.facilities()]


@dataclass(frozen=True)
class FacilityDetail:
    facility: Facility
    polyclinics: list[Polyclinic]
    doctors: list[Doctor]
    schedules: list[Schedule]
    wards: list[dict[str, Any]]
    changed_sessions: list[dict[str, Any]]


async def facility_detail(ctx: Context, code: str) -> FacilityDetail:
    async with ctx.reading() as repo:
        facility = await _facility(repo, code)
        return FacilityDetail(
            facility,
            await repo.polyclinics(code),
            await repo.doctors(code),
            await repo.schedules_of_facility(code),
            await repo.wards(code),
            await repo.changed_sessions(code, ctx.today()),
        )


def must_serve(officer: Officer, facility_code: str) -> None:
    """A health officer acts for their own facility only (claim `facility`; the health
    office may hold every facility, `*`). The refusal names the facility, no person."""
    if not officer.may_act_for_facility(facility_code):
        raise Forbidden(f"this is for an officer of {facility_code}")


# Reference-data changes publish no event, but run in a unit of work all the same: the
# officer's audit row commits with the change.
async def put_facility(ctx: Context, facility: Facility, officer: Officer) -> Facility:
    must_serve(officer, facility.code)
    async with ctx.unit_of_work() as uow:
        await ctx.repository(uow.conn).upsert_facility(facility)
    return facility


async def put_polyclinic(ctx: Context, polyclinic: Polyclinic, officer: Officer) -> Polyclinic:
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        await _facility(repo, polyclinic.facility_code)
        must_serve(officer, polyclinic.facility_code)
        await repo.upsert_polyclinic(polyclinic)
    return polyclinic


async def put_doctor(ctx: Context, doctor: Doctor, officer: Officer) -> Doctor:
    must_serve(officer, doctor.facility_code)
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        current = await repo.doctor(doctor.code)
        if current is not None:  # moving a doctor needs the facility they leave too
            must_serve(officer, current.facility_code)
        if await repo.facility(doctor.facility_code) is None:
            raise InvalidField("facility", f"unknown facility '{doctor.facility_code}'; see GET /facilities")
        if await repo.polyclinic(doctor.facility_code, doctor.polyclinic_code) is None:
            raise InvalidField(
                "polyclinic", f"{doctor.facility_code} has no polyclinic '{doctor.polyclinic_code}'"
            )
        await repo.upsert_doctor(doctor)
    return doctor


async def put_schedule(ctx: Context, schedule: Schedule, officer: Officer) -> Schedule:
    schedule.validated()
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        doctor = await repo.doctor(schedule.doctor_code)
        if doctor is None:
            raise NotFound(f"no doctor with code {schedule.doctor_code}")
        must_serve(officer, doctor.facility_code)
        return await repo.upsert_schedule(schedule)


@dataclass(frozen=True)
class SessionView:
    doctor: Doctor
    start: datetime
    end: datetime
    minutes_per_patient: int
    quota_jkn: int
    quota_non_jkn: int
    remaining_jkn: int
    remaining_non_jkn: int


async def availability(
    ctx: Context, facility_code: str, polyclinic_code: str, day: date | None = None
) -> list[SessionView]:
    """The polyclinic's sessions on `day` (default today) and the places left (empty on
    days off)."""
    day = day or ctx.today()
    async with ctx.reading() as repo:
        facility = await _facility(repo, facility_code)
        await _polyclinic(repo, facility, polyclinic_code)
        schedules = [
            s
            for s in await repo.schedules_of_polyclinic(facility_code, polyclinic_code)
            if s.active and s.weekday == day.weekday()
        ]
        if ctx.calendar.holiday_name(day):
            schedules = []
        sessions = await repo.sessions_on([s.id for s in schedules if s.id is not None], day)
        doctors = {d.code: d for d in await repo.doctors(facility_code)}
    views = []
    for s in sorted(schedules, key=lambda s: s.start):
        session = sessions[s.id]  # type: ignore[index]
        if session.cancelled:  # the doctor is on leave that day
            continue
        start, end = s.window(day, ctx.tz)
        views.append(
            SessionView(
                doctor=doctors[s.doctor_code],
                start=start,
                end=end,
                minutes_per_patient=s.minutes_per_patient,
                quota_jkn=session.quota(Payment.JKN),
                quota_non_jkn=session.quota(Payment.NON_JKN),
                remaining_jkn=session.remaining(Payment.JKN),
                remaining_non_jkn=session.remaining(Payment.NON_JKN),
            )
        )
    return views


@dataclass(frozen=True)
class SessionChanged:
    session: Session
    cancelled_bookings: int


async def change_session(
    ctx: Context, doctor_code: str, day: date, change: SessionChange, officer: Officer
) -> SessionChanged:
    """One date of a doctor's weekly session changed by an officer of its facility: on
    leave, or other quotas. On leave, every visit of that session not yet with the
    doctor is cancelled in the same unit of work and its patient told (the event offers
    another date)."""
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        doctor = await repo.doctor(doctor_code)
        if doctor is None:
            raise NotFound(f"no doctor with code {doctor_code}")
        must_serve(officer, doctor.facility_code)
        schedules = await repo.schedules_of_polyclinic(
            doctor.facility_code, doctor.polyclinic_code, doctor.code
        )
        on_day = [s for s in schedules if s.active and s.weekday == day.weekday()]
        if not on_day:
            raise InvalidField("date", f"{doctor.name} has no session on {day} ({DAY_NAMES[day.weekday()]})")
        [session] = await repo.lock_sessions(on_day, day)
        session.change(change, ctx.today())
        cancelled = 0
        if change.cancelled:
            for code in await repo.session_bookings(session.schedule.id, day):  # type: ignore[arg-type]
                appointment = await repo.get(code, for_update=True)
                assert appointment is not None
                appointment.contact = ctx.contact_for(appointment.patient)
                if appointment.cancel_for_session(ctx.clock(), session, officer.subject, change.reason):
                    cancelled += 1
                    await repo.save(appointment)
                    await uow.emit(appointment.events, subject=str(appointment.id))
        await repo.save_session(session)
    return SessionChanged(session, cancelled)


# ----- appointments -------------------------------------------------------------------


@dataclass(frozen=True)
class Book:
    patient: Patient
    facility: str
    polyclinic: str
    date: date
    payment: Payment
    new_patient: bool
    citizen: Citizen  # whose session books: the contacts the booking names must be its
    doctor: str | None = None
    locale: str = "id"


def _must_be_verified(patient: Patient, citizen: Citizen, key: str) -> None:
    """Every contact the booking names is the one the caller proved with a code: nobody
    books in someone else's name with a number they do not hold."""
    for name, value in (("phone", patient.phone),):
        if value and contact_ref(value, key) != citizen.contact_ref:
            raise InvalidField(name, NOT_VERIFIED)


async def book(ctx: Context, cmd: Book) -> Appointment:
    """Book a place, made by the caller's verified contact. The answer never depends on
    anyone else's bookings: the same contact booking the same patient, polyclinic and day
    again gets its booking back; a booking of the patient by another contact does not
    block this one (its contact on file is told instead); the limits count only the
    caller's own active bookings."""
    if cmd.payment is Payment.JKN and not cmd.patient.jkn_card:
        raise InvalidField("jkn_card", "a JKN booking needs the 13-digit JKN card number")
    key = ctx.platform.citizen_ref_key.get_secret_value()
    _must_be_verified(cmd.patient, cmd.citizen, key)
    ref = citizen_ref(cmd.patient.nik, key)
    contact = ctx.contact_for(cmd.patient)
    by = cmd.citizen.contact_ref
    where = (cmd.patient.nik, by, cmd.facility, cmd.polyclinic, cmd.date)
    outcome = "booked"

    async def create() -> Appointment:
        nonlocal outcome
        async with ctx.unit_of_work() as uow:
            repo = ctx.repository(uow.conn)
            await repo.lock_contact(by)
            # Read again, not taken from `_refuse_when_full`'s read: the contact's limits
            # hold only as counted under its lock (and in a statement of its own: one
            # taking the lock would read with the snapshot it started with, blind to what
            # the lock waited for).
            standing = await repo.standing(*where, ctx.today())
            if standing.held is not None:
                outcome = "repeated"
                appointment = await repo.get(standing.held)
                assert appointment is not None
                return appointment
            check_holdings(ctx.policy, of_contact=standing.of_contact, for_nik=standing.for_nik)
            now = ctx.clock()
            # Told before the place is taken, which is last: the session's row is locked
            # from then to the commit (a refusal rolls this back too).
            for code in standing.others:
                earlier = await repo.get(code, for_update=True)
                assert earlier is not None
                earlier.contact = ctx.contact_for(earlier.patient)
                earlier.booked_again(now)
                await uow.emit(earlier.events, subject=str(earlier.id))
            appointment = await _book_place(ctx, repo, cmd, ref, await uow.seal(contact), now, read)
            await uow.emit(appointment.events, subject=str(appointment.id))
        return appointment

    try:
        read = await _refuse_when_full(ctx, cmd, where)
        appointment = await retry_on_code_collision(create, constraint=BOOKING_CODE_KEY)
    except QuotaFull:
        ctx.on_booking(cmd.facility, cmd.payment, "quota_full")
        raise
    except TooManyBookings:
        ctx.on_booking(cmd.facility, cmd.payment, "too_many")
        raise
    ctx.on_booking(appointment.facility_code, cmd.payment, outcome)
    return appointment


# What a booking names, as `_place` finds it: facility, polyclinic, how they are called in
# answers, and the schedules whose sessions it may use.
Placed = tuple[Facility, Polyclinic, str, list[Schedule]]
# What a booking names and those schedules' sessions on its day that are practised, in
# the schedules' order, as read before its transaction.
Read = tuple[Placed, list[Session]]


async def _refuse_when_full(ctx: Context, cmd: Book, where: tuple[str, str, str, str, date]) -> Read | None:
    """QuotaFull at once when a read without locks finds every session the booking could
    use full and nothing that answers first (the caller's booking already made, the
    caller's own limits, a field in error: those are left to the booking itself). Most
    attempts of a booking-window rush come after the places are gone; refused here they
    cost a few reads and no transaction (docs/capacity.md). Places are only taken under
    the session row's lock, so a place freed meanwhile goes to the next attempt.

    Otherwise what the booking names and its sessions, as read here (None when something
    answers first), so the booking does not read them again."""
    async with ctx.reading() as repo:
        standing = await repo.standing(*where, ctx.today())
        if standing.held is not None:
            return None
        try:
            check_holdings(ctx.policy, of_contact=standing.of_contact, for_nik=standing.for_nik)
            placed = await _place(ctx, repo, cmd, ctx.clock())
        except (TooManyBookings, InvalidField):
            return None
        _, _, what, candidates = placed
        sessions = await repo.sessions_on([s.id for s in candidates if s.id is not None], cmd.date)
    practised = _practised(candidates, sessions)
    # A day whose sessions are all cancelled (the doctor on leave) is the booking's to say.
    full = all(s.remaining(cmd.payment) <= 0 for s in practised)
    if len(sessions) == len(candidates) and practised and full:
        raise quota_full(practised, cmd.payment, what)
    return placed, practised


def _practised(candidates: list[Schedule], sessions: dict[int, Session]) -> list[Session]:
    """The sessions of `candidates` read (`sessions`, by schedule id) and not cancelled,
    in the candidates' order."""
    return [sessions[s.id] for s in candidates if s.id in sessions and not sessions[s.id].cancelled]


async def _place(ctx: Context, repo: HealthRepository, cmd: Book, now: datetime) -> Placed:
    """The facility and polyclinic the booking names, how they are called in answers
    (with the doctor, if named) and the schedules whose sessions it may use, or
    InvalidField naming the field in error."""
    facility, polyclinic = await repo.facility_and_polyclinic(cmd.facility, cmd.polyclinic)
    if facility is None:
        raise InvalidField("facility", f"unknown facility '{cmd.facility}'; see GET /facilities")
    if polyclinic is None:
        raise InvalidField(
            "polyclinic",
            f"{facility.name} has no polyclinic '{cmd.polyclinic}'; see GET /facilities/{facility.code}",
        )
    what = f"{polyclinic.name}, {facility.name}"
    if cmd.doctor is not None:
        doctor = await repo.doctor(cmd.doctor)
        if doctor is None or (doctor.facility_code, doctor.polyclinic_code) != (
            facility.code,
            polyclinic.code,
        ):
            raise InvalidField(
                "doctor", f"no doctor '{cmd.doctor}' practises at {polyclinic.name}, {facility.name}"
            )
        what = f"{doctor.name}, {what}"
    schedules = await repo.schedules_of_polyclinic(facility.code, polyclinic.code, cmd.doctor)
    return facility, polyclinic, what, open_sessions(schedules, cmd.date, now, ctx.calendar, ctx.policy, what)


async def _book_place(
    ctx: Context,
    repo: HealthRepository,
    cmd: Book,
    ref: str,
    contact: SealedContact | None,
    now: datetime,
    read: Read | None,
) -> Appointment:
    """Book a place in the first session with room and store it (`read`: what the booking
    names and its sessions, if already read). Everything is read first; the place is
    taken last (`take_place`), so the session's row is locked only for the appointment's
    insert, its event's and the commit."""
    if read is None:
        facility, polyclinic, what, candidates = await _place(ctx, repo, cmd, now)
        ids = await repo.open_sessions(candidates, cmd.date)
        sessions = _practised(candidates, await repo.sessions_on(ids, cmd.date))
    else:
        # The sessions as read before the transaction, not again inside it: which to try
        # first is all they decide; room (and a cancellation since) is the locked
        # statement's to test, and a place freed since goes to a later attempt.
        (facility, polyclinic, what, candidates), sessions = read
        await repo.open_sessions(candidates, cmd.date)
    if not sessions:
        raise InvalidField(
            "date", f"no practice at {what} on {cmd.date}: the session is cancelled (doctor on leave)"
        )
    taken = await _take_first(repo, sessions, cmd, facility, polyclinic)
    if taken is None:
        raise quota_full(sessions, cmd.payment, what)
    session, position, number = taken
    appointment = Appointment.book(
        facility=facility,
        polyclinic=polyclinic,
        schedule=session.schedule,
        day=cmd.date,
        position=position,
        queue_number=number,
        patient=cmd.patient,
        payment=cmd.payment,
        new_patient=cmd.new_patient,
        citizen_ref=ref,
        now=now,
        tz=ctx.tz,
        locale=cmd.locale,
        contact=contact,
        contact_ref=cmd.citizen.contact_ref,
    )
    await repo.add(appointment)
    return appointment


async def _take_first(
    repo: HealthRepository, sessions: list[Session], cmd: Book, facility: Facility, polyclinic: Polyclinic
) -> tuple[Session, int, int] | None:
    """A place in the first of `sessions` with room: the session, the position and the
    queue number; None when every one is full. A session read full is not tried:
    places freed later go to later attempts."""
    for session in [s for s in sessions if s.remaining(cmd.payment) > 0]:
        schedule = session.schedule.id
        assert schedule is not None  # read from the database
        taken = await repo.take_place(schedule, cmd.date, cmd.payment, facility.code, polyclinic.code)
        if taken is not None:
            return session, *taken
    return None


async def _act(
    ctx: Context, booking_code: str, command: Callable[[Appointment, HealthRepository], object]
) -> Appointment:
    """The context's `act`, with the patient's contact sealed afresh for the events and the
    repository lent to the command (cancelling gives the place back with it)."""

    def run(a: Appointment, repo: HealthRepository) -> object:
        a.contact = ctx.contact_for(a.patient)
        return command(a, repo)

    return await ctx.act(booking_code, run, missing=_missing(booking_code))


async def get(ctx: Context, booking_code: str) -> Appointment:
    return await ctx.found(lambda repo: repo.get(booking_code), _missing(booking_code))


async def check_in(ctx: Context, booking_code: str, actor: str = "patient") -> Appointment:
    return await _act(ctx, booking_code, lambda a, _: a.check_in(ctx.clock(), ctx.policy, actor))


async def advance(ctx: Context, booking_code: str, task: Task, officer: Officer) -> Appointment:
    def step(a: Appointment, _: HealthRepository) -> None:
        must_serve(officer, a.facility_code)
        a.advance(task, ctx.clock(), officer.subject, ctx.policy)

    return await _act(ctx, booking_code, step)


async def call_next(
    ctx: Context, facility_code: str, polyclinic_code: str, day: date | None, officer: Officer
) -> Appointment:
    """Call the lowest queue number waiting for the polyclinic on `day` (default today),
    task 3 -> 4. Its own unit of work: the appointment is chosen and locked together."""
    day = day or ctx.today()
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        facility = await _facility(repo, facility_code)
        must_serve(officer, facility.code)
        polyclinic = await _polyclinic(repo, facility, polyclinic_code)
        code = await repo.next_waiting(facility.code, polyclinic.code, day)
        if code is None:
            raise Conflict(f"no patient is waiting for {polyclinic.name} at {facility.name} on {day}")
        appointment = await repo.get(code, for_update=True)
        assert appointment is not None
        appointment.contact = ctx.contact_for(appointment.patient)
        appointment.advance(Task.POLI_SERVICE, ctx.clock(), officer.subject, ctx.policy)
        await repo.save(appointment)
        await uow.emit(appointment.events, subject=str(appointment.id))
    return appointment


async def cancel(ctx: Context, booking_code: str, reason: str | None, citizen: Citizen) -> Appointment:
    """The contact that made the booking cancels it (task 99); the place goes back to the
    session's quota. Anyone else gets the answer an unknown code gets."""

    async def command(a: Appointment, repo: HealthRepository) -> None:
        if a.contact_ref is None or a.contact_ref != citizen.contact_ref:
            raise NotFound(_missing(booking_code))
        session = await repo.lock_session(a.schedule_id, a.date) if a.schedule_id is not None else None
        a.cancel(ctx.clock(), session, reason, seal=ctx.text_sealer_for(a.patient))
        if session is not None:
            await repo.save_session(session)

    return await _act(ctx, booking_code, command)


async def mark_no_shows(ctx: Context, limit: int = 200) -> int:
    """Mark booked appointments whose session ended (plus grace) as no-show; each is
    loaded FOR UPDATE and marked by the domain only while still booked, so concurrent
    runs never mark one twice. Returns how many were marked."""
    now = ctx.clock()
    ended_before = now - timedelta(minutes=ctx.policy.no_show_grace_minutes)
    due = await ctx.read(lambda repo: repo.due_no_shows(ended_before, limit))
    marked = 0
    for code in due:
        appointment = await _act(ctx, code, lambda a, _: a.mark_no_show(now, ctx.policy))
        marked += bool(appointment.events)
    return marked


@dataclass(frozen=True)
class QueueBoard:
    facility: Facility
    polyclinic: Polyclinic
    date: date
    state: QueueState


async def queue(
    ctx: Context, facility_code: str, polyclinic_code: str, day: date | None = None
) -> QueueBoard:
    """The polyclinic's queue on `day` (default today)."""
    day = day or ctx.today()
    async with ctx.reading() as repo:
        facility = await _facility(repo, facility_code)
        polyclinic = await _polyclinic(repo, facility, polyclinic_code)
        entries = await repo.queue_entries(facility.code, polyclinic.code, day)
    return QueueBoard(facility, polyclinic, day, queue_state(entries))


async def day_list(
    ctx: Context, facility_code: str, polyclinic_code: str, day: date | None, officer: Officer
) -> tuple[QueueBoard, list[DayListEntry]]:
    """The polyclinic's appointments on `day` (default today) for an officer of its
    facility: the board and each visit in queue order."""
    day = day or ctx.today()
    async with ctx.reading() as repo:
        facility = await _facility(repo, facility_code)
        must_serve(officer, facility.code)
        polyclinic = await _polyclinic(repo, facility, polyclinic_code)
        listed = await repo.day_list(facility.code, polyclinic.code, day)
    return QueueBoard(facility, polyclinic, day, queue_state(listed)), listed


async def fhir_bundle(ctx: Context, booking_code: str, officer: Officer) -> dict[str, Any]:
    """The finished visit as a FHIR R4 transaction bundle (Patient + Encounter), the
    shape SATUSEHAT takes. A read of health data: audited."""
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        appointment = await repo.get(booking_code)
        if appointment is None:
            raise NotFound(_missing(booking_code))
        must_serve(officer, appointment.facility_code)
        await audit.record_read(uow.conn, [booking_code])
        if appointment.task is not Task.DONE:
            raise IllegalTransition(
                "only a finished visit (task 7) can be exported as a FHIR Encounter",
                current=appointment.status,
                command="export_fhir",
            )
        if not appointment.patient.nik:
            raise Conflict("the patient's identity was erased on request; nothing to export")
        facility, polyclinic = await repo.facility_and_polyclinic(
            appointment.facility_code, appointment.polyclinic_code
        )
        doctor = await repo.doctor(appointment.doctor_code)
    assert facility is not None and polyclinic is not None
    return fhir.encounter_bundle(appointment, facility, polyclinic, doctor, ctx.fhir_system_base)


# ----- wards --------------------------------------------------------------------------


async def update_beds(ctx: Context, facility_code: str, ward_code: str, beds: Beds, officer: Officer) -> Ward:
    async with ctx.unit_of_work() as uow:
        repo = ctx.repository(uow.conn)
        facility = await _facility(repo, facility_code)  # facilities are public: 404 first
        must_serve(officer, facility.code)
        ward = await repo.ward(facility, ward_code, for_update=True)
        if ward is None:
            if not beds.name:
                raise InvalidField("name", f"{facility.name} has no ward {ward_code}; give a name to open it")
            ward = Ward.open(facility, ward_code, beds.name, beds.bed_class)
        if ward.update_beds(beds, officer.subject, ctx.clock()):
            await repo.save_ward(ward)
            await uow.emit(ward.events, subject=str(ward.id))
    return ward


async def list_wards(ctx: Context, facility_code: str | None = None) -> list[dict[str, Any]]:
    async with ctx.reading() as repo:
        if facility_code is not None:
            await _facility(repo, facility_code)
        return await repo.wards(facility_code)


async def waiting_by_polyclinic(ctx: Context) -> list[tuple[str, str, int]]:
    return await ctx.read(lambda repo: repo.waiting_by_polyclinic(ctx.today()))
