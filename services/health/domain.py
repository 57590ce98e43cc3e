"""Health (kesehatan) domain: facilities and their practice schedules, the appointment
aggregate with the BPJS antrean task flow, quotas, the no-show rule and bed availability.

Pure: no I/O. Commands check the current state, change the aggregate and queue the
domain events that the handler puts in the outbox (after BPJS antrean / Mobile JKN):

- a doctor's schedule gives one *session* per practice day (weekday, start-end time,
  average minutes per patient) with daily quotas split JKN / non-JKN;
- booking takes a place in a session (`Session.take`: quota per payment), a queue
  number per polyclinic per day (`A-012`) and a position in the session, which gives
  the estimated service time: session start + (position - 1) x minutes per patient;
- the visit walks the BPJS task ids strictly forward, one step at a time, with strictly
  increasing timestamps: 1 admission wait (check-in), 2 admission, 3 poli wait,
  4 poli service (called), 5 pharmacy wait (served), 6 pharmacy, 7 done; 99 ends it
  (cancelled by the patient before poli service, which frees the place, or no-show:
  never checked in when the session ended, plus a grace period).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from enum import IntEnum, StrEnum
from typing import Any

from shared.kit.codes import HEALTH_PREFIX, new_public_code
from shared.kit.errors import Conflict, IllegalTransition, InvalidField
from shared.reference import WorkingCalendar
from shared.schemas import health as ev
from shared.schemas.common import SealedContact, SealedText

DIMENSION = "living"
DAY_NAMES = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
# Codes of reference data (facilities, polyclinics, doctors, wards), as stored.
REFERENCE_CODE = r"^[A-Z0-9][A-Z0-9_-]{0,19}$"


class Payment(StrEnum):
    JKN = "jkn"
    NON_JKN = "non_jkn"

    @property
    def label(self) -> str:
        return "JKN" if self is Payment.JKN else "non-JKN"


class Status(StrEnum):
    BOOKED = "booked"
    CHECKED_IN = "checked_in"  # tasks 1-2: at admission
    WAITING = "waiting"  # task 3: waiting for the polyclinic
    IN_SERVICE = "in_service"  # task 4: with the doctor
    PHARMACY = "pharmacy"  # tasks 5-6
    DONE = "done"  # task 7
    CANCELLED = "cancelled"  # task 99 by the patient
    NO_SHOW = "no_show"  # task 99 by the system


FINAL_STATUSES = frozenset({Status.DONE, Status.CANCELLED, Status.NO_SHOW})


class Task(IntEnum):
    """BPJS antrean task ids."""

    ADMISSION_WAIT = 1
    ADMISSION = 2
    POLI_WAIT = 3
    POLI_SERVICE = 4
    PHARMACY_WAIT = 5
    PHARMACY = 6
    DONE = 7
    CANCELLED = 99

    @property
    def label(self) -> str:
        return TASK_NAMES[self]


TASK_NAMES: dict[Task, str] = {
    Task.ADMISSION_WAIT: "mulai tunggu admisi",
    Task.ADMISSION: "mulai layan admisi",
    Task.POLI_WAIT: "mulai tunggu poli",
    Task.POLI_SERVICE: "mulai layan poli",
    Task.PHARMACY_WAIT: "mulai tunggu farmasi",
    Task.PHARMACY: "mulai layan farmasi",
    Task.DONE: "selesai",
    Task.CANCELLED: "batal / tidak hadir",
}

# A session's daily quota per payer, at most (a weekly schedule's, or one date's).
MOST_QUOTA = 1000
# Current task (None: booked, not yet checked in) -> the one task that may follow.
NEXT_TASK: dict[Task | None, Task] = {
    None: Task.ADMISSION_WAIT,
    Task.ADMISSION_WAIT: Task.ADMISSION,
    Task.ADMISSION: Task.POLI_WAIT,
    Task.POLI_WAIT: Task.POLI_SERVICE,
    Task.POLI_SERVICE: Task.PHARMACY_WAIT,
    Task.PHARMACY_WAIT: Task.PHARMACY,
    Task.PHARMACY: Task.DONE,
}
# Task 99 (cancelled) is possible only before the polyclinic has started serving.
CANCELLABLE: frozenset[Task | None] = frozenset({None, Task.ADMISSION_WAIT, Task.ADMISSION, Task.POLI_WAIT})
STATUS_OF_TASK: dict[Task, Status] = {
    Task.ADMISSION_WAIT: Status.CHECKED_IN,
    Task.ADMISSION: Status.CHECKED_IN,
    Task.POLI_WAIT: Status.WAITING,
    Task.POLI_SERVICE: Status.IN_SERVICE,
    Task.PHARMACY_WAIT: Status.PHARMACY,
    Task.PHARMACY: Status.PHARMACY,
    Task.DONE: Status.DONE,
}
# Milestones people are told about: the event that follows the task change.
MILESTONES: dict[Task, type[ev.AppointmentEvent]] = {
    Task.ADMISSION_WAIT: ev.AppointmentCheckedIn,
    Task.POLI_SERVICE: ev.AppointmentCalled,
    Task.PHARMACY_WAIT: ev.AppointmentServed,
    Task.DONE: ev.AppointmentCompleted,
}
_TICK = timedelta(milliseconds=1)


class QuotaFull(Conflict):
    """No place left for this payment kind (HTTP 409)."""

    def __init__(self, message: str, *, payment: Payment) -> None:
        super().__init__(message)
        self.payment = payment


@dataclass(frozen=True)
class BookingPolicy:
    max_days_ahead: int = 30
    # Check-in opens this long before the session starts.
    checkin_opens_minutes: int = 180
    # A booked patient who has not checked in this long after the session ended is a no-show.
    no_show_grace_minutes: int = 60
    # What one verified contact may hold at once (active: booked, for today or later).
    # Reasons in docs/operations.md; only the caller's own bookings count, so a refusal
    # says nothing about anyone else and nobody can use up a NIK holder's allowance.
    active_per_contact: int = 6
    active_per_nik: int = 2


class TooManyBookings(Conflict):
    """The caller's contact holds as many active bookings as it may (HTTP 409)."""


def check_holdings(policy: BookingPolicy, *, of_contact: int, for_nik: int) -> None:
    """Refuse one more booking when the contact's own active bookings (all, and those
    for this NIK) are at the policy's limits. Counts are of the caller's bookings only."""
    if of_contact >= policy.active_per_contact:
        raise TooManyBookings(
            f"you already hold {of_contact} active bookings, the most one phone number or email may"
            " hold; cancel one you no longer need, or book after a visit"
        )
    if for_nik >= policy.active_per_nik:
        raise TooManyBookings(
            f"you already hold {for_nik} active bookings for this NIK, the most one phone number or"
            " email may hold for one patient; cancel one you no longer need"
        )


# ----- reference data -----------------------------------------------------------------


@dataclass(frozen=True)
class Facility:
    code: str
    name: str
    kind: str  # rsud | puskesmas | klinik
    kecamatan_code: str
    address: str | None = None


@dataclass(frozen=True)
class Polyclinic:
    facility_code: str
    code: str
    name: str
    queue_prefix: str  # letter(s) of the displayed queue number, "A" in A-012


@dataclass(frozen=True)
class Doctor:
    code: str
    name: str
    facility_code: str
    polyclinic_code: str


@dataclass(frozen=True)
class Schedule:
    """A doctor's weekly practice: one session per `weekday` (0 = Monday)."""

    doctor_code: str
    weekday: int
    start: time
    end: time
    minutes_per_patient: int
    quota_jkn: int
    quota_non_jkn: int
    id: int | None = None
    active: bool = True

    def validated(self) -> Schedule:
        """This schedule, or InvalidField naming the broken field."""
        if not 0 <= self.weekday <= 6:
            raise InvalidField("weekday", "weekday must be 0 (Monday) to 6 (Sunday)")
        if self.end <= self.start:
            raise InvalidField("end", f"the session must end after it starts ({self.start:%H:%M})")
        if not 1 <= self.minutes_per_patient <= 240:
            raise InvalidField("minutes_per_patient", "minutes per patient must be between 1 and 240")
        for name in ("quota_jkn", "quota_non_jkn"):
            if not 0 <= getattr(self, name) <= MOST_QUOTA:
                raise InvalidField(name, f"{name} must be between 0 and {MOST_QUOTA}")
        return self

    def quota(self, payment: Payment) -> int:
        return self.quota_jkn if payment is Payment.JKN else self.quota_non_jkn

    def window(self, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
        """Start and end of the session on `day`, as aware datetimes."""
        return datetime.combine(day, self.start, tzinfo=tz), datetime.combine(day, self.end, tzinfo=tz)


@dataclass
class Session:
    """One schedule on one date: its quota counters. A cancellation or an officer's change
    holds this row locked while it runs; a booking takes its place with one statement
    that tests for room under the same lock (`HealthRepository.take_place`), so the
    counts are exact under concurrency."""

    schedule: Schedule
    date: date
    used_jkn: int = 0
    used_non_jkn: int = 0
    last_position: int = 0
    # An officer's change of this one date (migration 004): the doctor on leave, or other
    # quotas than the weekly schedule's (None: the schedule's).
    cancelled: bool = False
    quota_jkn: int | None = None
    quota_non_jkn: int | None = None
    note: str | None = None

    def used(self, payment: Payment) -> int:
        return self.used_jkn if payment is Payment.JKN else self.used_non_jkn

    def quota(self, payment: Payment) -> int:
        """The day's quota: the officer's for this date, else the weekly schedule's."""
        day = self.quota_jkn if payment is Payment.JKN else self.quota_non_jkn
        return self.schedule.quota(payment) if day is None else day

    def remaining(self, payment: Payment) -> int:
        return 0 if self.cancelled else max(0, self.quota(payment) - self.used(payment))

    @property
    def changed(self) -> bool:
        return self.cancelled or self.quota_jkn is not None or self.quota_non_jkn is not None

    def change(self, change: SessionChange, today: date) -> None:
        """The officer's change of this date: on leave (no practice, nothing bookable) or
        other quotas; never for a day already past."""
        if self.date < today:
            raise InvalidField("date", f"{self.date} is in the past (today is {today})")
        for name in ("quota_jkn", "quota_non_jkn"):
            value = getattr(change, name)
            if value is not None and not 0 <= value <= MOST_QUOTA:
                raise InvalidField(name, f"{name} must be between 0 and {MOST_QUOTA}")
        self.cancelled = change.cancelled
        self.quota_jkn, self.quota_non_jkn = change.quota_jkn, change.quota_non_jkn
        self.note = change.reason

    def take(self, payment: Payment) -> int:
        """Take a place; returns the position in the session (1, 2, ...)."""
        if self.remaining(payment) <= 0:
            raise QuotaFull(
                f"kuota {payment.label} penuh: {self.quota(payment)} of "
                f"{self.quota(payment)} places taken on {self.date}",
                payment=payment,
            )
        if payment is Payment.JKN:
            self.used_jkn += 1
        else:
            self.used_non_jkn += 1
        self.last_position += 1
        return self.last_position

    def release(self, payment: Payment) -> None:
        """Give a place back (cancellation). Positions are never reused."""
        if payment is Payment.JKN:
            self.used_jkn = max(0, self.used_jkn - 1)
        else:
            self.used_non_jkn = max(0, self.used_non_jkn - 1)


@dataclass(frozen=True)
class SessionChange:
    """A doctor's session on one date as an officer changes it."""

    cancelled: bool
    quota_jkn: int | None = None
    quota_non_jkn: int | None = None
    reason: str | None = None


def take_place(sessions: Sequence[Session], payment: Payment, what: str) -> tuple[Session, int]:
    """A place in the first session with room for `payment`; QuotaFull when none has."""
    for session in sessions:
        if session.remaining(payment) > 0:
            return session, session.take(payment)
    raise quota_full(sessions, payment, what)


def quota_full(sessions: Sequence[Session], payment: Payment, what: str) -> QuotaFull:
    """The refusal of a booking for which none of `sessions` has a place left."""
    total = sum(0 if s.cancelled else s.quota(payment) for s in sessions)
    day = sessions[0].date if sessions else "that day"
    return QuotaFull(
        f"kuota {payment.label} penuh: all {total} {payment.label} places at {what} on {day} are taken",
        payment=payment,
    )


def open_sessions(
    schedules: Sequence[Schedule],
    day: date,
    now: datetime,
    calendar: WorkingCalendar,
    policy: BookingPolicy,
    what: str,
) -> list[Schedule]:
    """The schedules a booking for `day` may use, or InvalidField('date') saying why none.

    No booking in the past, beyond the booking horizon, on a national holiday or cuti
    bersama, on a day without practice, or for a session that has already ended."""
    today = calendar.local_date(now)
    if day < today:
        raise InvalidField("date", f"{day} is in the past (today is {today})")
    horizon = today + timedelta(days=policy.max_days_ahead)
    if day > horizon:
        raise InvalidField(
            "date", f"bookings open at most {policy.max_days_ahead} days ahead (until {horizon})"
        )
    holiday = calendar.holiday_name(day)
    if holiday:
        raise InvalidField("date", f"no practice on {day}: {holiday}")
    on_day = sorted(
        (s for s in schedules if s.active and s.weekday == day.weekday()),
        key=lambda s: (s.start, s.id or 0),
    )
    if not on_day:
        days = sorted({s.weekday for s in schedules if s.active})
        offered = ", ".join(DAY_NAMES[d] for d in days) or "none"
        raise InvalidField(
            "date",
            f"{what} has no practice on {DAY_NAMES[day.weekday()]} {day} (practice days: {offered})",
        )
    still_open = [s for s in on_day if now < s.window(day, calendar.tz)[1]]
    if not still_open:
        ended = max(s.end for s in on_day)
        raise InvalidField("date", f"practice at {what} on {day} ended at {ended:%H:%M}")
    return still_open


def estimated_service_time(
    session_start: datetime, position: int, minutes_per_patient: int, now: datetime | None = None
) -> datetime:
    """Session start + (position - 1) x minutes per patient; never earlier than `now`
    (a booking made during the session is not promised a time already past: it gets
    `now` rounded up to the minute)."""
    if position < 1:
        raise ValueError("positions start at 1")
    at = session_start + timedelta(minutes=minutes_per_patient * (position - 1))
    if now is None or at >= now:
        return at
    # Already past: from now, rounded up to the next whole minute, in the session's zone.
    local = now.astimezone(session_start.tzinfo)
    whole = local.replace(second=0, microsecond=0)
    return whole if whole == local else whole + timedelta(minutes=1)


def queue_code(prefix: str, number: int) -> str:
    return f"{prefix}-{number:03d}"


def new_booking_code(now: datetime) -> str:
    """`KES-YYMM-XXXX-XXXX-XXXXX`: the patient's key to check in and cancel, so 65
    random bits (see shared.kit.codes)."""
    return new_public_code(HEALTH_PREFIX, now)


# ----- the appointment ----------------------------------------------------------------


@dataclass
class Patient:
    """Who booked; never published (the NIK, phone and JKN card stay in this service)."""

    nik: str
    phone: str | None = None
    name: str | None = None
    jkn_card: str | None = None


@dataclass(frozen=True)
class TaskStamp:
    task: Task
    at: datetime
    actor: str


@dataclass
class Appointment:
    id: uuid.UUID
    booking_code: str
    facility_code: str
    kecamatan_code: str
    polyclinic_code: str
    doctor_code: str
    schedule_id: int | None
    date: date
    session_start: datetime
    session_end: datetime
    minutes_per_patient: int
    queue_number: int
    queue_code: str
    position: int
    estimated_at: datetime
    payment: Payment
    new_patient: bool
    patient: Patient
    citizen_ref: str
    booked_at: datetime
    locale: str = "id"
    # Keyed hash of the contact the booking was made with (verified by a citizen session);
    # None for bookings made before sessions were required.
    contact_ref: str | None = None
    status: Status = Status.BOOKED
    task: Task | None = None
    task_at: datetime | None = None
    version: int = 0
    contact: SealedContact | None = None
    tasks: list[TaskStamp] = field(default_factory=list)
    # Produced by commands, drained by the handler.
    events: list[ev.AppointmentEvent] = field(default_factory=list)
    new_tasks: list[TaskStamp] = field(default_factory=list)

    # ----- creation -------------------------------------------------------------------

    @classmethod
    def book(
        cls,
        *,
        facility: Facility,
        polyclinic: Polyclinic,
        schedule: Schedule,
        day: date,
        position: int,
        queue_number: int,
        patient: Patient,
        payment: Payment,
        new_patient: bool,
        citizen_ref: str,
        now: datetime,
        tz: tzinfo,
        locale: str = "id",
        contact: SealedContact | None = None,
        contact_ref: str | None = None,
        booking_code: str | None = None,
    ) -> Appointment:
        if payment is Payment.JKN and not (patient.jkn_card and len(patient.jkn_card) == 13):
            raise InvalidField("jkn_card", "a JKN booking needs the 13-digit JKN card number")
        start, end = schedule.window(day, tz)
        appointment = cls(
            id=uuid.uuid4(),
            booking_code=booking_code or new_booking_code(now),
            facility_code=facility.code,
            kecamatan_code=facility.kecamatan_code,
            polyclinic_code=polyclinic.code,
            doctor_code=schedule.doctor_code,
            schedule_id=schedule.id,
            date=day,
            session_start=start,
            session_end=end,
            minutes_per_patient=schedule.minutes_per_patient,
            queue_number=queue_number,
            queue_code=queue_code(polyclinic.queue_prefix, queue_number),
            position=position,
            estimated_at=estimated_service_time(start, position, schedule.minutes_per_patient, now),
            payment=payment,
            new_patient=new_patient,
            patient=patient if payment is Payment.JKN else Patient(patient.nik, patient.phone, patient.name),
            citizen_ref=citizen_ref,
            booked_at=now,
            locale=locale,
            contact=contact,
            contact_ref=contact_ref,
        )
        appointment._emit(
            ev.AppointmentBooked,
            contact_ref=contact_ref,
            booked_at=now,
            session_start=start,
            session_end=end,
            estimated_at=appointment.estimated_at,
            position=position,
        )
        return appointment

    # ----- commands -------------------------------------------------------------------

    def booked_again(self, now: datetime) -> None:
        """Someone with another contact booked this patient at this polyclinic on this day:
        the contact on file here is told (the event carries this booking only, nothing of
        the other booking or of who made it). The booking itself does not change."""
        self._emit(ev.AppointmentBookedAgain, booked_again_at=now)

    def check_in(self, now: datetime, policy: BookingPolicy, actor: str = "patient") -> None:
        """Task 1: the patient has arrived (kiosk or counter), on the visit day."""
        self._require_next(Task.ADMISSION_WAIT)
        opens = self.session_start - timedelta(minutes=policy.checkin_opens_minutes)
        closes = self.session_end + timedelta(minutes=policy.no_show_grace_minutes)
        if now < opens:
            raise IllegalTransition(
                f"check-in opens at {opens.astimezone(self.session_start.tzinfo):%Y-%m-%d %H:%M}",
                current=self.status,
                command="check_in",
            )
        if now > closes:
            raise IllegalTransition(
                "check-in has closed: the session has ended", current=self.status, command="check_in"
            )
        self._set_task(Task.ADMISSION_WAIT, now, actor)

    def advance(self, task: Task, now: datetime, actor: str, policy: BookingPolicy) -> None:
        """Move to `task`, which must be the next one (officers, tasks 1-7)."""
        if task is Task.CANCELLED:
            raise InvalidField("task_id", "task 99 is set by cancelling or by the no-show rule")
        if task is Task.ADMISSION_WAIT:
            self.check_in(now, policy, actor)
            return
        self._require_next(task)
        self._set_task(task, now, actor)

    def cancel(
        self,
        now: datetime,
        session: Session | None,
        reason: str | None = None,
        seal: Callable[[str], SealedText] | None = None,
    ) -> None:
        """Task 99 by the patient, before poli service; frees the place in `session`. The
        patient's `reason` travels only sealed by `seal` (the use case's: no key here)."""
        if self.status in FINAL_STATUSES or self.task not in CANCELLABLE:
            raise IllegalTransition(
                f"cannot cancel an appointment that is {self.status}"
                + (f" (task {int(self.task)}: {self.task.label})" if self.task else ""),
                current=self.status,
                command="cancel",
            )
        if now >= self.session_end:
            raise IllegalTransition(
                "cannot cancel after the session has ended", current=self.status, command="cancel"
            )
        if session is not None:
            session.release(self.payment)
        at = self._set_task(Task.CANCELLED, now, "patient", status=Status.CANCELLED, milestone=False)
        sealed = seal(reason) if reason and seal is not None else None
        self._emit(ev.AppointmentCancelled, cancelled_at=at, cancelled_by="patient", sealed_reason=sealed)

    def cancel_for_session(self, now: datetime, session: Session, actor: str, reason: str | None) -> bool:
        """Task 99 by the facility: the doctor does not practise that day. Only a visit not
        yet with the doctor; its place goes back; the patient is told and offered another
        date. False (nothing emitted) for a visit already further on or over."""
        if self.status in FINAL_STATUSES or self.task not in CANCELLABLE:
            return False
        session.release(self.payment)
        at = self._set_task(Task.CANCELLED, now, actor, status=Status.CANCELLED, milestone=False)
        self._emit(ev.AppointmentSessionCancelled, cancelled_at=at, cancelled_by=actor, reason=reason)
        return True

    def no_show_due(self, now: datetime, policy: BookingPolicy) -> bool:
        return self.status is Status.BOOKED and now >= self.session_end + timedelta(
            minutes=policy.no_show_grace_minutes
        )

    def mark_no_show(self, now: datetime, policy: BookingPolicy) -> bool:
        """Task 99 by the system when due; False (and nothing emitted) otherwise, so a
        second run never marks the same appointment twice."""
        if not self.no_show_due(now, policy):
            return False
        at = self._set_task(Task.CANCELLED, now, "system", status=Status.NO_SHOW, milestone=False)
        self._emit(ev.AppointmentNoShow, session_end=self.session_end, marked_at=at)
        return True

    # ----- internals ------------------------------------------------------------------

    def _require_next(self, task: Task) -> None:
        if self.status in FINAL_STATUSES:
            raise IllegalTransition(
                f"task {int(task)} ({task.label}) is not possible: the appointment is {self.status},"
                " no further task is possible",
                current=self.status,
                command=f"task {int(task)}",
            )
        expected = NEXT_TASK[self.task]
        if task is not expected:
            now_at = f"task {int(self.task)} ({self.task.label})" if self.task else "booked, not checked in"
            raise IllegalTransition(
                f"task {int(task)} ({task.label}) cannot follow {now_at}; "
                f"the next task is {int(expected)} ({expected.label})",
                current=self.status,
                command=f"task {int(task)}",
            )

    def _stamp(self, now: datetime) -> datetime:
        """`now`, or just after the previous timestamp: task times strictly increase."""
        last = self.task_at or self.booked_at
        return now if now > last else last + _TICK

    def _set_task(
        self, task: Task, now: datetime, actor: str, *, status: Status | None = None, milestone: bool = True
    ) -> datetime:
        at = self._stamp(now)
        previous = self.task
        self.task = task
        self.task_at = at
        self.status = status or STATUS_OF_TASK[task]
        stamp = TaskStamp(task, at, actor)
        self.tasks.append(stamp)
        self.new_tasks.append(stamp)
        self._emit(
            ev.AppointmentQueueTaskChanged,
            task_at=at,
            previous_task_id=int(previous) if previous is not None else None,
            task_name=task.label,
            changed_by=actor,
        )
        if milestone and task in MILESTONES:
            extra: dict[str, Any] = {
                Task.ADMISSION_WAIT: {"checked_in_at": at},
                Task.POLI_SERVICE: {"called_at": at, "called_by": actor},
                Task.PHARMACY_WAIT: {"served_at": at, "served_by": actor},
                Task.DONE: {"completed_at": at},
            }[task]
            self._emit(MILESTONES[task], **extra)
        return at

    def task_time(self, task: Task) -> datetime | None:
        for stamp in self.tasks:
            if stamp.task is task:
                return stamp.at
        return None

    def _emit(self, event_class: type[ev.AppointmentEvent], **fields: Any) -> None:
        self.events.append(
            event_class(
                appointment_id=str(self.id),
                booking_code=self.booking_code,
                status=self.status.value,
                facility=self.facility_code,
                polyclinic=self.polyclinic_code,
                doctor=self.doctor_code,
                date=self.date,
                queue_number=self.queue_number,
                queue_code=self.queue_code,
                task_id=int(self.task) if self.task is not None else None,
                payment=self.payment.value,
                new_patient=self.new_patient,
                kecamatan_code=self.kecamatan_code,
                citizen_ref=self.citizen_ref,
                contact=self.contact,
                locale=self.locale,
                dimension=DIMENSION,
                **fields,
            )
        )


# ----- the live queue -----------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """What the public queue board needs of one appointment (no personal data)."""

    queue_number: int
    queue_code: str
    status: Status
    task: Task | None
    task_at: datetime | None
    minutes_per_patient: int


@dataclass(frozen=True)
class DayListEntry(QueueEntry):
    """One appointment of a polyclinic's day as its officers work the queue: the board's
    entry, the booking, when it checked in and the one task that may follow (no personal
    data: the queue number is what an officer calls out)."""

    booking_code: str
    checked_in_at: datetime | None
    estimated_at: datetime
    payment: Payment
    new_patient: bool

    @property
    def next_task(self) -> Task | None:
        """The task an officer may set next (none once final)."""
        return None if self.status in FINAL_STATUSES else NEXT_TASK.get(self.task)


# How many of the numbers waiting next a queue board lists (a waiting room's display).
BOARD_UPCOMING = 10


@dataclass(frozen=True)
class QueueState:
    now_serving: list[str]
    next_up: str | None
    upcoming: list[str]  # the next numbers waiting, in the order they will be called
    waiting: int  # task 3: waiting for the polyclinic
    at_admission: int  # tasks 1-2
    not_arrived: int  # booked, not checked in
    served: int  # tasks 5-7
    cancelled: int  # cancelled or no-show
    estimated_wait_minutes: int  # for someone joining the poli queue now


def queue_state(entries: Sequence[QueueEntry]) -> QueueState:
    serving = sorted(
        (e for e in entries if e.task is Task.POLI_SERVICE),
        key=lambda e: (e.task_at or datetime.min, e.queue_number),
    )
    waiting = sorted((e for e in entries if e.task is Task.POLI_WAIT), key=lambda e: e.queue_number)
    return QueueState(
        now_serving=[e.queue_code for e in serving],
        next_up=waiting[0].queue_code if waiting else None,
        upcoming=[e.queue_code for e in waiting[:BOARD_UPCOMING]],
        waiting=len(waiting),
        at_admission=sum(1 for e in entries if e.task in (Task.ADMISSION_WAIT, Task.ADMISSION)),
        not_arrived=sum(1 for e in entries if e.status is Status.BOOKED),
        served=sum(1 for e in entries if e.task in (Task.PHARMACY_WAIT, Task.PHARMACY, Task.DONE)),
        cancelled=sum(1 for e in entries if e.status in (Status.CANCELLED, Status.NO_SHOW)),
        estimated_wait_minutes=sum(e.minutes_per_patient for e in waiting),
    )


# ----- wards and beds -----------------------------------------------------------------


@dataclass(frozen=True)
class Beds:
    """A ward's beds as an officer (or the seed) reports them; a `name` or `bed_class`
    given renames or reclassifies the ward, none keeps what it has."""

    total: int
    occupied: int
    name: str | None = None
    bed_class: str | None = None


@dataclass
class Ward:
    id: uuid.UUID
    facility_code: str
    kecamatan_code: str
    code: str
    name: str
    bed_class: str | None = None
    total: int = 0
    occupied: int = 0
    updated_at: datetime | None = None
    version: int = 0
    events: list[ev.WardEvent] = field(default_factory=list)

    @classmethod
    def open(cls, facility: Facility, code: str, name: str, bed_class: str | None) -> Ward:
        return cls(
            id=uuid.uuid4(),
            facility_code=facility.code,
            kecamatan_code=facility.kecamatan_code,
            code=code,
            name=name,
            bed_class=bed_class,
        )

    @property
    def available(self) -> int:
        return max(0, self.total - self.occupied)

    def update_beds(self, beds: Beds, officer: str, now: datetime) -> bool:
        """Set the bed counts; emits when anything changed. False when nothing did."""
        total, occupied = beds.total, beds.occupied
        if total < 0:
            raise InvalidField("total", "total beds cannot be negative")
        if occupied < 0:
            raise InvalidField("occupied", "occupied beds cannot be negative")
        if occupied > total:
            raise InvalidField("occupied", f"occupied beds ({occupied}) cannot exceed total beds ({total})")
        new_name = beds.name or self.name
        new_class = beds.bed_class if beds.bed_class is not None else self.bed_class
        unchanged = (self.total, self.occupied, self.name, self.bed_class) == (
            total,
            occupied,
            new_name,
            new_class,
        )
        if unchanged and self.updated_at is not None:
            return False
        self.total, self.occupied, self.name, self.bed_class = total, occupied, new_name, new_class
        self.updated_at = now
        self.events.append(
            ev.WardBedAvailabilityChanged(
                ward_id=str(self.id),
                facility=self.facility_code,
                ward=self.code,
                name=self.name,
                bed_class=self.bed_class,
                kecamatan_code=self.kecamatan_code,
                dimension=DIMENSION,
                total=total,
                occupied=occupied,
                available=self.available,
                updated_by=officer,
                updated_at=now,
            )
        )
        return True
