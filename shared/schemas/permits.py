"""Events of the permits service (perizinan online), published on ``permits.events``.

Every payload repeats the application's identity, permit type and current status, so a
consumer can keep a read model from any single event without having seen the ones
before it. The applicant appears only as ``citizen_ref`` (keyed HMAC of the NIK, or of
the NIB for a business) and a sealed contact: never a NIK, NIB, phone or email in clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import AttachmentRef, CitizenRef, DesaCode, KecamatanCode, Locale, SealedContact
from shared.schemas.envelope import EventData

TOPIC = "permits.events"
SOURCE = "/sinergi/permits"
PREFIX = "id.sinergi.permits.application."

PermitStatus = Literal[
    "submitted",
    "documents_incomplete",
    "documents_verified",
    "inspection_scheduled",
    "inspected",
    "approved",
    "rejected",
    "issued",
    "revoked",
    "expired",
]
ApplicantKind = Literal["person", "business"]
Decision = Literal["approved", "rejected", "deemed_approved"]
Dimension = str  # configured per deployment (masterplan); validated by the producer
DetailValue = str | int | float
PermitNumber = str  # `503/<TYPE>/<seq:05d>/<YYYY>`, see services/permits/domain.py


class PermitEvent(EventData):
    """Fields every permits event carries."""

    application_id: str = Field(description="Aggregate id (UUID); also the CloudEvent subject")
    tracking_code: str = Field(examples=["IZN-2608-7K3M9Q"])
    status: PermitStatus
    permit_type: str = Field(examples=["pbg"], description="Code of the permit type (GET /permit-types)")
    opd: str = Field(examples=["DPMPTSP"], description="Agency (perangkat daerah) that decides")
    dimension: Dimension = Field(examples=["economy"], description="Smart-city dimension")
    applicant_kind: ApplicantKind
    desa_code: DesaCode
    kecamatan_code: KecamatanCode
    citizen_ref: CitizenRef = Field(
        description="Pseudonymous applicant reference: keyed HMAC of the NIK (person) or NIB (business)"
    )
    contact: SealedContact | None = Field(None, description="For notifying the applicant only")
    locale: Locale = "id"
    permit_number: PermitNumber | None = Field(None, examples=["503/PBG/00001/2026"])


class ApplicationSubmitted(PermitEvent):
    submitted_at: datetime
    sla_working_days: int = Field(ge=1, description="Processing SLA in Indonesian working days")
    sla_due: datetime
    inspection_required: bool
    deemed_approval: bool = Field(
        description="Fiktif positif applies: deemed approved when the SLA runs out (UU 11/2020)"
    )
    documents: list[str] = Field(description="Codes of the documents submitted")
    files: list[AttachmentRef] = Field(
        default_factory=list,
        description="The documents uploaded to this service, by id and hash, labelled with their code "
        "(a reference to another document store is not published)",
    )
    details: dict[str, DetailValue] = Field(
        default_factory=dict, description="Type-specific fields (e.g. kbli, risk_level, building_area_m2)"
    )
    renewal_of: PermitNumber | None = Field(None, description="Permit this application renews")
    contact_ref: str | None = Field(
        None,
        description="Keyed hash of the contact the citizen gave, the phone's if any, else the email's"
        " (shared/kit/privacy.contact_ref_for): a citizen session proving that contact finds the case",
    )


class DocumentsVerified(PermitEvent):
    verified_by: str
    sla_due: datetime


class DocumentsIncomplete(PermitEvent):
    """Sent back to the applicant; the SLA clock is paused until resubmission."""

    missing: list[str] = Field(min_length=1, description="Codes of missing or unusable documents")
    note: str | None = None
    returned_by: str
    sla_remaining_working_days: int = Field(ge=0)


class Resubmitted(PermitEvent):
    """The applicant sent the missing documents; the SLA clock resumes."""

    documents: list[str]
    files: list[AttachmentRef] = Field(default_factory=list, description="As in `submitted`")
    sla_due: datetime
    sla_remaining_working_days: int = Field(ge=0)


class InspectionScheduled(PermitEvent):
    scheduled_for: datetime
    inspector: str
    scheduled_by: str
    note: str | None = None


class InspectionRecorded(PermitEvent):
    result: Literal["passed", "failed"]
    inspected_at: datetime
    findings: str | None = None
    recorded_by: str


class ApplicationApproved(PermitEvent):
    decided_at: datetime
    approved_by: str
    note: str | None = None
    processing_working_days: int = Field(ge=0, description="SLA working days used (pauses excluded)")


class ApplicationRejected(PermitEvent):
    decided_at: datetime
    rejected_by: str
    reasons: list[str] = Field(min_length=1)
    processing_working_days: int = Field(ge=0)


class DeemedApproved(PermitEvent):
    """Fiktif positif: no decision within the SLA, so approved by law (UU 11/2020)."""

    decided_at: datetime
    due_at: datetime
    processing_working_days: int = Field(ge=0)
    legal_basis: str = Field(examples=["UU 30/2014 Pasal 53 jo. UU 11/2020"])


class PermitIssued(PermitEvent):
    permit_number: PermitNumber
    issued_at: datetime
    issued_by: str
    valid_until: datetime | None = Field(None, description="End of validity; absent = no expiry")


class PermitRevoked(PermitEvent):
    permit_number: PermitNumber
    revoked_at: datetime
    revoked_by: str
    reason: str


class PermitExpiring(PermitEvent):
    """Renewal reminder, once, a configured number of days before the end of validity."""

    permit_number: PermitNumber
    valid_until: datetime
    days_left: int = Field(ge=0)


class PermitExpired(PermitEvent):
    permit_number: PermitNumber
    valid_until: datetime


class SlaWarning(PermitEvent):
    due_at: datetime
    remaining_working_days: int = Field(ge=0)


class SlaBreached(PermitEvent):
    due_at: datetime


EVENTS: dict[str, type[PermitEvent]] = {
    f"{PREFIX}submitted.v1": ApplicationSubmitted,
    f"{PREFIX}documents_verified.v1": DocumentsVerified,
    f"{PREFIX}documents_incomplete.v1": DocumentsIncomplete,
    f"{PREFIX}resubmitted.v1": Resubmitted,
    f"{PREFIX}inspection_scheduled.v1": InspectionScheduled,
    f"{PREFIX}inspection_recorded.v1": InspectionRecorded,
    f"{PREFIX}approved.v1": ApplicationApproved,
    f"{PREFIX}rejected.v1": ApplicationRejected,
    f"{PREFIX}deemed_approved.v1": DeemedApproved,
    f"{PREFIX}issued.v1": PermitIssued,
    f"{PREFIX}revoked.v1": PermitRevoked,
    f"{PREFIX}expiring.v1": PermitExpiring,
    f"{PREFIX}expired.v1": PermitExpired,
    f"{PREFIX}sla_warning.v1": SlaWarning,
    f"{PREFIX}sla_breached.v1": SlaBreached,
}
