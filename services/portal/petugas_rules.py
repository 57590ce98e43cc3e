"""The officers' workspace's rules, pure: the PKCE pieces of the sign-in, when an
officer's session ends (idle, absolute) and when its access token is renewed, where a
signed-out officer comes back to, how a complaint's SLA due date reads in a list, which
lists and forms an officer is shown, and what each form accepts (as message keys).

The portal only chooses what to show: whether an officer may do it is decided by the
complaints service with the officer's own token (a 403 there is the "not authorised"
page here).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.portal.domain import Answer, choice
from shared.kit.codes import COMPLAINT_PREFIX, WIB, is_public_code, normalise_code

HOME = "/petugas/aduan"
SIGN_IN = "/petugas/masuk"
# The journey name of a sign-in under way (its state, nonce and verifier) in the drafts.
PENDING = "petugas_masuk"
# RFC 7636: a verifier of 43 to 128 characters; 64 random bytes give 86.
VERIFIER_BYTES = 64
# An access token is renewed this long before it expires, so a page never sends one
# that runs out on its way to the service.
REFRESH_MARGIN = timedelta(seconds=60)
# The complaints service's limits on what an officer writes (services/complaints/api.py).
NOTE_LENGTH = 2000
RESPONSE_LENGTH = (5, 5000)
RESOLUTION_LENGTH = 5000
# How many earlier complaints are offered to merge with.
SUGGESTIONS = 5


# ----- the sign-in: PKCE (RFC 7636) and the way back --------------------------------------


def pkce_verifier() -> str:
    return secrets.token_urlsafe(VERIFIER_BYTES)


def pkce_challenge(verifier: str) -> str:
    """S256: the unpadded base64url SHA-256 of the verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def return_path(path: str | None) -> str:
    """Where an officer goes after signing in: a workspace page of this site only."""
    if not path or not path.startswith("/petugas") or "//" in path or "\\" in path:
        return HOME
    if path.startswith(SIGN_IN) or path.startswith("/petugas/keluar"):
        return HOME
    return path


def page_of(method: str, path: str) -> str:
    """The page to come back to after signing in: a form's page for a POST (its action
    is `<page>/<step>`), the page itself for a GET."""
    if method == "GET":
        return path
    return path.rsplit("/", 1)[0]


# ----- the officer's session ------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPolicy:
    """An officer's session ends after `idle` without a page, and `lifetime` after
    signing in whatever happens (a working shift: the kit's MAX_TOKEN_HOURS)."""

    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=8)

    def alive(self, created_at: datetime, last_seen_at: datetime, now: datetime) -> bool:
        return now < last_seen_at + self.idle and now < created_at + self.lifetime

    def ends_at(self, created_at: datetime) -> datetime:
        return created_at + self.lifetime


def needs_refresh(access_expires_at: datetime, now: datetime) -> bool:
    return now >= access_expires_at - REFRESH_MARGIN


# ----- lists ----------------------------------------------------------------------------------


class Due(StrEnum):
    """How an open complaint's nearest SLA due date reads in a list."""

    ON_TRACK = "on_track"
    DUE_TODAY = "due_today"
    BREACHED = "breached"


def due_label(due_at: datetime | None, now: datetime) -> Due | None:
    """Breached once due; due today while due later on today's date (WIB); else on track.
    None when no clock runs (a complaint resolved, rejected or merged)."""
    if due_at is None:
        return None
    if now >= due_at:
        return Due.BREACHED
    if due_at.astimezone(WIB).date() == now.astimezone(WIB).date():
        return Due.DUE_TODAY
    return Due.ON_TRACK


class Role(StrEnum):
    COORDINATOR = "coordinator"
    OPD_OFFICER = "opd_officer"
    PERMIT_OFFICER = "permit_officer"
    HEALTH_OFFICER = "health_officer"


# The statuses each role's list offers (the first is its inbox), in the service's names:
# complaints for the coordinator and OPD officers, permit applications for the licensing
# office.
TABS = {
    Role.COORDINATOR: ("submitted", "verified", "dispatched", "in_progress", "resolved"),
    Role.OPD_OFFICER: ("dispatched", "in_progress", "resolved"),
    Role.PERMIT_OFFICER: ("submitted", "documents_incomplete", "documents_verified"),
}
PERMITS_HOME = "/petugas/izin"
CLINIC_HOME = "/petugas/klinik"


def role_of(roles: Iterable[str]) -> Role | None:
    """The workspace an officer gets: the coordinator's (admins too), else an OPD's, else
    the licensing office's, else a clinic's."""
    found = set(roles)
    if found & {"admin", "coordinator"}:
        return Role.COORDINATOR
    if "opd_officer" in found:
        return Role.OPD_OFFICER
    if "permit_officer" in found:
        return Role.PERMIT_OFFICER
    if "health_officer" in found:
        return Role.HEALTH_OFFICER
    return None


# Each workspace's first page; the complaints list for every other role.
HOMES = {Role.PERMIT_OFFICER: PERMITS_HOME, Role.HEALTH_OFFICER: CLINIC_HOME}


def home_of(role: Role | None) -> str:
    return HOMES.get(role, HOME) if role is not None else HOME


def tab_of(role: Role, asked: str | None) -> str:
    tabs = TABS[role]
    return asked if asked in tabs else tabs[0]


# ----- a complaint's forms --------------------------------------------------------------------

# The portal's name of each step (its address), the service's command, who is shown it and
# in which statuses (services/complaints/domain.py TRANSITIONS).
STEPS: dict[str, tuple[str, Role, tuple[str, ...]]] = {
    "verifikasi": ("verify", Role.COORDINATOR, ("submitted",)),
    "tolak": ("reject", Role.COORDINATOR, ("submitted", "verified")),
    "gabung": ("merge", Role.COORDINATOR, ("submitted", "verified")),
    "disposisi": ("dispatch", Role.COORDINATOR, ("verified", "dispatched")),
    "tanggapan": ("responses", Role.OPD_OFFICER, ("dispatched", "in_progress")),
    "progres": ("progress", Role.OPD_OFFICER, ("dispatched", "in_progress")),
    "selesai": ("resolve", Role.OPD_OFFICER, ("dispatched", "in_progress")),
}
# The complaints service's rejection reasons (the contract's), "bukan kewenangan" first.
REJECTION_REASONS = ("not_within_authority", "incomplete", "not_a_complaint", "spam")
# Merging into an earlier complaint needs it still open and not resolved.
MERGEABLE = ("submitted", "verified", "dispatched", "in_progress")
# The fields of each form, in page order (the error summary's order).
FIELDS = {
    "tolak": ["alasan_kode", "alasan"],
    "gabung": ["duplikat"],
    "disposisi": ["opd", "catatan"],
    "tanggapan": ["tanggapan"],
    "progres": ["catatan_progres"],
    "selesai": ["penyelesaian"],
}


def steps_for(role: Role | None, status: str) -> list[str]:
    """The forms a complaint's page shows this officer, in page order."""
    if role is None:
        return []
    return [step for step, (_, who, statuses) in STEPS.items() if who == role and status in statuses]


def _text(answer: Answer, form: Mapping[str, str], name: str, longest: int, shortest: int = 0) -> str:
    value = (form.get(name) or "").strip()
    if shortest and not value:
        answer.refuse(name, f"error.{name}.empty")
    elif len(value) < shortest:
        answer.refuse(name, f"error.{name}.short")
    elif len(value) > longest:
        answer.refuse(name, f"error.{name}.long")
    return value


def read_step(step: str, form: Mapping[str, str], opds: set[str], code: str) -> Answer:
    """A complaint form as the service's request body (under "body"), or errors by field."""
    answer = Answer()
    body: dict[str, Any] = {}
    if step == "tolak":
        choice(answer, form, "alasan_kode", REJECTION_REASONS)
        reason = _text(answer, form, "alasan", NOTE_LENGTH, shortest=1)
        body = {"reason_code": answer.values.get("alasan_kode"), "reason": reason}
    elif step == "gabung":
        body = {"duplicate_of": _duplicate(answer, form, code)}
    elif step == "disposisi":
        choice(answer, form, "opd", opds)
        note = _text(answer, form, "catatan", NOTE_LENGTH)
        body = {"opd": answer.values.get("opd"), "note": note or None}
    elif step == "tanggapan":
        body = {"response": _text(answer, form, "tanggapan", RESPONSE_LENGTH[1], RESPONSE_LENGTH[0])}
    elif step == "progres":
        body = {"note": _text(answer, form, "catatan_progres", NOTE_LENGTH, shortest=1)}
    elif step == "selesai":
        resolution = _text(answer, form, "penyelesaian", RESOLUTION_LENGTH, shortest=1)
        body = {"resolution": resolution}
    answer.values = {"body": body} if not answer.errors else {}
    return answer


def _duplicate(answer: Answer, form: Mapping[str, str], code: str) -> str | None:
    """The earlier complaint's code: a suggestion chosen, or one typed."""
    typed = re.sub(r"\s", "", form.get("duplikat_kode") or "")
    chosen = (form.get("duplikat") or "").strip()
    value = normalise_code(typed or chosen)
    if not value:
        answer.refuse("duplikat", "error.duplikat.choose")
    elif not is_public_code(value, COMPLAINT_PREFIX):
        answer.refuse("duplikat", "error.duplikat.invalid")
    elif value == code:
        answer.refuse("duplikat", "error.duplikat.self")
    else:
        return value
    return None


def suggestions(
    complaint: Mapping[str, Any], candidates: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Earlier open complaints of the same category in the same kecamatan: what the
    coordinator is offered to merge with (the service suggests none), oldest first."""
    filed = _instant(complaint["filed_at"])
    found = [
        dict(c)
        for c in candidates
        if c["tracking_code"] != complaint["tracking_code"]
        and c["status"] in MERGEABLE
        and _instant(c["filed_at"]) <= filed
    ]
    return sorted(found, key=lambda c: _instant(c["filed_at"]))[:SUGGESTIONS]


def _instant(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


# ----- a permit application's document check ----------------------------------------------

DOCUMENT_CHECK = "berkas"
# The application's status the document check is allowed from (permits' TRANSITIONS).
CHECKABLE = "submitted"
OUTCOMES = ("complete", "incomplete")


def read_document_check(form: Mapping[str, str], missing: Iterable[str], documents: set[str]) -> Answer:
    """The document check as the permits service's body: complete, or incomplete with the
    missing documents (of the permit type's) and a note the applicant reads."""
    answer = Answer()
    choice(answer, form, "hasil", OUTCOMES)
    listed = sorted(set(missing))
    note = _text(answer, form, "catatan_berkas", NOTE_LENGTH)
    # An incomplete check names what is missing, among the permit type's documents.
    incomplete = answer.values.get("hasil") == "incomplete"
    if incomplete and (not listed or not set(listed) <= documents):
        answer.refuse("kurang", "error.kurang.choose")
    if not answer.errors:
        complete = answer.values["hasil"] == "complete"
        answer.values = {
            "body": {
                "outcome": answer.values["hasil"],
                "missing": [] if complete else listed,
                "note": note or None,
            }
        }
    return answer
