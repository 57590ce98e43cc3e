"""Antrean's and the sign-in's rules without I/O: the pages' order, the days offered,
what the patient, contact and code pages accept, the booking a finished draft makes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.portal import antrean_rules as rules
from services.portal.antrean_rules import ANTREAN, Day
from services.portal.domain import NO, YES
from services.portal.i18n import MESSAGES

MONDAY = date(2026, 12, 7)
DETAIL = {
    "doctors": [
        {"code": "D1", "polyclinic": "INT"},
        {"code": "D2", "polyclinic": "ANA"},
    ],
    "schedules": [
        {"doctor": "D1", "weekday": 0, "active": True},
        {"doctor": "D1", "weekday": 2, "active": False},
        {"doctor": "D2", "weekday": 3, "active": True},
    ],
}
PATIENT = {
    "nik": "3306 0617 0890 0001",
    "nama": "Siti",
    "bayar": "jkn",
    "kartu": "0001 2345 67890",
    "baru": NO,
}
FINISHED = {
    "fasilitas": "RSUD-TJITRO",
    "poli": "INT",
    "tanggal": "2026-12-07",
    "nik": "3306061708900001",
    "nama": "",
    "bayar": "non_jkn",
    "kartu": "",
    "baru": YES,
}


def test_practice_days_are_the_polyclinics_active_weekdays_within_two_weeks() -> None:
    days = rules.practice_days(DETAIL, "INT", MONDAY)
    assert days == [MONDAY, MONDAY + timedelta(days=7)]  # not Wednesday (inactive), not D2's Thursday
    assert rules.practice_days(DETAIL, "MAT", MONDAY) == []


def test_a_day_counts_both_payments_of_every_session_and_a_holiday_is_no_day() -> None:
    sessions = [
        {"remaining_jkn": 2, "remaining_non_jkn": 1},
        {"remaining_jkn": 0, "remaining_non_jkn": 0},
    ]
    assert rules.day_of(MONDAY, sessions) == Day(MONDAY, 3)
    assert rules.day_of(MONDAY, [{"remaining_jkn": 0, "remaining_non_jkn": 0}]).full  # type: ignore[union-attr]
    assert rules.day_of(MONDAY, []) is None


def test_a_choice_outside_what_is_offered_is_refused_and_a_new_facility_forgets_the_rest() -> None:
    refused = rules.read_page("tanggal", {"tanggal": "2026-12-08"}, {}, {"2026-12-07"})
    assert refused.errors == {"tanggal": "error.tanggal.choose"}
    changed = rules.read_page("fasilitas", {"fasilitas": "PKM-BENER"}, FINISHED, {"PKM-BENER", "RSUD-TJITRO"})
    assert changed.values == {"fasilitas": "PKM-BENER", "poli": "", "tanggal": ""}
    same = rules.read_page("fasilitas", {"fasilitas": "RSUD-TJITRO"}, FINISHED, {"RSUD-TJITRO"})
    assert same.values == {"fasilitas": "RSUD-TJITRO"}


def test_the_patient_page_needs_a_jkn_card_only_for_jkn() -> None:
    read = rules.read_page("pasien", PATIENT, {}, set())
    assert not read.errors
    assert read.values["nik"] == "3306061708900001" and read.values["kartu"] == "0001234567890"
    assert rules.read_page("pasien", {**PATIENT, "kartu": ""}, {}, set()).errors == {
        "kartu": "error.kartu.empty"
    }
    assert rules.read_page("pasien", {**PATIENT, "kartu": "12345"}, {}, set()).errors == {
        "kartu": "error.kartu.invalid"
    }
    general = rules.read_page("pasien", {**PATIENT, "bayar": "non_jkn"}, {}, set())
    assert not general.errors and general.values["kartu"] == ""
    empty = rules.read_page("pasien", {}, {}, set())
    assert empty.errors == {
        "nik": "error.nik.empty",
        "bayar": "error.bayar.choose",
        "baru": "error.baru.choose",
    }
    long_name = rules.read_page("pasien", {**PATIENT, "nama": "x" * 101}, {}, set())
    assert long_name.errors == {"nama": "error.nama.long"}


def test_the_pages_lead_to_the_sign_in_then_to_the_check_page() -> None:
    assert rules.first_unanswered({}) == "fasilitas"
    assert (
        rules.next_page({"fasilitas": "X"}, "fasilitas", checking=False, signed_in=False) == "/antrean/poli"
    )
    assert rules.next_page(FINISHED, "pasien", checking=False, signed_in=False) == f"/masuk?untuk={ANTREAN}"
    assert rules.next_page(FINISHED, "pasien", checking=False, signed_in=True) == "/antrean/periksa"
    # A changed facility asks for its polyclinic and day again, even from the check page.
    stale = {**FINISHED, "poli": "", "tanggal": ""}
    assert rules.next_page(stale, "fasilitas", checking=True, signed_in=True) == "/antrean/poli"
    assert rules.previous_page("fasilitas") == "/" and rules.previous_page("tanggal") == "/antrean/poli"


def test_the_booking_names_the_proved_phone_and_carries_a_card_only_for_jkn() -> None:
    body = rules.booking_body(FINISHED, "+6281234567890", "en")
    assert body == {
        "nik": "3306061708900001",
        "phone": "+6281234567890",
        "facility": "RSUD-TJITRO",
        "polyclinic": "INT",
        "date": "2026-12-07",
        "payment": "non_jkn",
        "new_patient": True,
        "locale": "en",
    }
    jkn = rules.booking_body(
        {**FINISHED, "bayar": "jkn", "kartu": "0001234567890", "nama": "Siti"}, "+62812", "id"
    )
    assert jkn["jkn_card"] == "0001234567890" and jkn["name"] == "Siti"


def test_antrean_signs_in_with_a_phone_and_layanan_with_a_phone_or_an_address() -> None:
    assert rules.read_contact({"kontak": "0812 3456 7890"}, email_too=False, ask_nik=False).values == {
        "kontak": "+6281234567890"
    }
    assert rules.read_contact({"kontak": "warga@example.id"}, email_too=False, ask_nik=False).errors == {
        "kontak": "error.telepon.invalid"
    }
    email = rules.read_contact(
        {"kontak": "Warga@Example.id", "nik": PATIENT["nik"]}, email_too=True, ask_nik=True
    )
    assert email.values == {"kontak": "warga@example.id", "nik": "3306061708900001"}
    assert rules.read_contact({}, email_too=True, ask_nik=True).errors == {
        "kontak": "error.kontak.masuk_empty",
        "nik": "error.nik.empty",
    }


def test_a_code_is_six_digits_and_a_session_lives_until_it_expires() -> None:
    assert rules.read_code({"kode": "123 456"}).values == {"kode": "123456"}
    assert rules.read_code({"kode": "12345"}).errors == {"kode": "error.kode.invalid"}
    assert rules.read_code({}).errors == {"kode": "error.kode.empty"}
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    signin = {"session": "token", "expires_at": (now + timedelta(minutes=1)).isoformat()}
    assert rules.live_session(signin, now) == "token"
    assert rules.live_session(signin, now + timedelta(minutes=1)) is None
    assert rules.live_session({}, now) is None


def test_every_antrean_text_is_in_both_languages() -> None:
    antrean_keys = {
        k for k in MESSAGES["id"] if k.startswith(("antrean.", "masuk.", "hari.", "bulan.", "limited."))
    }
    assert antrean_keys and antrean_keys <= set(MESSAGES["en"])
