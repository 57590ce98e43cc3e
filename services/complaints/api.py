"""HTTP routes of the complaints service: parse, authorise, call a use case, shape the
answer. Citizens file and follow complaints by tracking code; officers work them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from services.complaints import handlers
from services.complaints.domain import Complaint, Reporter
from services.complaints.repository import ListFilter
from shared.kit.app import context_dependency
from shared.kit.auth import Officer, require_role
from shared.kit.codes import CODE_PATTERN, normalise_code
from shared.kit.errors import Forbidden
from shared.reference import (
    require_desa,
)
from shared.reference.fields import DesaCode, MobilePhone, Nik
from shared.reference.phone import mask_email, mask_phone
from shared.schemas.common import GeoPoint

router = APIRouter()
TrackingCode = Annotated[str, Field(pattern=CODE_PATTERN, examples=["ADU-2611-7K3M-9QW2-XAB4D"])]

coordinator = require_role("coordinator")
any_officer = require_role("coordinator", "opd_officer")


ctx_of = context_dependency(handlers.Context)


# ----- requests --------------------------------------------------------------------------


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nik: Nik | None = Field(None, description="16-digit NIK; required unless anonymous")
    name: str | None = Field(None, max_length=100)
    phone: MobilePhone | None = None
    email: EmailStr | None = None


class FileComplaintIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "kind": "pengaduan",
                "category": "jalan_rusak",
                "title": "Jalan berlubang di depan balai desa",
                "description": "Lubang besar di jalan desa membahayakan pengendara motor.",
                "desa_code": "33.06.01.2001",
                "reporter": {"nik": "3306061708900001", "phone": "081234567890"},
            }
        },
    )

    kind: Literal["aspirasi", "pengaduan", "permintaan_informasi"]
    category: str = Field(max_length=50, description="See GET /categories")
    title: str = Field(min_length=5, max_length=150)
    description: str = Field(min_length=10, max_length=5000)
    desa_code: DesaCode
    location: GeoPoint | None = None
    anonymous: bool = Field(False, description="Hide the reporter from officers' public views")
    confidential: bool = Field(False, description="Keep the content out of public views")
    reporter: ReporterIn | None = None
    locale: Literal["id", "en"] = "id"

    @field_validator("location")
    @classmethod
    def _within_purworejo(cls, value: GeoPoint | None) -> GeoPoint | None:
        # Generous bounding box of Kabupaten Purworejo.
        if value is not None and not (-8.0 <= value.lat <= -7.4 and 109.7 <= value.lon <= 110.3):
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


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opd: str | None = Field(None, max_length=20, description="OPD code; default: the category's OPD")
    note: str | None = Field(None, max_length=2000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response: str = Field(min_length=5, max_length=5000)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str | None = Field(None, max_length=5000)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason_code: Literal["not_within_authority", "incomplete", "not_a_complaint", "spam"]
    reason: str | None = Field(None, max_length=2000)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duplicate_of: TrackingCode


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=1000)


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)


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
    duplicate_of: str | None
    sla: list[ClockOut]
    history: list[HistoryOut]


class OfficerComplaintOut(PublicComplaintOut):
    reporter: dict[str, str | None] | None
    location: GeoPoint | None
    reopen_count: int
    history_actors: list[str]


class ComplaintPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


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
        "duplicate_of": c.duplicate_of,
        "sla": [{"name": k.name, "due_at": k.due_at, "state": k.state(now)} for k in c.clocks.values()],
        "history": [
            {
                "at": h.at,
                "action": h.action,
                "status": h.status.value,
                "note": None if hidden else h.note,
            }
            for h in c.history
        ],
    }


def officer_view(c: Complaint, now: datetime) -> dict[str, Any]:
    view = public_view(c, now)
    view.update(title=c.title, description=c.description)
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


@router.post("/complaints", status_code=201, response_model=FiledOut, tags=["citizen"])
async def file_complaint(body: FileComplaintIn, request: Request) -> dict[str, Any]:
    """File a complaint, aspiration or information request (no login needed)."""
    reporter = body.reporter or ReporterIn()
    desa = require_desa(body.desa_code)
    complaint = await handlers.file_complaint(
        ctx_of(request),
        handlers.FileComplaint(
            kind=body.kind,
            category=body.category,
            title=body.title,
            description=body.description,
            desa_code=desa.code,
            kecamatan_code=desa.kecamatan_code,
            anonymous=body.anonymous,
            confidential=body.confidential,
            reporter=Reporter(
                nik=reporter.nik, name=reporter.name, phone=reporter.phone, email=reporter.email
            ),
            locale=body.locale,
            location=body.location,
        ),
    )
    return {
        "tracking_code": complaint.tracking_code,
        "status": complaint.status.value,
        "verify_due": complaint.clocks["verification"].due_at,
        "close_due": complaint.clocks["completion"].due_at,
    }


@router.get("/complaints/{tracking_code}", response_model=PublicComplaintOut, tags=["citizen"])
async def get_complaint(tracking_code: str, request: Request) -> dict[str, Any]:
    """Public status and history; confidential content and anonymous reporters hidden."""
    ctx = ctx_of(request)
    return public_view(await handlers.get(ctx, normalise_code(tracking_code)), ctx.clock())


@router.post("/complaints/{tracking_code}/rating", response_model=PublicComplaintOut, tags=["citizen"])
async def rate(tracking_code: str, body: RatingIn, request: Request) -> dict[str, Any]:
    """The reporter rates the resolution; this closes the complaint."""
    ctx = ctx_of(request)
    c = await handlers.rate(ctx, normalise_code(tracking_code), body.rating, body.comment)
    return public_view(c, ctx.clock())


@router.post("/complaints/{tracking_code}/reopen", response_model=PublicComplaintOut, tags=["citizen"])
async def reopen(tracking_code: str, body: ReopenIn, request: Request) -> dict[str, Any]:
    """'Not fixed': reopen within the window after resolution."""
    ctx = ctx_of(request)
    c = await handlers.reopen(ctx, normalise_code(tracking_code), body.reason)
    return public_view(c, ctx.clock())


@router.get("/categories", tags=["reference"])
async def categories(request: Request) -> list[dict[str, str]]:
    cat = ctx_of(request).catalogue
    return [
        {"code": c.code, "name": c.name, "opd": c.opd, "dimension": c.dimension}
        for c in cat.categories.values()
    ]


@router.get("/opds", tags=["reference"])
async def opds(request: Request) -> list[dict[str, str]]:
    return [{"code": o.code, "name": o.name} for o in ctx_of(request).catalogue.opds.values()]


@router.get("/officer/complaints", response_model=ComplaintPage, tags=["officer"])
async def list_complaints(
    request: Request,
    officer: Annotated[Officer, Depends(any_officer)],
    status: Literal[
        "submitted",
        "verified",
        "dispatched",
        "in_progress",
        "resolved",
        "closed",
        "rejected",
        "merged",
    ]
    | None = None,
    opd: str | None = Query(None, max_length=20),
    category: str | None = Query(None, max_length=50),
    kecamatan: str | None = Query(None, pattern=r"^\d{2}\.\d{2}\.\d{2}$"),
    kind: Literal["aspirasi", "pengaduan", "permintaan_informasi"] | None = None,
    sla: Literal["breached", "at_risk"] | None = None,
    filed_from: datetime | None = None,
    filed_to: datetime | None = None,
    page: int = Query(1, ge=1, le=10_000),
    page_size: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    """Officers' work list. An OPD officer sees the complaints disposed to their OPD."""
    if officer.role == "opd_officer":
        opd = officer.opd
    f = ListFilter(status, opd, category, kecamatan, kind, sla, filed_from, filed_to, page, page_size)
    items, total = await handlers.list_complaints(ctx_of(request), f)
    return {"items": items, "total": total, "page": page, "page_size": page_size}


@router.get("/officer/complaints/{tracking_code}", response_model=OfficerComplaintOut, tags=["officer"])
async def officer_get(
    tracking_code: str, request: Request, officer: Annotated[Officer, Depends(any_officer)]
) -> dict[str, Any]:
    ctx = ctx_of(request)
    c = await handlers.get(ctx, normalise_code(tracking_code))
    if not officer.may_act_for_opd(c.opd):
        raise Forbidden(f"complaint {c.tracking_code} is disposed to another OPD")
    return officer_view(c, ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/verify",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def verify(
    tracking_code: str, request: Request, officer: Annotated[Officer, Depends(coordinator)]
) -> dict[str, Any]:
    ctx = ctx_of(request)
    return officer_view(await handlers.verify(ctx, normalise_code(tracking_code), officer), ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/dispatch",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def dispatch(
    tracking_code: str,
    body: DispatchIn,
    request: Request,
    officer: Annotated[Officer, Depends(coordinator)],
) -> dict[str, Any]:
    """Dispose (disposisi) to an OPD; again while dispatched to re-dispose."""
    ctx = ctx_of(request)
    c = await handlers.dispatch(ctx, normalise_code(tracking_code), officer, body.opd, body.note)
    return officer_view(c, ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/progress",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def progress(
    tracking_code: str,
    body: NoteIn,
    request: Request,
    officer: Annotated[Officer, Depends(any_officer)],
) -> dict[str, Any]:
    ctx = ctx_of(request)
    c = await handlers.update_progress(ctx, normalise_code(tracking_code), officer, body.note)
    return officer_view(c, ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/responses",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def respond(
    tracking_code: str,
    body: ResponseIn,
    request: Request,
    officer: Annotated[Officer, Depends(any_officer)],
) -> dict[str, Any]:
    ctx = ctx_of(request)
    c = await handlers.respond(ctx, normalise_code(tracking_code), officer, body.response)
    return officer_view(c, ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/resolve",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def resolve(
    tracking_code: str,
    body: ResolveIn,
    request: Request,
    officer: Annotated[Officer, Depends(any_officer)],
) -> dict[str, Any]:
    ctx = ctx_of(request)
    c = await handlers.resolve(ctx, normalise_code(tracking_code), officer, body.resolution)
    return officer_view(c, ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/reject",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def reject(
    tracking_code: str,
    body: RejectIn,
    request: Request,
    officer: Annotated[Officer, Depends(coordinator)],
) -> dict[str, Any]:
    """Reject, e.g. as not within the regency's authority (bukan kewenangan)."""
    ctx = ctx_of(request)
    c = await handlers.reject(ctx, normalise_code(tracking_code), officer, body.reason_code, body.reason)
    return officer_view(c, ctx.clock())


@router.post(
    "/officer/complaints/{tracking_code}/merge",
    response_model=OfficerComplaintOut,
    tags=["officer"],
)
async def merge(
    tracking_code: str,
    body: MergeIn,
    request: Request,
    officer: Annotated[Officer, Depends(coordinator)],
) -> dict[str, Any]:
    """Merge this complaint into an earlier one it duplicates."""
    ctx = ctx_of(request)
    c = await handlers.merge(ctx, normalise_code(tracking_code), officer, body.duplicate_of)
    return officer_view(c, ctx.clock())
