"""Permits (perizinan online) domain: permit types, the application aggregate, its state
machine, the pausable SLA clock, fiktif positif and the validity of issued permits.

Pure: no I/O. Every command checks the current status, changes the application,
appends a history entry and queues the domain event that the handler puts in the outbox.

Flow (after OSS-RBA, PBG/SIMBG, DIGIT trade licence)::

    submitted --verify_documents--> documents_verified --schedule_inspection--> inspection_scheduled
        |  ^                              |                                         |
        |  +--resubmit--+                 |  (types without field inspection)       record_inspection
        v               |                 v                                         v
    return_documents -> documents_incomplete   approve <------------------------- inspected
                                          |                                  (result passed)
                                          v
                             approved --issue--> issued --revoke--> revoked
                                                   |
                                                   +--(validity ends)--> expired

An officer may reject any undecided application (also one waiting for documents). A
failed inspection blocks approval until a new inspection passes (or the officer rejects).

SLA clock (one per application, in Indonesian working days, ``WorkingCalendar``): starts
at submission with the permit type's SLA (e.g. PBG technical review 28 working days),
PAUSES while the application is sent back to the applicant for missing documents and
RESUMES with the remaining working days when the applicant resubmits; it stops at the
decision (approve, reject, deemed approval). As with every Sinergi deadline, the day on
which the clock (re)starts never counts, and a deadline is the end of its working day
(WIB). The working days used so far are counted up to and including the pause day. It
warns once when ``SlaPolicy.warn_working_days`` remain and breaches once when due; a
paused clock neither warns nor breaches.

Fiktif positif (UU 30/2014 Pasal 53 as amended by UU 11/2020 Cipta Kerja): for permit
types that allow it, an application still undecided when its SLA runs out is approved by
law. The SLA check then emits ``sla_breached`` followed by ``deemed_approved`` and moves the
application to ``approved`` (decision ``deemed_approved``); the clock stops, so it happens
exactly once. The permit is then issued like any approved one.

Permit numbers: ``503/<TYPE>/<SEQ>/<YYYY>``, e.g. ``503/PBG/00042/2026``:

- ``503``  the archive classification code of licensing (perizinan) used on regional
  government letters;
- ``TYPE`` the permit type's ``number_code`` from permit_types.yaml (2-8 capitals);
- ``SEQ``  five digits, a sequence per TYPE per calendar year starting at 00001,
  allocated by the issuing transaction (table ``permit_sequences``), so numbers are
  gap-free for committed issues and never reused;
- ``YYYY`` the year of issuance in WIB (Asia/Jakarta).

Validity: an issued permit is valid from its issuance through the end (WIB) of the day
before the same date ``validity_years`` later (types without a validity never expire).
A renewal reminder (``expiring``) is emitted once from the start (00:00 WIB) of the day
``reminder_days`` calendar days before the last day of validity and ``expired`` once at the end; a first check after the end of
validity emits only ``expired``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shared.kit.codes import PERMIT_PREFIX, new_public_code
from shared.kit.errors import InvalidField, InvalidFields
from shared.kit.history import Recorded
from shared.reference import WorkingCalendar
from shared.schemas import permits as ev
from shared.schemas.common import AttachmentRef, SealedContact

WIB = ZoneInfo("Asia/Jakarta")
LEGAL_BASIS_DEEMED = "UU 30/2014 Pasal 53 jo. UU 11/2020 (fiktif positif)"
MAX_INSPECTION_LEAD_DAYS = 365


# History steps whose note is the applicant's own words (what they wrote when sending
# documents again): an erasure clears them; the officers' notes are the OPD's record.
APPLICANTS_WORDS = frozenset({"resubmitted"})


class Status(StrEnum):
    SUBMITTED = "submitted"
    DOCUMENTS_INCOMPLETE = "documents_incomplete"
    DOCUMENTS_VERIFIED = "documents_verified"
    INSPECTION_SCHEDULED = "inspection_scheduled"
    INSPECTED = "inspected"
    APPROVED = "approved"
    REJECTED = "rejected"
    ISSUED = "issued"
    REVOKED = "revoked"
    EXPIRED = "expired"


UNDECIDED = frozenset(
    {
        Status.SUBMITTED,
        Status.DOCUMENTS_INCOMPLETE,
        Status.DOCUMENTS_VERIFIED,
        Status.INSPECTION_SCHEDULED,
        Status.INSPECTED,
    }
)
# Applications the office still has to act on (for gauges and work lists).
OPEN_STATUSES = UNDECIDED | {Status.APPROVED}

_WITH_INSPECTION: dict[str, frozenset[Status]] = {
    "verify_documents": frozenset({Status.SUBMITTED}),
    "return_documents": frozenset({Status.SUBMITTED}),
    "resubmit": frozenset({Status.DOCUMENTS_INCOMPLETE}),
    # Again while scheduled to reschedule; again after a failed inspection to re-inspect.
    "schedule_inspection": frozenset(
        {Status.DOCUMENTS_VERIFIED, Status.INSPECTION_SCHEDULED, Status.INSPECTED}
    ),
    "record_inspection": frozenset({Status.INSPECTION_SCHEDULED}),
    "approve": frozenset({Status.INSPECTED}),
    "reject": UNDECIDED,
    "issue": frozenset({Status.APPROVED}),
    "revoke": frozenset({Status.ISSUED}),
}
_WITHOUT_INSPECTION: dict[str, frozenset[Status]] = {
    **_WITH_INSPECTION,
    "schedule_inspection": frozenset(),
    "record_inspection": frozenset(),
    "approve": frozenset({Status.DOCUMENTS_VERIFIED}),
}
# inspection required? -> command -> statuses it is allowed from
TRANSITIONS: dict[bool, dict[str, frozenset[Status]]] = {True: _WITH_INSPECTION, False: _WITHOUT_INSPECTION}
COMMANDS: tuple[str, ...] = tuple(_WITH_INSPECTION)
DECISION_EVENTS = (ev.ApplicationApproved, ev.ApplicationRejected, ev.DeemedApproved)


class SlaState(StrEnum):
    """Where an application's SLA clock stands (views, work lists and their filters)."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"  # warned: `SlaPolicy.warn_working_days` or fewer left
    BREACHED = "breached"
    PAUSED = "paused"  # waiting for the applicant's documents
    MET = "met"  # decided in time
    MISSED = "missed"  # decided late, or breached


# The states of a clock that has not stopped: what officers filter their work list by.
LIVE_SLA_STATES = (SlaState.ON_TRACK, SlaState.AT_RISK, SlaState.BREACHED, SlaState.PAUSED)


FieldErrors = list[tuple[tuple[str | int, ...], str]]  # (where in the request body, what is wrong)


@dataclass(frozen=True)
class SlaPolicy:
    warn_working_days: int = 2  # warn when this many working days remain


# ----- permit types (reference data, loaded by catalogue.py) ---------------------------------


@dataclass(frozen=True)
class DocumentSpec:
    code: str
    name: str
    required: bool = True


@dataclass(frozen=True)
class FieldSpec:
    """A type-specific field of the application (`details`)."""

    name: str
    kind: str  # text | integer | number | choice | kbli
    label: str
    required: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = 200
    pattern: str | None = None

    def limits(self) -> dict[str, float | int]:
        """The bounds a form can check before sending (a number's least and most, a
        text's length), as the catalogue publishes them."""
        if self.kind in ("integer", "number"):
            bounds = {"minimum": self.minimum, "maximum": self.maximum}
            return {name: value for name, value in bounds.items() if value is not None}
        return {"max_length": self.max_length} if self.kind == "text" else {}

    def parse(self, value: Any, kbli: Mapping[str, str]) -> str | int | float:
        """The normalised value; raises ValueError with a message fit for the user."""
        if self.kind in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.name} must be a number")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{self.name} must be a finite number")
            if self.kind == "integer":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(f"{self.name} must be a whole number")
                value = int(value)
            else:
                value = float(value)
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{self.name} must be at least {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"{self.name} must be at most {self.maximum:g}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"{self.name} must be text")
        text = value.strip()
        if self.kind == "kbli":
            if not re.fullmatch(r"\d{5}", text):
                raise ValueError(f"KBLI 2020 codes are exactly 5 digits, got {text!r}")
            if text not in kbli:
                raise ValueError(f"KBLI {text} is not in this service's KBLI 2020 list; see GET /kbli")
            return text
        if self.kind == "choice":
            normal = re.sub(r"[\s\-]+", "_", text.lower())
            if normal not in self.choices:
                raise ValueError(f"{self.name} must be one of: {', '.join(self.choices)}")
            return normal
        if not text:
            raise ValueError(f"{self.name} must not be empty")
        if len(text) > self.max_length:
            raise ValueError(f"{self.name} must be at most {self.max_length} characters")
        if self.pattern and not re.fullmatch(self.pattern, text):
            raise ValueError(f"{self.name} does not have the expected format")
        return text


@dataclass(frozen=True)
class Terms:
    """What governs one application; fixed at submission (later edits of the reference
    data do not change running applications)."""

    sla_days: int
    inspection_required: bool
    deemed_approval: bool
    validity_years: int | None
    reminder_days: int


@dataclass(frozen=True)
class Retained:
    """A permit type's retention duty: the `details` fields and the document codes kept."""

    fields: frozenset[str] = frozenset()
    documents: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PermitType:
    code: str
    name: str
    number_code: str
    opd: str
    dimension: str
    applicant_kinds: frozenset[str]
    documents: tuple[DocumentSpec, ...]
    fields: tuple[FieldSpec, ...]
    terms: Terms
    # Terms that depend on one field's value, e.g. the OSS-RBA risk level.
    variant_field: str | None = None
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # What a decided permit keeps after its holder's erasure: the fields and documents
    # that are the public record the OPD must hold (docs/privacy.md); nothing by default.
    retained: Retained = field(default_factory=Retained)

    @property
    def document_codes(self) -> set[str]:
        return {d.code for d in self.documents}

    def terms_for(self, details: Mapping[str, Any]) -> Terms:
        if self.variant_field is None:
            return self.terms
        return replace(self.terms, **self.variants.get(str(details.get(self.variant_field)), {}))

    def check_details(
        self, raw: Mapping[str, Any], kbli: Mapping[str, str]
    ) -> tuple[dict[str, Any], FieldErrors]:
        """The details normalised, and what is wrong with them."""
        errors: FieldErrors = []
        clean: dict[str, Any] = {}
        known = {f.name: f for f in self.fields}
        for name in raw:
            if name not in known:
                errors.append(
                    (("details", name), f"unknown field for {self.code}; expected: {', '.join(known)}")
                )
        for spec in self.fields:
            value = raw.get(spec.name)
            if value is None:
                if spec.required:
                    errors.append((("details", spec.name), f"{spec.label} ({spec.name}) is required"))
                continue
            try:
                clean[spec.name] = spec.parse(value, kbli)
            except ValueError as exc:
                errors.append((("details", spec.name), str(exc)))
        return clean, errors

    def check_documents(self, documents: Sequence[Document]) -> FieldErrors:
        """What is wrong with the documents of an application."""
        errors: FieldErrors = []
        seen: set[str] = set()
        for i, doc in enumerate(documents):
            if doc.code not in self.document_codes:
                errors.append(
                    (
                        ("documents", i, "code"),
                        f"unknown document {doc.code!r} for {self.code}; expected: {', '.join(sorted(self.document_codes))}",
                    )
                )
            elif doc.code in seen:
                errors.append((("documents", i, "code"), f"document {doc.code!r} is listed twice"))
            seen.add(doc.code)
        missing = [d.code for d in self.documents if d.required and d.code not in seen]
        if missing:
            errors.append((("documents",), f"required documents missing: {', '.join(missing)}"))
        return errors


# ----- value objects -------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One required document of an application: uploaded to this service (`file`, its
    id and hash, published) or a reference to the regency's own document store (`ref`, a
    URL or DMS id, never published)."""

    code: str
    ref: str | None = None
    file: AttachmentRef | None = None


def _files(documents: Sequence[Document]) -> list[AttachmentRef]:
    return [d.file for d in documents if d.file is not None]


@dataclass
class Applicant:
    """Who applies; never published. NIK and NIB stay in this service."""

    kind: str  # person | business
    name: str
    nik: str | None = None
    nib: str | None = None
    phone: str | None = None
    email: str | None = None

    @property
    def identifier(self) -> str:
        value = self.nib if self.kind == "business" else self.nik
        assert value, "an applicant has a NIK (person) or a NIB (business)"
        return value


@dataclass
class SlaClock:
    """The processing SLA in working days, pausable.

    `consumed_days` are the working days used by earlier running segments; the running
    segment started at `resumed_at`. Paused: `paused_at` set. Stopped: `stopped_at` set.
    """

    working_days: int
    started_at: datetime
    resumed_at: datetime
    due_at: datetime
    warn_at: datetime
    consumed_days: int = 0
    paused_at: datetime | None = None
    stopped_at: datetime | None = None
    warned_at: datetime | None = None
    breached_at: datetime | None = None

    @classmethod
    def start(cls, now: datetime, days: int, calendar: WorkingCalendar, policy: SlaPolicy) -> SlaClock:
        due = calendar.add_working_days(now, days)
        clock = cls(working_days=days, started_at=now, resumed_at=now, due_at=due, warn_at=due)
        clock.warn_at = clock._warn_at(now, days, calendar, policy)
        return clock

    @property
    def running(self) -> bool:
        return self.stopped_at is None and self.paused_at is None

    @property
    def paused(self) -> bool:
        return self.stopped_at is None and self.paused_at is not None

    def used_days(self, now: datetime, calendar: WorkingCalendar) -> int:
        """Working days used so far (pauses excluded)."""
        if not self.running:
            return self.consumed_days
        return self.consumed_days + calendar.working_days_between(self.resumed_at, now)

    def remaining_days(self, now: datetime, calendar: WorkingCalendar) -> int:
        return max(self.working_days - self.used_days(now, calendar), 0)

    def pause(self, now: datetime, calendar: WorkingCalendar) -> None:
        if not self.running:
            return
        self.consumed_days += calendar.working_days_between(self.resumed_at, now)
        self.paused_at = now

    def resume(self, now: datetime, calendar: WorkingCalendar, policy: SlaPolicy) -> None:
        if not self.paused:
            return
        remaining = self.working_days - self.consumed_days
        self.paused_at = None
        self.resumed_at = now
        if remaining >= 1:
            self.due_at = calendar.add_working_days(now, remaining)
        else:  # paused on (or after) its last day: due at the end of the resumption day
            self.due_at = datetime.combine(calendar.local_date(now), time.max, tzinfo=calendar.tz)
        self.warn_at = self._warn_at(now, remaining, calendar, policy)

    def stop(self, now: datetime, calendar: WorkingCalendar) -> None:
        if self.stopped_at is not None:
            return
        if self.running:
            self.consumed_days += calendar.working_days_between(self.resumed_at, now)
        self.stopped_at = now

    def state(self, now: datetime) -> SlaState:
        if self.stopped_at is not None:
            late = self.breached_at is not None or self.stopped_at > self.due_at
            return SlaState.MISSED if late else SlaState.MET
        if self.paused_at is not None:
            return SlaState.PAUSED
        if now >= self.due_at:
            return SlaState.BREACHED
        return SlaState.AT_RISK if now >= self.warn_at else SlaState.ON_TRACK

    def _warn_at(
        self, now: datetime, remaining: int, calendar: WorkingCalendar, policy: SlaPolicy
    ) -> datetime:
        if remaining > policy.warn_working_days:
            return calendar.add_working_days(now, remaining - policy.warn_working_days)
        return now + (self.due_at - now) / 2


# ----- the aggregate -------------------------------------------------------------------------


@dataclass
class Application(Recorded[Status, ev.PermitEvent]):
    id: uuid.UUID
    tracking_code: str
    permit_type: PermitType
    terms: Terms
    applicant: Applicant
    citizen_ref: str
    desa_code: str
    kecamatan_code: str
    details: dict[str, Any]
    documents: list[Document]
    locale: str
    submitted_at: datetime
    clock: SlaClock
    renewal_of: str | None = None
    status: Status = Status.SUBMITTED
    missing_documents: list[str] = field(default_factory=list)
    inspection_scheduled_for: datetime | None = None
    inspector: str | None = None
    inspection_result: str | None = None
    inspection_findings: str | None = None
    inspected_at: datetime | None = None
    decision: str | None = None  # approved | rejected | deemed_approved
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_note: str | None = None
    rejection_reasons: list[str] = field(default_factory=list)
    processing_days: int | None = None
    permit_number: str | None = None
    issued_at: datetime | None = None
    valid_until: datetime | None = None
    remind_at: datetime | None = None
    expiry_reminded_at: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    # ----- creation -------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        *,
        permit_type: PermitType,
        applicant: Applicant,
        citizen_ref: str,
        desa_code: str,
        kecamatan_code: str,
        details: Mapping[str, Any],
        documents: Sequence[Document],
        kbli: Mapping[str, str],
        locale: str,
        now: datetime,
        calendar: WorkingCalendar,
        policy: SlaPolicy,
        contact: SealedContact | None = None,
        contact_ref: str | None = None,
        renewal_of: str | None = None,
        tracking_code: str | None = None,
    ) -> Application:
        errors: FieldErrors = []
        if applicant.kind not in permit_type.applicant_kinds:
            wanted = "the business's NIB" if "business" in permit_type.applicant_kinds else "the NIK"
            where = ("applicant", "nib" if "business" in permit_type.applicant_kinds else "nik")
            errors.append((where, f"{permit_type.name} needs {wanted} of the applicant"))
        clean, detail_errors = permit_type.check_details(details, kbli)
        errors += detail_errors + permit_type.check_documents(documents)
        if errors:
            raise InvalidFields(errors)
        terms = permit_type.terms_for(clean)
        app = cls(
            id=uuid.uuid4(),
            tracking_code=tracking_code or new_tracking_code(now),
            permit_type=permit_type,
            terms=terms,
            applicant=applicant,
            citizen_ref=citizen_ref,
            desa_code=desa_code,
            kecamatan_code=kecamatan_code,
            details=clean,
            documents=list(documents),
            locale=locale,
            submitted_at=now,
            clock=SlaClock.start(now, terms.sla_days, calendar, policy),
            renewal_of=renewal_of,
            contact=contact,
        )
        app._record(now, "submitted", "applicant", None)
        app._emit(
            ev.ApplicationSubmitted,
            submitted_at=now,
            sla_working_days=terms.sla_days,
            sla_due=app.clock.due_at,
            inspection_required=terms.inspection_required,
            deemed_approval=terms.deemed_approval,
            documents=[d.code for d in documents],
            files=_files(documents),
            details=clean,
            renewal_of=renewal_of,
            contact_ref=contact_ref,
        )
        return app

    # ----- document check ---------------------------------------------------------------

    def verify_documents(self, officer: str, now: datetime) -> None:
        self._require("verify_documents")
        self.status = Status.DOCUMENTS_VERIFIED
        self.missing_documents = []
        self._record(now, "documents_verified", officer, None)
        self._emit(ev.DocumentsVerified, verified_by=officer, sla_due=self.clock.due_at)

    def return_documents(
        self, officer: str, now: datetime, calendar: WorkingCalendar, missing: Sequence[str], note: str | None
    ) -> None:
        """Incomplete: back to the applicant with the missing list; the SLA clock pauses."""
        self._require("return_documents")
        if not missing:
            raise InvalidField("missing", "list the missing or unusable documents")
        unknown = [code for code in missing if code not in self.permit_type.document_codes]
        if unknown:
            raise InvalidField(
                "missing",
                f"not documents of {self.permit_type.code}: {', '.join(unknown)}; "
                f"expected some of: {', '.join(sorted(self.permit_type.document_codes))}",
            )
        self.status = Status.DOCUMENTS_INCOMPLETE
        self.missing_documents = list(dict.fromkeys(missing))
        self.clock.pause(now, calendar)
        names = {d.code: d.name for d in self.permit_type.documents}
        text = "Dokumen kurang: " + "; ".join(names[c] for c in self.missing_documents)
        self._record(now, "documents_incomplete", officer, f"{text}. {note}" if note else text)
        self._emit(
            ev.DocumentsIncomplete,
            missing=self.missing_documents,
            note=note,
            returned_by=officer,
            sla_remaining_working_days=self.clock.remaining_days(now, calendar),
        )

    def resubmit(
        self,
        now: datetime,
        calendar: WorkingCalendar,
        policy: SlaPolicy,
        documents: Sequence[Document],
        note: str | None = None,
    ) -> None:
        """The applicant sends what was missing; the SLA clock resumes."""
        self._require("resubmit")
        known = self.permit_type.document_codes
        errors: FieldErrors = []
        for i, doc in enumerate(documents):
            if doc.code not in known:
                errors.append(((("documents", i, "code")), f"unknown document {doc.code!r}"))
        still_missing = [c for c in self.missing_documents if c not in {d.code for d in documents}]
        if still_missing:
            errors.append((("documents",), f"still missing: {', '.join(still_missing)}"))
        if errors:
            raise InvalidFields(errors)
        replaced = {d.code: d for d in documents}
        self.documents = [replaced.pop(d.code, d) for d in self.documents] + list(replaced.values())
        self.status = Status.SUBMITTED
        self.missing_documents = []
        self.clock.resume(now, calendar, policy)
        self._record(now, "resubmitted", "applicant", note)
        self._emit(
            ev.Resubmitted,
            documents=[d.code for d in documents],
            files=_files(documents),
            sla_due=self.clock.due_at,
            sla_remaining_working_days=self.clock.remaining_days(now, calendar),
        )

    # ----- field inspection -------------------------------------------------------------

    def schedule_inspection(
        self,
        officer: str,
        now: datetime,
        calendar: WorkingCalendar,
        scheduled_for: datetime,
        inspector: str,
        note: str | None = None,
    ) -> None:
        self._require("schedule_inspection")
        if self.status == Status.INSPECTED and self.inspection_result != "failed":
            raise self._refused("schedule_inspection", "the inspection passed; approve the application")
        if scheduled_for <= now:
            raise InvalidField("scheduled_for", "the inspection must be scheduled in the future")
        if scheduled_for > now + timedelta(days=MAX_INSPECTION_LEAD_DAYS):
            raise InvalidField(
                "scheduled_for", f"schedule the inspection within {MAX_INSPECTION_LEAD_DAYS} days"
            )
        if not calendar.is_working_day(scheduled_for):
            day = calendar.local_date(scheduled_for)
            why = calendar.holiday_name(day) or "weekend"
            raise InvalidField("scheduled_for", f"{day} is not a working day ({why})")
        self.status = Status.INSPECTION_SCHEDULED
        self.inspection_scheduled_for = scheduled_for
        self.inspector = inspector
        self.inspection_result = None
        self.inspection_findings = None
        self.inspected_at = None
        local = scheduled_for.astimezone(calendar.tz)
        self._record(now, "inspection_scheduled", officer, f"Peninjauan lapangan {local:%d-%m-%Y %H:%M} WIB")
        self._emit(
            ev.InspectionScheduled,
            scheduled_for=scheduled_for,
            inspector=inspector,
            scheduled_by=officer,
            note=note,
        )

    def record_inspection(
        self, officer: str, now: datetime, result: str, findings: str | None, inspected_at: datetime | None
    ) -> None:
        self._require("record_inspection")
        if result not in ("passed", "failed"):
            raise InvalidField("result", "result must be passed or failed")
        at = inspected_at or now
        if at > now:
            raise InvalidField("inspected_at", "the inspection cannot be recorded before it happened")
        if at < self.submitted_at:
            raise InvalidField("inspected_at", "the inspection cannot predate the application")
        self.status = Status.INSPECTED
        self.inspection_result = result
        self.inspection_findings = findings
        self.inspected_at = at
        self._record(now, f"inspection_recorded:{result}", officer, findings)
        self._emit(
            ev.InspectionRecorded, result=result, inspected_at=at, findings=findings, recorded_by=officer
        )

    # ----- decision ---------------------------------------------------------------------

    def approve(self, officer: str, now: datetime, calendar: WorkingCalendar, note: str | None) -> None:
        self._require("approve")
        if self.status == Status.INSPECTED and self.inspection_result != "passed":
            raise self._refused(
                "approve", "the field inspection failed: reject, or schedule a new inspection"
            )
        self._decide(
            now, calendar, "approved", officer, note, ev.ApplicationApproved, approved_by=officer, note=note
        )

    def reject(
        self, officer: str, now: datetime, calendar: WorkingCalendar, reasons: Sequence[str], note: str | None
    ) -> None:
        self._require("reject")
        reasons = [r.strip() for r in reasons if r and r.strip()]
        if not reasons:
            raise InvalidField("reasons", "give at least one reason for the rejection")
        self.status = Status.REJECTED
        self.rejection_reasons = reasons
        self._decide(
            now,
            calendar,
            "rejected",
            officer,
            note,
            ev.ApplicationRejected,
            history_note="; ".join(reasons),
            rejected_by=officer,
            reasons=reasons,
        )

    def _decide(
        self,
        now: datetime,
        calendar: WorkingCalendar,
        decision: str,
        actor: str,
        decision_note: str | None,
        event: type[ev.PermitEvent],
        *,
        history_note: str | None = None,
        clock_stops_at: datetime | None = None,
        **fields: Any,
    ) -> None:
        """Stop the clock, record the decision and queue its `event` (with the decision
        time and the working days it took)."""
        self.clock.stop(clock_stops_at or now, calendar)
        if decision != "rejected":
            self.status = Status.APPROVED
        self.decision = decision
        self.decided_at = now
        self.decided_by = actor
        self.decision_note = decision_note
        self.processing_days = self.clock.consumed_days
        self._record(now, decision, actor, history_note if history_note is not None else decision_note)
        self._emit(event, decided_at=now, processing_working_days=self.processing_days, **fields)

    # ----- issued permit ----------------------------------------------------------------

    def ensure_can(self, command: str) -> None:
        """Raise IllegalTransition now if `command` is not allowed (before allocating
        anything for it, e.g. a permit number)."""
        self._require(command)

    def issue(
        self,
        officer: str,
        now: datetime,
        calendar: WorkingCalendar,
        sequence: int,
        valid_until: date | None = None,
    ) -> None:
        """Issue with the `sequence`-th number of this type and year (see module doc)."""
        self._require("issue")
        default_end = validity_end(now, self.terms.validity_years, calendar.tz)
        end: datetime | None = default_end
        if valid_until is not None:
            end = datetime.combine(valid_until, time.max, tzinfo=calendar.tz)
            if end <= now:
                raise InvalidField("valid_until", "the validity must end after the issuance")
            if default_end is not None and end > default_end:
                raise InvalidField(
                    "valid_until",
                    f"{self.permit_type.name} is valid for at most {self.terms.validity_years} years "
                    f"(until {default_end.date()})",
                )
        self.status = Status.ISSUED
        self.permit_number = format_permit_number(
            self.permit_type.number_code, sequence, calendar.local_date(now).year
        )
        self.issued_at = now
        self.valid_until = end
        self.remind_at = reminder_time(end, self.terms.reminder_days, calendar.tz)
        self.expiry_reminded_at = None
        until = f", berlaku s.d. {end.astimezone(calendar.tz):%d-%m-%Y}" if end else ""
        self._record(now, "issued", officer, f"Izin terbit: {self.permit_number}{until}")
        self._emit(ev.PermitIssued, issued_at=now, issued_by=officer, valid_until=end)

    def valid_at(self, now: datetime) -> bool:
        """Whether the permit is in force at `now` (issued, not revoked, not yet expired)."""
        return self.status == Status.ISSUED and (self.valid_until is None or now < self.valid_until)

    def revoke(self, officer: str, now: datetime, reason: str) -> None:
        self._require("revoke")
        if not reason or not reason.strip():
            raise InvalidField("reason", "give the reason for the revocation")
        self.status = Status.REVOKED
        self.revoked_at = now
        self.revocation_reason = reason.strip()
        self._record(now, "revoked", officer, self.revocation_reason)
        self._emit(ev.PermitRevoked, revoked_at=now, revoked_by=officer, reason=self.revocation_reason)

    # ----- time-driven (periodic jobs) --------------------------------------------------

    def check_sla(self, now: datetime, calendar: WorkingCalendar) -> list[str]:
        """Emit the warning, the breach and (where the type allows it) the deemed
        approval, each once, from the persisted clock; returns what was emitted."""
        clock = self.clock
        if not clock.running:
            return []
        if clock.breached_at is None and now >= clock.due_at:
            clock.breached_at = now
            clock.warned_at = clock.warned_at or now  # a late check never warns after breach
            self._emit(ev.SlaBreached, due_at=clock.due_at)
            if self.terms.deemed_approval and self.status in UNDECIDED:
                # Approved by law when the period ended: it used exactly the SLA's days.
                self._decide(
                    now,
                    calendar,
                    "deemed_approved",
                    "system",
                    LEGAL_BASIS_DEEMED,
                    ev.DeemedApproved,
                    clock_stops_at=clock.due_at,
                    due_at=clock.due_at,
                    legal_basis=LEGAL_BASIS_DEEMED,
                )
                return ["breached", "deemed_approved"]
            return ["breached"]
        if clock.breached_at is None and clock.warned_at is None and now >= clock.warn_at:
            clock.warned_at = now
            self._emit(
                ev.SlaWarning, due_at=clock.due_at, remaining_working_days=clock.remaining_days(now, calendar)
            )
            return ["warning"]
        return []

    def check_expiry(self, now: datetime) -> list[str]:
        """Emit the renewal reminder and the expiry, each once; returns what was emitted."""
        if self.status != Status.ISSUED or self.valid_until is None:
            return []
        if now >= self.valid_until:
            self.status = Status.EXPIRED
            self.expiry_reminded_at = self.expiry_reminded_at or now  # never remind after expiry
            self._record(now, "expired", "system", None)
            self._emit(ev.PermitExpired, valid_until=self.valid_until)
            return ["expired"]
        if self.expiry_reminded_at is None and self.remind_at is not None and now >= self.remind_at:
            self.expiry_reminded_at = now
            days_left = (self.valid_until.astimezone(WIB).date() - now.astimezone(WIB).date()).days
            self._emit(ev.PermitExpiring, valid_until=self.valid_until, days_left=max(days_left, 0))
            return ["expiring"]
        return []

    def sla_state(self, now: datetime) -> SlaState:
        return self.clock.state(now)

    @property
    def decided_now(self) -> bool:
        """Whether the command just run decided the application (it queued the decision's
        event: approval, rejection or deemed approval)."""
        return any(isinstance(e, DECISION_EVENTS) for e in self.events)

    # ----- internals --------------------------------------------------------------------

    def allowed_from(self, command: str) -> frozenset[Status]:
        return TRANSITIONS[self.terms.inspection_required][command]

    def _require(self, command: str) -> None:
        allowed = self.allowed_from(command)
        if not allowed:
            raise self._refused(command, f"{self.permit_type.name} needs no field inspection")
        self._require_status(command, allowed, "an application")

    def _emit(self, event_class: type[ev.PermitEvent], **fields: Any) -> None:
        common: dict[str, Any] = {
            "application_id": str(self.id),
            "tracking_code": self.tracking_code,
            "status": self.status.value,
            "permit_type": self.permit_type.code,
            "opd": self.permit_type.opd,
            "dimension": self.permit_type.dimension,
            "applicant_kind": self.applicant.kind,
            "desa_code": self.desa_code,
            "kecamatan_code": self.kecamatan_code,
            "citizen_ref": self.citizen_ref,
            "contact": self.contact,
            "locale": self.locale,
            "permit_number": self.permit_number,
        }
        self.events.append(event_class(**{**common, **fields}))


# ----- numbers and dates ---------------------------------------------------------------------

PERMIT_NUMBER = re.compile(r"^503/(?P<type>[A-Z]{2,8})/(?P<seq>\d{5})/(?P<year>\d{4})$")


def format_permit_number(number_code: str, sequence: int, year: int) -> str:
    """`503/<TYPE>/<seq:05d>/<YYYY>`; see the module docstring."""
    if not re.fullmatch(r"[A-Z]{2,8}", number_code):
        raise ValueError(f"permit number codes are 2-8 capital letters, got {number_code!r}")
    if not 1 <= sequence <= 99_999:
        raise ValueError(f"sequence {sequence} does not fit five digits")
    return f"503/{number_code}/{sequence:05d}/{year:04d}"


def parse_permit_number(number: str) -> tuple[str, int, int]:
    """(type code, sequence, year); raises ValueError for anything else."""
    match = PERMIT_NUMBER.fullmatch(number.strip())
    if match is None:
        raise ValueError(f"{number!r} is not a permit number like 503/PBG/00001/2026")
    return match["type"], int(match["seq"]), int(match["year"])


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February into a common year
        return d.replace(year=d.year + years, month=3, day=1)


def validity_end(issued_at: datetime, years: int | None, tz: ZoneInfo = WIB) -> datetime | None:
    """End of validity: the end of the day before the anniversary, `years` on (WIB)."""
    if years is None:
        return None
    start = issued_at.astimezone(tz).date()
    return datetime.combine(_add_years(start, years) - timedelta(days=1), time.max, tzinfo=tz)


def reminder_time(valid_until: datetime | None, days: int, tz: ZoneInfo = WIB) -> datetime | None:
    """Start (00:00 local) of the day `days` calendar days before the last day of validity."""
    if valid_until is None or days <= 0:
        return None
    last_day = valid_until.astimezone(tz).date()
    return datetime.combine(last_day - timedelta(days=days), time.min, tzinfo=tz)


def new_tracking_code(now: datetime) -> str:
    """`IZN-YYMM-XXXX-XXXX-XXXXX` (month in WIB): 65 random bits (see shared.kit.codes)."""
    return new_public_code(PERMIT_PREFIX, now)
