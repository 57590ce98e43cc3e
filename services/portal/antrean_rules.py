"""Antrean's rules and the one-time-code sign-in's, pure: the booking journey's pages in
order, what each page and the sign-in pages accept (as message keys), which days can be
offered, and the booking the answers make.

The sign-in (`masuk`) is one for every journey that needs a verified contact: Antrean
asks it for a mobile number (the health service books for the phone the session
proved), Layanan saya for a phone number or an email address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.portal.domain import NO, YES, Answer, choice, is_email, read_digits, read_nik
from shared.reference.phone import InvalidPhone, normalize_mobile

ANTREAN = "antrean"
MASUK = "masuk"
# Antrean's question pages in order; the phone number and its code (the sign-in pages)
# come after them, then the check page.
STEPS = ("fasilitas", "poli", "tanggal", "pasien")
CHECK = "periksa"
PAYMENTS = ("jkn", "non_jkn")
# How far ahead the date page looks for practice days (the health service takes bookings
# up to 30 days ahead; two weeks is what a citizen compares).
DAYS_AHEAD = 14
# The health service's limits on a patient's name and a JKN card number.
NAME_LENGTH = 100
JKN_CARD_DIGITS = 13
CODE_DIGITS = 6
# What each page's answer needs, and what a changed answer makes stale.
NEEDS = {"fasilitas": ("fasilitas",), "poli": ("poli",), "tanggal": ("tanggal",), "pasien": ("nik", "bayar")}
STALE = {"fasilitas": ("poli", "tanggal"), "poli": ("tanggal",)}
# Who asks for a sign-in: whether an email address will do, and where it goes after.
# The sign-ins for what a citizen started, with the phone or the email address they gave:
# Layanan saya, and sending an application's documents again from Lacak (its pages say so).
ANY_CONTACT = "layanan"
RESUBMISSION = "berkas"
PURPOSES = {
    ANTREAN: (False, f"/antrean/{CHECK}"),
    ANY_CONTACT: (True, "/layanan"),
    RESUBMISSION: (True, "/lacak"),
}


@dataclass(frozen=True)
class Day:
    """A practice day of the polyclinic and the places left on it (all sessions, both
    payments); none left is shown as full, not offered."""

    day: date
    places: int

    @property
    def full(self) -> bool:
        return self.places <= 0


def first_unanswered(draft: Mapping[str, Any]) -> str | None:
    return next((s for s in STEPS if any(draft.get(n) in (None, "") for n in NEEDS[s])), None)


def next_page(draft: Mapping[str, Any], step: str, *, checking: bool, signed_in: bool) -> str:
    """Where a page leads once answered: the next question, the sign-in once they are all
    answered (unless signed in already), or back to the check page."""
    missing = first_unanswered(draft)
    if missing:
        return f"/antrean/{missing}"
    if checking or step == STEPS[-1]:
        return f"/antrean/{CHECK}" if signed_in else f"/masuk?untuk={ANTREAN}"
    return f"/antrean/{STEPS[STEPS.index(step) + 1]}"


def previous_page(step: str) -> str:
    index = STEPS.index(step) if step in STEPS else len(STEPS)
    return f"/antrean/{STEPS[index - 1]}" if index > 0 else "/"


def practice_days(detail: Mapping[str, Any], polyclinic: str, tomorrow: date) -> list[date]:
    """The days within DAYS_AHEAD from `tomorrow` on which a doctor of the polyclinic has
    an active weekly schedule (holidays are the sessions endpoint's to leave empty)."""
    doctors = {d["code"] for d in detail.get("doctors", []) if d.get("polyclinic") == polyclinic}
    weekdays = {
        s["weekday"] for s in detail.get("schedules", []) if s.get("active") and s["doctor"] in doctors
    }
    days = (tomorrow + timedelta(days=n) for n in range(DAYS_AHEAD))
    return [d for d in days if d.weekday() in weekdays]


def day_of(day: date, sessions: Iterable[Mapping[str, Any]]) -> Day | None:
    """The day with its places left, None when it has no session (a holiday)."""
    found = list(sessions)
    if not found:
        return None
    return Day(day, sum(int(s["remaining_jkn"]) + int(s["remaining_non_jkn"]) for s in found))


def read_page(step: str, form: Mapping[str, str], draft: Mapping[str, Any], offered: set[str]) -> Answer:
    """A page's form as answers or errors; `offered` are the codes (facilities,
    polyclinics, dates with places) the health service offers now."""
    answer = Answer()
    if step in ("fasilitas", "poli", "tanggal"):
        choice(answer, form, step, offered)
        if answer.values and draft.get(step) != answer.values[step]:
            answer.values.update({name: "" for name in STALE.get(step, ())})
    elif step == "pasien":
        _read_patient(answer, form)
    return answer


def _read_patient(answer: Answer, form: Mapping[str, str]) -> None:
    read_nik(answer, form)
    name = (form.get("nama") or "").strip()
    if len(name) > NAME_LENGTH:
        answer.refuse("nama", "error.nama.long")
    answer.values["nama"] = name
    choice(answer, form, "bayar", PAYMENTS)
    card = re.sub(r"[\s.-]", "", form.get("kartu") or "")
    if answer.values.get("bayar") == "jkn":
        if not card:
            answer.refuse("kartu", "error.kartu.empty")
        elif not (card.isascii() and card.isdigit() and len(card) == JKN_CARD_DIGITS):
            answer.refuse("kartu", "error.kartu.invalid")
    answer.values["kartu"] = card if answer.values.get("bayar") == "jkn" else ""
    choice(answer, form, "baru", (YES, NO))


def booking_body(draft: Mapping[str, Any], phone: str, locale: str) -> dict[str, Any]:
    """What the health service's POST /appointments takes, from a finished draft and the
    phone the session proved."""
    body: dict[str, Any] = {
        "nik": draft["nik"],
        "phone": phone,
        "facility": draft["fasilitas"],
        "polyclinic": draft["poli"],
        "date": draft["tanggal"],
        "payment": draft["bayar"],
        "new_patient": draft.get("baru") == YES,
        "locale": locale,
    }
    if draft.get("nama"):
        body["name"] = draft["nama"]
    if draft["bayar"] == "jkn":
        body["jkn_card"] = draft["kartu"]
    return body


# ----- the sign-in with a one-time code ----------------------------------------------------


def read_contact(form: Mapping[str, str], *, email_too: bool, ask_nik: bool) -> Answer:
    """The contact a code goes to: a mobile number, or (where `email_too`) an address."""
    answer = Answer()
    contact = (form.get("kontak") or "").strip()
    if not contact:
        answer.refuse("kontak", "error.kontak.masuk_empty" if email_too else "error.telepon.empty")
    elif email_too and "@" in contact:
        if is_email(contact):
            answer.values["kontak"] = contact.lower()
        else:
            answer.refuse("kontak", "error.email.invalid")
    else:
        try:
            answer.values["kontak"] = normalize_mobile(contact)
        except InvalidPhone:
            answer.refuse("kontak", "error.telepon.invalid")
    if ask_nik:
        read_nik(answer, form)
    return answer


def read_code(form: Mapping[str, str]) -> Answer:
    answer = Answer()
    read_digits(answer, form, "kode", CODE_DIGITS)
    return answer


def live_session(signin: Mapping[str, Any], now: datetime) -> str | None:
    """The citizen session of a sign-in, while it has not expired."""
    token, expires = signin.get("session"), signin.get("expires_at")
    if not token or not expires or datetime.fromisoformat(expires) <= now:
        return None
    return str(token)
