"""HTTP routes of the complaints service: parse, authorise, call a use case, shape the
answer. Citizens file and follow complaints by tracking code; officers work them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator

from services.complaints import domain, handlers, open311
from services.complaints.domain import Complaint
from services.complaints.repository import ORDERS, ListFilter
from shared.kit import attachments
from shared.kit.app import context_dependency
from shared.kit.attachments import Attachment, OfficerAttachmentOut, attachment_response, attachment_view
from shared.kit.auth import Officer, require_role
from shared.kit.bodies import RequestBody, with_example
from shared.kit.codes import CODE_PATTERN, normalise_code
from shared.kit.limits import Limit, limited
from shared.kit.paging import PageNumber, PageSize, page_of
from shared.reference import require_desa
from shared.reference.fields import DesaCode, MobilePhone, Nik
from shared.reference.phone import mask_email, mask_phone
from shared.schemas.common import GeoPoint, Locale
from shared.schemas.complaints import ComplaintKind

router = APIRouter()

Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]
# Abuse limits per client address (numbers and reasons: docs/operations.md): a village
# office or a kiosk files for many citizens from one address.
FILING = Limit("complaints.filing", 30, 3600)
FOLLOW_UP = Limit("complaints.follow_up", 30, 3600)
# Up to three photos per filing.
PHOTO_UPLOADS = Limit("complaints.photo_uploads", 3 * FILING.count, 3600)
MAX_PHOTOS = 3
Admin = Annotated[Officer, Depends(require_role())]
Coordinator = Annotated[Officer, Depends(require_role("coordinator"))]
AnyOfficer = Annotated[Officer, Depends(require_role("coordinator", "opd_officer"))]
TrackingCode = Annotated[str, Field(pattern=CODE_PATTERN, examples=["ADU-2611-7K3M-9QW2-XAB4D"])]
# The API's names of what the domain defines.
StatusName = Literal[tuple(s.value for s in domain.Status)]
SlaFilter = Literal[domain.SlaState.BREACHED.value, domain.SlaState.AT_RISK.value]


# ----- requests --------------------------------------------------------------------------


class ReporterIn(RequestBody):
    nik: Nik | None = Field(None, description="16-digit NIK; required unless anonymous")
    name: str | None = Field(None, max_length=100)
    phone: MobilePhone | None = None
    email: EmailStr | None = None


class FileComplaintIn(RequestBody):
    model_config = with_example(
        {
            "kind": "pengaduan",
            "category": "jalan_rusak",
            "title": "Jalan berlubang di depan balai desa",
            "description": "Lubang besar di jalan desa membahayakan pengendara motor.",
            "desa_code": "33.06.01.2001",
            "reporter": {"nik": "3306061708900001", "phone": "081234567890"},
        }
    )

    kind: ComplaintKind
    category: str = Field(max_length=50, description="See GET /categories")
    title: str = Field(min_length=domain.TITLE_LENGTH[0], max_length=domain.TITLE_LENGTH[1])
    description: str = Field(min_length=domain.DESCRIPTION_LENGTH[0], max_length=domain.DESCRIPTION_LENGTH[1])
    desa_code: DesaCode
    location: GeoPoint | None = None
    anonymous: bool = Field(False, description="Hide the reporter from officers' public views")
    confidential: bool = Field(False, description="Keep the content out of public views")
    reporter: ReporterIn | None = None
    locale: Locale = "id"
    photos: list[UUID] = Field(
        default_factory=list,
        max_length=MAX_PHOTOS,
        description="Ids of photos uploaded first with POST /complaints/photos (at most 3)",
    )

    @field_validator("location")
    @classmethod
    def _within_purworejo(cls, value: GeoPoint | None) -> GeoPoint | None:
        if value is not None and not domain.within_purworejo(value):
            raise ValueError("location is outside Kabupaten Purworejo")
        return value

    @model_validator(mode="after")
    def _reporter_rules(self) -> FileComplaintIn:
        if self.anonymous:
            return self
        if self.reporter is None or not self.reporter.nik:
            raise ValueError("reporter.nik is required unless the complaint is anonymous")
        if not (self.reporter.phone or self.reporter.email):
            raise ValueError("reporter.phone or reporter.email is required to send updates")
        return self


class DispatchIn(RequestBody):
    opd: str | None = Field(None, max_length=20, description="OPD code; default: the category's OPD")
    note: str | None = Field(None, max_length=2000)


class NoteIn(RequestBody):
    note: str | None = Field(None, max_length=2000)


class ResponseIn(RequestBody):
    response: str = Field(min_length=5, max_length=5000)


class ResolveIn(RequestBody):
    resolution: str | None = Field(None, max_length=5000)
    photo: UUID | None = Field(
        None, description="Id of a photo of the finished work, uploaded first with POST /complaints/photos"
    )


class RejectIn(RequestBody):
    reason_code: domain.RejectionReason
    reason: str | None = Field(None, max_length=2000)


class MergeIn(RequestBody):
    duplicate_of: TrackingCode


class RatingIn(RequestBody):
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=1000)


class ReopenIn(RequestBody):
    reason: str | None = Field(None, max_length=2000)


class ApiKeyIn(RequestBody):
    client: str = Field(min_length=3, max_length=100, description="The client application, and who runs it")


# ----- responses -------------------------------------------------------------------------


class FiledOut(BaseModel):
    tracking_code: str
    status: str
    verify_due: datetime
    close_due: datetime


class HistoryOut(BaseModel):
    at: datetime
    action: str
    status: str
    note: str | None = None


class ClockOut(BaseModel):
    name: str
    due_at: datetime
    state: str


class FollowedOut(BaseModel):
    status: str
    opd: str | None
    sla: list[ClockOut]


class ResolutionPhotoOut(BaseModel):
    id: UUID
    url: str


class PublicComplaintOut(BaseModel):
    tracking_code: str
    kind: str
    category: str
    category_name: str
    status: str
    opd: str | None
    title: str | None
    description: str | None
    desa_code: str
    kecamatan_code: str
    anonymous: bool
    confidential: bool
    filed_at: datetime
    rating: int | None
    sla: list[ClockOut]
    history: list[HistoryOut]
    resolution_photo: ResolutionPhotoOut | None = Field(
        None, description="The photo of the finished work the complaint was resolved with"
    )
    followed: FollowedOut | None = Field(
        None,
        description="For a complaint merged into another: that one's progress, followed with "
        "this tracking code (its own code is not given out: it lets its filer rate and reopen)",
    )


class OfficerComplaintOut(PublicComplaintOut):
    photos: list[OfficerAttachmentOut]
    duplicate_of: str | None
    reporter: dict[str, str | None] | None
    location: GeoPoint | None
    reopen_count: int
    history_actors: list[str]


class ComplaintPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


class ApiKeyOut(BaseModel):
    id: UUID
    client: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    issued_at: datetime
    issued_by: str
    revoked_at: datetime | None
    revoked_by: str | None


class IssuedApiKeyOut(ApiKeyOut):
    api_key: str = Field(description="The key itself: shown this once, kept only hashed")


def _clocks(c: Complaint, now: datetime) -> list[dict[str, Any]]:
    return [{"name": k.name, "due_at": k.due_at, "state": k.state(now)} for k in c.clocks.values()]


def followed_view(original: Complaint, now: datetime) -> dict[str, Any]:
    return {"status": original.status.value, "opd": original.opd, "sla": _clocks(original, now)}


def public_view(c: Complaint, now: datetime) -> dict[str, Any]:
    hidden = c.confidential
    return {
        "tracking_code": c.tracking_code,
        "kind": c.kind,
        "category": c.category.code,
        "category_name": c.category.name,
        "status": c.status.value,
        "opd": c.opd,
        "title": None if hidden else c.title,
        "description": None if hidden else c.description,
        "desa_code": c.desa_code,
        "kecamatan_code": c.kecamatan_code,
        "anonymous": c.anonymous,
        "confidential": c.confidential,
        "filed_at": c.filed_at,
        "rating": c.rating,
        "sla": _clocks(c, now),
        "history": [
            {
                "at": h.at,
                "action": h.action,
                "status": h.status.value,
                "note": None if hidden else h.note,
            }
            for h in c.history
        ],
        "resolution_photo": None
        if hidden or c.resolution_photo is None
        else {"id": c.resolution_photo, "url": f"/complaints/{c.tracking_code}/resolution-photo"},
    }


def officer_view(c: Complaint, now: datetime, photos: list[Attachment] | None = None) -> dict[str, Any]:
    view = public_view(c, now)
    address = f"/officer/complaints/{c.tracking_code}/photos/%s"
    # The reporter's photos; the finished work's is `resolution_photo`, at the same address.
    view["photos"] = [
        attachment_view(p, address % p.id) for p in photos or [] if p.label != domain.RESOLUTION_PHOTO
    ]
    if c.resolution_photo is not None:
        view["resolution_photo"] = {"id": c.resolution_photo, "url": address % c.resolution_photo}
    view.update(title=c.title, description=c.description, duplicate_of=c.duplicate_of)
    view["history"] = [
        {"at": h.at, "action": h.action, "status": h.status.value, "note": h.note} for h in c.history
    ]
    # Officers see a masked contact; anonymous reporters stay hidden from everyone.
    view["reporter"] = (
        None
        if c.anonymous
        else {
            "name": c.reporter.name,
            "phone": mask_phone(c.reporter.phone) if c.reporter.phone else None,
            "email": mask_email(c.reporter.email) if c.reporter.email else None,
        }
    )
    view["location"] = c.location
    view["reopen_count"] = c.reopen_count
    view["history_actors"] = [h.actor for h in c.history]
    return view


# ----- routes ----------------------------------------------------------------------------


@router.post("/complaints", status_code=201, response_model=FiledOut, tags=["citizen"], **limited(FILING))
async def file_complaint(body: FileComplaintIn, ctx: Ctx) -> dict[str, Any]:
    """File a complaint, aspiration or information request (no login needed)."""
    desa = require_desa(body.desa_code)
    complaint = await handlers.file_complaint(
        ctx,
        handlers.FileComplaint(
            kind=body.kind,
            category=body.category,
            title=body.title,
            description=body.description,
            desa_code=desa.code,
            kecamatan_code=desa.kecamatan_code,
            anonymous=body.anonymous,
            confidential=body.confidential,
            reporter=domain.Reporter(**(body.reporter or ReporterIn()).model_dump()),
            locale=body.locale,
            location=body.location,
            photos=body.photos,
        ),
    )
    return {
        "tracking_code": complaint.tracking_code,
        "status": complaint.status.value,
        "verify_due": complaint.clocks["verification"].due_at,
        "close_due": complaint.clocks["completion"].due_at,
    }


@attachments.upload_route(router, "/complaints/photos", PHOTO_UPLOADS, tag="citizen")
async def upload_photo(
    file: Annotated[UploadFile, File(description="JPEG or PNG, at most 5 MB")], ctx: Ctx
) -> dict[str, Any]:
    """Upload one photo for a complaint about to be filed, then name its id in the
    filing's `photos`. The type is read from the content (JPEG or PNG); the photo is kept
    re-encoded, without EXIF (the phone's GPS position, its make) or other metadata.
    An upload no filing names within 24 hours is deleted."""
    return attachment_view(await handlers.upload_photo(ctx, await file.read()))


@router.get("/complaints/{tracking_code}", response_model=PublicComplaintOut, tags=["citizen"])
async def get_complaint(tracking_code: str, ctx: Ctx) -> dict[str, Any]:
    """Public status and history; confidential content and anonymous reporters hidden."""
    c, followed = await handlers.follow(ctx, normalise_code(tracking_code))
    now = ctx.clock()
    return {**public_view(c, now), "followed": followed_view(followed, now) if followed else None}


@router.get(
    "/complaints/{tracking_code}/resolution-photo",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The photo"}},
    tags=["citizen"],
)
async def get_resolution_photo(tracking_code: str, ctx: Ctx) -> Response:
    """The photo of the finished work the complaint was resolved with (not on a
    confidential complaint)."""
    return attachment_response(*await handlers.resolution_photo(ctx, normalise_code(tracking_code)))


@router.post(
    "/complaints/{tracking_code}/rating",
    response_model=PublicComplaintOut,
    tags=["citizen"],
    **limited(FOLLOW_UP),
)
async def rate(tracking_code: str, body: RatingIn, ctx: Ctx) -> dict[str, Any]:
    """The reporter rates the resolution; this closes the complaint."""
    c = await handlers.rate(ctx, normalise_code(tracking_code), body.rating, body.comment)
    return public_view(c, ctx.clock())


@router.post(
    "/complaints/{tracking_code}/reopen",
    response_model=PublicComplaintOut,
    tags=["citizen"],
    **limited(FOLLOW_UP),
)
async def reopen(tracking_code: str, body: ReopenIn, ctx: Ctx) -> dict[str, Any]:
    """'Not fixed': reopen within the window after resolution."""
    c = await handlers.reopen(ctx, normalise_code(tracking_code), body.reason)
    return public_view(c, ctx.clock())


@router.get("/categories", tags=["reference"])
async def categories(ctx: Ctx) -> list[dict[str, str]]:
    return [
        {"code": c.code, "name": c.name, "opd": c.opd, "dimension": c.dimension}
        for c in ctx.catalogue.categories.values()
    ]


@router.get("/opds", tags=["reference"])
async def opds(ctx: Ctx) -> list[dict[str, str]]:
    return [{"code": o.code, "name": o.name} for o in ctx.catalogue.opds.values()]


@router.get("/officer/complaints", response_model=ComplaintPage, tags=["officer"])
async def list_complaints(
    ctx: Ctx,
    officer: AnyOfficer,
    status: StatusName | None = None,
    opd: str | None = Query(None, max_length=20),
    category: str | None = Query(None, max_length=50),
    kecamatan: str | None = Query(None, pattern=r"^\d{2}\.\d{2}\.\d{2}$"),
    kind: ComplaintKind | None = None,
    sla: SlaFilter | None = None,
    filed_from: datetime | None = None,
    filed_to: datetime | None = None,
    sort: Literal[tuple(ORDERS)] = "filed",
    page: PageNumber = 1,
    page_size: PageSize = 20,
) -> dict[str, Any]:
    """Officers' work list. An OPD officer sees the complaints disposed to their OPD.
    `sort=due` puts the soonest running SLA clock first (an inbox), else newest first."""
    f = ListFilter(status, opd, category, kecamatan, kind, sla, filed_from, filed_to, page, page_size, sort)
    items, total = await handlers.list_complaints(ctx, f, officer)
    return page_of(items, total, page, page_size)


@router.get("/officer/complaints/{tracking_code}", response_model=OfficerComplaintOut, tags=["officer"])
async def officer_get(tracking_code: str, ctx: Ctx, officer: AnyOfficer) -> dict[str, Any]:
    c, photos = await handlers.get_for_officer(ctx, normalise_code(tracking_code), officer)
    return officer_view(c, ctx.clock(), photos)


@router.get(
    "/officer/complaints/{tracking_code}/photos/{photo_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The photo"}},
    tags=["officer"],
)
async def officer_photo(tracking_code: str, photo_id: UUID, ctx: Ctx, officer: AnyOfficer) -> Response:
    """A photo of the complaint, as kept (an audited read, like the complaint itself)."""
    photo, data = await handlers.photo(ctx, normalise_code(tracking_code), photo_id, officer)
    return attachment_response(photo, data)


def officer_step(step: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`POST /officer/complaints/{tracking_code}/<step>`: a command on the complaint."""
    return router.post(
        f"/officer/complaints/{{tracking_code}}/{step}", response_model=OfficerComplaintOut, tags=["officer"]
    )


@officer_step("verify")
async def verify(tracking_code: str, ctx: Ctx, officer: Coordinator) -> dict[str, Any]:
    c = await handlers.verify(ctx, normalise_code(tracking_code), officer)
    return officer_view(c, ctx.clock())


@officer_step("dispatch")
async def dispatch(tracking_code: str, body: DispatchIn, ctx: Ctx, officer: Coordinator) -> dict[str, Any]:
    """Dispose (disposisi) to an OPD; again while dispatched to re-dispose."""
    c = await handlers.dispatch(ctx, normalise_code(tracking_code), officer, body.opd, body.note)
    return officer_view(c, ctx.clock())


@officer_step("progress")
async def progress(tracking_code: str, body: NoteIn, ctx: Ctx, officer: AnyOfficer) -> dict[str, Any]:
    c = await handlers.update_progress(ctx, normalise_code(tracking_code), officer, body.note)
    return officer_view(c, ctx.clock())


@officer_step("responses")
async def respond(tracking_code: str, body: ResponseIn, ctx: Ctx, officer: AnyOfficer) -> dict[str, Any]:
    c = await handlers.respond(ctx, normalise_code(tracking_code), officer, body.response)
    return officer_view(c, ctx.clock())


@officer_step("resolve")
async def resolve(tracking_code: str, body: ResolveIn, ctx: Ctx, officer: AnyOfficer) -> dict[str, Any]:
    """Resolved, optionally with a photo of the finished work (uploaded first with
    POST /complaints/photos), which the reporter sees when following the complaint."""
    c = await handlers.resolve(ctx, normalise_code(tracking_code), officer, body.resolution, body.photo)
    return officer_view(c, ctx.clock())


@officer_step("reject")
async def reject(tracking_code: str, body: RejectIn, ctx: Ctx, officer: Coordinator) -> dict[str, Any]:
    """Reject, e.g. as not within the regency's authority (bukan kewenangan)."""
    c = await handlers.reject(ctx, normalise_code(tracking_code), officer, body.reason_code, body.reason)
    return officer_view(c, ctx.clock())


@officer_step("merge")
async def merge(tracking_code: str, body: MergeIn, ctx: Ctx, officer: Coordinator) -> dict[str, Any]:
    """Merge this complaint into an earlier one it duplicates."""
    c = await handlers.merge(ctx, normalise_code(tracking_code), officer, body.duplicate_of)
    return officer_view(c, ctx.clock())


# ----- Open311 API keys (the GeoReport v2 routes: open311_api.py) ------------------------------


@router.get("/admin/open311/keys", response_model=list[ApiKeyOut], tags=["admin"])
async def open311_keys(ctx: Ctx, _: Admin) -> list[open311.ApiKey]:
    """Client applications' Open311 keys, revoked ones included (never the keys)."""
    return await handlers.api_keys(ctx)


@router.post("/admin/open311/keys", status_code=201, response_model=IssuedApiKeyOut, tags=["admin"])
async def issue_open311_key(body: ApiKeyIn, ctx: Ctx, officer: Admin) -> dict[str, Any]:
    """Issue a key to a client application; the answer holds it this once (audited)."""
    key, secret = await handlers.issue_api_key(ctx, body.client, officer.subject)
    return {**vars(key), "api_key": secret}


@router.post("/admin/open311/keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["admin"])
async def revoke_open311_key(key_id: UUID, ctx: Ctx, officer: Admin) -> open311.ApiKey:
    """Revoke a key: its client's next request is refused 403 (audited)."""
    return await handlers.revoke_api_key(ctx, key_id, officer.subject)
