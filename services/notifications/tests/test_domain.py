"""The notification domain without I/O: lifecycle, retries, rate limits, quiet hours,
rules, template choice and rendering, phone normalisation."""

from __future__ import annotations

import itertools
import types
import typing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from services.notifications.domain import (
    WIB,
    Contact,
    Notification,
    Outcome,
    Plan,
    Preferences,
    QuietHours,
    RetryPolicy,
    Rule,
    RuleError,
    SendResult,
    Skip,
    Status,
    TokenBucket,
    can_transition,
    choose_template,
    parse_recipients,
    parse_rules,
    plan_delivery,
    template_candidates,
)
from services.notifications.rules import RuleBook
from services.notifications.templates import RenderError, TemplateStore
from shared.kit.errors import IllegalTransition
from shared.reference import InvalidPhone, normalize_mobile
from shared.schemas import EVENT_TYPES

HERE = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)  # 10:00 WIB, a Monday


def notification(**overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "source_event_id": "e1",
        "source_event_type": "id.sinergi.complaints.complaint.filed.v1",
        "event_time": NOW,
        "rule_id": "complaint-filed",
        "recipient_kind": "citizen",
        "recipient_key": "cr1_" + "a" * 32,
        "channel": "email",
        "locale": "id",
        "template_name": "complaints/filed",
        "template": "complaints/filed",
        "due_at": NOW,
        "max_attempts": 3,
    }
    fields.update(overrides)
    return Notification.create(now=NOW, **fields)


POLICY = RetryPolicy(max_attempts=3, base_seconds=10, factor=2, cap_seconds=3600)
TEMPORARY = SendResult(Outcome.TEMPORARY, "gateway answered 500")


# ----- lifecycle -------------------------------------------------------------------------------


def test_a_delivered_notification_went_created_sending_delivered() -> None:
    n = notification()
    n.start_sending(NOW, timedelta(seconds=60))
    n.record(SendResult(Outcome.DELIVERED, provider_ref="fake-1"), NOW + timedelta(seconds=1), POLICY)
    assert [h.status for h in n.history] == [Status.CREATED, Status.SENDING, Status.DELIVERED]
    assert n.status == Status.DELIVERED and n.attempt == 1 and n.provider_ref == "fake-1"
    assert n.lease_until is None and n.delivered_at == NOW + timedelta(seconds=1)


def test_temporary_failures_are_retried_then_given_up_as_permanent() -> None:
    n = notification()
    statuses = []
    for _ in range(3):
        n.start_sending(n.due_at, timedelta(seconds=60))
        n.record(TEMPORARY, n.due_at, POLICY)
        statuses.append(n.status)
    assert statuses == [Status.TEMPORARY_FAILURE, Status.TEMPORARY_FAILURE, Status.PERMANENT_FAILURE]
    assert n.attempt == 3
    assert n.last_error == "gave up after 3 attempts: gateway answered 500"
    # The retries were scheduled with the backoff: +10 s, then +20 s.
    retries = [h.next_attempt_at - h.at for h in n.history if h.status == Status.TEMPORARY_FAILURE]
    assert retries == [timedelta(seconds=10), timedelta(seconds=20)]


# Every move a notification may make, written out from the delivery rules (independent
# of the domain's table): sent, then delivered or failed; a temporary failure is sent
# again; an officer's resend starts a failed one over; anything can fail technically
# before delivery.
GIVEN_UP = (Status.PERMANENT_FAILURE, Status.TECHNICAL_FAILURE)
LEGAL_MOVES = {
    (Status.CREATED, Status.SENDING),
    (Status.CREATED, Status.TECHNICAL_FAILURE),
    *((Status.SENDING, s) for s in (Status.DELIVERED, *GIVEN_UP, Status.TEMPORARY_FAILURE)),
    (Status.TEMPORARY_FAILURE, Status.SENDING),
    (Status.TEMPORARY_FAILURE, Status.TECHNICAL_FAILURE),
    *((failed, Status.CREATED) for failed in GIVEN_UP),
}


@pytest.mark.parametrize(("start", "new"), list(itertools.product(Status, Status)))
def test_transition_table(start: Status, new: Status) -> None:
    assert can_transition(start, new) is ((start, new) in LEGAL_MOVES)


def test_illegal_commands_raise_409_errors() -> None:
    n = notification()
    with pytest.raises(IllegalTransition):
        n.record(SendResult(Outcome.DELIVERED), NOW, POLICY)  # never sent
    n.start_sending(NOW, timedelta(seconds=60))
    with pytest.raises(IllegalTransition):
        n.start_sending(NOW, timedelta(seconds=60))  # already sending
    n.record(SendResult(Outcome.DELIVERED), NOW, POLICY)
    with pytest.raises(IllegalTransition) as caught:
        n.resend(NOW, "officer")  # delivered: nothing to resend
    assert caught.value.status_code == 409


def test_resend_starts_a_failed_notification_afresh() -> None:
    n = notification()
    n.fail_technical(NOW, "template error")
    assert n.status == Status.TECHNICAL_FAILURE and n.last_error == "template error"
    n.resend(NOW + timedelta(minutes=5), "petugas-1")
    assert n.status == Status.CREATED and n.attempt == 0 and n.last_error is None
    assert n.due_at == NOW + timedelta(minutes=5)
    assert n.history[-1].actor == "petugas-1"


def test_an_expired_lease_counts_as_a_temporary_failure() -> None:
    n = notification()
    n.start_sending(NOW, timedelta(seconds=60))
    assert not n.lease_expired(NOW + timedelta(seconds=59), POLICY)
    assert n.lease_expired(NOW + timedelta(seconds=61), POLICY)
    assert n.status == Status.TEMPORARY_FAILURE and "lease expired" in (n.last_error or "")


def test_a_retry_of_a_non_urgent_message_waits_for_the_end_of_quiet_hours() -> None:
    quiet = QuietHours(time(21, 0), time(6, 0))
    late = datetime(2026, 11, 2, 14, 59, tzinfo=UTC)  # 21:59 WIB
    n = notification(due_at=late)
    n.start_sending(late, timedelta(seconds=60))
    n.record(TEMPORARY, late, POLICY, defer=quiet.defer)
    assert n.due_at == datetime(2026, 11, 3, 6, 0, tzinfo=WIB)
    urgent = notification(due_at=late, urgent=True)
    urgent.start_sending(late, timedelta(seconds=60))
    urgent.record(TEMPORARY, late, POLICY, defer=quiet.defer)
    assert urgent.due_at == late + timedelta(seconds=10)


# ----- retry schedule and token bucket -------------------------------------------------------


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=60, factor=2, cap_seconds=3600)
    assert [d.total_seconds() for d in policy.schedule()] == [60, 120, 240, 480, 960, 1920, 3600]


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=5, capacity=10, now=0.0)
    assert bucket.take(50, 0.0) == 10  # the burst
    assert bucket.take(1, 0.0) == 0
    assert bucket.take(50, 1.0) == 5  # one second later: the rate
    assert bucket.take(50, 1.1) == 0
    assert bucket.available(100.0) == 10  # never more than the capacity
    bucket.take(3, 100.0)
    bucket.give_back(2)
    assert bucket.available(100.0) == 9
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1, now=0)


# ----- quiet hours ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wib", "quiet"),
    [("20:59", False), ("21:00", True), ("23:30", True), ("00:00", True), ("05:59", True), ("06:00", False)],
)
def test_quiet_hours_across_midnight_in_wib(wib: str, quiet: bool) -> None:
    hours = QuietHours(time(21, 0), time(6, 0))
    h, m = map(int, wib.split(":"))
    moment = datetime(2026, 11, 2, h, m, tzinfo=WIB).astimezone(UTC)
    assert hours.contains(moment) is quiet


def test_quiet_hours_defer_to_the_next_end() -> None:
    hours = QuietHours(time(21, 0), time(6, 0))
    before_midnight = datetime(2026, 11, 2, 23, 0, tzinfo=WIB)
    after_midnight = datetime(2026, 11, 3, 2, 0, tzinfo=WIB)
    assert hours.defer(before_midnight) == datetime(2026, 11, 3, 6, 0, tzinfo=WIB)
    assert hours.defer(after_midnight) == datetime(2026, 11, 3, 6, 0, tzinfo=WIB)
    day = datetime(2026, 11, 3, 10, 0, tzinfo=WIB)
    assert hours.defer(day) == day
    daytime = QuietHours(time(12, 0), time(13, 0))  # a window within one day
    assert daytime.contains(datetime(2026, 11, 3, 12, 30, tzinfo=WIB))
    assert not daytime.contains(datetime(2026, 11, 3, 13, 0, tzinfo=WIB))


# ----- planning: preferences, opt-out, channels, language ----------------------------------------

CITIZEN_RULE = Rule(
    id="r", events=("x",), to=("citizen",), channels=("email", "whatsapp", "sms"), template="complaints/filed"
)
BOTH = ("email", "whatsapp", "sms")


def test_plan_uses_the_rules_order_and_the_events_language_by_default() -> None:
    plan = plan_delivery(CITIZEN_RULE, reachable=BOTH, now=NOW, event_locale="en")
    assert plan == Plan(("email",), "en", NOW, deferred=False)
    phone_only = plan_delivery(CITIZEN_RULE, reachable=("whatsapp", "sms"), now=NOW, event_locale=None)
    assert isinstance(phone_only, Plan) and phone_only.channels == ("whatsapp",) and phone_only.locale == "id"


def test_plan_follows_the_citizens_preferences() -> None:
    prefs = Preferences(channels=("sms", "email"), locale="en")
    plan = plan_delivery(CITIZEN_RULE, reachable=BOTH, now=NOW, event_locale="id", preferences=prefs)
    assert isinstance(plan, Plan) and plan.channels == ("sms",) and plan.locale == "en"
    every = Rule(**{**CITIZEN_RULE.__dict__, "delivery": "all"})
    plan = plan_delivery(every, reachable=BOTH, now=NOW, event_locale="id", preferences=prefs)
    assert isinstance(plan, Plan) and plan.channels == ("sms", "email")


def test_opt_out_is_honoured_except_for_legally_required_messages() -> None:
    prefs = Preferences(opted_out=True)
    assert plan_delivery(CITIZEN_RULE, reachable=BOTH, now=NOW, event_locale="id", preferences=prefs) == Skip(
        "opted_out"
    )
    required = Rule(**{**CITIZEN_RULE.__dict__, "required": True})
    plan = plan_delivery(required, reachable=BOTH, now=NOW, event_locale="id", preferences=prefs)
    assert isinstance(plan, Plan) and plan.channels == ("email",)


def test_preferred_channels_that_cannot_reach_skip_unless_required() -> None:
    prefs = Preferences(channels=("whatsapp",))
    assert plan_delivery(
        CITIZEN_RULE, reachable=("email",), now=NOW, event_locale="id", preferences=prefs
    ) == Skip("no_channel")
    required = Rule(**{**CITIZEN_RULE.__dict__, "required": True})
    plan = plan_delivery(required, reachable=("email",), now=NOW, event_locale="id", preferences=prefs)
    assert isinstance(plan, Plan) and plan.channels == ("email",)
    assert plan_delivery(CITIZEN_RULE, reachable=(), now=NOW, event_locale="id") == Skip("no_contact")


def test_quiet_hours_hold_non_urgent_messages_and_let_urgent_ones_through() -> None:
    prefs = Preferences(quiet_hours=QuietHours(time(21, 0), time(6, 0)))
    night = datetime(2026, 11, 2, 23, 0, tzinfo=WIB)
    plan = plan_delivery(CITIZEN_RULE, reachable=BOTH, now=night, event_locale="id", preferences=prefs)
    assert isinstance(plan, Plan) and plan.deferred
    assert plan.due_at == datetime(2026, 11, 3, 6, 0, tzinfo=WIB)
    urgent = Rule(**{**CITIZEN_RULE.__dict__, "urgent": True})
    plan = plan_delivery(urgent, reachable=BOTH, now=night, event_locale="id", preferences=prefs)
    assert isinstance(plan, Plan) and not plan.deferred and plan.due_at == night


# ----- rules and recipients -----------------------------------------------------------------------


def test_rules_match_by_full_type_and_when_filters() -> None:
    rules = parse_rules(
        {
            "rules": [
                {"id": "a", "event": "id.sinergi.x.y.filed.v1", "to": "citizen", "template": "x/filed"},
                {
                    "id": "b",
                    "event": "id.sinergi.x.y.sla_warning.v1",
                    "when": {"clock": ["followup", "completion"]},
                    "to": ["opd", "role:coordinator"],
                    "channels": ["email"],
                    "template": "x/sla",
                },
            ]
        }
    )
    assert [r.id for r in rules.match("id.sinergi.x.y.filed.v1", {})] == ["a"]
    assert rules.match("id.sinergi.x.y.filed.v2", {}) == []  # another version: no rule
    assert [r.id for r in rules.match("id.sinergi.x.y.sla_warning.v1", {"clock": "followup"})] == ["b"]
    assert rules.match("id.sinergi.x.y.sla_warning.v1", {"clock": "verification"}) == []
    assert rules.rules[1].to == ("opd", "role:coordinator")


@pytest.mark.parametrize(
    "bad",
    [
        {"rules": [{"id": "a", "event": "filed", "to": "citizen", "template": "x"}]},
        {"rules": [{"id": "a", "event": "id.sinergi.a.b.c.v1", "to": "mayor", "template": "x"}]},
        {"rules": [{"id": "a", "event": "id.sinergi.a.b.c.v1", "to": "citizen", "template": "../etc"}]},
        {"rules": [{"event": "id.sinergi.a.b.c.v1", "to": "citizen", "template": "x", "channels": ["fax"]}]},
        {"rules": [{"id": "a", "event": "id.sinergi.a.b.c.v1", "to": "citizen", "template": "x"}] * 2},
        {"no": "rules"},
    ],
)
def test_broken_rules_are_refused_with_a_reason(bad: dict[str, Any]) -> None:
    with pytest.raises(RuleError):
        parse_rules(bad)


def test_recipients_resolve_opds_roles_and_the_fallback_with_normalised_phones() -> None:
    recipients = parse_recipients(
        {
            "opds": {
                "DPUPR": {"name": "DPUPR", "email": "dpupr@purworejokab.go.id", "phone": "0812-3456-7890"}
            },
            "roles": {"coordinator": {"email": "pengaduan@purworejokab.go.id"}},
            "fallback": {"email": "sinergi@purworejokab.go.id"},
        },
        normalize_mobile,
    )
    kind, key, contact, fallback = recipients.resolve("opd", {"opd": "DPUPR"})
    assert (kind, key, fallback) == ("opd", "DPUPR", False)
    assert contact is not None and contact.phone == "+6281234567890"
    assert contact.reachable() == ("email", "whatsapp", "sms")
    _, key, contact, fallback = recipients.resolve("opd", {"opd": "DLH"})
    assert fallback and contact is not None and contact.email == "sinergi@purworejokab.go.id"
    assert recipients.resolve("role:coordinator", {})[2] == Contact(
        email="pengaduan@purworejokab.go.id", locale="id"
    )
    with pytest.raises(RuleError):
        parse_recipients({"opds": {"X": {"phone": "08123"}}}, normalize_mobile)


def test_phone_numbers_are_normalised_to_plus_62() -> None:
    for raw in ("081234567890", "6281234567890", "+6281234567890", "0812-3456-7890"):
        assert normalize_mobile(raw) == "+6281234567890"
    with pytest.raises(InvalidPhone):
        normalize_mobile("08123")


def test_the_shipped_rules_load_and_name_only_known_event_types(tmp_path: Path) -> None:
    book = RuleBook(HERE / "rules.yaml", HERE / "recipients.yaml")
    loaded = book.current()
    assert book.error is None and len(loaded.rules.rules) >= 20
    unknown = loaded.rules.event_types - set(EVENT_TYPES)
    assert not unknown, f"rules name event types no schema defines: {unknown}"
    assert "coordinator" in loaded.recipients.roles and "DPUPR" in loaded.recipients.opds


def test_rules_reload_on_change_and_a_broken_edit_keeps_the_last_good(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {id: a, event: id.sinergi.a.b.c.v1, to: citizen, template: a}\n")
    errors: list[str] = []
    book = RuleBook(rules, tmp_path / "none.yaml", on_error=errors.append)
    assert [r.id for r in book.current().rules.rules] == ["a"]
    rules.write_text("rules:\n  - {id: b, event: id.sinergi.a.b.c.v1, to: citizen, template: b}\n")
    _touch_later(rules)
    assert [r.id for r in book.current().rules.rules] == ["b"]
    rules.write_text("rules: [ {id: c, event: nonsense")
    _touch_later(rules)
    assert [r.id for r in book.current().rules.rules] == ["b"]
    assert book.error and errors


def _touch_later(path: Path) -> None:
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


# ----- templates ---------------------------------------------------------------------------------


def test_template_candidates_go_from_specific_to_generic() -> None:
    assert template_candidates("complaints/filed", "email", "en") == [
        ("en/complaints/filed.email.j2", False),
        ("en/generic.email.j2", True),
        ("id/generic.email.j2", True),
    ]
    assert template_candidates("complaints/filed", "whatsapp", "id") == [
        ("id/complaints/filed.whatsapp.j2", False),
        ("id/complaints/filed.text.j2", False),  # shared by SMS and WhatsApp: not a fallback
        ("id/generic.text.j2", True),
    ]
    have = {"id/generic.text.j2", "id/complaints/filed.text.j2"}
    sms = template_candidates("complaints/filed", "sms", "id")
    assert choose_template(sms, have.__contains__) == ("id/complaints/filed.text.j2", False)
    verified = template_candidates("complaints/verified", "sms", "id")
    assert choose_template(verified, have.__contains__) == ("id/generic.text.j2", True)
    assert choose_template([("a", False), ("b", True)], lambda _: False) is None


def _store(tmp_path: Path, files: dict[str, str]) -> TemplateStore:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return TemplateStore(tmp_path)


# A specific email template of one event, and the generic ones every other falls back to.
SPECIFIC_AND_GENERIC = {
    "id/complaints/filed.email.j2": "Subject: Diterima {{ tracking_code }}\n\nBatas {{ due | datetime }}",
    "id/generic.email.j2": "Subject: Umum\n\nPembaruan {{ tracking_code }}",
    "id/generic.text.j2": "Pembaruan {{ tracking_code }}",
}
# Templates an editor got wrong: a missing field, an escape from the sandbox, bad syntax.
BROKEN = {
    "id/a.text.j2": "Halo {{ no_such_field }}",
    "id/b.text.j2": "{{ ''.__class__.__mro__ }}",
    "id/c.text.j2": "{% if %}",
}


def test_rendering_uses_the_specific_template_and_falls_back_to_the_generic(tmp_path: Path) -> None:
    store = _store(tmp_path, SPECIFIC_AND_GENERIC)
    ctx = {"tracking_code": "ADU-2611-AAAAAA", "due": "2026-11-05T03:00:00Z"}
    rendered = store.render("complaints/filed", "email", "id", ctx)
    assert rendered.subject == "Diterima ADU-2611-AAAAAA" and not rendered.fallback
    assert rendered.body.strip() == "Batas 5 November 2026, 10.00 WIB"
    fallback = store.render("complaints/verified", "email", "en", ctx)  # no en at all
    assert fallback.fallback and fallback.template == "id/generic.email.j2" and fallback.subject == "Umum"
    text = store.render("complaints/filed", "sms", "id", ctx)
    assert (
        text.fallback
        and text.template == "id/generic.text.j2"
        and text.body == "Pembaruan ADU-2611-AAAAAA"
        and text.subject is None
    )


def test_template_errors_are_reported_not_raised_as_crashes(tmp_path: Path) -> None:
    store = _store(tmp_path, BROKEN)
    for name, kind in (("a", "UndefinedError"), ("b", "SecurityError"), ("c", "TemplateSyntaxError")):
        with pytest.raises(RenderError) as caught:
            store.render(name, "sms", "id", {})
        assert kind in caught.value.message
    with pytest.raises(RenderError):
        TemplateStore(tmp_path / "empty").render("x", "email", "id", {})


def test_templates_reload_when_edited(tmp_path: Path) -> None:
    store = _store(tmp_path, {"id/a.text.j2": "satu"})
    assert store.render("a", "sms", "id", {}).body == "satu"
    (tmp_path / "id/a.text.j2").write_text("dua")
    _touch_later(tmp_path / "id/a.text.j2")
    assert store.render("a", "sms", "id", {}).body == "dua"


def test_templates_held_for_a_batch_are_looked_up_once_and_reload_after(tmp_path: Path) -> None:
    store = _store(tmp_path, {"id/a.text.j2": "satu", "id/generic.text.j2": "umum"})
    with store.held():
        assert store.render("a", "sms", "id", {}).body == "satu"
        (tmp_path / "id/a.text.j2").unlink()
        (tmp_path / "id/b.text.j2").write_text("baru")
        assert store.render("a", "sms", "id", {}).body == "satu"  # as the batch found it
        assert store.render("b", "sms", "id", {}).body == "baru"  # first asked in the batch
    assert store.render("a", "sms", "id", {}).body == "umum"  # the next batch sees the edit


# Every shipped template renders for a sample of every event type its rules name.


def _sample(annotation: Any, name: str) -> Any:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _sample(get_args(annotation)[0], name)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _sample(options[0], name)
    if origin in (list, tuple):
        return [_sample(get_args(annotation)[0], name)]
    if origin is dict:
        return {}
    if annotation is datetime:
        return "2026-11-05T03:00:00Z"
    if annotation is date:
        return "2026-11-05"
    if annotation is bool:
        return False
    if annotation is int:
        return 3
    if annotation is float:
        return 1.5
    return f"{name.upper()}-X"


def _sample_data(event_type: str) -> dict[str, Any]:
    model = EVENT_TYPES[event_type]
    data = {name: _sample(f.annotation, name) for name, f in model.model_fields.items()}
    data.update(reason_code="not_within_authority", clock="followup", payment="jkn")
    return data


@pytest.mark.parametrize("locale", ["id", "en"])
@pytest.mark.parametrize("channel", ["email", "sms", "whatsapp"])
def test_every_shipped_template_renders_for_its_events(locale: str, channel: str) -> None:
    store = TemplateStore(HERE / "templates")
    rules = RuleBook(HERE / "rules.yaml", HERE / "recipients.yaml").current().rules
    for rule in rules.rules:
        if channel not in rule.channels:
            continue
        for event_type in rule.events:
            context = {
                "data": _sample_data(event_type),
                "event": {"id": "e", "type": event_type, "time": "2026-11-05T03:00:00Z", "source": "s"},
                "tracking_code": "ADU-2611-AAAAAA",
                "tracking_url": "https://sinergi.example/lacak/ADU-2611-AAAAAA",
                "booking_url": "https://sinergi.example/antrean",
                "recipient": {"kind": "opd", "key": "DPUPR", "name": "DPUPR"},
                "region_name": "Kabupaten Purworejo",
            }
            rendered = store.render(rule.template, channel, locale, context)
            assert rendered.body.strip(), (rule.id, channel, locale)
            citizen_facing = "citizen" in rule.to
            if citizen_facing or locale == "id":
                assert not rendered.fallback, f"{rule.id}: no {locale} template for {channel}"
            if channel == "email":
                assert rendered.subject and rendered.subject != "Sinergi"
