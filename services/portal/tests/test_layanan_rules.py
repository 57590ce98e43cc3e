"""Layanan saya's preferences form without I/O: the notification service's body it
makes, its refusals, and the form a stored preference shows."""

from __future__ import annotations

from services.portal.i18n import MESSAGES
from services.portal.layanan_rules import form_of, read_preferences

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
    keys = {k for k in MESSAGES["id"] if k.startswith(("layanan.", "home.layanan"))}
    assert keys and keys <= set(MESSAGES["en"])
