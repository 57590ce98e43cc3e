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
from datetime import date, datetime, time, timedelta
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
    NOTIFICATION_OFFICER = "notification_officer"
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
DELIVERIES_HOME = "/petugas/pengiriman"
CLINIC_HOME = "/petugas/klinik"


def role_of(roles: Iterable[str]) -> Role | None:
    """The workspace an officer gets: the coordinator's (admins too, with the operations
    pages besides), else an OPD's, else the licensing office's, else a clinic's, else the
    failed deliveries of the notification officers."""
    found = set(roles)
    if found & {"admin", "coordinator"}:
        return Role.COORDINATOR
    if "opd_officer" in found:
        return Role.OPD_OFFICER
    if "permit_officer" in found:
        return Role.PERMIT_OFFICER
    if "health_officer" in found:
        return Role.HEALTH_OFFICER
    if "notification_officer" in found:
        return Role.NOTIFICATION_OFFICER
    return None


# Each workspace's first page; the complaints list for every other role.
HOMES = {
    Role.PERMIT_OFFICER: PERMITS_HOME,
    Role.HEALTH_OFFICER: CLINIC_HOME,
    Role.NOTIFICATION_OFFICER: DELIVERIES_HOME,
}


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
    "gabung": ["duplikat", "duplikat_kode"],
    "disposisi": ["opd", "catatan"],
    "tanggapan": ["tanggapan"],
    "progres": ["catatan_progres"],
    "selesai": ["penyelesaian", "foto_hasil"],
}
# The resolve form's optional photo of the finished work (a file field).
RESOLVE, RESOLUTION_PHOTO = "selesai", "foto_hasil"


def steps_for(role: Role | None, status: str) -> list[str]:
    """The forms a complaint's page shows this officer, in page order."""
    if role is None:
        return []
    return [step for step, (_, who, statuses) in STEPS.items() if who == role and status in statuses]


def _text(
    answer: Answer, form: Mapping[str, str], name: str, longest: int, shortest: int = 0, *, said: str = ""
) -> str:
    """A free-text field; `said` names its messages when the field's name is another
    page's too (its messages would be that page's)."""
    value = (form.get(name) or "").strip()
    key = said or name
    if shortest and not value:
        answer.refuse(name, f"error.{key}.empty")
    elif len(value) < shortest:
        answer.refuse(name, f"error.{key}.short")
    elif len(value) > longest:
        answer.refuse(name, f"error.{key}.long")
    return value


def read_step(step: str, form: Mapping[str, str], opds: set[str], code: str) -> Answer:
    """A complaint form as the service's request body (under "body"), or errors by field."""
    answer = Answer()
    body: dict[str, Any] = {}
    if step == "tolak":
        choice(answer, form, "alasan_kode", REJECTION_REASONS)
        reason = _text(answer, form, "alasan", NOTE_LENGTH, shortest=1, said="alasan_penolakan")
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
DOCUMENT_CHECK_FIELDS = ["hasil", "kurang", "catatan_berkas"]
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


# ----- a permit application's steps after the document check -------------------------------

# The portal's name of each step (its address), the permits service's command (the address
# under /officer/applications/{code}/) and the statuses it is shown in (permits'
# TRANSITIONS; the service still decides).
PERMIT_STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "jadwal": ("inspection", ("documents_verified", "inspection_scheduled", "inspected")),
    "tinjauan": ("inspection/result", ("inspection_scheduled",)),
    "setujui": ("approve", ("documents_verified", "inspected")),
    "tolak": (
        "reject",
        ("submitted", "documents_incomplete", "documents_verified", "inspection_scheduled", "inspected"),
    ),
    "terbitkan": ("issue", ("approved",)),
    "cabut": ("revoke", ("issued",)),
}
# Steps only a permit type with a field inspection has.
INSPECTION_STEPS = ("jadwal", "tinjauan")
PERMIT_FIELDS = {
    "jadwal": ["tanggal", "jam", "peninjau", "catatan_jadwal"],
    "tinjauan": ["hasil_tinjau", "temuan"],
    "setujui": ["catatan_setuju"],
    "tolak": ["alasan_tolak", "catatan_tolak"],
    "terbitkan": ["berlaku_sampai"],
    "cabut": ["alasan_cabut"],
}
# The permits service's limits (services/permits/api.py InspectionIn, RejectIn, RevokeIn).
INSPECTOR_LENGTH = (2, 100)
FINDINGS_LENGTH = 5000
REASON_LENGTH = (3, 500)
REASONS = 20
REVOKE_LENGTH = (5, 2000)
INSPECTION_RESULTS = ("passed", "failed")
# Shown on the page (shared/kit/attachments.py MediaType); a PDF opens in the browser's
# own viewer, which no page's policy lets it embed.
IMAGE_TYPES = ("image/jpeg", "image/png")
PASSED = "passed"


def permit_steps_for(application: Mapping[str, Any]) -> list[str]:
    """The forms an application's page shows the licensing office, in page order: a
    type with a field inspection is approved after a passed one (a failed one is
    inspected again or rejected); a type without one straight after its documents."""
    status = application["status"]
    inspects = bool(application.get("inspection_required"))
    passed = application.get("inspection_result") == PASSED
    steps = [step for step, (_, statuses) in PERMIT_STEPS.items() if status in statuses]
    if not inspects:
        return [step for step in steps if step not in INSPECTION_STEPS]
    if status == "documents_verified" or (status == "inspected" and not passed):
        return [step for step in steps if step != "setujui"]
    if status == "inspected":
        return [step for step in steps if step != "jadwal"]
    return steps


def _day(value: str) -> date | None:
    """A date as a browser's date field sends it (2026-12-31), or as typed where there
    is none (31-12-2026, 31/12/2026)."""
    for pattern in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


def _clock_time(value: str) -> time | None:
    try:
        return datetime.strptime(value.replace(".", ":"), "%H:%M").time()
    except ValueError:
        return None


def _reasons(answer: Answer, form: Mapping[str, str], name: str) -> list[str]:
    """One reason a line, as the applicant reads them."""
    lines = [line.strip() for line in (form.get(name) or "").splitlines() if line.strip()]
    if not lines:
        answer.refuse(name, f"error.{name}.empty")
    elif len(lines) > REASONS or any(len(line) > REASON_LENGTH[1] for line in lines):
        answer.refuse(name, f"error.{name}.long")
    elif any(len(line) < REASON_LENGTH[0] for line in lines):
        answer.refuse(name, f"error.{name}.short")
    return lines


def _inspection(answer: Answer, form: Mapping[str, str], now: datetime) -> dict[str, Any]:
    typed_day, typed_time = (form.get("tanggal") or "").strip(), (form.get("jam") or "").strip()
    day, at = _day(typed_day), _clock_time(typed_time)
    if not typed_day:
        answer.refuse("tanggal", "error.tanggal.empty")
    elif day is None:
        answer.refuse("tanggal", "error.tanggal.invalid")
    if not typed_time:
        answer.refuse("jam", "error.jam.empty")
    elif at is None:
        answer.refuse("jam", "error.jam.invalid")
    scheduled = datetime.combine(day, at, tzinfo=WIB) if day and at else None
    if scheduled is not None and scheduled <= now:
        answer.refuse("tanggal", "error.tanggal.past")
    inspector = _text(answer, form, "peninjau", INSPECTOR_LENGTH[1], INSPECTOR_LENGTH[0])
    note = _text(answer, form, "catatan_jadwal", NOTE_LENGTH)
    when = scheduled.isoformat() if scheduled else None
    return {"scheduled_for": when, "inspector": inspector, "note": note or None}


def read_permit_step(step: str, form: Mapping[str, str], now: datetime) -> Answer:
    """An application's form as the permits service's request body (under "body"), or
    errors by field."""
    answer = Answer()
    body: dict[str, Any] = {}
    if step == "jadwal":
        body = _inspection(answer, form, now)
    elif step == "tinjauan":
        choice(answer, form, "hasil_tinjau", INSPECTION_RESULTS)
        findings = _text(answer, form, "temuan", FINDINGS_LENGTH)
        body = {"result": answer.values.get("hasil_tinjau"), "findings": findings or None}
    elif step == "setujui":
        body = {"note": _text(answer, form, "catatan_setuju", NOTE_LENGTH) or None}
    elif step == "tolak":
        reasons = _reasons(answer, form, "alasan_tolak")
        body = {"reasons": reasons, "note": _text(answer, form, "catatan_tolak", NOTE_LENGTH) or None}
    elif step == "terbitkan":
        typed = (form.get("berlaku_sampai") or "").strip()
        until = _day(typed) if typed else None
        if typed and until is None:
            answer.refuse("berlaku_sampai", "error.berlaku_sampai.invalid")
        elif until is not None and until <= now.astimezone(WIB).date():
            answer.refuse("berlaku_sampai", "error.berlaku_sampai.past")
        body = {"valid_until": until.isoformat() if until else None}
    elif step == "cabut":
        body = {"reason": _text(answer, form, "alasan_cabut", REVOKE_LENGTH[1], REVOKE_LENGTH[0])}
    answer.values = {"body": body} if not answer.errors else {}
    return answer


# ----- a form sent after the session ended ------------------------------------------------

# What the officer typed is kept for the form's page while they sign in again: under a
# random id in the way back (and this browser's own cookie), for this long at most, and
# only the fields the step's form defines (so never a password, a token or a file).
KEPT_FORM = "petugas_formulir"
KEPT_FORM_FOR = timedelta(minutes=15)
KEPT_FORM_PARAM = "formulir"
# Fields sent as several values (checkboxes).
MULTIPLE = frozenset({"kurang"})


def form_fields(path: str) -> tuple[str, list[str]] | None:
    """The step a workspace form's address names and that form's fields, or None for
    an address that is no form of the workspace's."""
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "petugas":
        return None
    kind, step = parts[1], parts[3]
    if kind == "aduan" and step in STEPS:
        return step, FIELDS.get(step, [])
    if kind == "izin" and step == DOCUMENT_CHECK:
        return step, DOCUMENT_CHECK_FIELDS
    if kind == "izin" and step in PERMIT_STEPS:
        return step, PERMIT_FIELDS[step]
    return None


def kept_fields(names: list[str], sent: Mapping[str, list[str]]) -> dict[str, str | list[str]]:
    """What is kept of a sent form: its own fields that hold something, each capped at
    the longest text a workspace form takes."""
    kept: dict[str, str | list[str]] = {}
    for name in names:
        values = [v[:RESOLUTION_LENGTH] for v in sent.get(name, []) if v.strip()]
        if values:
            kept[name] = values if name in MULTIPLE else values[0]
    return kept
