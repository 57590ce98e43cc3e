"""Events of the complaints service (pengaduan), published on ``complaints.events``.

Every payload repeats the complaint's identity and current status, so a consumer can
keep a read model from any single event without having seen the ones before it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import (
    AttachmentRef,
    CitizenRef,
    DesaCode,
    GeoPoint,
    KecamatanCode,
    Locale,
    SealedContact,
    SealedText,
)
from shared.schemas.envelope import EventData

TOPIC = "complaints.events"
SOURCE = "/sinergi/complaints"
PREFIX = "id.sinergi.complaints.complaint."

ComplaintKind = Literal["aspirasi", "pengaduan", "permintaan_informasi"]
ComplaintStatus = Literal[
    "submitted", "verified", "dispatched", "in_progress", "resolved", "closed", "rejected", "merged"
]
SlaClock = Literal["verification", "followup", "completion"]
Dimension = str  # configured per deployment (masterplan); validated by the producer


class ComplaintEvent(EventData):
    """Fields every complaints event carries."""

    complaint_id: str = Field(description="Aggregate id (UUID); also the CloudEvent subject")
    tracking_code: str = Field(examples=["ADU-2611-7K3M-9QW2-XAB4D"])
    status: ComplaintStatus
    kind: ComplaintKind
    category: str = Field(examples=["jalan_rusak"])
    dimension: Dimension = Field(examples=["mobility"])
    opd: str | None = Field(None, description="Code of the OPD the complaint is disposed to")
    desa_code: DesaCode
    kecamatan_code: KecamatanCode
    anonymous: bool = False
    confidential: bool = False
    citizen_ref: CitizenRef | None = Field(
        None, description="Pseudonymous reporter reference; absent for anonymous reports"
    )
    contact: SealedContact | None = Field(None, description="For notifying the reporter only")
    locale: Locale = "id"


class ComplaintFiled(ComplaintEvent):
    title: str | None = Field(
        None, description="No longer published (see `sealed_title`); kept for events published before it"
    )
    sealed_title: SealedText | None = Field(
        None, description="The title the citizen wrote, sealed; omitted when the complaint is confidential"
    )
    location: GeoPoint | None = None
    channel: Literal["web", "open311", "api"] = "web"
    filed_at: datetime
    verify_due: datetime
    close_due: datetime
    contact_ref: str | None = Field(
        None,
        description="Keyed hash of the contact the citizen gave, the phone's if any, else the email's"
        " (shared/kit/privacy.contact_ref_for): a citizen session proving that contact finds the case",
    )
    photos: list[AttachmentRef] = Field(
        default_factory=list, max_length=3, description="Photos the citizen added (ids and hashes only)"
    )


class ComplaintVerified(ComplaintEvent):
    verified_by: str


class ComplaintDispatched(ComplaintEvent):
    opd_name: str
    dispatched_by: str
    followup_due: datetime
    note: str | None = None


class ComplaintProgressUpdated(ComplaintEvent):
    """Status changed by the OPD while it works on the complaint."""

    note: str | None = None
    updated_by: str


class ComplaintResponded(ComplaintEvent):
    response: str | None = Field(None, description="Omitted when the complaint is confidential")
    responded_by: str


class ComplaintResolved(ComplaintEvent):
    resolution: str | None = None
    resolved_by: str
    reopen_until: datetime
    photo: AttachmentRef | None = Field(
        None, description="The photo of the finished work (its id and hash; the bytes stay in the service)"
    )


class ComplaintRejected(ComplaintEvent):
    reason_code: Literal["not_within_authority", "incomplete", "not_a_complaint", "spam"]
    reason: str | None = None
    rejected_by: str


class ComplaintReopened(ComplaintEvent):
    reason: str | None = Field(
        None, description="No longer published (see `sealed_reason`); kept for events published before it"
    )
    sealed_reason: SealedText | None = Field(
        None, description="Why the citizen reopened it, sealed; omitted when the complaint is confidential"
    )
    followup_due: datetime


class ComplaintRated(ComplaintEvent):
    """The reporter's rating closes the complaint."""

    rating: int = Field(ge=1, le=5)


class ComplaintMerged(ComplaintEvent):
    duplicate_of: str = Field(description="Tracking code of the complaint this one duplicates")
    merged_by: str


class ComplaintSlaWarning(ComplaintEvent):
    clock: SlaClock
    due_at: datetime


class ComplaintSlaBreached(ComplaintEvent):
    clock: SlaClock
    due_at: datetime


EVENTS: dict[str, type[ComplaintEvent]] = {
    f"{PREFIX}filed.v1": ComplaintFiled,
    f"{PREFIX}verified.v1": ComplaintVerified,
    f"{PREFIX}dispatched.v1": ComplaintDispatched,
    f"{PREFIX}progress_updated.v1": ComplaintProgressUpdated,
    f"{PREFIX}responded.v1": ComplaintResponded,
    f"{PREFIX}resolved.v1": ComplaintResolved,
    f"{PREFIX}rejected.v1": ComplaintRejected,
    f"{PREFIX}reopened.v1": ComplaintReopened,
    f"{PREFIX}rated.v1": ComplaintRated,
    f"{PREFIX}merged.v1": ComplaintMerged,
    f"{PREFIX}sla_warning.v1": ComplaintSlaWarning,
    f"{PREFIX}sla_breached.v1": ComplaintSlaBreached,
}
