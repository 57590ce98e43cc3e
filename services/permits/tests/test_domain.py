"""Unit tests for the pure permits domain: state machine, events, the pausable SLA clock,
fiktif positif, permit numbers and validity/expiry.

No I/O: applications are built in memory with fixed clocks, one shared WorkingCalendar
and the reference data of permit_types.yaml.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from services.permits.catalogue import load_catalogue
from services.permits.domain import (
    COMMANDS,
    OPEN_STATUSES,
    TRANSITIONS,
    UNDECIDED,
    WIB,
    Applicant,
    Application,
    Document,
    InvalidFields,
    PermitType,
    SlaPolicy,
    Status,
    format_permit_number,
    new_tracking_code,
    parse_permit_number,
    validity_end,
)
from shared.kit.errors import IllegalTransition, InvalidField
from shared.reference import WorkingCalendar
from shared.schemas import permits as ev
from shared.schemas.common import CITIZEN_REF_PREFIX
from tests.calendar_oracle import end_of_day, nth_working_day_after
from tests.domain_support import illegal_transition, refused

T0 = datetime(2026, 8, 14, 3, 0, tzinfo=UTC)  # Friday 14 Aug 2026, 10:00 WIB
STEP = timedelta(hours=1)
MICRO = timedelta(microseconds=1)
CAL = WorkingCalendar()
POLICY = SlaPolicy()
CATALOGUE = load_catalogue()
TYPES = CATALOGUE.permit_types
OFFICER = "petugas-1"
CITIZEN_REF = CITIZEN_REF_PREFIX + "0123456789abcdef" * 2
NIK = "3306061708900001"
NIB = "9120001234567"
DESA, KECAMATAN = "33.06.01.2001", "33.06.01"

DETAILS: dict[str, dict[str, Any]] = {
    "izin_usaha": {"kbli": "56101", "risk_level": "menengah_rendah", "business_name": "Warung Sari Rasa"},
    "pbg": {"building_function": "hunian", "building_area_m2": 120, "floors": 2},
    "slf": {
        "pbg_number": "503/PBG/00001/2026",
        "building_function": "usaha",
        "building_area_m2": 300,
        "floors": 2,
    },
    "izin_faskes": {"facility_kind": "klinik_pratama", "facility_name": "Klinik Sehat Bagelen"},
}
# The two shapes of the state machine, each with a type that can reach every status.
WITH_INSPECTION = "izin_faskes"  # inspection, 14 working days, no fiktif positif, 5 years
WITHOUT_INSPECTION = "izin_usaha"  # menengah_rendah: no inspection, 3 days, fiktif positif

RESULT: dict[str, Status] = {
    "verify_documents": Status.DOCUMENTS_VERIFIED,
    "return_documents": Status.DOCUMENTS_INCOMPLETE,
    "resubmit": Status.SUBMITTED,
    "schedule_inspection": Status.INSPECTION_SCHEDULED,
    "record_inspection": Status.INSPECTED,
    "approve": Status.APPROVED,
    "reject": Status.REJECTED,
    "issue": Status.ISSUED,
    "revoke": Status.REVOKED,
}
EVENT_CLASS: dict[str, type[ev.PermitEvent]] = {
    "verify_documents": ev.DocumentsVerified,
    "return_documents": ev.DocumentsIncomplete,
    "resubmit": ev.Resubmitted,
    "schedule_inspection": ev.InspectionScheduled,
    "record_inspection": ev.InspectionRecorded,
    "approve": ev.ApplicationApproved,
    "reject": ev.ApplicationRejected,
    "issue": ev.PermitIssued,
    "revoke": ev.PermitRevoked,
}
PATHS: dict[bool, dict[Status, tuple[str, ...]]] = {
    True: {
        Status.SUBMITTED: (),
        Status.DOCUMENTS_INCOMPLETE: ("return_documents",),
        Status.DOCUMENTS_VERIFIED: ("verify_documents",),
        Status.INSPECTION_SCHEDULED: ("verify_documents", "schedule_inspection"),
        Status.INSPECTED: ("verify_documents", "schedule_inspection", "record_inspection"),
        Status.APPROVED: ("verify_documents", "schedule_inspection", "record_inspection", "approve"),
        Status.REJECTED: ("reject",),
        Status.ISSUED: ("verify_documents", "schedule_inspection", "record_inspection", "approve", "issue"),
        Status.REVOKED: (
            "verify_documents",
            "schedule_inspection",
            "record_inspection",
            "approve",
            "issue",
            "revoke",
        ),
        Status.EXPIRED: ("verify_documents", "schedule_inspection", "record_inspection", "approve", "issue"),
    },
    False: {
        Status.SUBMITTED: (),
        Status.DOCUMENTS_INCOMPLETE: ("return_documents",),
        Status.DOCUMENTS_VERIFIED: ("verify_documents",),
        Status.APPROVED: ("verify_documents", "approve"),
        Status.REJECTED: ("reject",),
        Status.ISSUED: ("verify_documents", "approve", "issue"),
        Status.REVOKED: ("verify_documents", "approve", "issue", "revoke"),
        Status.EXPIRED: ("verify_documents", "approve", "issue"),
    },
}


# ----- helpers ----------------------------------------------------------------------------


def required_documents(t: PermitType) -> list[Document]:
    return [Document(d.code, f"dms://{d.code}/1") for d in t.documents if d.required]


def submit(type_code: str = "pbg", *, now: datetime = T0, **overrides: Any) -> Application:
    t = TYPES[type_code]
    business = t.applicant_kinds == {"business"}
    kwargs: dict[str, Any] = {
        "permit_type": t,
        "applicant": Applicant(
            kind="business" if business else "person",
            name="Budi Santoso",
            nik=None if business else NIK,
            nib=NIB if business else None,
            phone="+6281234567890",
        ),
        "citizen_ref": CITIZEN_REF,
        "desa_code": DESA,
        "kecamatan_code": KECAMATAN,
        "details": DETAILS[type_code],
        "documents": required_documents(t),
        "kbli": CATALOGUE.kbli,
        "locale": "id",
        "now": now,
    }
    return Application.submit(**(kwargs | overrides), calendar=CAL, policy=POLICY)


def next_working_morning(now: datetime) -> datetime:
    """10:00 WIB on the first working day after `now`."""
    day = CAL.next_working_day(CAL.local_date(now))
    return datetime.combine(day, time(10, 0), tzinfo=WIB)


def run(a: Application, command: str, now: datetime, *, result: str = "passed") -> None:
    """Apply `command` (a TRANSITIONS key) with valid arguments."""
    match command:
        case "verify_documents":
            a.verify_documents(OFFICER, now)
        case "return_documents":
            a.return_documents(OFFICER, now, CAL, [a.permit_type.documents[0].code], "Scan tidak terbaca")
        case "resubmit":
            codes = a.missing_documents or [a.permit_type.documents[0].code]
            a.resubmit(now, CAL, POLICY, [Document(c, f"dms://{c}/2") for c in codes], "Sudah dilengkapi")
        case "schedule_inspection":
            a.schedule_inspection(OFFICER, now, CAL, next_working_morning(now), "Tim teknis 1")
        case "record_inspection":
            a.record_inspection(OFFICER, now, result, "Sesuai gambar", None)
        case "approve":
            a.approve(OFFICER, now, CAL, "Memenuhi syarat")
        case "reject":
            a.reject(OFFICER, now, CAL, ["Lokasi tidak sesuai RTRW"], None)
        case "issue":
            a.issue(OFFICER, now, CAL, 7)
        case "revoke":
            a.revoke(OFFICER, now, "Kegiatan tidak sesuai izin")
        case _:  # pragma: no cover
            raise AssertionError(command)


def drive(status: Status, inspection: bool = True, *, result: str = "passed") -> tuple[Application, datetime]:
    """An application brought to `status` by legal commands one hour apart, and the next `now`."""
    a = submit(WITH_INSPECTION if inspection else WITHOUT_INSPECTION)
    now = T0
    for command in PATHS[inspection][status]:
        now += STEP
        run(a, command, now, result=result)
    if status == Status.EXPIRED:
        assert a.valid_until is not None
        now = a.valid_until
        assert a.check_expiry(now) == ["expired"]
    assert a.status == status
    return a, now + STEP


def snapshot(a: Application) -> tuple[Any, ...]:
    return (
        a.status,
        dataclasses.replace(a.clock),
        list(a.documents),
        list(a.missing_documents),
        a.decision,
        a.permit_number,
        a.valid_until,
        a.inspection_result,
        len(a.events),
        len(a.history),
    )


def assert_identity(event: ev.PermitEvent, a: Application) -> None:
    assert event.application_id == str(a.id)
    assert event.tracking_code == a.tracking_code
    assert event.permit_type == a.permit_type.code
    assert event.opd == a.permit_type.opd
    assert event.dimension == a.permit_type.dimension
    assert event.applicant_kind == a.applicant.kind
    assert (event.desa_code, event.kecamatan_code) == (DESA, KECAMATAN)
    assert event.citizen_ref == CITIZEN_REF
    assert event.permit_number == a.permit_number


def result_for(command: str, status: Status) -> str:
    """Re-inspection follows a failed inspection; everything else a passed one."""
    return "failed" if (command, status) == ("schedule_inspection", Status.INSPECTED) else "passed"


PAIRS = [
    (inspection, command, status)
    for inspection in (True, False)
    for command in COMMANDS
    for status in PATHS[inspection]
]


# ----- 1. the transition table, pair by pair ------------------------------------------------


def test_the_calendar_facts_the_tests_rely_on() -> None:
    assert T0.astimezone(WIB) == datetime(2026, 8, 14, 10, 0, tzinfo=WIB)
    assert date(2026, 8, 14).weekday() == 4  # Friday
    assert date(2026, 8, 17).weekday() == 0 and not CAL.is_working_day(date(2026, 8, 17))
    assert "Kemerdekaan" in (CAL.holiday_name(date(2026, 8, 17)) or "")
    assert not CAL.is_working_day(date(2026, 8, 25))  # Maulid Nabi, Tuesday
    assert all(CAL.is_working_day(date(2026, 8, d)) for d in (18, 19, 20, 21, 24, 26))


@pytest.mark.parametrize(
    ("inspection", "command", "status"),
    PAIRS,
    ids=[f"{'insp' if i else 'noinsp'}-{c}-{s}" for i, c, s in PAIRS],
)
def test_command_is_allowed_exactly_from_its_transition_statuses(
    inspection: bool, command: str, status: Status
) -> None:
    # Re-inspection is for a failed inspection; approval for a passed one.
    a, now = drive(status, inspection, result=result_for(command, status))
    if status in TRANSITIONS[inspection][command]:
        before = snapshot(a)
        run(a, command, now)
        assert a.status == RESULT[command]
        assert len(a.events) == before[-2] + 1
        assert type(a.events[-1]) is EVENT_CLASS[command]
        assert len(a.history) == before[-1] + 1
    else:
        with illegal_transition(lambda: snapshot(a), status, command):
            run(a, command, now)


def test_transition_table_shape() -> None:
    assert set(TRANSITIONS[True]) == set(TRANSITIONS[False]) == set(COMMANDS) == set(RESULT)
    assert TRANSITIONS[False]["schedule_inspection"] == TRANSITIONS[False]["record_inspection"] == frozenset()
    assert TRANSITIONS[True]["approve"] == {Status.INSPECTED}
    assert TRANSITIONS[False]["approve"] == {Status.DOCUMENTS_VERIFIED}
    assert TRANSITIONS[True]["reject"] == UNDECIDED
    assert UNDECIDED | {Status.APPROVED} == OPEN_STATUSES
    # Every status is reachable in the shape of the state machine that has it.
    assert set(PATHS[True]) == set(Status)
    assert set(PATHS[False]) == set(Status) - {Status.INSPECTION_SCHEDULED, Status.INSPECTED}


def test_inspection_commands_on_a_type_without_inspection_explain_why() -> None:
    a, now = drive(Status.DOCUMENTS_VERIFIED, inspection=False)
    with pytest.raises(IllegalTransition, match="needs no field inspection"):
        run(a, "schedule_inspection", now)


def test_a_failed_inspection_blocks_approval_until_a_new_one_passes() -> None:
    a, now = drive(Status.INSPECTED, result="failed")
    with refused(IllegalTransition, lambda: snapshot(a), match="inspection failed"):
        a.approve(OFFICER, now, CAL, None)
    run(a, "schedule_inspection", now)
    run(a, "record_inspection", now + STEP, result="passed")
    a.approve(OFFICER, now + 2 * STEP, CAL, None)
    assert a.status == Status.APPROVED


def test_a_passed_inspection_is_not_repeated() -> None:
    a, now = drive(Status.INSPECTED, result="passed")
    with pytest.raises(IllegalTransition, match="inspection passed"):
        run(a, "schedule_inspection", now)


def test_inspection_must_be_in_the_future_on_a_working_day() -> None:
    a, now = drive(Status.DOCUMENTS_VERIFIED)
    with pytest.raises(InvalidField) as info:
        a.schedule_inspection(OFFICER, now, CAL, now - STEP, "Tim")
    assert info.value.loc == ("body", "scheduled_for")
    independence_day = datetime(2026, 8, 17, 9, 0, tzinfo=WIB)
    with pytest.raises(InvalidField, match="Kemerdekaan"):
        a.schedule_inspection(OFFICER, now, CAL, independence_day, "Tim")
    with pytest.raises(InvalidField, match="weekend"):
        a.schedule_inspection(OFFICER, now, CAL, datetime(2026, 8, 15, 9, 0, tzinfo=WIB), "Tim")
    with pytest.raises(InvalidField, match="within 365 days"):
        a.schedule_inspection(OFFICER, now, CAL, datetime(2030, 8, 15, 9, 0, tzinfo=WIB), "Tim")
    assert a.status == Status.DOCUMENTS_VERIFIED


def test_an_inspection_is_recorded_after_it_happened() -> None:
    a, now = drive(Status.INSPECTION_SCHEDULED)
    with pytest.raises(InvalidField) as info:
        a.record_inspection(OFFICER, now, "passed", None, now + STEP)
    assert info.value.loc == ("body", "inspected_at")
    with pytest.raises(InvalidField, match="predate"):
        a.record_inspection(OFFICER, now, "passed", None, T0 - STEP)
    assert a.status == Status.INSPECTION_SCHEDULED


# ----- 2. events ------------------------------------------------------------------------------

LEGAL = [(i, c, s) for i, c, s in PAIRS if s in TRANSITIONS[i][c]]


@pytest.mark.parametrize(
    ("inspection", "command", "status"), LEGAL, ids=[f"{i}-{c}-{s}" for i, c, s in LEGAL]
)
def test_each_accepted_command_emits_exactly_one_matching_event(
    inspection: bool, command: str, status: Status
) -> None:
    a, now = drive(status, inspection, result=result_for(command, status))
    n = len(a.events)
    run(a, command, now)
    [event] = a.events[n:]
    assert type(event) is EVENT_CLASS[command]
    assert event.status == a.status.value == RESULT[command].value
    assert_identity(event, a)
    assert a.history[-1].at == now and a.history[-1].status == a.status
    # No personal data in any event: only the pseudonymous reference.
    dumped = event.model_dump_json()
    assert NIK not in dumped and NIB not in dumped and "6281234567890" not in dumped


def test_submission_emits_submitted_with_terms_and_deadline() -> None:
    a = submit("pbg", tracking_code="IZN-2608-ABCDEF")
    [event] = a.events
    assert isinstance(event, ev.ApplicationSubmitted)
    assert_identity(event, a)
    assert event.status == "submitted" and event.tracking_code == "IZN-2608-ABCDEF"
    assert event.sla_working_days == 28
    assert event.sla_due == a.clock.due_at
    assert event.inspection_required is True and event.deemed_approval is True
    assert event.details == {"building_function": "hunian", "building_area_m2": 120.0, "floors": 2}
    assert event.documents == [d.code for d in TYPES["pbg"].documents if d.required]
    assert event.dimension == "living"
    assert [(h.action, h.actor) for h in a.history] == [("submitted", "applicant")]


def test_business_licence_events_are_in_the_economy_dimension_with_a_business_applicant() -> None:
    a = submit("izin_usaha")
    assert a.events[0].dimension == "economy"
    assert a.events[0].applicant_kind == "business"
    assert a.applicant.identifier == NIB


def test_documents_incomplete_lists_the_missing_and_resubmission_replaces_them() -> None:
    a = submit("pbg")
    a.return_documents(OFFICER, T0 + STEP, CAL, ["krk", "gambar_struktur", "krk"], "Perbarui KRK")
    event = a.events[-1]
    assert isinstance(event, ev.DocumentsIncomplete)
    assert event.missing == ["krk", "gambar_struktur"]
    assert "Keterangan Rencana Kabupaten" in (a.history[-1].note or "")
    with pytest.raises(InvalidFields) as info:
        a.resubmit(T0 + 2 * STEP, CAL, POLICY, [Document("krk", "dms://krk/2")])
    assert info.value.errors == [(("body", "documents"), "still missing: gambar_struktur")]
    assert a.status == Status.DOCUMENTS_INCOMPLETE
    a.resubmit(T0 + 2 * STEP, CAL, POLICY, [Document("krk", "r2"), Document("gambar_struktur", "s2")])
    assert a.status == Status.SUBMITTED and a.missing_documents == []
    refs = {d.code: d.ref for d in a.documents}
    assert refs["krk"] == "r2" and refs["gambar_struktur"] == "s2" and refs["ktp"] == "dms://ktp/1"
    assert isinstance(a.events[-1], ev.Resubmitted)
    assert a.events[-1].documents == ["krk", "gambar_struktur"]


@pytest.mark.parametrize("missing", [[], ["sertifikat_halal"]])
def test_returning_documents_needs_known_missing_codes(missing: list[str]) -> None:
    a = submit("pbg")
    with pytest.raises(InvalidField) as info:
        a.return_documents(OFFICER, T0 + STEP, CAL, missing, None)
    assert info.value.loc == ("body", "missing")
    assert a.status == Status.SUBMITTED


def test_rejection_needs_a_reason() -> None:
    a = submit("pbg")
    with pytest.raises(InvalidField):
        a.reject(OFFICER, T0 + STEP, CAL, ["  "], None)
    a.reject(OFFICER, T0 + STEP, CAL, ["KRK tidak sesuai"], "Silakan ajukan ulang")
    assert a.events[-1].reasons == ["KRK tidak sesuai"]
    assert a.clock.stopped_at == T0 + STEP


# ----- 3. validation at submission -------------------------------------------------------------


def errors_of(**overrides: Any) -> dict[tuple[Any, ...], str]:
    type_code = overrides.pop("type_code", "izin_usaha")
    with pytest.raises(InvalidFields) as info:
        submit(type_code, **overrides)
    assert info.value.status_code == 422
    return dict(info.value.errors)


@pytest.mark.parametrize(
    ("kbli", "message"),
    [
        ("5610", "exactly 5 digits"),
        ("561011", "exactly 5 digits"),
        ("5610A", "exactly 5 digits"),
        ("99999", "GET /kbli"),
    ],
)
def test_bad_kbli_codes_are_field_errors(kbli: str, message: str) -> None:
    errors = errors_of(details={**DETAILS["izin_usaha"], "kbli": kbli})
    assert message in errors[("body", "details", "kbli")]


def test_every_details_problem_is_reported_at_once() -> None:
    errors = errors_of(
        details={"kbli": "56101", "risk_level": "sangat tinggi", "workers": -1, "colour": "red"}
    )
    assert set(errors) == {
        ("body", "details", "risk_level"),
        ("body", "details", "business_name"),
        ("body", "details", "workers"),
        ("body", "details", "colour"),
    }


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"building_function": "hunian", "building_area_m2": 120}, "floors"),
        ({"building_function": "hunian", "building_area_m2": 120, "floors": 2.5}, "floors"),
        ({"building_function": "hunian", "building_area_m2": "besar", "floors": 2}, "building_area_m2"),
        ({"building_function": "hunian", "building_area_m2": float("nan"), "floors": 2}, "building_area_m2"),
        ({"building_function": "hunian", "building_area_m2": 120, "floors": True}, "floors"),
        ({"building_function": "pabrik", "building_area_m2": 120, "floors": 2}, "building_function"),
    ],
)
def test_pbg_fields_are_checked(details: dict[str, Any], field: str) -> None:
    assert ("body", "details", field) in errors_of(type_code="pbg", details=details)


def test_missing_documents_at_submission_are_listed() -> None:
    docs = [d for d in required_documents(TYPES["pbg"]) if d.code not in ("krk", "gambar_mep")]
    errors = errors_of(type_code="pbg", documents=[*docs, Document("ktp", "again"), Document("foto", "x")])
    assert errors[("body", "documents")] == "required documents missing: krk, gambar_mep"
    assert "twice" in errors[("body", "documents", len(docs), "code")]
    assert "unknown document" in errors[("body", "documents", len(docs) + 1, "code")]


def test_business_licence_needs_a_nib() -> None:
    errors = errors_of(applicant=Applicant(kind="person", name="Budi", nik=NIK, phone="+6281234567890"))
    assert "NIB" in errors[("body", "applicant", "nib")]


def test_choices_are_normalised() -> None:
    a = submit("izin_usaha", details={**DETAILS["izin_usaha"], "risk_level": "Menengah Tinggi"})
    assert a.details["risk_level"] == "menengah_tinggi"


@pytest.mark.parametrize(
    ("risk", "sla_days", "inspection"),
    [("rendah", 1, False), ("menengah_rendah", 3, False), ("menengah_tinggi", 5, True), ("tinggi", 10, True)],
)
def test_oss_rba_risk_level_sets_sla_and_inspection(risk: str, sla_days: int, inspection: bool) -> None:
    a = submit("izin_usaha", details={**DETAILS["izin_usaha"], "risk_level": risk})
    assert (a.terms.sla_days, a.terms.inspection_required, a.terms.deemed_approval) == (
        sla_days,
        inspection,
        True,
    )
    assert a.clock.due_at == end_of_day(nth_working_day_after(CAL, date(2026, 8, 14), sla_days))


# ----- 4. the SLA clock -----------------------------------------------------------------------


def test_pbg_technical_review_is_due_28_working_days_after_submission() -> None:
    a = submit("pbg")
    due = nth_working_day_after(CAL, date(2026, 8, 14), 28)  # skips 17 Aug and 25 Aug
    assert due == date(2026, 9, 25)
    assert a.clock.due_at == end_of_day(due)
    assert a.clock.warn_at == end_of_day(nth_working_day_after(CAL, date(2026, 8, 14), 26))
    assert CAL.working_days_between(T0, a.clock.due_at) == 28


def test_pause_and_resume_across_a_weekend_and_independence_day() -> None:
    a = submit("izin_usaha")  # menengah_rendah: 3 working days
    clock = a.clock
    # Fri 14 Aug 10:00 -> Tue 18, Wed 19, Thu 20 (Mon 17 is Independence Day).
    assert clock.due_at == end_of_day(date(2026, 8, 20))
    # Returned on Tue 18 Aug at 15:00: Tue 18 counts as used, 2 working days remain.
    paused = datetime(2026, 8, 18, 15, 0, tzinfo=WIB)
    a.return_documents(OFFICER, paused, CAL, ["npwp"], None)
    assert clock.paused and not clock.running
    assert clock.consumed_days == 1
    assert clock.remaining_days(paused, CAL) == 2
    assert a.events[-1].sla_remaining_working_days == 2
    assert a.sla_state(paused) == "paused"
    # While paused, nothing is due, however late it gets.
    for later in (clock.due_at, clock.due_at + timedelta(days=30)):
        assert a.check_sla(later, CAL) == []
        assert a.sla_state(later) == "paused"
        assert clock.remaining_days(later, CAL) == 2
    # Resubmitted on Fri 21 Aug: Fri 21 does not count; Mon 24 and (Tue 25 Maulid) Wed 26.
    resumed = datetime(2026, 8, 21, 9, 0, tzinfo=WIB)
    a.resubmit(resumed, CAL, POLICY, [Document("npwp", "dms://npwp/2")])
    assert clock.running
    assert clock.due_at == end_of_day(date(2026, 8, 26))
    assert clock.due_at == end_of_day(nth_working_day_after(CAL, date(2026, 8, 21), 2))
    assert a.events[-1].sla_due == clock.due_at
    assert a.events[-1].sla_remaining_working_days == 2
    # Used days exclude the pause: Tue 18 + Mon 24 by Tuesday the 25th.
    assert clock.used_days(datetime(2026, 8, 25, 12, 0, tzinfo=WIB), CAL) == 2
    a.verify_documents(OFFICER, resumed + STEP)
    decided = datetime(2026, 8, 24, 16, 0, tzinfo=WIB)
    a.approve(OFFICER, decided, CAL, None)
    assert a.processing_days == 2 and a.events[-1].processing_working_days == 2
    assert a.sla_state(decided) == "met"


def test_pausing_twice_accumulates_used_days() -> None:
    a = submit("pbg")
    a.return_documents(
        OFFICER, datetime(2026, 8, 19, 10, 0, tzinfo=WIB), CAL, ["krk"], None
    )  # Tue 18, Wed 19
    a.resubmit(datetime(2026, 8, 24, 10, 0, tzinfo=WIB), CAL, POLICY, [Document("krk", "2")])
    a.return_documents(
        OFFICER, datetime(2026, 8, 27, 10, 0, tzinfo=WIB), CAL, ["krk"], None
    )  # Wed 26, Thu 27
    assert a.clock.consumed_days == 4
    resumed = datetime(2026, 9, 1, 10, 0, tzinfo=WIB)
    a.resubmit(resumed, CAL, POLICY, [Document("krk", "3")])
    assert a.clock.due_at == end_of_day(nth_working_day_after(CAL, date(2026, 9, 1), 24))


def test_paused_on_the_last_day_is_due_at_the_end_of_the_resumption_day() -> None:
    a = submit("izin_usaha")
    last_day = datetime(2026, 8, 20, 16, 0, tzinfo=WIB)  # the due day itself
    a.return_documents(OFFICER, last_day, CAL, ["npwp"], None)
    assert a.clock.remaining_days(last_day, CAL) == 0
    resumed = datetime(2026, 9, 1, 9, 0, tzinfo=WIB)
    a.resubmit(resumed, CAL, POLICY, [Document("npwp", "2")])
    assert a.clock.due_at == end_of_day(date(2026, 9, 1))
    assert a.clock.warn_at < a.clock.due_at


def test_sla_warns_once_then_breaches_once_without_fiktif_positif() -> None:
    a = submit("izin_faskes")  # 14 working days, no deemed approval
    clock = a.clock
    assert a.check_sla(clock.warn_at - MICRO, CAL) == []
    assert a.check_sla(clock.warn_at, CAL) == ["warning"]
    assert isinstance(a.events[-1], ev.SlaWarning)
    assert a.events[-1].remaining_working_days == 2
    assert a.check_sla(clock.warn_at + STEP, CAL) == []
    assert a.check_sla(clock.due_at, CAL) == ["breached"]
    assert isinstance(a.events[-1], ev.SlaBreached) and a.events[-1].due_at == clock.due_at
    assert a.status == Status.SUBMITTED and a.decision is None
    assert a.check_sla(clock.due_at + timedelta(days=30), CAL) == []
    assert [type(e) for e in a.events] == [ev.ApplicationSubmitted, ev.SlaWarning, ev.SlaBreached]
    assert a.sla_state(clock.due_at) == "breached"
    assert len(a.history) == 1  # warnings and breaches record no history


@pytest.mark.parametrize(
    "status", [Status.SUBMITTED, Status.DOCUMENTS_VERIFIED, Status.INSPECTION_SCHEDULED, Status.INSPECTED]
)
def test_fiktif_positif_deems_an_undecided_application_approved_exactly_once(status: Status) -> None:
    a = submit("izin_usaha", details={**DETAILS["izin_usaha"], "risk_level": "tinggi"})  # inspection, 10 days
    now = T0
    for command in PATHS[True][status]:
        now += STEP
        run(a, command, now)
    due = a.clock.due_at
    n = len(a.events)
    assert a.check_sla(due, CAL) == ["breached", "deemed_approved"]
    breach, deemed = a.events[n:]
    assert isinstance(breach, ev.SlaBreached) and breach.status == status.value
    assert isinstance(deemed, ev.DeemedApproved)
    assert deemed.status == "approved" and deemed.due_at == due and deemed.decided_at == due
    assert "UU 11/2020" in deemed.legal_basis
    assert deemed.processing_working_days == 10
    assert a.status == Status.APPROVED and a.decision == "deemed_approved" and a.decided_by == "system"
    assert a.history[-1].action == "deemed_approved"
    for later in (due, due + STEP, due + timedelta(days=365)):
        assert a.check_sla(later, CAL) == []
    assert len(a.events) == n + 2
    # The officer can no longer reject it, and issues it like any approval.
    with pytest.raises(IllegalTransition):
        a.reject(OFFICER, due + STEP, CAL, ["Terlambat"], None)
    a.issue(OFFICER, due + STEP, CAL, 1)
    assert a.permit_number == "503/PB/00001/2026"


def test_a_late_first_check_breaches_and_deems_without_warning() -> None:
    a = submit("pbg")
    late = a.clock.due_at + timedelta(days=3)
    assert a.check_sla(late, CAL) == ["breached", "deemed_approved"]
    assert [type(e) for e in a.events[1:]] == [ev.SlaBreached, ev.DeemedApproved]
    # Approved by law at the end of the period: the working days used are the SLA's.
    assert a.events[-1].processing_working_days == a.processing_days == 28
    assert a.decided_at == late and a.clock.stopped_at == a.clock.due_at


def test_no_fiktif_positif_while_the_documents_are_with_the_applicant() -> None:
    a = submit("izin_usaha")
    a.return_documents(OFFICER, T0 + STEP, CAL, ["npwp"], None)
    assert a.check_sla(a.clock.due_at + timedelta(days=60), CAL) == []
    assert a.status == Status.DOCUMENTS_INCOMPLETE


def test_decided_applications_never_warn_breach_or_deem() -> None:
    for status in (Status.APPROVED, Status.REJECTED, Status.ISSUED):
        a, _ = drive(status, inspection=False)
        n = len(a.events)
        assert a.check_sla(a.clock.due_at + timedelta(days=10), CAL) == []
        assert len(a.events) == n and a.clock.stopped_at is not None


# ----- 5. permit numbers and validity ---------------------------------------------------------


def test_permit_number_format() -> None:
    assert format_permit_number("PBG", 1, 2026) == "503/PBG/00001/2026"
    assert format_permit_number("IOF", 99_999, 2031) == "503/IOF/99999/2031"
    assert parse_permit_number("503/SLF/00042/2027") == ("SLF", 42, 2027)
    for bad in (("pbg", 1, 2026), ("PBG", 0, 2026), ("PBG", 100_000, 2026), ("P", 1, 2026)):
        with pytest.raises(ValueError):
            format_permit_number(*bad)
    for bad_number in ("503/PBG/1/2026", "504/PBG/00001/2026", "503/PBG/00001/26", "503/pbg/00001/2026"):
        with pytest.raises(ValueError):
            parse_permit_number(bad_number)


def test_issue_numbers_by_type_sequence_and_wib_year() -> None:
    a, _ = drive(Status.APPROVED)
    new_year_wib = datetime(2026, 12, 31, 18, 0, tzinfo=UTC)  # 1 Jan 2027, 01:00 WIB
    a.issue(OFFICER, new_year_wib, CAL, 12)
    assert a.permit_number == "503/IOF/00012/2027"
    event = a.events[-1]
    assert isinstance(event, ev.PermitIssued)
    assert event.permit_number == a.permit_number and event.issued_by == OFFICER
    assert event.valid_until == a.valid_until == end_of_day(date(2031, 12, 31))
    assert "503/IOF/00012/2027" in (a.history[-1].note or "")


def test_validity_periods() -> None:
    issued = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
    assert validity_end(issued, 5) == end_of_day(date(2031, 8, 31))
    assert validity_end(datetime(2028, 2, 29, 3, 0, tzinfo=UTC), 1) == end_of_day(date(2029, 2, 28))
    assert validity_end(issued, None) is None
    house = submit("slf", details={**DETAILS["slf"], "building_function": "hunian"})
    assert house.terms.validity_years == 20
    assert submit("slf").terms.validity_years == 5


def test_issue_with_a_shorter_validity_but_never_a_longer_one() -> None:
    a, now = drive(Status.APPROVED)
    with pytest.raises(InvalidField) as info:
        a.issue(OFFICER, now, CAL, 1, date(2040, 1, 1))
    assert info.value.loc == ("body", "valid_until")
    with pytest.raises(InvalidField):
        a.issue(OFFICER, now, CAL, 1, date(2026, 8, 1))
    assert a.status == Status.APPROVED and a.permit_number is None
    a.issue(OFFICER, now, CAL, 1, date(2027, 8, 13))
    assert a.valid_until == end_of_day(date(2027, 8, 13))


def test_pbg_has_no_expiry() -> None:
    a = submit("pbg")
    now = T0
    for command in PATHS[True][Status.ISSUED]:
        now += STEP
        run(a, command, now)
    assert a.valid_until is None and a.remind_at is None
    assert a.check_expiry(now + timedelta(days=365 * 50)) == []
    assert a.status == Status.ISSUED


# ----- 6. expiry and renewal reminders ----------------------------------------------------------


def test_expiring_reminder_then_expired_each_exactly_once() -> None:
    a, now = drive(Status.ISSUED)
    assert a.valid_until is not None and a.remind_at is not None
    # From 00:00 WIB, 90 calendar days before the last day of validity.
    assert a.remind_at == datetime.combine(
        a.valid_until.astimezone(WIB).date() - timedelta(days=90), time.min, tzinfo=WIB
    )
    assert a.check_expiry(now) == []
    assert a.check_expiry(a.remind_at - MICRO) == []
    assert a.check_expiry(a.remind_at) == ["expiring"]
    reminder = a.events[-1]
    assert isinstance(reminder, ev.PermitExpiring)
    assert reminder.days_left == 90 and reminder.valid_until == a.valid_until
    assert reminder.permit_number == a.permit_number
    assert a.check_expiry(a.remind_at + timedelta(hours=23)) == []
    assert a.check_expiry(a.remind_at + timedelta(days=30)) == []
    assert a.check_expiry(a.valid_until - MICRO) == []
    assert a.check_expiry(a.valid_until) == ["expired"]
    assert a.status == Status.EXPIRED
    assert isinstance(a.events[-1], ev.PermitExpired) and a.events[-1].status == "expired"
    assert a.check_expiry(a.valid_until + timedelta(days=400)) == []
    kinds = [type(e) for e in a.events if isinstance(e, ev.PermitExpiring | ev.PermitExpired)]
    assert kinds == [ev.PermitExpiring, ev.PermitExpired]


def test_a_first_check_after_the_end_of_validity_only_expires() -> None:
    a, _ = drive(Status.ISSUED)
    assert a.valid_until is not None
    assert a.check_expiry(a.valid_until + timedelta(days=2)) == ["expired"]
    assert not any(isinstance(e, ev.PermitExpiring) for e in a.events)


def test_revoked_permits_do_not_expire() -> None:
    a, _ = drive(Status.REVOKED)
    assert a.check_expiry(datetime(2040, 1, 1, tzinfo=UTC)) == []
    assert a.status == Status.REVOKED


# ----- 7. tracking codes ----------------------------------------------------------------------

TRACKING_CODE = re.compile(r"^IZN-\d{4}(-[0-9A-HJKMNP-TV-Z]{4}){2}-[0-9A-HJKMNP-TV-Z]{5}$")


@pytest.mark.parametrize(
    ("now", "yymm"),
    [
        (T0, "2608"),
        (datetime(2026, 12, 31, 18, 0, tzinfo=UTC), "2701"),
        (datetime(2031, 1, 2, 9, tzinfo=WIB), "3101"),
    ],
)
def test_tracking_code_format_and_wib_month(now: datetime, yymm: str) -> None:
    codes = {new_tracking_code(now) for _ in range(200)}
    assert len(codes) > 190
    for code in codes:
        assert TRACKING_CODE.match(code), code
        assert code[4:8] == yymm


def test_each_field_publishes_the_bounds_a_form_can_check_before_sending() -> None:
    """What GET /permit-types tells a form: a number's least and most, a text's length;
    a value the bounds refuse is refused by the service too."""
    pbg = CATALOGUE.permit_types["pbg"]
    floors = next(f for f in pbg.fields if f.name == "floors")
    assert floors.limits() == {"minimum": 1, "maximum": 100}
    with pytest.raises(ValueError, match="at least 1"):
        floors.parse(floors.limits()["minimum"] - 1, {})
    business = next(f for f in CATALOGUE.permit_types["izin_usaha"].fields if f.kind == "text")
    assert business.limits() == {"max_length": business.max_length}
    choice = next(f for f in pbg.fields if f.kind == "choice")
    assert choice.limits() == {}
