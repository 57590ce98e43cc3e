"""The operations pages' rules without I/O: where each role lands, ages, which dead
letters a replay names, and what the audit trail's search accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.portal import operasi_rules as rules
from services.portal.i18n import MESSAGES
from services.portal.petugas_rules import HOME, PERMITS_HOME, Role, home_of, role_of

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def test_each_role_lands_on_its_own_list() -> None:
    assert role_of(["notification_officer"]) == Role.NOTIFICATION_OFFICER
    assert home_of(Role.NOTIFICATION_OFFICER) == rules.DELIVERIES
    # An administrator keeps the coordinator's workspace (with the operations section).
    assert role_of(["admin", "notification_officer"]) == Role.COORDINATOR
    assert (home_of(Role.COORDINATOR), home_of(Role.PERMIT_OFFICER), home_of(None)) == (
        HOME,
        PERMITS_HOME,
        HOME,
    )


@pytest.mark.parametrize(
    ("ago", "expected"),
    [
        (timedelta(seconds=20), ("operasi.age.minutes", 0)),
        (timedelta(minutes=59), ("operasi.age.minutes", 59)),
        (timedelta(hours=47, minutes=59), ("operasi.age.hours", 47)),
        (timedelta(days=3, hours=1), ("operasi.age.days", 3)),
        (timedelta(minutes=-5), ("operasi.age.minutes", 0)),  # a clock a little ahead
    ],
)
def test_an_age_reads_in_the_largest_unit_that_fits(ago: timedelta, expected: tuple[str, int]) -> None:
    assert rules.age(NOW - ago, NOW) == expected
    assert rules.age(None, NOW) is None


def test_a_delivery_id_is_a_uuid_or_nothing() -> None:
    assert rules.delivery_id("8ED9CA09-33AC-49E9-AE69-1598F43E3C29") == "8ed9ca09-33ac-49e9-ae69-1598f43e3c29"
    assert rules.delivery_id("../admin") is None


def test_an_error_is_shortened_on_one_line() -> None:
    assert rules.short_error("a\n  b") == "a b"
    long = rules.short_error("x" * 1000)
    assert len(long) == rules.ERROR_LENGTH and long.endswith("…")


def test_reasons_count_only_the_letters_still_waiting() -> None:
    letters = [
        {"reason": "invalid_data", "applied": False},
        {"reason": "handler_error", "applied": False},
        {"reason": "handler_error", "applied": False},
        {"reason": "handler_error", "applied": True},
    ]
    assert rules.reasons_of(letters) == [("handler_error", 2), ("invalid_data", 1)]


def test_a_replay_names_a_reason_or_one_letter_of_a_consuming_service() -> None:
    by_reason = rules.read_replay(
        {"layanan": "integration", "grup": "integration", "alasan": "handler_error"}
    )
    assert by_reason.values == {
        "service": "integration",
        "choice": {"consumer": "integration", "reason": "handler_error"},
    }
    one = rules.read_replay({"layanan": "notifications", "grup": "n-1.x", "partisi": "0", "offset": "12"})
    assert one.values["choice"] == {"consumer": "n-1.x", "partition": 0, "offset": 12}
    assert rules.read_replay({"layanan": "complaints", "grup": "g", "alasan": "x"}).errors == {
        "layanan": "error.layanan.choose"
    }
    refused = rules.read_replay({"layanan": "integration", "grup": "a b", "offset": "1"})
    assert refused.errors == {"grup": "error.grup.choose", "alasan": "error.replay.choose"}


def test_the_audit_search_becomes_the_kits_filters() -> None:
    found = rules.read_audit_search(
        {
            "layanan": "permits",
            "petugas": " sri ",
            "tindakan": "read",
            "kode": "izn-2612-abcd",
            "dari": "2026-12-01",
            "sampai": "2026-12-06",
            "halaman": "3",
        }
    )
    assert found.values == {
        "service": "permits",
        "filters": {
            "subject": "sri",
            "aggregate": found.values["filters"]["aggregate"],
            "action": "read",
            "since": "2026-12-01T00:00:00+07:00",
            "until": "2026-12-07T00:00:00+07:00",  # the last day included
            "limit": rules.PAGE_SIZE + 1,
            "offset": 2 * rules.PAGE_SIZE,
        },
        "page": 3,
    }
    # Nothing asked: the first service's newest entries.
    assert rules.read_audit_search({}).values["filters"] == {"limit": rules.PAGE_SIZE + 1, "offset": 0}
    refused = rules.read_audit_search(
        {
            "layanan": "portal",
            "tindakan": "delete",
            "dari": "2026-13-01",
            "sampai": "2026-11-01",
            "petugas": "x" * 201,
        }
    )
    assert refused.errors == {
        "layanan": "error.layanan.choose",
        "petugas": "error.petugas.long",
        "tindakan": "error.tindakan.choose",
        "dari": "error.dari.invalid",
    }
    backwards = rules.read_audit_search({"dari": "2026-12-02", "sampai": "2026-12-01"})
    assert backwards.errors == {"sampai": "error.sampai.before"}


def test_a_tracking_code_is_searched_as_the_services_write_it() -> None:
    code = rules.read_audit_search({"kode": " adu-2612-b1m1-c8yj-9hce6 "}).values["filters"]["aggregate"]
    assert code == "ADU-2612-B1M1-C8YJ-9HCE6"
    reference = "9f2c4e1a"
    assert rules.read_audit_search({"kode": reference}).values["filters"]["aggregate"] == reference


def test_every_message_key_of_the_rules_has_both_languages() -> None:
    keys = {
        *(f"error.{name}.choose" for name in ("replay", "grup", "layanan", "tindakan")),
        *(f"operasi.page.{address.rsplit('/', 1)[1]}" for address in rules.SECTION),
        *(f"operasi.service.{name}" for name in rules.AUDITED),
        *(f"operasi.status.{status}" for status in rules.FAILING),
        *(f"operasi.action.{action}" for action in rules.ACTIONS),
    }
    for lang in ("id", "en"):
        assert keys <= set(MESSAGES[lang]), keys - set(MESSAGES[lang])
