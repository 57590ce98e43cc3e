"""Unit tests of the integration view's pure parts: projections and their merging,
indicator functions, masterplan loading and validation, masking, periods, language."""

from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.integration import domain
from services.integration.domain import Item, Projection, merge_item, merge_notification
from services.integration.i18n import MESSAGES, translator
from services.integration.indicators import FUNCTIONS, BedParams, DurationParams, EventFilter, ItemFilter
from services.integration.masterplan import (
    DEFAULT_PATH,
    KOMINFO_PATH,
    MasterplanError,
    load_masterplan,
    parse_masterplan,
)
from services.integration.repository import INDICATOR_QUERIES, indicator_query
from shared.kit.i18n import choose_language
from shared.kit.privacy import citizen_ref
from shared.schemas import EVENT_TYPES, EventData
from shared.schemas.registry import DOMAINS
from tests.events import permit_fields

JAKARTA = ZoneInfo("Asia/Jakarta")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 08:00 in Purworejo
REF = "cr1_" + "ab" * 16
CONTACT = "ct1_" + "cd" * 16
C = "id.sinergi.complaints.complaint."
P = "id.sinergi.permits.application."
H = "id.sinergi.health.appointment."
N = "id.sinergi.notifications.notification."


def _sample(annotation: Any, at: datetime) -> Any:
    """A valid value of a required field a test does not care about."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)[0]
    if get_origin(annotation) is list:
        return ["x"]
    return {datetime: at, int: 1, bool: False, str: "x"}[annotation]


def contract(event_type: str, data: dict[str, Any], at: datetime) -> EventData:
    """The payload as the kit hands it over: its contract's model (a type this view does
    not know: the base model, fields kept as extras), the required fields the test leaves
    out filled in."""
    model = EVENT_TYPES.get(event_type, EventData)
    missing = {
        name: _sample(f.annotation, at)
        for name, f in model.model_fields.items()
        if f.is_required() and name not in data
    }
    return model.model_validate({**missing, **data})


def project(*, event_id: str, event_type: str, time: datetime, subject: str, data: Any) -> Projection | None:
    """`domain.project` of an event written as a dict (or already a model)."""
    if not isinstance(data, EventData):
        data = contract(event_type, data, time)
    return domain.project(event_id=event_id, event_type=event_type, time=time, subject=subject, data=data)


def complaint(action: str, status: str, minutes: int, **extra: Any) -> dict[str, Any]:
    data = {
        "complaint_id": "c-1",
        "tracking_code": "ADU-2603-ABCDEF",
        "status": status,
        "kind": "pengaduan",
        "category": "jalan_rusak",
        "dimension": "mobility",
        "opd": None,
        "desa_code": "33.06.01.2001",
        "kecamatan_code": "33.06.01",
        "citizen_ref": REF,
        **extra,
    }
    return {
        "event_id": f"e-{action}-{minutes:04d}",
        "event_type": f"{C}{action}.v1",
        "time": T0 + timedelta(minutes=minutes),
        "subject": "c-1",
        "data": data,
    }


COMPLAINT_LIFE = [
    complaint("filed", "submitted", 0, title="Jalan berlubang", filed_at=T0, contact_ref=CONTACT),
    complaint("verified", "verified", 10),
    complaint("dispatched", "dispatched", 20, opd="DPUPR"),
    complaint("sla_breached", "dispatched", 30, opd="DPUPR", clock="followup"),
    complaint("progress_updated", "in_progress", 40, opd="DPUPR"),
    complaint("resolved", "resolved", 50, opd="DPUPR"),
    complaint("rated", "closed", 60, opd="DPUPR", rating=5),
]


def fold(events: list[dict[str, Any]]) -> Item | None:
    item = None
    for event in events:
        projection = project(**event)
        assert projection is not None and projection.item is not None
        item = merge_item(item, projection.item)
    return item


# ----- projections ---------------------------------------------------------------------


def test_a_complaint_life_projects_to_its_current_state() -> None:
    item = fold(COMPLAINT_LIFE)
    assert item is not None
    assert (item.code, item.domain, item.status, item.phase) == (
        "ADU-2603-ABCDEF",
        "complaints",
        "closed",
        "done",
    )
    assert item.opd == "DPUPR" and item.category == "jalan_rusak" and item.dimension == "mobility"
    assert item.title == "Jalan berlubang" and item.citizen_ref == REF and item.contact_ref == CONTACT
    assert item.opened_at == T0
    assert item.done_at == T0 + timedelta(minutes=50)  # resolution, not the rating
    assert item.sla_breaches == 1
    assert item.last_event_id == "e-rated-0060"


def test_projection_is_independent_of_arrival_order() -> None:
    expected = fold(COMPLAINT_LIFE)
    for order in itertools.permutations(COMPLAINT_LIFE[:6]):
        assert fold([*order, COMPLAINT_LIFE[6]]) == expected
    rng = random.Random(7)
    for _ in range(200):
        shuffled = COMPLAINT_LIFE[:]
        rng.shuffle(shuffled)
        assert fold(shuffled) == expected


def test_an_older_event_does_not_overwrite_a_newer_state() -> None:
    item = fold([COMPLAINT_LIFE[5], COMPLAINT_LIFE[1]])  # resolved, then a late "verified"
    assert item is not None and item.status == "resolved" and item.phase == "done"
    # ... but what it says about the past still counts (earliest time seen).
    assert item.opened_at == T0 + timedelta(minutes=10)
    # Equal event times: the event id decides, the same way in both orders.
    a = complaint("verified", "verified", 5)
    b = complaint("rejected", "rejected", 5, reason_code="spam")
    assert fold([a, b]) == fold([b, a])


def test_reopened_complaint_is_open_again_and_keeps_latest_resolution() -> None:
    events = [
        *COMPLAINT_LIFE[:6],
        complaint("reopened", "in_progress", 70, opd="DPUPR"),
        complaint("resolved", "resolved", 80, opd="DPUPR"),
    ]
    item = fold(events[:7])
    assert item is not None and item.phase == "open"
    item = fold(events)
    assert item is not None and item.phase == "done" and item.done_at == T0 + timedelta(minutes=80)


# A complaint's possible events (action, status, extra fields) for generated histories.
ACTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("filed", "submitted", {"title": "Jalan berlubang"}),
    ("verified", "verified", {}),
    ("dispatched", "dispatched", {"opd": "DPUPR"}),
    ("sla_breached", "dispatched", {"opd": "DPUPR", "clock": "followup"}),
    ("resolved", "resolved", {"opd": "DPUPR"}),
    ("reopened", "in_progress", {"opd": "DLH"}),
    ("rated", "closed", {"rating": 4}),
]


@st.composite
def complaint_facts(draw: st.DrawFn) -> list[Item]:
    """What several events say about one complaint: any actions, times and order; some
    without the citizen reference (after the complaints service erased it)."""
    facts = []
    chosen = st.tuples(st.integers(0, len(ACTIONS) - 1), st.integers(0, 120), st.booleans())
    for i, (a, minutes, with_ref) in enumerate(draw(st.lists(chosen, min_size=1, max_size=12))):
        action, status, extra = ACTIONS[a]
        event = complaint(action, status, minutes, **extra)
        if action == "filed":
            event["data"]["filed_at"] = event["time"]
        elif not with_ref:
            event["data"]["citizen_ref"] = None
        event["event_id"] = f"e-{i:03d}"  # event ids are unique
        projection = project(**event)
        assert projection is not None and projection.item is not None
        facts.append(projection.item)
    return facts


@settings(deadline=None)
@given(facts=complaint_facts(), data=st.data())
def test_folding_a_batch_equals_merging_one_by_one_in_any_order(
    facts: list[Item], data: st.DataObject
) -> None:
    one_by_one = None
    for fact in facts:
        one_by_one = merge_item(one_by_one, fact)
    shuffled = data.draw(st.permutations(facts))
    assert domain.fold_item(None, shuffled) == one_by_one
    # A batch folds into the row earlier batches left.
    split = data.draw(st.integers(0, len(facts)))
    assert domain.fold_item(domain.fold_item(None, shuffled[:split]), shuffled[split:]) == one_by_one
    assert domain.fold_item(one_by_one, []) == one_by_one


@settings(deadline=None)
@given(facts=complaint_facts(), erased_minutes=st.integers(-10, 130), data=st.data())
def test_scrubbing_once_after_a_fold_equals_scrubbing_after_every_merge(
    facts: list[Item], erased_minutes: int, data: st.DataObject
) -> None:
    """The batch path scrubs the folded row once; one by one scrubs after every merge."""
    until = T0 + timedelta(minutes=erased_minutes)
    stepwise = None
    for fact in data.draw(st.permutations(facts)):
        stepwise = domain.scrub_item(merge_item(stepwise, fact), until)
    folded = domain.fold_item(None, facts)
    assert folded is not None
    assert domain.scrub_item(folded, until) == stepwise


def note(i: int, action: str, status: str, minutes: int, **extra: Any) -> domain.Notification:
    """What one event about notification n-1 says; its history entry names the item the
    notification is about."""
    p = project(
        event_id=f"n-{i}",
        event_type=f"{N}{action}.v1",
        time=T0 + timedelta(minutes=minutes),
        subject="n-1",
        data={"notification_id": "n-1", "citizen_ref": REF, "channel": "sms", "status": status, **extra},
    )
    assert p is not None and p.notification is not None
    assert p.history.code == extra.get("tracking_code")
    return p.notification


def test_folding_notifications_equals_merging_one_by_one() -> None:
    facts = [
        note(0, "created", "created", 0),
        note(1, "sending", "sending", 1),
        note(2, "temporary_failure", "temporary-failure", 2),
        note(3, "sending", "sending", 3),
        note(4, "delivered", "delivered", 4),
    ]
    one_by_one = None
    for fact in facts:
        one_by_one = merge_notification(one_by_one, fact)
    for order in itertools.permutations(facts):
        assert domain.fold_notification(None, order) == one_by_one
        assert domain.fold_notification(domain.fold_notification(None, order[:2]), order[2:]) == one_by_one


def test_confidential_complaint_never_keeps_a_title_and_a_nik_never_becomes_a_reference() -> None:
    filed = complaint("filed", "submitted", 0, title="Rahasia", confidential=True)
    # The contract refuses a NIK as a reference; one that slipped past it anyway:
    slipped = contract(filed["event_type"], filed["data"], filed["time"])
    filed["data"] = slipped.model_copy(update={"citizen_ref": "3306061708900001"})
    projection = project(**filed)
    assert projection is not None and projection.item is not None
    assert projection.item.title is None and projection.item.confidential
    assert projection.item.citizen_ref is None and projection.history.citizen_ref is None
    # Confidentiality sticks even when a later event arrives first without the flag.
    later = complaint("verified", "verified", 5)
    item = fold([later, {**filed, "data": filed["data"].model_copy(update={"title": "Rahasia"})}])
    assert item is not None and item.confidential and item.title is None


def permit(event_id: str, action: str, status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    """One event of the application IZN-2603-QWERTY, as `project` takes it."""
    return {
        "event_id": event_id,
        "event_type": f"{P}{action}.v1",
        "time": at,
        "subject": "a-1",
        "data": {**permit_fields("a-1", "IZN-2603-QWERTY", REF), "status": status, **extra},
    }


def test_permit_decision_time_and_phases() -> None:
    submitted = permit("p1", "submitted", "submitted", T0, submitted_at=T0 - timedelta(minutes=1))
    approved = permit("p2", "approved", "approved", T0 + timedelta(days=2), decided_at=T0 + timedelta(days=1))
    issued = permit("p3", "issued", "issued", T0 + timedelta(days=3), permit_number="503/PB/00001/2026")
    item = fold([issued, submitted, approved])
    assert item is not None
    assert (item.status, item.phase, item.category, item.kind) == ("issued", "done", "izin_usaha", "business")
    assert item.opened_at == T0 - timedelta(minutes=1) and item.done_at == T0 + timedelta(days=1)
    history = project(**issued)
    assert history is not None and history.history.detail == {"permit_number": "503/PB/00001/2026"}


def appointment(action: str, status: str, minutes: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"h-{minutes:04d}",
        "event_type": f"{H}{action}.v1",
        "time": T0 + timedelta(minutes=minutes),
        "subject": "ap-1",
        "data": {
            "appointment_id": "ap-1",
            "booking_code": "KES-2603-ZXCVBN",
            "status": status,
            "facility": "RSUD-TJITRO",
            "polyclinic": "INT",
            "date": date(2026, 3, 2),
            "queue_number": 3,
            "queue_code": "A-003",
            "payment": "jkn",
            "kecamatan_code": "33.06.06",
            "citizen_ref": REF,
            **extra,
        },
    }


def test_appointment_wait_is_check_in_to_call() -> None:
    item = fold(
        [
            appointment("called", "in_service", 50, called_at=T0 + timedelta(minutes=50)),
            appointment("booked", "booked", 0, booked_at=T0),
            appointment("checked_in", "checked_in", 20, checked_in_at=T0 + timedelta(minutes=20)),
        ]
    )
    assert item is not None and item.domain == "health" and item.category == "INT" and item.opd is None
    assert item.wait_ended_at - item.wait_started_at == timedelta(minutes=30)  # type: ignore[operator]
    assert item.facility == "RSUD-TJITRO" and item.phase == "open"


def test_the_contact_reference_comes_from_the_starting_event_of_each_domain() -> None:
    submitted = permit("p1", "submitted", "submitted", T0, submitted_at=T0, contact_ref=CONTACT)
    verified = permit("p2", "documents_verified", "documents_verified", T0 + timedelta(hours=1))
    for order in ([submitted, verified], [verified, submitted]):
        item = fold(order)
        assert item is not None and item.contact_ref == CONTACT
    booked = appointment("booked", "booked", 0, booked_at=T0, contact_ref=CONTACT)
    checked_in = appointment("checked_in", "checked_in", 20, checked_in_at=T0 + timedelta(minutes=20))
    item = fold([checked_in, booked])
    assert item is not None and item.contact_ref == CONTACT
    # A booking of an older producer carries none; a contact in clear is never kept.
    assert fold([appointment("booked", "booked", 0, booked_at=T0)]).contact_ref is None  # type: ignore[union-attr]
    clear = complaint("filed", "submitted", 0, filed_at=T0, contact_ref="warga@example.com")
    assert fold([clear]).contact_ref is None  # type: ignore[union-attr]


def test_ward_and_notification_events() -> None:
    ward = project(
        event_id="w1",
        event_type="id.sinergi.health.ward.bed_availability_changed.v1",
        time=T0,
        subject="ward-1",
        data={
            "ward_id": "ward-1",
            "facility": "RSUD-TJITRO",
            "ward": "MAWAR",
            "name": "Bangsal Mawar",
            "kecamatan_code": "33.06.06",
            "total": 40,
            "occupied": 35,
            "available": 5,
        },
    )
    assert ward is not None and ward.item is None
    assert ward.history.code == "RSUD-TJITRO/MAWAR" and ward.history.detail["available"] == 5

    about = {
        "tracking_code": "ADU-2603-ABCDEF",
        "recipient_kind": "citizen",
        "template": "id/complaints/filed.sms.j2",
    }
    facts = [
        note(0, "created", "created", 0, **about),
        note(1, "sending", "sending", 1, **about),
        note(2, "delivered", "delivered", 2, **about),
    ]
    for order in itertools.permutations(facts):
        merged = None
        for f in order:
            merged = merge_notification(merged, f)
        assert merged is not None and merged.status == "delivered"
        assert merged.delivered_at == T0 + timedelta(minutes=2) and merged.first_at == T0


def test_the_case_history_is_the_steps_of_the_case_not_its_messages_or_clocks() -> None:
    """A complaint's life with an SMS created, sending and delivered after each step (to
    the citizen and to the OPD) and an SLA breach: the citizen reads one line per step."""
    entries = []
    for i, event in enumerate(COMPLAINT_LIFE):
        step = project(**event)
        assert step is not None
        entries.append(dataclasses.asdict(step.history))
        for n, status in enumerate(("created", "sending", "delivered")):
            for recipient in ("citizen", "opd"):
                sent = project(
                    event_id=f"n-{i}-{n}-{recipient}",
                    event_type=f"{N}{status}.v1",
                    time=step.history.at + timedelta(seconds=n + 1),
                    subject=f"n-{i}-{recipient}",
                    data={
                        "notification_id": f"n-{i}-{recipient}",
                        "tracking_code": "ADU-2603-ABCDEF",
                        "recipient_kind": recipient,
                        "channel": "sms",
                        "status": status,
                    },
                )
                assert sent is not None
                entries.append(dataclasses.asdict(sent.history))
    steps = domain.case_history("complaints", entries)
    assert [s["action"] for s in steps] == [
        "filed",
        "verified",
        "dispatched",
        "progress_updated",
        "resolved",
        "rated",
    ]
    # An appointment: the queue's internal tasks are not steps; a permit: nor its SLA clocks.
    queue = [{"domain": "health", "action": a} for a in ("booked", "queue_task_changed", "called", "served")]
    assert [s["action"] for s in domain.case_history("health", queue)] == ["booked", "called", "served"]
    permit = [{"domain": "permits", "action": a} for a in ("submitted", "sla_warning", "issued")]
    assert [s["action"] for s in domain.case_history("permits", permit)] == ["submitted", "issued"]


def test_every_step_of_a_case_has_the_citizens_words_in_both_languages() -> None:
    cases = {"complaints": "complaint", "permits": "application", "health": "appointment"}
    assert set(cases) == set(domain.INTERNAL_STEPS)
    for name, aggregate in cases.items():
        kinds = [domain.parse_type(t) for t in DOMAINS[name].events]
        actions = {k.action for k in kinds if k.aggregate == aggregate}
        for action in actions - domain.INTERNAL_STEPS[name]:
            assert f"case.{name}.{action}" in MESSAGES["id"], (name, action)
            assert f"case.{name}.{action}" in MESSAGES["en"], (name, action)
    with pytest.raises(ValueError, match="not actions of permits"):
        domain._internal("permits", "queue_task_changed")


def test_an_erasure_keeps_no_reference_and_scrubs_what_came_before_it() -> None:
    erasure = project(
        event_id="z1",
        event_type="id.sinergi.privacy.citizen.erased.v1",
        time=T0 + timedelta(hours=2),
        subject=REF,
        data={
            "citizen_ref": REF,
            "service": "complaints",
            "erased_at": T0 + timedelta(hours=1),
            "records": {},
        },
    )
    assert erasure is not None and erasure.erasure is not None
    assert erasure.history.citizen_ref is None and erasure.history.domain == "privacy"
    assert erasure.erasure.erased_at == T0 + timedelta(hours=2)  # never before its own event
    until = erasure.erasure.erased_at

    before = fold(COMPLAINT_LIFE)
    assert before is not None
    scrubbed = domain.scrub_item(before, until)
    assert scrubbed.citizen_ref is None and scrubbed.title is None and scrubbed.status == "closed"
    assert scrubbed.contact_ref is None  # "layanan saya" no longer finds it either
    later = replace(before, opened_at=until + timedelta(seconds=1))
    assert domain.scrub_item(later, until) == later  # activity after the erasure stays
    assert domain.scrub_item(before, None) == before
    # Re-merging an old event into a scrubbed item brings the reference back only
    # until the same rule scrubs it again: the result does not depend on order.
    again = merge_item(scrubbed, project(**COMPLAINT_LIFE[0]).item)  # type: ignore[arg-type]
    assert again.citizen_ref == REF and domain.scrub_item(again, until) == scrubbed
    assert domain.erased(T0, until) and not domain.erased(until + timedelta(seconds=1), until)


def test_unknown_types_are_ignored_or_kept_generically() -> None:
    assert project(event_id="x", event_type="com.example.thing", time=T0, subject="s", data={}) is None
    other = project(
        event_id="x",
        event_type="id.sinergi.parking.ticket.paid.v1",
        time=T0,
        subject="s",
        data={"tracking_code": "PRK-1", "status": "paid", "citizen_ref": REF},
    )
    assert other is not None and other.item is None and other.history.domain == "parking"


# ----- masking ---------------------------------------------------------------------------


def test_masking_for_the_public_feed() -> None:
    assert domain.mask_code("ADU-2611-N9A7JV") == "ADU-2611-••••JV"
    assert domain.mask_code("ADU-2611-DQKV-NZY8-YPGF6") == "ADU-2611-••••-••••-•••F6"
    assert domain.mask_code("IZN-ABCDEF") == "IZN-••••EF"
    assert domain.mask_code("ABC") == "•••"
    row = {
        "seq": 4,
        "at": T0,
        "domain": "complaints",
        "aggregate": "complaint",
        "action": "filed",
        "status": "submitted",
        "code": "ADU-2611-N9A7JV",
        "category": "sampah",
        "opd": None,
        "kecamatan_code": "33.06.01",
        "confidential": False,
        "item_confidential": True,
        "title": "Nama saya Budi, rumah saya ...",
        "citizen_ref": REF,
        "detail": {"clock": "followup", "rating": 5},
    }
    entry = domain.public_feed_entry(row)
    assert entry["title"] is None and entry["code"] == "ADU-2611-••••JV"
    assert "citizen_ref" not in entry and REF not in repr(entry)
    assert entry["detail"] == {"clock": "followup"}
    open_row = {**row, "item_confidential": False, "item_status": "verified", "title": "Lampu jalan mati"}
    assert domain.public_feed_entry(open_row)["title"] == "Lampu jalan mati"
    # Nobody has read it yet, or it was spam or a duplicate: no title in public.
    for unseen in ("submitted", "rejected", "merged"):
        assert domain.public_feed_entry({**open_row, "item_status": unseen})["title"] is None
    ward = domain.public_feed_entry({**row, "aggregate": "ward", "code": "RSUD-TJITRO/MAWAR"})
    assert ward["code"] == "RSUD-TJITRO/MAWAR"


# ----- periods, targets, charts ----------------------------------------------------------


def test_reporting_windows_follow_local_time() -> None:
    now = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)  # 1 April 01:00 in Purworejo
    (month,) = domain.windows("month", now, JAKARTA)
    assert month.start == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)  # 1 April 00:00 WIB
    assert month.label == "04/2026" and month.as_of == now
    months = domain.windows("month", now, JAKARTA, 3)
    assert [w.label for w in months] == ["02/2026", "03/2026", "04/2026"]
    assert months[0].end == months[1].start and months[0].as_of == months[0].end
    weeks = domain.windows("week", datetime(2026, 3, 4, 3, tzinfo=UTC), JAKARTA, 2)
    assert weeks[-1].start.astimezone(JAKARTA).weekday() == 0  # Monday
    assert weeks[-1].start - weeks[0].start == timedelta(days=7)
    years = domain.windows("year", now, JAKARTA, 2)
    assert [w.label for w in years] == ["2025", "2026"]
    quarter = domain.windows("quarter", now, JAKARTA)[0]
    assert quarter.label == "Q2 2026"


def test_assessment_and_attainment() -> None:
    assert domain.assess(0.85, 0.8, "higher") == "met"
    assert domain.assess(0.7, 0.8, "higher") == "not_met"
    assert domain.assess(12, 15, "lower") == "met"
    assert domain.assess(None, 15, "lower") == "no_data"
    assert domain.attainment(0.4, 0.8, "higher") == 0.5
    assert domain.attainment(30, 15, "lower") == 0.5
    assert domain.attainment(3, 15, "lower") == 1.0
    assert domain.ratio(1, 0) is None and domain.ratio(1, 4) == 0.25


def test_sparkline_and_shading() -> None:
    s = domain.sparkline([0.0, None, 1.0], target=0.5, width=100, height=40, pad=0)
    assert [x for x, _ in s.points] == [0.0, 100.0]  # the missing period leaves a gap
    top_y = s.points[1][1]
    assert s.points[0][1] == 40.0 and top_y < s.target_y < 40.0  # type: ignore[operator]
    assert domain.shade(0, 10) == 0 and domain.shade(10, 10) == 4 and domain.shade(1, 10) == 1
    assert len({domain.grid_position(f"33.06.{n:02d}", n) for n in range(1, 17)}) == 16


def test_language_choice() -> None:
    assert choose_language(None, None) == "id"
    assert choose_language("en", "id") == "en"
    assert choose_language(None, "en-GB,en;q=0.9") == "en"
    assert choose_language(None, "fr, en;q=0.5, id;q=0.8") == "id"
    assert choose_language("xx", "de") == "id"


def test_officer_lookup_by_reference_or_nik() -> None:
    key = "test-key"
    assert domain.lookup_ref(REF, key) == REF
    assert domain.lookup_ref(" 3306061708900001 ", key) == citizen_ref("3306061708900001", key)
    for bad in ("cr1_xyz", "3306063208900001", "12345"):
        with pytest.raises(domain.NotACitizenReference):
            domain.lookup_ref(bad, key)


# ----- indicator functions ---------------------------------------------------------------


WINDOW = domain.Window(T0, T0 + timedelta(days=30), T0 + timedelta(days=3), "03/2026")


def test_every_indicator_function_has_its_query() -> None:
    assert set(INDICATOR_QUERIES) == set(FUNCTIONS)


def test_indicator_queries_filter_by_their_parameters() -> None:
    share = FUNCTIONS["share_within_sla"]
    q = indicator_query(
        share.name, ItemFilter(domains=["complaints"], categories=["sampah", "banjir_drainase"]), WINDOW
    )
    assert "domain = ANY($3)" in q.sql and "category = ANY($4)" in q.sql
    assert q.args == [WINDOW.start, WINDOW.end, ["complaints"], ["sampah", "banjir_drainase"]]
    assert share.value(ItemFilter(), {"done": 4, "within": 3}) == 0.75
    assert share.value(ItemFilter(), {"done": 0, "within": 0}) is None

    opened = indicator_query("open_items", ItemFilter(opds=["DLH"]), WINDOW)
    assert opened.args[0] == WINDOW.as_of and "opd = ANY($2)" in opened.sql

    count = FUNCTIONS["count_events"]
    q = indicator_query(count.name, EventFilter(actions=["issued"], categories=["izin_usaha"]), WINDOW)
    assert q.args[2:] == [["issued"], ["izin_usaha"]] and "action = ANY($3)" in q.sql
    both = indicator_query(
        count.name, EventFilter(actions=["issued"], event_types=[f"{P}deemed_approved.v1"]), WINDOW
    )
    assert "(event_type = ANY($3) OR action = ANY($4))" in both.sql


def test_indicator_values_and_units() -> None:
    median = FUNCTIONS["median_duration"]
    wait = DurationParams(domains=["health"], measure="wait", unit="minutes")
    assert "wait_ended_at - wait_started_at" in indicator_query(median.name, wait, WINDOW).sql
    assert median.value(wait, {"seconds": 1800.0, "n": 3}) == 30.0
    assert median.value(DurationParams(unit="days"), {"seconds": 172800.0, "n": 1}) == 2.0
    assert median.value(wait, {"seconds": None, "n": 0}) is None
    assert median.unit(wait) == "minutes"

    beds = FUNCTIONS["bed_availability"]
    assert beds.value(BedParams(), {"available": 10, "total": 40, "wards": 2}) == 0.25
    assert beds.value(BedParams(output="count"), {"available": 10, "total": 40, "wards": 2}) == 10
    assert beds.value(BedParams(), {"available": 0, "total": 0, "wards": 0}) is None
    q = indicator_query(beds.name, BedParams(facilities=["RSUD-TJITRO"]), WINDOW)
    assert q.args == [WINDOW.as_of, ["RSUD-TJITRO"]]

    reach = FUNCTIONS["notification_reach"]
    params = reach.params_model.model_validate({"channels": ["sms"]})
    assert indicator_query(reach.name, params, WINDOW).args[2:] == [["sms"], ["citizen"]]
    assert reach.value(params, {"sent": 4, "delivered": 3}) == 0.75


# ----- masterplan ------------------------------------------------------------------------


def raw_plan(path: Path = DEFAULT_PATH) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("path", "dimensions"),
    [
        (DEFAULT_PATH, ["governance", "economy", "mobility", "environment", "people", "living"]),
        (KOMINFO_PATH, ["governance", "branding", "economy", "living", "society", "environment"]),
    ],
    ids=["seed", "kominfo"],
)
def test_shipped_masterplans_load(path: Path, dimensions: list[str]) -> None:
    plan = load_masterplan(path)
    assert [d.code for d in plan.dimensions] == dimensions
    assert {i.dimension for i in plan.indicators} == {d.code for d in plan.dimensions}
    assert all(p.rpjmd and p.apbd for p in plan.programmes)
    sla = next(i for i in plan.indicators if i.code == "complaints_within_sla")
    assert sla.function.name == "share_within_sla" and sla.unit == "ratio" and sla.target == 0.8


def test_dimensions_default_to_the_seeds_six() -> None:
    raw = raw_plan()
    del raw["dimensions"]
    plan = parse_masterplan(raw)
    assert [d.code for d in plan.dimensions][:3] == ["governance", "economy", "mobility"]


def test_unknown_dimension_in_an_indicator_is_a_clear_error() -> None:
    raw = raw_plan()
    raw["programmes"][0]["indicators"][0]["dimension"] = "branding"
    with pytest.raises(MasterplanError) as caught:
        parse_masterplan(raw, source="masterplan.yaml")
    message = str(caught.value)
    assert "programmes[0] (TK-01).indicators[0] (complaints_within_sla).dimension" in message
    assert "unknown dimension 'branding'" in message
    assert "governance, economy, mobility, environment, people, living" in message


def test_masterplan_mistakes_are_all_reported() -> None:
    raw = raw_plan()
    raw["programmes"][1]["dimension"] = "smart_branding"
    raw["programmes"][2]["indicators"][0]["function"] = "magic"
    raw["programmes"][3]["indicators"][0]["params"]["colour"] = "red"
    raw["programmes"][0]["indicators"][0]["target"] = 80
    raw["programmes"][4]["code"] = raw["programmes"][5]["code"]
    with pytest.raises(MasterplanError) as caught:
        parse_masterplan(raw)
    problems = caught.value.problems
    assert any("unknown dimension 'smart_branding'" in p for p in problems)
    assert any("unknown indicator function 'magic'" in p and "share_within_sla" in p for p in problems)
    assert any("params.colour" in p for p in problems)
    assert any("0.8 for 80%" in p for p in problems)
    assert any("listed twice" in p for p in problems)


def test_masterplan_schema_errors_name_the_place(tmp_path: Path) -> None:
    raw = raw_plan()
    raw["programmes"][0]["indicators"][0]["direction"] = "up"
    raw["programmes"][0]["rpjmd"] = ""
    with pytest.raises(MasterplanError) as caught:
        parse_masterplan(raw)
    assert any(p.startswith("programmes[0].indicators[0].direction") for p in caught.value.problems)
    assert any(p.startswith("programmes[0].rpjmd") for p in caught.value.problems)
    broken = tmp_path / "plan.yaml"
    broken.write_text("name: [unclosed")
    with pytest.raises(MasterplanError, match="not valid YAML"):
        load_masterplan(broken)
    with pytest.raises(MasterplanError, match="file not found"):
        load_masterplan(tmp_path / "missing.yaml")


# ----- messages --------------------------------------------------------------------------


def test_both_languages_have_every_message() -> None:
    assert set(MESSAGES["id"]) == set(MESSAGES["en"])
    t = translator("en")
    assert t("nav.dashboard") == "Dashboard"
    assert translator("id")("track.not_found", code="X").startswith("Kode X")
    assert t("action.some_new_action") == "Some new action"
