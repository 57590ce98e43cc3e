"""Unit tests for the pure health domain: quotas, booking days, estimated times, the BPJS
task order (every legal and illegal step), cancellation, the no-show rule, the queue
board and beds. No I/O: fixed clocks, one shared WorkingCalendar."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle

from services.health import fhir
from services.health.domain import (
    CANCELLABLE,
    NEXT_TASK,
    Beds,
    BookingPolicy,
    Facility,
    Patient,
    Payment,
    Polyclinic,
    QueueEntry,
    QuotaFull,
    Schedule,
    Session,
    SessionChange,
    Status,
    Task,
    Ward,
    estimated_service_time,
    new_booking_code,
    open_sessions,
    queue_code,
    queue_state,
    take_place,
)
from services.health.seed import load_seed
from shared.kit.codes import is_public_code
from shared.kit.errors import IllegalTransition, InvalidField
from shared.reference import WorkingCalendar, find_kecamatan
from shared.schemas import health as ev
from shared.schemas.common import CITIZEN_REF_PREFIX, SealedText

WIB = ZoneInfo("Asia/Jakarta")
CAL = WorkingCalendar()
POLICY = BookingPolicy()
NOW = datetime(2026, 8, 10, 9, 0, tzinfo=WIB)  # Monday 10 Aug 2026, 09:00 WIB
VISIT = date(2026, 8, 11)  # Tuesday
HOLIDAY = date(2026, 8, 17)  # Monday, Hari Kemerdekaan
NIK = "3306061708900001"
PHONE = "+6281234567890"
CARD = "0001234567890"
CITIZEN_REF = CITIZEN_REF_PREFIX + "0123456789abcdef" * 2
OFFICER = "petugas-1"

FACILITY = Facility("RSUD-TJITRO", "RSUD Dr. Tjitrowardojo Purworejo", "rsud", "33.06.06")
POLI = Polyclinic("RSUD-TJITRO", "INT", "Poli Penyakit Dalam", "A")
SCHEDULE = Schedule("D01", VISIT.weekday(), time(8), time(12), 10, quota_jkn=3, quota_non_jkn=2, id=1)
WHAT = "Poli Penyakit Dalam"


def book(
    payment: Payment = Payment.JKN,
    *,
    position: int = 1,
    number: int = 1,
    now: datetime = NOW,
    patient: Patient | None = None,
    new_patient: bool = False,
):
    """An appointment at the test polyclinic on VISIT, booked by Budi (with his JKN card)
    unless another patient is given."""
    from services.health.domain import Appointment

    return Appointment.book(
        facility=FACILITY,
        polyclinic=POLI,
        schedule=SCHEDULE,
        day=VISIT,
        position=position,
        queue_number=number,
        patient=patient or Patient(NIK, PHONE, "Budi", CARD),
        payment=payment,
        new_patient=new_patient,
        citizen_ref=CITIZEN_REF,
        now=now,
        tz=WIB,
    )


SESSION_START = datetime.combine(VISIT, time(8), tzinfo=WIB)
SESSION_END = datetime.combine(VISIT, time(12), tzinfo=WIB)
ON_THE_DAY = SESSION_START - timedelta(minutes=30)


def walk_to(task: Task | None, *, start: datetime = ON_THE_DAY):
    """An appointment brought to `task` by legal steps one minute apart, and the next `now`."""
    a = book()
    now = start
    step: Task | None = None
    while step != task:
        step = NEXT_TASK[step]
        a.advance(step, now, OFFICER, POLICY)
        now += timedelta(minutes=1)
    a.events.clear()
    return a, now


def event_types(a) -> list[str]:
    return [type(e).__name__ for e in a.events]


# ----- quotas -------------------------------------------------------------------------------


def test_jkn_and_non_jkn_quotas_are_separate_and_positions_run_across_both() -> None:
    s = Session(SCHEDULE, VISIT)
    assert [s.take(Payment.JKN) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(QuotaFull, match="kuota JKN penuh") as full:
        s.take(Payment.JKN)
    assert full.value.status_code == 409 and full.value.payment is Payment.JKN
    assert s.remaining(Payment.NON_JKN) == 2
    assert [s.take(Payment.NON_JKN) for _ in range(2)] == [4, 5]
    with pytest.raises(QuotaFull, match="kuota non-JKN penuh"):
        s.take(Payment.NON_JKN)
    assert (s.used_jkn, s.used_non_jkn, s.last_position) == (3, 2, 5)


def test_release_frees_a_place_but_never_reuses_a_position_or_goes_negative() -> None:
    s = Session(SCHEDULE, VISIT, used_jkn=3, last_position=3)
    assert s.remaining(Payment.JKN) == 0
    s.release(Payment.JKN)
    assert s.remaining(Payment.JKN) == 1
    assert s.take(Payment.JKN) == 4
    empty = Session(SCHEDULE, VISIT)
    empty.release(Payment.NON_JKN)
    assert empty.used_non_jkn == 0 and empty.remaining(Payment.NON_JKN) == 2


def test_zero_quota_refuses_and_over_used_counts_as_full() -> None:
    s = Session(Schedule("D", 1, time(8), time(9), 5, quota_jkn=0, quota_non_jkn=1, id=2), VISIT)
    with pytest.raises(QuotaFull):
        s.take(Payment.JKN)
    over = Session(SCHEDULE, VISIT, used_jkn=5)  # quota lowered after bookings
    assert over.remaining(Payment.JKN) == 0


def test_take_place_falls_over_to_the_next_session_then_refuses() -> None:
    first = Session(SCHEDULE, VISIT, used_jkn=3, last_position=3)
    second = Session(Schedule("D02", 1, time(13), time(15), 8, 1, 0, id=2), VISIT)
    session, position = take_place([first, second], Payment.JKN, WHAT)
    assert session is second and position == 1
    with pytest.raises(QuotaFull, match=r"kuota JKN penuh: all 4 JKN places at Poli Penyakit Dalam"):
        take_place([first, second], Payment.JKN, WHAT)
    with pytest.raises(QuotaFull):
        take_place([], Payment.NON_JKN, WHAT)


# ----- booking days ---------------------------------------------------------------------------


def test_open_sessions_for_a_practice_day_sorted_by_start() -> None:
    afternoon = Schedule("D02", VISIT.weekday(), time(13), time(15), 8, 5, 5, id=2)
    assert open_sessions([afternoon, SCHEDULE], VISIT, NOW, CAL, POLICY, WHAT) == [SCHEDULE, afternoon]


@pytest.mark.parametrize(
    ("day", "now", "message"),
    [
        (date(2026, 8, 9), NOW, "is in the past"),
        (NOW.date() + timedelta(days=31), NOW, "at most 30 days ahead"),
        (HOLIDAY, NOW, "Kemerdekaan"),
        (date(2026, 8, 12), NOW, r"no practice on Rabu 2026-08-12 \(practice days: Senin, Selasa\)"),
        (VISIT, SESSION_END, "ended at 12:00"),
        (VISIT, SESSION_END + timedelta(hours=3), "ended at 12:00"),
    ],
)
def test_no_booking_in_the_past_beyond_the_horizon_on_holidays_or_days_off(
    day: date, now: datetime, message: str
) -> None:
    holiday_schedule = Schedule("D", HOLIDAY.weekday(), time(8), time(12), 10, 5, 5, id=3)
    with pytest.raises(InvalidField, match=message) as refused:
        open_sessions([SCHEDULE, holiday_schedule], day, now, CAL, POLICY, WHAT)
    assert refused.value.loc == ("body", "date")


def test_today_is_bookable_until_the_session_ends_and_inactive_schedules_do_not_count() -> None:
    assert open_sessions([SCHEDULE], VISIT, SESSION_END - timedelta(minutes=1), CAL, POLICY, WHAT)
    inactive = Schedule("D01", VISIT.weekday(), time(8), time(12), 10, 3, 2, id=1, active=False)
    with pytest.raises(InvalidField, match="practice days: none"):
        open_sessions([inactive], VISIT, NOW, CAL, POLICY, WHAT)


@pytest.mark.parametrize(
    ("field", "schedule"),
    [
        ("end", Schedule("D", 0, time(12), time(8), 10, 1, 1)),
        ("weekday", Schedule("D", 7, time(8), time(12), 10, 1, 1)),
        ("minutes_per_patient", Schedule("D", 0, time(8), time(12), 0, 1, 1)),
        ("quota_jkn", Schedule("D", 0, time(8), time(12), 10, -1, 1)),
        ("quota_non_jkn", Schedule("D", 0, time(8), time(12), 10, 1, 1001)),
    ],
)
def test_schedule_validation_names_the_field(field: str, schedule: Schedule) -> None:
    with pytest.raises(InvalidField) as bad:
        schedule.validated()
    assert bad.value.loc == ("body", field)


# ----- estimated time, codes ------------------------------------------------------------------


def test_estimated_service_time_is_session_start_plus_positions_before() -> None:
    assert estimated_service_time(SESSION_START, 1, 10) == SESSION_START
    assert estimated_service_time(SESSION_START, 12, 10) == SESSION_START + timedelta(minutes=110)
    assert estimated_service_time(SESSION_START, 4, 7) == datetime(2026, 8, 11, 8, 21, tzinfo=WIB)
    late = SESSION_START + timedelta(hours=1)
    assert estimated_service_time(SESSION_START, 2, 10, now=late) == late  # never in the past
    odd = (late + timedelta(seconds=1)).astimezone(UTC)
    rounded = estimated_service_time(SESSION_START, 2, 10, now=odd)
    assert rounded == late + timedelta(minutes=1) and rounded.utcoffset() == timedelta(hours=7)
    assert estimated_service_time(SESSION_START, 9, 10, now=late) == SESSION_START + timedelta(minutes=80)
    with pytest.raises(ValueError):
        estimated_service_time(SESSION_START, 0, 10)


def test_queue_and_booking_codes() -> None:
    assert queue_code("A", 12) == "A-012" and queue_code("B", 1234) == "B-1234"
    code = new_booking_code(NOW)
    assert code.startswith("KES-2608-") and is_public_code(code, "KES")
    assert len({new_booking_code(NOW) for _ in range(200)}) == 200


# ----- booking --------------------------------------------------------------------------------


def test_booking_emits_booked_with_estimate_and_no_personal_data() -> None:
    a = book(position=4, number=12)
    assert a.status is Status.BOOKED and a.task is None
    assert a.queue_code == "A-012"
    assert a.estimated_at == SESSION_START + timedelta(minutes=30)
    assert a.session_start == SESSION_START and a.session_end == SESSION_END
    [booked] = a.events
    assert isinstance(booked, ev.AppointmentBooked)
    assert booked.status == "booked" and booked.task_id is None and booked.position == 4
    assert booked.kecamatan_code == "33.06.06" and booked.dimension == "living"
    text = json.dumps(booked.model_dump(mode="json"))
    for secret in (NIK, PHONE, CARD, "Budi"):
        assert secret not in text


def test_jkn_needs_a_card_and_non_jkn_does_not_keep_one() -> None:
    with pytest.raises(InvalidField) as missing:
        book(Payment.JKN, patient=Patient(NIK, PHONE), new_patient=True)
    assert missing.value.loc == ("body", "jkn_card")
    with pytest.raises(InvalidField):
        book(Payment.JKN, patient=Patient(NIK, PHONE, jkn_card="123"), new_patient=True)
    cash = book(Payment.NON_JKN, patient=Patient(NIK, PHONE, jkn_card=CARD), new_patient=True)
    assert cash.patient.jkn_card is None


# ----- task order -----------------------------------------------------------------------------

ORDER: list[Task | None] = [None, *[Task(i) for i in range(1, 8)]]
MILESTONE_EVENT = {
    Task.ADMISSION_WAIT: "AppointmentCheckedIn",
    Task.POLI_SERVICE: "AppointmentCalled",
    Task.PHARMACY_WAIT: "AppointmentServed",
    Task.DONE: "AppointmentCompleted",
}
# The status a patient sees after each task 1..7, written out in task order as the
# BPJS task list reads (independent of the domain's own table).
STATUS_AFTER = dict(
    zip(
        [Task(i) for i in range(1, 8)],
        [Status.CHECKED_IN] * 2 + [Status.WAITING, Status.IN_SERVICE] + [Status.PHARMACY] * 2 + [Status.DONE],
        strict=True,
    )
)
ALL_PAIRS = list(itertools.product(ORDER, [Task(i) for i in range(1, 8)]))


def test_the_order_is_one_step_at_a_time_from_1_to_7() -> None:
    assert [NEXT_TASK[t] for t in ORDER[:-1]] == [Task(i) for i in range(1, 8)]
    assert Task.DONE not in NEXT_TASK
    assert frozenset({None, Task(1), Task(2), Task(3)}) == CANCELLABLE


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda t: str(t and int(t)))
def test_every_task_step_is_legal_exactly_when_it_is_the_next(current: Task | None, target: Task) -> None:
    a, now = walk_to(current)
    before = (a.status, a.task, a.task_at, len(a.tasks))
    if NEXT_TASK.get(current) is target:
        a.advance(target, now, OFFICER, POLICY)
        assert a.task is target and a.status is STATUS_AFTER[target] and a.task_at == now
        expected = ["AppointmentQueueTaskChanged"]
        if target in MILESTONE_EVENT:
            expected.append(MILESTONE_EVENT[target])
        assert event_types(a) == expected
        change = a.events[0]
        assert change.task_id == int(target) and change.previous_task_id == (
            int(current) if current else None
        )
        assert change.task_name == target.label and change.changed_by == OFFICER
    else:
        with pytest.raises(IllegalTransition) as refused:
            a.advance(target, now, OFFICER, POLICY)
        assert f"task {int(target)}" in refused.value.message
        assert "the next task is" in refused.value.message or "no further task" in refused.value.message
        assert (a.status, a.task, a.task_at, len(a.tasks)) == before and a.events == []


@pytest.mark.parametrize("final", ["cancelled", "no_show"])
@pytest.mark.parametrize("target", [Task(i) for i in range(1, 8)])
def test_no_task_after_cancellation_or_no_show(final: str, target: Task) -> None:
    a = book()
    if final == "cancelled":
        a.cancel(NOW, None)
    else:
        assert a.mark_no_show(SESSION_END + timedelta(hours=2), POLICY)
    with pytest.raises(IllegalTransition, match="no further task"):
        a.advance(target, SESSION_END + timedelta(hours=3), OFFICER, POLICY)


def test_task_99_is_not_an_officer_step() -> None:
    a, now = walk_to(Task.ADMISSION)
    with pytest.raises(InvalidField) as refused:
        a.advance(Task.CANCELLED, now, OFFICER, POLICY)
    assert refused.value.loc == ("body", "task_id")


def test_timestamps_strictly_increase_even_when_the_clock_repeats_or_goes_back() -> None:
    a = book()
    stuck = ON_THE_DAY
    for task in [Task(i) for i in range(1, 8)]:
        a.advance(task, stuck, OFFICER, POLICY)
        stuck -= timedelta(seconds=1) if task is Task.POLI_WAIT else timedelta(0)
    times = [t.at for t in a.tasks]
    assert [t.task for t in a.tasks] == [Task(i) for i in range(1, 8)]
    assert all(b > a_ for a_, b in itertools.pairwise(times))
    assert times[0] > a.booked_at


def test_a_full_visit_emits_task_changes_and_milestones_in_order() -> None:
    a = book()
    now = ON_THE_DAY
    for task in [Task(i) for i in range(1, 8)]:
        a.advance(task, now, OFFICER, POLICY)
        now += timedelta(minutes=5)
    assert event_types(a) == [
        "AppointmentBooked",
        "AppointmentQueueTaskChanged",
        "AppointmentCheckedIn",
        "AppointmentQueueTaskChanged",
        "AppointmentQueueTaskChanged",
        "AppointmentQueueTaskChanged",
        "AppointmentCalled",
        "AppointmentQueueTaskChanged",
        "AppointmentServed",
        "AppointmentQueueTaskChanged",
        "AppointmentQueueTaskChanged",
        "AppointmentCompleted",
    ]
    assert a.status is Status.DONE and a.events[-1].status == "done" and a.events[-1].task_id == 7


# ----- check-in, cancel, no-show --------------------------------------------------------------


def test_check_in_only_on_the_day_within_the_window() -> None:
    early = book()
    with pytest.raises(IllegalTransition, match="check-in opens at 2026-08-11 05:00"):
        early.check_in(SESSION_START - timedelta(minutes=181), POLICY)
    late = book()
    with pytest.raises(IllegalTransition, match="check-in has closed"):
        late.check_in(SESSION_END + timedelta(minutes=61), POLICY)
    ok = book()
    ok.check_in(SESSION_START - timedelta(minutes=180), POLICY)
    assert ok.task is Task.ADMISSION_WAIT and ok.tasks[0].actor == "patient"
    with pytest.raises(IllegalTransition, match="task 1"):
        ok.check_in(SESSION_START, POLICY)


@pytest.mark.parametrize("current", ORDER, ids=lambda t: str(t and int(t)))
def test_cancel_is_possible_before_poli_service_and_frees_the_place(current: Task | None) -> None:
    a, now = walk_to(current)
    session = Session(SCHEDULE, VISIT, used_jkn=3, last_position=3)
    if current in CANCELLABLE:
        a.cancel(now, session, "sakit", seal=lambda text: SealedText(sealed=text[::-1]))
        assert a.status is Status.CANCELLED and a.task is Task.CANCELLED
        assert session.remaining(Payment.JKN) == 1
        assert event_types(a) == ["AppointmentQueueTaskChanged", "AppointmentCancelled"]
        assert a.events[0].task_id == 99
        # What the patient wrote travels only sealed (reversed by this stand-in sealer).
        cancelled = a.events[1]
        assert isinstance(cancelled, ev.AppointmentCancelled) and cancelled.reason is None
        assert cancelled.sealed_reason is not None and cancelled.sealed_reason.sealed == "tikas"
        with pytest.raises(IllegalTransition, match="cannot cancel an appointment that is cancelled"):
            a.cancel(now + timedelta(minutes=1), session)
    else:
        with pytest.raises(IllegalTransition, match="cannot cancel"):
            a.cancel(now, session)
        assert session.remaining(Payment.JKN) == 0 and a.events == []


def test_one_date_takes_its_own_quotas_or_nothing_while_the_doctor_is_on_leave() -> None:
    session = Session(SCHEDULE, VISIT, used_jkn=1)
    session.change(SessionChange(cancelled=False, quota_jkn=2), today=NOW.date())
    assert (session.quota(Payment.JKN), session.quota(Payment.NON_JKN)) == (2, 2)  # non-JKN: the schedule's
    assert session.remaining(Payment.JKN) == 1 and session.changed
    session.change(SessionChange(cancelled=True, reason="dokter cuti"), today=NOW.date())
    assert session.remaining(Payment.JKN) == session.remaining(Payment.NON_JKN) == 0
    assert (session.quota_jkn, session.note) == (None, "dokter cuti")
    with pytest.raises(InvalidField, match="in the past"):
        session.change(SessionChange(cancelled=True), today=VISIT + timedelta(days=1))
    with pytest.raises(InvalidField, match="quota_non_jkn must be between 0 and 1000"):
        session.change(SessionChange(cancelled=False, quota_non_jkn=1001), today=NOW.date())


@pytest.mark.parametrize("current", ORDER, ids=lambda t: str(t and int(t)))
def test_a_session_cancelled_by_the_facility_cancels_only_visits_not_yet_with_the_doctor(
    current: Task | None,
) -> None:
    a, now = walk_to(current)
    session = Session(SCHEDULE, VISIT, used_jkn=3, last_position=3, cancelled=True)
    if current in CANCELLABLE:
        assert a.cancel_for_session(now, session, OFFICER, "dokter cuti")
        assert a.status is Status.CANCELLED and a.task is Task.CANCELLED and session.used_jkn == 2
        assert event_types(a) == ["AppointmentQueueTaskChanged", "AppointmentSessionCancelled"]
        assert (a.events[1].reason, a.events[1].cancelled_by) == ("dokter cuti", OFFICER)
        a.events.clear()
        assert not a.cancel_for_session(now, session, OFFICER, None) and a.events == []
    else:
        assert not a.cancel_for_session(now, session, OFFICER, None)
        assert session.used_jkn == 3 and a.events == []


def test_no_cancel_after_the_session_ended() -> None:
    a = book()
    with pytest.raises(IllegalTransition, match="session has ended"):
        a.cancel(SESSION_END, None)


def test_no_show_only_for_the_never_arrived_after_end_plus_grace_and_only_once() -> None:
    grace = timedelta(minutes=POLICY.no_show_grace_minutes)
    a = book()
    assert not a.no_show_due(SESSION_END, POLICY)
    assert not a.mark_no_show(SESSION_END + grace - timedelta(seconds=1), POLICY)
    assert a.events[1:] == []
    assert a.mark_no_show(SESSION_END + grace, POLICY)
    assert a.status is Status.NO_SHOW and a.task is Task.CANCELLED
    assert event_types(a)[1:] == ["AppointmentQueueTaskChanged", "AppointmentNoShow"]
    assert a.events[-1].session_end == SESSION_END and a.tasks[-1].actor == "system"
    assert not a.mark_no_show(SESSION_END + 2 * grace, POLICY)  # exactly once
    assert len(a.events) == 3

    arrived, _ = walk_to(Task.ADMISSION_WAIT)
    cancelled = book()
    cancelled.cancel(NOW, None)
    for other in (arrived, cancelled):
        assert not other.mark_no_show(SESSION_END + 10 * grace, POLICY)


# ----- queue board, beds ----------------------------------------------------------------------


def test_queue_state_counts_and_estimates_the_wait() -> None:
    def entry(n: int, task: Task | None, status: Status, at_minute: int = 0) -> QueueEntry:
        at = SESSION_START + timedelta(minutes=at_minute) if task else None
        return QueueEntry(n, queue_code("A", n), status, task, at, 10)

    entries = [
        entry(1, Task.DONE, Status.DONE, 1),
        entry(2, Task.POLI_SERVICE, Status.IN_SERVICE, 30),
        entry(3, Task.POLI_SERVICE, Status.IN_SERVICE, 20),
        entry(5, Task.POLI_WAIT, Status.WAITING, 10),
        entry(4, Task.POLI_WAIT, Status.WAITING, 15),
        entry(6, Task.ADMISSION, Status.CHECKED_IN, 5),
        entry(7, None, Status.BOOKED),
        entry(8, Task.CANCELLED, Status.CANCELLED, 2),
        entry(9, Task.CANCELLED, Status.NO_SHOW, 3),
    ]
    s = queue_state(entries)
    assert s.now_serving == ["A-003", "A-002"]
    assert s.next_up == "A-004" and s.waiting == 2 and s.estimated_wait_minutes == 20
    assert (s.at_admission, s.not_arrived, s.served, s.cancelled) == (1, 1, 1, 2)
    empty = queue_state([])
    assert empty.next_up is None and empty.now_serving == [] and empty.estimated_wait_minutes == 0


def test_ward_beds_are_validated_and_published_only_when_changed() -> None:
    ward = Ward.open(FACILITY, "MAWAR", "Bangsal Mawar", "kelas_3")
    assert ward.update_beds(Beds(40, 35), OFFICER, NOW)
    [changed] = ward.events
    assert isinstance(changed, ev.WardBedAvailabilityChanged)
    assert (changed.total, changed.occupied, changed.available) == (40, 35, 5)
    assert changed.kecamatan_code == "33.06.06" and changed.tracking_code == "RSUD-TJITRO/MAWAR"
    assert not ward.update_beds(Beds(40, 35), OFFICER, NOW)
    assert len(ward.events) == 1
    for total, occupied, field in [(10, 11, "occupied"), (-1, 0, "total"), (5, -1, "occupied")]:
        with pytest.raises(InvalidField) as bad:
            ward.update_beds(Beds(total, occupied), OFFICER, NOW)
        assert bad.value.loc == ("body", field)
    assert (ward.total, ward.occupied) == (40, 35)
    assert ward.update_beds(Beds(40, 40), OFFICER, NOW) and ward.available == 0


# ----- seed and FHIR --------------------------------------------------------------------------


def test_seed_is_consistent_with_purworejo_reference_data() -> None:
    seed = load_seed()
    codes = {f.code for f in seed.facilities}
    assert "RSUD-TJITRO" in codes and sum(f.kind == "puskesmas" for f in seed.facilities) >= 3
    assert all(find_kecamatan(f.kecamatan_code) for f in seed.facilities)
    polis = {(p.facility_code, p.code) for p in seed.polyclinics}
    assert all((d.facility_code, d.polyclinic_code) in polis for d in seed.doctors)
    doctors = {d.code for d in seed.doctors}
    assert all(s.doctor_code in doctors for s in seed.schedules)
    assert len({(s.doctor_code, s.weekday) for s in seed.schedules}) == len(seed.schedules)
    assert all(w.facility_code in codes and w.occupied <= w.total for w in seed.wards)


def test_fhir_bundle_of_a_finished_visit_is_valid_r4_with_the_nik_identifier() -> None:
    a, _ = walk_to(Task.DONE)
    bundle = fhir.encounter_bundle(a, FACILITY, POLI, None)
    Bundle.model_validate(bundle)
    patient, encounter = (e["resource"] for e in bundle["entry"])
    assert patient["identifier"][0] == {"use": "official", "system": fhir.NIK_SYSTEM, "value": NIK}
    assert patient["gender"] == "male" and patient["birthDate"] == "1990-08-17"
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "AMB"
    assert encounter["subject"]["reference"] == bundle["entry"][0]["fullUrl"]
    assert encounter["period"]["start"] == a.tasks[0].at.isoformat()
    assert [h["status"] for h in encounter["statusHistory"]] == ["arrived", "in-progress", "finished"]
    assert "diagnosis" not in encounter


def test_utc_and_local_times_agree() -> None:
    assert book(now=NOW.astimezone(UTC)).booked_at == NOW
