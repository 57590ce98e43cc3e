"""Layanan saya's forms without I/O: the notification service's body the preferences
form makes, its refusals, and the form a stored preference shows; a resolved
complaint's answers (fixed and rated, or not fixed) as the complaints service's bodies."""

from __future__ import annotations

from services.portal.i18n import MESSAGES
from services.portal.layanan_rules import (
    COMMENT_MAX,
    form_of,
    read_fixed,
    read_preferences,
    read_rating,
    read_reopen,
)

CHOSEN = {"kanal": "email", "bahasa": "en", "mulai": "21:00", "selesai": "06:00"}


def test_the_form_makes_the_notification_services_body() -> None:
    assert read_preferences(CHOSEN).values == {
        "body": {
            "channels": ["email"],
            "locale": "en",
            "quiet_hours": {"start": "21:00", "end": "06:00"},
            "opted_out": False,
        }
    }
    any_channel = read_preferences({"kanal": "", "bahasa": "id"}).values["body"]
    assert any_channel["channels"] == [] and any_channel["quiet_hours"] is None


def test_quiet_hours_need_both_ends_and_differ() -> None:
    assert read_preferences({**CHOSEN, "selesai": ""}).errors == {"selesai": "error.selesai.choose"}
    assert read_preferences({**CHOSEN, "mulai": "25:00"}).errors == {"mulai": "error.mulai.choose"}
    assert read_preferences({**CHOSEN, "selesai": "21:00"}).errors == {"selesai": "error.selesai.same"}
    assert read_preferences({"kanal": "pigeon"}).errors == {
        "kanal": "error.kanal.choose",
        "bahasa": "error.bahasa.choose",
    }


def test_stored_preferences_show_in_the_form_and_none_stored_is_the_default() -> None:
    stored = {"channels": ["sms", "email"], "locale": "en", "quiet_hours": {"start": "22:00", "end": "05:00"}}
    assert form_of(stored) == {"kanal": "sms", "bahasa": "en", "mulai": "22:00", "selesai": "05:00"}
    assert form_of({"channels": [], "locale": None, "quiet_hours": None}) == {
        "kanal": "",
        "bahasa": "id",
        "mulai": "",
        "selesai": "",
    }


def test_every_layanan_text_is_in_both_languages() -> None:
    keys = {k for k in MESSAGES["id"] if k.startswith(("layanan.", "home.layanan", "aduan.", "error.aduan"))}
    assert keys and keys <= set(MESSAGES["en"])


def test_fixed_or_not_must_be_chosen() -> None:
    assert read_fixed({"tuntas": "ya"}).values == {"tuntas": "ya"}
    assert read_fixed({"tuntas": "tidak"}).values == {"tuntas": "tidak"}
    assert read_fixed({"tuntas": "mungkin"}).errors == {"tuntas": "error.tuntas.choose"}


def test_a_rating_makes_the_complaints_services_body() -> None:
    assert read_rating({"nilai": "4", "komentar": "  Cepat ditangani  "}).values == {
        "body": {"rating": 4, "comment": "Cepat ditangani"}
    }
    assert read_rating({"nilai": "5", "komentar": " "}).values == {"body": {"rating": 5, "comment": None}}
    for refused in ({}, {"nilai": "0"}, {"nilai": "6"}, {"nilai": "lima"}):
        assert read_rating(refused).errors == {"nilai": "error.nilai.choose"}
    long = read_rating({"nilai": "3", "komentar": "x" * (COMMENT_MAX + 1)})
    assert long.errors == {"komentar": "error.komentar.long"}


def test_not_fixed_needs_a_few_words_for_the_opd() -> None:
    assert read_reopen({"alasan": " Lubangnya masih ada di depan balai desa "}).values == {
        "body": {"reason": "Lubangnya masih ada di depan balai desa"}
    }
    assert read_reopen({"alasan": ""}).errors == {"alasan": "error.alasan.empty"}
    assert read_reopen({"alasan": "masih"}).errors == {"alasan": "error.alasan.short"}
    assert read_reopen({"alasan": "x" * 2001}).errors == {"alasan": "error.alasan.long"}
