"""Complaints (pengaduan) domain: the complaint aggregate, its state machine and SLA clocks.

Pure: no I/O. Every command checks the current status, changes the complaint, appends a
history entry and queues the domain event that the handler will put in the outbox.

Flow (after SP4N-LAPOR!): submitted -> verified (regency coordinator) -> dispatched to
an OPD -> in_progress -> resolved -> closed by the reporter's rating. A coordinator may
reject (e.g. not within the regency's authority) or merge a duplicate before dispatch;
the reporter may reopen a resolved complaint as "not fixed" within a window.

SLA clocks in working days (Perpres 76/2013): verification within 3 from filing,
OPD follow-up within 5 from disposition, completion within 60 from filing. A clock
warns once when one working day remains and breaches once when due.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import get_args

from shared.kit.codes import COMPLAINT_PREFIX, new_public_code
from shared.kit.errors import InvalidField
from shared.kit.history import Recorded
from shared.reference import WorkingCalendar
from shared.reference.regions import within_regency
from shared.schemas import complaints as ev
from shared.schemas.common import AttachmentRef, GeoPoint, SealedContact, SealedText


class Status(StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    MERGED = "merged"


RejectionReason = ev.ComplaintRejected.model_fields["reason_code"].annotation  # the contract's Literal
REJECTION_REASONS = frozenset(get_args(RejectionReason))

# What a filing must hold, for every way in (the citizens' API and Open311).
TITLE_LENGTH = (5, 150)
# The label of the complaint's attachment that shows the finished work (the reporter's
# own photos carry none).
RESOLUTION_PHOTO = "resolution"
DESCRIPTION_LENGTH = (10, 5000)


def within_purworejo(point: GeoPoint) -> bool:
    return within_regency(point.lat, point.lon)


# History steps whose note is the reporter's own words (a reopen's reason) or a reply
# addressed to them, which answers and often quotes what they wrote: erasure clears these
# notes. The officers' account of the work (progress, resolution, rejection, and the
# fixed texts of dispatch and merge) stays with the complaint as the OPD's record.
CITIZENS_WORDS = frozenset({"reopened", "responded"})

OPEN_STATUSES = frozenset(
    {Status.SUBMITTED, Status.VERIFIED, Status.DISPATCHED, Status.IN_PROGRESS, Status.RESOLVED}
)

# command -> statuses it is allowed from
TRANSITIONS: dict[str, frozenset[Status]] = {
    "verify": frozenset({Status.SUBMITTED}),
    "dispatch": frozenset({Status.VERIFIED, Status.DISPATCHED}),
    "update_progress": frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    "respond": frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    "resolve": frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    "reject": frozenset({Status.SUBMITTED, Status.VERIFIED}),
    "merge": frozenset({Status.SUBMITTED, Status.VERIFIED}),
    "rate": frozenset({Status.RESOLVED}),
    "reopen": frozenset({Status.RESOLVED, Status.CLOSED}),
}


class SlaState(StrEnum):
    """Where an SLA clock stands (lists, filters and dashboards)."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"  # warned: at most one working day left
    BREACHED = "breached"
    MET = "met"  # stopped in time
    MISSED = "missed"  # stopped late


@dataclass(frozen=True)
class SlaPolicy:
    verify_days: int = 3
    followup_days: int = 5
    completion_days: int = 60
    reopen_window_days: int = 14  # calendar days after resolution


@dataclass(frozen=True)
class Category:
    code: str
    name: str
    opd: str
    dimension: str


@dataclass(frozen=True)
class Opd:
    code: str
    name: str


@dataclass
class SlaClock:
    """One SLA obligation: started, due, and whether warned/breached/stopped."""

    name: str  # verification | followup | completion
    started_at: datetime
    due_at: datetime
    warn_at: datetime
    stopped_at: datetime | None = None
    warned_at: datetime | None = None
    breached_at: datetime | None = None

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    def state(self, now: datetime) -> SlaState:
        if self.stopped_at is not None:
            return SlaState.MET if self.stopped_at <= self.due_at else SlaState.MISSED
        if now >= self.due_at:
            return SlaState.BREACHED
        return SlaState.AT_RISK if now >= self.warn_at else SlaState.ON_TRACK


@dataclass
class Reporter:
    """The person who filed; never published. The NIK stays in this service."""

    nik: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass
class Complaint(Recorded[Status, ev.ComplaintEvent]):
    id: uuid.UUID
    tracking_code: str
    kind: str
    category: Category
    title: str
    description: str
    desa_code: str
    kecamatan_code: str
    anonymous: bool
    confidential: bool
    reporter: Reporter
    citizen_ref: str | None
    locale: str
    filed_at: datetime
    channel: str = "web"
    location: GeoPoint | None = None
    status: Status = Status.SUBMITTED
    opd: str | None = None
    rating: int | None = None
    rating_comment: str | None = None
    duplicate_of: str | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    # The photo of the finished work the OPD resolved it with (an attachment of the
    # complaint labelled RESOLUTION_PHOTO), shown to whoever follows the complaint.
    resolution_photo: uuid.UUID | None = None
    clocks: dict[str, SlaClock] = field(default_factory=dict)
    # `history` (from Recorded): its steps, oldest first; their notes are public text,
    # hidden on confidential complaints.

    # ----- creation -------------------------------------------------------------------

    @classmethod
    def file(
        cls,
        *,
        kind: str,
        category: Category,
        title: str,
        description: str,
        desa_code: str,
        kecamatan_code: str,
        anonymous: bool,
        confidential: bool,
        reporter: Reporter,
        citizen_ref: str | None,
        locale: str,
        now: datetime,
        calendar: WorkingCalendar,
        policy: SlaPolicy,
        contact: SealedContact | None = None,
        seal_text: Callable[[str], SealedText] | None = None,
        contact_ref: str | None = None,
        location: GeoPoint | None = None,
        channel: str = "web",
        tracking_code: str | None = None,
        photos: Sequence[AttachmentRef] = (),
    ) -> Complaint:
        if not anonymous and not reporter.nik:
            raise InvalidField(("reporter", "nik"), "a named complaint needs the reporter's NIK")
        complaint = cls(
            id=uuid.uuid4(),
            tracking_code=tracking_code or new_tracking_code(now),
            kind=kind,
            category=category,
            title=title,
            description=description,
            desa_code=desa_code,
            kecamatan_code=kecamatan_code,
            anonymous=anonymous,
            confidential=confidential,
            reporter=reporter,
            citizen_ref=None if anonymous else citizen_ref,
            locale=locale,
            filed_at=now,
            channel=channel,
            location=location,
            opd=category.opd,
            contact=contact,
            seal_text=seal_text,
        )
        complaint._start_clock("verification", now, policy.verify_days, calendar)
        complaint._start_clock("completion", now, policy.completion_days, calendar)
        complaint._record(now, "filed", "citizen", None)
        complaint._emit(
            ev.ComplaintFiled,
            sealed_title=complaint._sealed(complaint._public(title)),
            location=location,
            channel=channel,
            filed_at=now,
            verify_due=complaint.clocks["verification"].due_at,
            close_due=complaint.clocks["completion"].due_at,
            contact_ref=contact_ref,
            photos=list(photos),
        )
        return complaint

    # ----- officer commands -------------------------------------------------------------

    def verify(self, officer: str, now: datetime) -> None:
        self._require("verify")
        self.status = Status.VERIFIED
        self._stop_clock("verification", now)
        self._record(now, "verified", officer, None)
        self._emit(ev.ComplaintVerified, verified_by=officer)

    def dispatch(
        self,
        officer: str,
        opd: Opd,
        now: datetime,
        calendar: WorkingCalendar,
        policy: SlaPolicy,
        note: str | None = None,
    ) -> None:
        """Dispose to an OPD (disposisi); again while dispatched to re-dispose."""
        self._require("dispatch")
        if self.status == Status.DISPATCHED and opd.code == self.opd:
            raise self._refused("dispatch", f"complaint is already dispatched to {opd.code}")
        self.status = Status.DISPATCHED
        self.opd = opd.code
        self._start_clock("followup", now, policy.followup_days, calendar)
        self._record(now, "dispatched", officer, f"Diteruskan ke {opd.name}")
        self._emit(
            ev.ComplaintDispatched,
            opd_name=opd.name,
            dispatched_by=officer,
            followup_due=self.clocks["followup"].due_at,
            note=self._public(note),
        )

    def update_progress(self, officer: str, now: datetime, note: str | None) -> None:
        self._require("update_progress")
        self.status = Status.IN_PROGRESS
        self._stop_clock("followup", now)
        self._record(now, "progress_updated", officer, note)
        self._emit(ev.ComplaintProgressUpdated, note=self._public(note), updated_by=officer)

    def respond(self, officer: str, now: datetime, response: str) -> None:
        """The OPD's official response to the reporter (tindak lanjut)."""
        self._require("respond")
        self.status = Status.IN_PROGRESS
        self._stop_clock("followup", now)
        self._record(now, "responded", officer, response)
        self._emit(ev.ComplaintResponded, response=self._public(response), responded_by=officer)

    def resolve(
        self,
        officer: str,
        now: datetime,
        policy: SlaPolicy,
        resolution: str | None,
        photo: AttachmentRef | None = None,
    ) -> None:
        """Resolved, with an optional photo of the finished work (an upload labelled
        RESOLUTION_PHOTO; its bytes stay in the service, the event names it)."""
        self._require("resolve")
        self.status = Status.RESOLVED
        self.resolved_at = now
        self.resolution_photo = photo.id if photo else None
        self._stop_clock("followup", now)
        self._stop_clock("completion", now)
        self._record(now, "resolved", officer, resolution)
        self._emit(
            ev.ComplaintResolved,
            resolution=self._public(resolution),
            resolved_by=officer,
            reopen_until=now + timedelta(days=policy.reopen_window_days),
            photo=photo,
        )

    def reject(self, officer: str, now: datetime, reason_code: str, reason: str | None) -> None:
        self._require("reject")
        if reason_code not in REJECTION_REASONS:
            raise InvalidField("reason_code", f"unknown reason; use one of {sorted(REJECTION_REASONS)}")
        self.status = Status.REJECTED
        self._stop_all(now)
        self._record(now, f"rejected:{reason_code}", officer, reason)
        self._emit(
            ev.ComplaintRejected, reason_code=reason_code, reason=self._public(reason), rejected_by=officer
        )

    def merge_into(self, officer: str, now: datetime, original: Complaint) -> None:
        """Close this complaint as a duplicate of `original`, which carries on."""
        self._require("merge")
        if original.id == self.id:
            raise InvalidField("duplicate_of", "a complaint cannot duplicate itself")
        if original.status not in OPEN_STATUSES - {Status.RESOLVED}:
            raise self._refused(
                "merge", f"cannot merge into {original.tracking_code}: it is {original.status}"
            )
        self.status = Status.MERGED
        self.duplicate_of = original.tracking_code
        self._stop_all(now)
        # The note is public: it names no code, so the duplicate's filer cannot act
        # (rate, reopen) on a complaint someone else filed; they follow it through theirs.
        self._record(now, "merged", officer, "Digabung dengan laporan yang sama yang sedang ditangani")
        self._emit(ev.ComplaintMerged, duplicate_of=original.tracking_code, merged_by=officer)

    # ----- reporter commands ------------------------------------------------------------

    def rate(self, now: datetime, rating: int, comment: str | None) -> None:
        self._require("rate")
        if not 1 <= rating <= 5:
            raise InvalidField("rating", "rating must be between 1 and 5")
        self.status = Status.CLOSED
        self.rating = rating
        self.rating_comment = comment
        self.closed_at = now
        self._record(now, "rated", "citizen", None)
        self._emit(ev.ComplaintRated, rating=rating)

    def reopen(self, now: datetime, calendar: WorkingCalendar, policy: SlaPolicy, reason: str | None) -> None:
        """'Not fixed': back to the same OPD, within the window after resolution."""
        self._require("reopen")
        assert self.resolved_at is not None
        if now > self.resolved_at + timedelta(days=policy.reopen_window_days):
            raise self._refused(
                "reopen", f"the reopen window of {policy.reopen_window_days} days after resolution has passed"
            )
        self.status = Status.IN_PROGRESS
        self.reopen_count += 1
        self.resolved_at = None
        self.resolution_photo = None  # it showed work the reporter says is not done
        self.closed_at = None
        self.rating = None
        self.rating_comment = None
        self._start_clock("followup", now, policy.followup_days, calendar)
        self._record(now, "reopened", "citizen", reason)
        self._emit(
            ev.ComplaintReopened,
            sealed_reason=self._sealed(self._public(reason)),
            followup_due=self.clocks["followup"].due_at,
        )

    # ----- SLA --------------------------------------------------------------------------

    def check_sla(self, now: datetime) -> list[str]:
        """Emit each clock's warning and breach once; returns what was emitted."""
        emitted: list[str] = []
        for clock in self.clocks.values():
            if not clock.running:
                continue
            if clock.breached_at is None and now >= clock.due_at:
                clock.breached_at = now
                clock.warned_at = clock.warned_at or now  # a late check never warns after breach
                self._emit(ev.ComplaintSlaBreached, clock=clock.name, due_at=clock.due_at)
                emitted.append(f"{clock.name}:breached")
            elif clock.warned_at is None and now >= clock.warn_at:
                clock.warned_at = now
                self._emit(ev.ComplaintSlaWarning, clock=clock.name, due_at=clock.due_at)
                emitted.append(f"{clock.name}:warning")
        return emitted

    def sla_state(self, now: datetime) -> SlaState:
        """Worst state of the running clocks (breached > at_risk > on_track)."""
        states = {c.state(now) for c in self.clocks.values() if c.running}
        for state in (SlaState.BREACHED, SlaState.AT_RISK, SlaState.ON_TRACK):
            if state in states:
                return state
        missed = any(c.state(now) == SlaState.MISSED for c in self.clocks.values())
        return SlaState.MISSED if missed else SlaState.MET

    # ----- internals --------------------------------------------------------------------

    def _require(self, command: str) -> None:
        self._require_status(command, TRANSITIONS[command], "a complaint")

    def _start_clock(self, name: str, now: datetime, days: int, calendar: WorkingCalendar) -> None:
        due = calendar.add_working_days(now, days)
        warn = calendar.add_working_days(now, days - 1) if days > 1 else now + (due - now) / 2
        self.clocks[name] = SlaClock(name=name, started_at=now, due_at=due, warn_at=warn)

    def _stop_clock(self, name: str, now: datetime) -> None:
        clock = self.clocks.get(name)
        if clock is not None and clock.running:
            clock.stopped_at = now

    def _stop_all(self, now: datetime) -> None:
        for name in list(self.clocks):
            self._stop_clock(name, now)

    def _public(self, text: str | None) -> str | None:
        return None if self.confidential else text

    def _emit(self, event_class: type[ev.ComplaintEvent], **fields: object) -> None:
        self.events.append(
            event_class(
                complaint_id=str(self.id),
                tracking_code=self.tracking_code,
                status=self.status.value,
                kind=self.kind,
                category=self.category.code,
                dimension=self.category.dimension,
                opd=self.opd,
                desa_code=self.desa_code,
                kecamatan_code=self.kecamatan_code,
                anonymous=self.anonymous,
                confidential=self.confidential,
                citizen_ref=self.citizen_ref,
                contact=self.contact,
                locale=self.locale,
                **fields,
            )
        )


def new_tracking_code(now: datetime) -> str:
    """`ADU-YYMM-XXXX-XXXX-XXXXX`: 65 random bits (see shared.kit.codes)."""
    return new_public_code(COMPLAINT_PREFIX, now)
