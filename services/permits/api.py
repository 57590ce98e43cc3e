"""HTTP routes of the permits service: parse, authorise, call a use case, shape the
answer. Citizens and businesses apply and follow applications by tracking code (and
resubmit missing documents); permit officers work them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from pydantic import AwareDatetime, BaseModel, EmailStr, Field, field_validator, model_validator

from services.permits import handlers
from services.permits.domain import LIVE_SLA_STATES, PERMIT_NUMBER, Applicant, Application, Document, Status
from services.permits.repository import ListFilter
from shared.kit.app import context_dependency
from shared.kit.attachments import OfficerAttachmentOut, attachment_response, attachment_view, upload_route
from shared.kit.auth import Officer, require_role
from shared.kit.bodies import RequestBody, with_example
from shared.kit.citizen import CitizenSession
from shared.kit.codes import is_public_code, normalise_code
from shared.kit.errors import NotFound
from shared.kit.limits import Limit, limited
from shared.kit.paging import PageNumber, PageSize, page_of
from shared.reference import mask_nik, require_desa
from shared.reference.fields import DesaCode, MobilePhone, Nik
from shared.reference.phone import mask_email, mask_phone
from shared.schemas.common import Locale
from shared.schemas.permits import ApplicantKind

router = APIRouter()

Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]
# Abuse limits per client address (numbers and reasons: docs/operations.md): a village
# office or a licensing consultant applies for several people from one address.
APPLYING = Limit("permits.applying", 20, 3600)
RESUBMITTING = Limit("permits.resubmitting", 30, 3600)
# A PBG needs about ten documents; an application sent back needs a few again.
DOCUMENT_UPLOADS = Limit("permits.document_uploads", 12 * APPLYING.count, 3600)
Caller = Annotated[Officer, Depends(require_role("permit_officer"))]
# The API's names of what the domain defines.
StatusName = Literal[tuple(s.value for s in Status)]
SlaFilter = Literal[tuple(s.value for s in LIVE_SLA_STATES)]
PermitNumberStr = Annotated[
    str, Field(pattern=PERMIT_NUMBER.pattern, examples=["503/PBG/00001/2026"], max_length=40)
]
DocumentCode = Annotated[str, Field(pattern=r"^[a-z0-9_]{2,50}$", examples=["gambar_struktur"])]


def code_of(tracking_code: str) -> str:
    """Normalised tracking code; anything not shaped like one is simply unknown."""
    code = normalise_code(tracking_code)
    if not is_public_code(code, "IZN"):
        raise NotFound(f"no application with tracking code {tracking_code[:30]!r}")
    return code


# ----- requests --------------------------------------------------------------------------


class ApplicantIn(RequestBody):
    nik: Nik | None = Field(None, description="16-digit NIK of a person applying")
    nib: str | None = Field(None, description="13-digit NIB (Nomor Induk Berusaha) of a business applying")
    name: str = Field(min_length=2, max_length=150, description="Person's or business's name")
    phone: MobilePhone | None = None
    email: EmailStr | None = None

    @field_validator("nib")
    @classmethod
    def _nib(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not (len(value) == 13 and value.isascii() and value.isdigit()):
            raise ValueError(f"NIB must be exactly 13 digits, got {len(value)} characters")
        return value

    @model_validator(mode="after")
    def _identity_and_contact(self) -> ApplicantIn:
        if (self.nik is None) == (self.nib is None):
            raise ValueError("give the NIK of a person or the NIB of a business (exactly one)")
        if not (self.phone or self.email):
            raise ValueError("phone or email is required to send updates")
        return self


class DocumentIn(RequestBody):
    code: DocumentCode = Field(description="Document code of the permit type (GET /permit-types)")
    upload: UUID | None = Field(
        None, description="Id that POST /applications/documents answered for the file"
    )
    ref: str | None = Field(
        None, min_length=1, max_length=500, description="Or: a reference in the regency's own document store"
    )

    @model_validator(mode="after")
    def _one_source(self) -> DocumentIn:
        if (self.upload is None) == (self.ref is None):
            raise ValueError(
                "give the document's upload id or its reference in the document store (exactly one)"
            )
        return self

    def given(self) -> handlers.DocumentGiven:
        return handlers.DocumentGiven(self.code, self.ref, self.upload)


class SubmitIn(RequestBody):
    model_config = with_example(
        {
            "permit_type": "pbg",
            "applicant": {"nik": "3306061708900001", "name": "Budi Santoso", "phone": "081234567890"},
            "desa_code": "33.06.01.2001",
            "details": {"building_function": "hunian", "building_area_m2": 120, "floors": 2},
            "documents": [
                {"code": "ktp", "ref": "dms://ktp/1"},
                {"code": "bukti_tanah", "ref": "dms://shm/1"},
                {"code": "krk", "ref": "dms://krk/1"},
                {"code": "gambar_arsitektur", "ref": "dms://ars/1"},
                {"code": "gambar_struktur", "ref": "dms://str/1"},
                {"code": "gambar_mep", "ref": "dms://mep/1"},
            ],
        }
    )

    permit_type: str = Field(max_length=50, description="See GET /permit-types")
    applicant: ApplicantIn
    desa_code: DesaCode = Field(description="Kemendagri code of the Purworejo desa/kelurahan of the location")
    details: dict[str, Any] = Field(
        default_factory=dict, max_length=30, description="Type-specific fields (GET /permit-types)"
    )
    documents: list[DocumentIn] = Field(max_length=30)
    renewal_of: PermitNumberStr | None = Field(None, description="Number of the permit being renewed")
    locale: Locale = "id"


class ResubmitIn(RequestBody):
    documents: list[DocumentIn] = Field(min_length=1, max_length=30)
    note: str | None = Field(None, max_length=2000)


class DocumentCheckIn(RequestBody):
    outcome: Literal["complete", "incomplete"]
    missing: list[DocumentCode] = Field(default_factory=list, max_length=30)
    note: str | None = Field(None, max_length=2000, description="Shown to the applicant")

    @model_validator(mode="after")
    def _missing_listed(self) -> DocumentCheckIn:
        if self.outcome == "incomplete" and not self.missing:
            raise ValueError("an incomplete check lists the missing documents")
        return self


class InspectionIn(RequestBody):
    scheduled_for: AwareDatetime = Field(description="Date and time with offset, on a working day")
    inspector: str = Field(min_length=2, max_length=100)
    note: str | None = Field(None, max_length=2000)


class InspectionResultIn(RequestBody):
    result: Literal["passed", "failed"]
    findings: str | None = Field(None, max_length=5000)
    inspected_at: AwareDatetime | None = None


class ApproveIn(RequestBody):
    note: str | None = Field(None, max_length=2000)


class RejectIn(RequestBody):
    reasons: list[Annotated[str, Field(min_length=3, max_length=500)]] = Field(min_length=1, max_length=20)
    note: str | None = Field(None, max_length=2000)


class IssueIn(RequestBody):
    valid_until: date | None = Field(None, description="Default: the permit type's validity period")


class RevokeIn(RequestBody):
    reason: str = Field(min_length=5, max_length=2000)


# ----- responses -------------------------------------------------------------------------


class SubmittedOut(BaseModel):
    tracking_code: str
    status: str
    permit_type: str
    sla_working_days: int
    sla_due: datetime
    inspection_required: bool
    deemed_approval: bool


class HistoryOut(BaseModel):
    at: datetime
    action: str
    status: str
    note: str | None = None


class SlaOut(BaseModel):
    working_days: int
    state: str
    due_at: datetime | None = Field(description="None while paused or once decided")
    used_working_days: int
    remaining_working_days: int


class PublicApplicationOut(BaseModel):
    tracking_code: str
    permit_type: str
    permit_type_name: str
    status: str
    desa_code: str
    kecamatan_code: str
    submitted_at: datetime
    documents: list[str]
    missing_documents: list[str]
    inspection_scheduled_for: datetime | None
    decision: str | None
    decided_at: datetime | None
    rejection_reasons: list[str]
    permit_number: str | None
    issued_at: datetime | None
    valid_until: datetime | None
    sla: SlaOut
    history: list[HistoryOut]


class DocumentRefOut(BaseModel):
    code: str
    ref: str | None = Field(None, description="The reference in the regency's document store, if given so")
    file: OfficerAttachmentOut | None = Field(None, description="The uploaded file, if uploaded")


class OfficerApplicationOut(PublicApplicationOut):
    applicant: dict[str, str | None]
    details: dict[str, Any]
    document_refs: list[DocumentRefOut]
    inspection_required: bool
    deemed_approval: bool
    inspector: str | None
    inspection_result: str | None
    inspection_findings: str | None
    decided_by: str | None
    decision_note: str | None
    renewal_of: str | None
    history_actors: list[str]


class ApplicationPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


class PermitOut(BaseModel):
    permit_number: str
    permit_type: str
    permit_type_name: str
    status: str
    valid: bool
    issued_at: datetime | None
    valid_until: datetime | None
    desa_code: str


def public_view(a: Application, ctx: handlers.Context) -> dict[str, Any]:
    now, clock = ctx.clock(), a.clock
    return {
        "tracking_code": a.tracking_code,
        "permit_type": a.permit_type.code,
        "permit_type_name": a.permit_type.name,
        "status": a.status.value,
        "desa_code": a.desa_code,
        "kecamatan_code": a.kecamatan_code,
        "submitted_at": a.submitted_at,
        "documents": [d.code for d in a.documents],
        "missing_documents": a.missing_documents,
        "inspection_scheduled_for": a.inspection_scheduled_for
        if a.status == Status.INSPECTION_SCHEDULED
        else None,
        "decision": a.decision,
        "decided_at": a.decided_at,
        "rejection_reasons": a.rejection_reasons,
        "permit_number": a.permit_number,
        "issued_at": a.issued_at,
        "valid_until": a.valid_until,
        "sla": {
            "working_days": clock.working_days,
            "state": clock.state(now),
            "due_at": clock.due_at if clock.running else None,
            "used_working_days": clock.used_days(now, ctx.calendar),
            "remaining_working_days": clock.remaining_days(now, ctx.calendar),
        },
        "history": [
            {"at": h.at, "action": h.action, "status": h.status.value, "note": h.note} for h in a.history
        ],
    }


def _document_ref(a: Application, d: Document) -> dict[str, Any]:
    url = f"/officer/applications/{a.tracking_code}/documents/{d.file.id}" if d.file else None
    file = {**d.file.model_dump(exclude={"label"}), "url": url} if d.file else None
    return {"code": d.code, "ref": d.ref, "file": file}


# What an officer sees of the application as the domain keeps it, by the fields' names (the
# public view shows the inspection's date only while it is scheduled).
_OFFICER_FIELDS = (
    "inspection_scheduled_for",
    "inspector",
    "inspection_result",
    "inspection_findings",
    "decided_by",
    "decision_note",
    "renewal_of",
)


def officer_view(a: Application, ctx: handlers.Context) -> dict[str, Any]:
    view = public_view(a, ctx)
    p = a.applicant
    view.update(
        applicant={
            "kind": p.kind,
            "name": p.name,
            "nik": mask_nik(p.nik) if p.nik else None,
            "nib": p.nib,  # a business identifier, public in OSS
            "phone": mask_phone(p.phone) if p.phone else None,
            "email": mask_email(p.email) if p.email else None,
        },
        details=a.details,
        document_refs=[_document_ref(a, d) for d in a.documents],
        inspection_required=a.terms.inspection_required,
        deemed_approval=a.terms.deemed_approval,
        history_actors=[h.actor for h in a.history],
        **{name: getattr(a, name) for name in _OFFICER_FIELDS},
    )
    return view


# ----- citizen routes --------------------------------------------------------------------


@router.post(
    "/applications", status_code=201, response_model=SubmittedOut, tags=["applicant"], **limited(APPLYING)
)
async def submit(body: SubmitIn, ctx: Ctx) -> dict[str, Any]:
    """Apply for a permit (no login needed): a person with their NIK or a business with
    its NIB, the location's desa/kelurahan, type-specific details and document references."""
    desa = require_desa(body.desa_code)
    application = await handlers.submit(
        ctx,
        handlers.SubmitApplication(
            permit_type=body.permit_type,
            applicant=Applicant(
                kind="business" if body.applicant.nib else "person", **body.applicant.model_dump()
            ),
            desa_code=desa.code,
            kecamatan_code=desa.kecamatan_code,
            details=body.details,
            documents=[d.given() for d in body.documents],
            locale=body.locale,
            renewal_of=body.renewal_of,
        ),
    )
    return {
        "tracking_code": application.tracking_code,
        "status": application.status.value,
        "permit_type": application.permit_type.code,
        "sla_working_days": application.terms.sla_days,
        "sla_due": application.clock.due_at,
        "inspection_required": application.terms.inspection_required,
        "deemed_approval": application.terms.deemed_approval,
    }


@router.get("/applications/{tracking_code}", response_model=PublicApplicationOut, tags=["applicant"])
async def get_application(tracking_code: str, ctx: Ctx) -> dict[str, Any]:
    """Public status and history by tracking code (no NIK, NIB, phone or email)."""
    return public_view(await handlers.get(ctx, code_of(tracking_code)), ctx)


@router.post(
    "/applications/{tracking_code}/resubmission",
    response_model=PublicApplicationOut,
    tags=["applicant"],
    **limited(RESUBMITTING),
)
async def resubmit(tracking_code: str, body: ResubmitIn, ctx: Ctx, citizen: CitizenSession) -> dict[str, Any]:
    """Send the documents an officer found missing, with a session of the phone or email
    the applicant gave (404 otherwise, as for an unknown code); the SLA clock resumes."""
    documents = [d.given() for d in body.documents]
    answer = await handlers.resubmit(ctx, code_of(tracking_code), documents, body.note, citizen)
    return public_view(answer, ctx)


@upload_route(router, "/applications/documents", DOCUMENT_UPLOADS, tag="applicant")
async def upload_document(
    file: Annotated[UploadFile, File(description="PDF, JPEG or PNG, at most 10 MB")], ctx: Ctx
) -> dict[str, Any]:
    """Upload one document (a KTP scan, a site plan) for an application about to be
    submitted or completed, then name its id as the document's `upload`. The type is read
    from the content: a PDF must open page by page, a scan is kept re-encoded without its
    metadata. An upload no application names within 24 hours is deleted."""
    return attachment_view(await handlers.upload_document(ctx, await file.read()))


@router.get("/permits/verify", response_model=PermitOut, tags=["applicant"])
async def verify_permit(
    ctx: Ctx,
    number: Annotated[
        str, Query(pattern=PERMIT_NUMBER.pattern, max_length=40, description="e.g. 503/PBG/00001/2026")
    ],
) -> dict[str, Any]:
    """Check that a permit number is genuine and still valid (e.g. from a QR code)."""
    a = await handlers.get_permit(ctx, number)
    return {
        "permit_number": a.permit_number,
        "permit_type": a.permit_type.code,
        "permit_type_name": a.permit_type.name,
        "status": a.status.value,
        "valid": a.valid_at(ctx.clock()),
        "issued_at": a.issued_at,
        "valid_until": a.valid_until,
        "desa_code": a.desa_code,
    }


@router.get("/permit-types", tags=["reference"])
async def permit_types(ctx: Ctx) -> list[dict[str, Any]]:
    """Permit types with their SLA, documents, type-specific fields and rules."""
    return [
        {
            "code": t.code,
            "name": t.name,
            "opd": t.opd,
            "dimension": t.dimension,
            "applicants": sorted(t.applicant_kinds),
            "sla_working_days": t.terms.sla_days,
            "inspection_required": t.terms.inspection_required,
            "deemed_approval": t.terms.deemed_approval,
            "validity_years": t.terms.validity_years,
            "documents": [{"code": d.code, "name": d.name, "required": d.required} for d in t.documents],
            "fields": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "label": f.label,
                    "required": f.required,
                    **({"choices": list(f.choices)} if f.choices else {}),
                    **f.limits(),
                }
                for f in t.fields
            ],
            "variants": {"field": t.variant_field, "values": t.variants} if t.variant_field else None,
        }
        for t in ctx.catalogue.permit_types.values()
    ]


@router.get("/kbli", tags=["reference"])
async def kbli(ctx: Ctx) -> list[dict[str, str]]:
    """The KBLI 2020 codes the business licence accepts."""
    return [{"code": code, "title": title} for code, title in ctx.catalogue.kbli.items()]


# ----- officer routes --------------------------------------------------------------------


@router.get("/officer/applications", response_model=ApplicationPage, tags=["officer"])
async def list_applications(
    ctx: Ctx,
    _: Caller,
    status: StatusName | None = None,
    permit_type: str | None = Query(None, pattern=r"^[a-z0-9_]{1,50}$"),
    kecamatan: str | None = Query(None, pattern=r"^\d{2}\.\d{2}\.\d{2}$"),
    applicant_kind: ApplicantKind | None = None,
    sla: SlaFilter | None = None,
    submitted_from: AwareDatetime | None = None,
    submitted_to: AwareDatetime | None = None,
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    """Officers' work list, newest first."""
    f = ListFilter(
        status, permit_type, kecamatan, applicant_kind, sla, submitted_from, submitted_to, page, page_size
    )
    items, total = await handlers.list_applications(ctx, f)
    return page_of(items, total, page, page_size)


@router.get("/officer/applications/{tracking_code}", response_model=OfficerApplicationOut, tags=["officer"])
async def officer_get(tracking_code: str, ctx: Ctx, _: Caller) -> dict[str, Any]:
    return officer_view(await handlers.get_for_officer(ctx, code_of(tracking_code)), ctx)


@router.get(
    "/officer/applications/{tracking_code}/documents/{document_id}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}},
    tags=["officer"],
)
async def officer_document(tracking_code: str, document_id: UUID, ctx: Ctx, _: Caller) -> Response:
    """An uploaded document of the application, as kept, shown inline (an audited read)."""
    document, data = await handlers.document(ctx, code_of(tracking_code), document_id)
    return attachment_response(document, data)


def officer_step(step: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`POST /officer/applications/{tracking_code}/<step>`: a command on the application."""
    return router.post(
        f"/officer/applications/{{tracking_code}}/{step}",
        response_model=OfficerApplicationOut,
        tags=["officer"],
    )


async def worked(
    ctx: Ctx, step: Callable[..., Awaitable[Application]], code: str, officer: Officer, *args: Any
) -> dict[str, Any]:
    """The application as an officer sees it after `step` (a use case) worked it."""
    return officer_view(await step(ctx, code_of(code), officer, *args), ctx)


@officer_step("document-check")
async def document_check(
    tracking_code: str, body: DocumentCheckIn, ctx: Ctx, officer: Caller
) -> dict[str, Any]:
    """Complete, or incomplete: back to the applicant with the missing list (SLA paused)."""
    complete = body.outcome == "complete"
    return await worked(
        ctx, handlers.check_documents, tracking_code, officer, complete, body.missing, body.note
    )


@officer_step("inspection")
async def schedule_inspection(
    tracking_code: str, body: InspectionIn, ctx: Ctx, officer: Caller
) -> dict[str, Any]:
    """Schedule (or reschedule) the field inspection, for types that need one."""
    when, inspector = body.scheduled_for, body.inspector
    return await worked(ctx, handlers.schedule_inspection, tracking_code, officer, when, inspector, body.note)


@officer_step("inspection/result")
async def record_inspection(
    tracking_code: str, body: InspectionResultIn, ctx: Ctx, officer: Caller
) -> dict[str, Any]:
    return await worked(
        ctx, handlers.record_inspection, tracking_code, officer, body.result, body.findings, body.inspected_at
    )


@officer_step("approve")
async def approve(tracking_code: str, body: ApproveIn, ctx: Ctx, officer: Caller) -> dict[str, Any]:
    return await worked(ctx, handlers.approve, tracking_code, officer, body.note)


@officer_step("reject")
async def reject(tracking_code: str, body: RejectIn, ctx: Ctx, officer: Caller) -> dict[str, Any]:
    return await worked(ctx, handlers.reject, tracking_code, officer, body.reasons, body.note)


@officer_step("issue")
async def issue(tracking_code: str, body: IssueIn, ctx: Ctx, officer: Caller) -> dict[str, Any]:
    """Issue the permit: number 503/<TYPE>/<seq:05d>/<YYYY> and validity period."""
    return await worked(ctx, handlers.issue, tracking_code, officer, body.valid_until)


@officer_step("revoke")
async def revoke(tracking_code: str, body: RevokeIn, ctx: Ctx, officer: Caller) -> dict[str, Any]:
    return await worked(ctx, handlers.revoke, tracking_code, officer, body.reason)
