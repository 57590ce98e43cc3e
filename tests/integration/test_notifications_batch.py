"""The notification service's set-based batch path against the real PostgreSQL.

The kit hands a batch of fresh events to `intake.on_events` (one transaction, a
constant number of round trips); the record-by-record fallback and dead-letter replay
use `intake.on_event`. Both must create the same notifications, history, events and
metrics, whatever the batch holds: an event already applied, a duplicate within the
batch, events matching several rules and recipients, citizens with preferences (quiet
hours, channel order, opt-out against a required rule), contacts that cannot be opened
or are missing, unruled events, and an erasure between a citizen's events.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet

from services.notifications import handlers, intake
from services.notifications.app import HERE
from services.notifications.context import Context
from services.notifications.domain import Preferences, QuietHours
from services.notifications.repository import NotificationRepository
from shared.kit.privacy import citizen_ref, seal_contact
from shared.kit.settings import PlatformSettings
from shared.schemas import Envelope, ParsedEvent, privacy
from shared.schemas import complaints as ce
from tests.citizen_support import verified_citizen
from tests.harness import migrated_pool_fixture, parsed
from tests.notifications_support import (
    ASYNCPG_INTROSPECTION,
    appointment_called,
    complaint_event,
    context_for,
    envelope,
    filed,
    metrics_of,
    snapshot,
    unique_email,
    unique_phone,
    verified,
    ward_changed,
)

WIB = timedelta(hours=7)
NOW = datetime(2026, 11, 2, 23, 0, tzinfo=UTC) - WIB  # 23:00 WIB: in the quiet hours below
NIK_A, NIK_B, NIK_C = "3306061708900001", "3306065708900002", "3306061708900003"
# One more rule than the operator's file: every channel for a resolved complaint, so an
# event names the citizen in two rules and `delivery: all` is exercised.
EXTRA_RULE = """
  - id: test-resolved-everywhere
    event: id.sinergi.complaints.complaint.resolved.v1
    to: citizen
    channels: [sms, email]
    delivery: all
    template: complaints/resolved
"""

# Two databases with the service's migrations: one applied record by record, one in batches.
one_by_one = batched = migrated_pool_fixture(HERE / "migrations")


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text((HERE / "rules.yaml").read_text() + EXTRA_RULE)
    return path


async def apply_one_by_one(ctx: Context, events: Sequence[ParsedEvent]) -> None:
    """As the kit's fallback does: one transaction per record."""
    for event in events:
        async with ctx.pool().acquire() as conn, conn.transaction():
            await intake.on_event(ctx, conn, event)


async def apply_batch(ctx: Context, events: Sequence[ParsedEvent]) -> int:
    """As the kit's batch path does; returns the number of statements the handler ran."""
    statements: list[str] = []

    def count(record: Any) -> None:
        if not any(mark in record.query for mark in ASYNCPG_INTROSPECTION):
            statements.append(record.query)

    async with ctx.pool().acquire() as conn, conn.transaction():
        conn.add_query_logger(count)
        try:
            await intake.on_events(ctx, conn, events)
        finally:
            conn.remove_query_logger(count)
    return len(statements)


async def set_preferences(ctx: Context, nik: str, contact: str, prefs: Preferences) -> None:
    """As the citizen does after proving `contact`: preferences for messages to it."""
    await handlers.set_preferences(ctx, verified_citizen(ctx.platform, nik, contact), None, prefs)


# What each step of a complaint says besides the reporter's contact (`**kwargs` below).
STEPS: dict[type[ce.ComplaintEvent], dict[str, Any]] = {
    ce.ComplaintResolved: {
        "status": "resolved",
        "resolved_by": "petugas",
        "reopen_until": NOW + timedelta(days=7),
    },
    ce.ComplaintDispatched: {
        "status": "dispatched",
        "opd_name": "Dinas",
        "dispatched_by": "koordinator",
        "followup_due": NOW + timedelta(days=5),
    },
    ce.ComplaintRejected: {
        "status": "rejected",
        "reason_code": "not_within_authority",
        "rejected_by": "koordinator",
    },
}


def step(event: type[ce.ComplaintEvent], platform: PlatformSettings, **kwargs: Any) -> Envelope:
    return complaint_event(event, platform, **STEPS[event], **kwargs)


def resolved(platform: PlatformSettings, **kwargs: Any) -> Envelope:
    return step(ce.ComplaintResolved, platform, **kwargs)


def dispatched(platform: PlatformSettings, opd: str, **kwargs: Any) -> Envelope:
    return step(ce.ComplaintDispatched, platform, opd=opd, **kwargs)


def rejected(platform: PlatformSettings, **kwargs: Any) -> Envelope:
    return step(ce.ComplaintRejected, platform, **kwargs)


def erasure(platform: PlatformSettings, nik: str) -> Envelope:
    data = privacy.CitizenDataErased(
        citizen_ref=citizen_ref(nik, platform.citizen_ref_key.get_secret_value()),
        service="complaints",
        erased_at=NOW,
        records={"complaints": 1},
    )
    return envelope(data, data.citizen_ref, ce.SOURCE, platform)


def mixed_batch(platform: PlatformSettings) -> tuple[list[Envelope], list[Envelope], dict[str, str]]:
    """Events applied before (the stored state), a mixed batch, and the phone each of A
    and B set their preferences from."""
    a_mail, a_phone, b_phone, c_mail = unique_email(), unique_phone(), unique_phone(), unique_email()
    other_key = Fernet.generate_key().decode()  # a producer with the wrong contact key
    broken = verified(platform, nik=NIK_C, contact=seal_contact(other_key, email=c_mail))
    already = filed(platform, email=a_mail, phone=a_phone, nik=NIK_A)
    stored = [already]
    dispatch = dispatched(platform, "DPUPR", email=c_mail, nik=NIK_C)  # citizen and OPD rules
    batch = [
        already,  # applied before: nothing new
        verified(platform, email=a_mail, phone=a_phone, nik=NIK_A),  # sms first, English, held
        appointment_called(platform, NIK_A, a_phone, NOW),  # urgent: not held by the quiet hours
        dispatch,
        dispatched(platform, "NOT-LISTED", email=c_mail, nik=NIK_C),  # OPD fallback address
        dispatch,  # a duplicate within the batch
        verified(platform, phone=b_phone, nik=NIK_B),  # opted out: nothing
        rejected(platform, phone=b_phone, nik=NIK_B),  # required: sent despite the opt-out
        resolved(platform, email=c_mail, phone=unique_phone(), nik=NIK_C),  # two rules, one `all`
        broken,  # sealed with another key: a technical failure, never a silent drop
        verified(platform, nik=NIK_C),  # no contact at all
        ward_changed(platform, NOW),  # no rule
        erasure(platform, NIK_A),  # A's notifications above are erased, their preferences too
        resolved(platform, email=a_mail, nik=NIK_A),  # after it: no preferences, Indonesian
        filed(platform, email=unique_email(), nik=NIK_C, locale="en"),
    ]
    return stored, batch, {NIK_A: a_phone, NIK_B: b_phone}


async def test_a_mixed_batch_creates_what_one_by_one_creates(
    one_by_one: asyncpg.Pool, batched: asyncpg.Pool, platform: PlatformSettings, rules_file: Path
) -> None:
    stored, batch, phones = mixed_batch(platform)
    contexts = [
        context_for(pool, lambda: NOW, platform, rules_file=rules_file) for pool in (one_by_one, batched)
    ]
    for ctx in contexts:
        quiet = QuietHours(time(21, 0), time(6, 0), ctx.tz)
        english = Preferences(channels=("sms", "email"), locale="en", quiet_hours=quiet)
        await set_preferences(ctx, NIK_A, phones[NIK_A], english)
        await set_preferences(ctx, NIK_B, phones[NIK_B], Preferences(opted_out=True))
        # Someone who states B's NIK from their own number silences nothing of B's.
        await set_preferences(ctx, NIK_B, unique_phone(), Preferences(channels=("email",)))
        await apply_one_by_one(ctx, parsed(stored))
    before = [metrics_of(ctx) for ctx in contexts]
    assert before[0] == before[1]

    await apply_one_by_one(contexts[0], parsed(batch))
    await apply_batch(contexts[1], parsed(batch))

    expected = await snapshot(contexts[0])
    assert await snapshot(contexts[1]) == expected
    assert metrics_of(contexts[1]) == metrics_of(contexts[0])

    # The scenario really exercises what it is meant to.
    ref_a, ref_b = (citizen_ref(nik, platform.citizen_ref_key.get_secret_value()) for nik in (NIK_A, NIK_B))
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for n in expected:
        by_rule.setdefault(n["rule_id"], []).append(n)
    erased = [n for n in expected if n["recipient_key"] == "erased"]
    # A's filed (stored), verified and called notifications: erased with the citizen.
    assert {n["rule_id"] for n in erased} == {"complaint-filed", "complaint-verified", "appointment-called"}
    assert all(n["address"] is None and n["body"] is None and n["citizen_ref"] is None for n in erased)
    (verified_a,) = [n for n in by_rule["complaint-verified"] if n["recipient_key"] == "erased"]
    assert verified_a["channel"] == "sms" and verified_a["locale"] == "en"
    assert verified_a["due_at"] == datetime(2026, 11, 3, 6, 0, tzinfo=UTC) - WIB  # end of quiet hours
    assert verified_a["status"] == "technical-failure"  # cancelled by the erasure
    assert [e["data"]["status"] for e in verified_a["events"]] == ["created"]
    assert by_rule["appointment-called"][0]["due_at"] == NOW
    assert len(by_rule["complaint-filed"]) == 2  # the stored one (erased) and C's new one, once each
    assert sorted(n["recipient_key"] for n in by_rule["complaint-dispatched-opd"]) == ["DPUPR", "NOT-LISTED"]
    assert len(by_rule["complaint-dispatched-citizen"]) == 2  # the duplicate added nothing
    assert [n["citizen_ref"] for n in by_rule["complaint-rejected"]] == [ref_b]
    assert not [n for n in expected if n["citizen_ref"] == ref_b and n["rule_id"] != "complaint-rejected"]
    everywhere = by_rule["test-resolved-everywhere"]
    assert sorted(n["channel"] for n in everywhere) == ["email", "email", "sms"]
    technical = [n for n in expected if n["last_error"] and "cannot be opened" in n["last_error"]]
    assert len(technical) == 1
    assert [e["data"]["status"] for e in technical[0]["events"]] == ["created", "technical-failure"]
    after = [n for n in by_rule["complaint-resolved"] if n["citizen_ref"] == ref_a]
    assert len(after) == 1 and after[0]["locale"] == "id" and after[0]["channel"] == "email"
    assert after[0]["due_at"] == NOW  # A's preferences went with the erasure
    metrics = metrics_of(contexts[1])
    skipped = {dict(labels)["reason"]: v for (name, labels), v in metrics.items() if "skipped" in name}
    assert skipped == {"opted_out": 1, "no_contact": 1}
    assert metrics[("sinergi_notifications_recipient_fallbacks_total", (("kind", "opd"),))] == 1
    unruled = ward_changed(platform, NOW).type
    assert metrics[("sinergi_notifications_unruled_events_total", (("type", unruled),))] == 1


async def test_a_batch_takes_the_same_few_statements_however_large(
    batched: asyncpg.Pool, platform: PlatformSettings, rules_file: Path
) -> None:
    ctx = context_for(batched, lambda: NOW, platform, rules_file=rules_file)
    small = [filed(platform, email=unique_email(), nik=NIK_C) for _ in range(3)]
    large = [
        dispatched(platform, "DPUPR", email=unique_email(), phone=unique_phone(), nik=NIK_C)
        for _ in range(60)
    ]
    # Preferences, notifications, their history, their events; for filings (unsolicited
    # messages) also how many each contact got this hour, in one query for all.
    assert await apply_batch(ctx, parsed(small)) == 5
    assert await apply_batch(ctx, parsed(large)) == 4
    async with batched.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notifications") == 3 + 60 * 2
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3 + 60 * 2
    # Applied again (the inbox lost, say): the unique constraint keeps it exactly once,
    # and nothing is left to record or publish.
    assert await apply_batch(ctx, parsed(large)) == 2
    async with batched.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM notifications") == 3 + 60 * 2
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3 + 60 * 2
        repo = NotificationRepository(conn)
        assert await repo.preferences_of([], ctx.tz) == {}
