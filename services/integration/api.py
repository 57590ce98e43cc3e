"""JSON API of the integration view: everything the pages show, documented in OpenAPI,
plus the live feed (Server-Sent Events) and the operator's rebuild."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.integration import handlers
from services.integration.domain import NotACitizenReference
from services.integration.views import (
    Ctx,
    find_indicator,
    indicator_functions,
    lang_of,
    localise_dashboard,
    localise_feed,
    localise_service,
    localise_timeline,
    localise_track,
    masterplan_view,
    officer,
)
from shared.kit.app import service_of
from shared.kit.auth import Officer, require_role
from shared.kit.bodies import RequestBody
from shared.kit.citizen import CitizenSession
from shared.kit.errors import InvalidField, NotFound
from shared.kit.paging import PageNumber, PageSize, page_of
from shared.schemas.common import CITIZEN_REF_PATTERN, CITIZEN_REF_PREFIX

router = APIRouter()
admin = require_role("admin")

Lang = Annotated[Literal["id", "en"] | None, Query(description="Language: id (default) or en")]


# ----- response models ------------------------------------------------------------------


class TrendPointOut(BaseModel):
    label: str
    start: datetime
    end: datetime
    value: float | None


class IndicatorOut(BaseModel):
    code: str
    name: str
    description: str | None
    function: str
    params: dict[str, Any]
    unit: str
    target: float
    direction: Literal["higher", "lower"]
    period: str
    dimension: str
    programme: str
    actual: float | None = Field(description="Value for the running period (shares 0..1)")
    assessment: Literal["met", "not_met", "no_data"]
    attainment: float | None = Field(description="How far towards the target, 0..1")
    trend: list[TrendPointOut]


class ProgrammeOut(BaseModel):
    code: str
    name: str
    dimension: str
    rpjmd: str = Field(description="RPJMD programme code")
    apbd: str = Field(description="APBD budget line")
    opd: str | None
    budget_idr: int | None
    indicators: list[IndicatorOut]


class DimensionOut(BaseModel):
    code: str
    name: str
    description: str | None
    items_open: int = Field(description="Open items whose events carry this dimension")
    indicators_met: int
    indicators_total: int
    programmes: list[ProgrammeOut]


class OpdOut(BaseModel):
    opd: str
    open: int
    done: int
    within_sla: int
    compliance: float | None = Field(description="Share of completed items with no SLA breach")
    median_handling_hours: float | None
    breached_items: int
    breaches: int


class DomainCount(BaseModel):
    open: int
    total: int


class KecamatanOut(BaseModel):
    code: str
    name: str
    row: int
    col: int
    open: int
    total: int
    shade: int = Field(description="0 (none) .. 4 (most open items)")
    by_domain: dict[str, DomainCount]


class DesaOut(BaseModel):
    code: str | None = Field(description="None for items without a desa (e.g. appointments)")
    name: str | None
    open: int
    total: int
    by_domain: dict[str, DomainCount]
    by_category: dict[str, DomainCount]


class KecamatanDetailOut(BaseModel):
    code: str
    name: str
    desa: list[DesaOut]


class DailyOut(BaseModel):
    day: date
    counts: dict[str, int]
    total: int


WITHHELD = "A title would be shown here but cannot be read any more: the citizen's data was erased"


class FeedEntryOut(BaseModel):
    seq: int | None
    at: datetime
    domain: str
    aggregate: str | None
    action: str
    label: str
    status: str | None
    code: str | None = Field(description="Masked tracking/booking code")
    category: str | None
    category_label: str | None
    opd: str | None
    kecamatan_code: str | None
    title: str | None = Field(description="Never of a confidential complaint")
    title_withheld: bool = Field(False, description=WITHHELD)
    title_note: str | None = Field(
        None, description="What the pages say in its place, in the chosen language"
    )
    detail: dict[str, Any]


class MasterplanInfo(BaseModel):
    name: str
    period: str | None
    region: str
    source: str
    dimensions: list[str]


class DashboardOut(BaseModel):
    generated_at: datetime
    seq: int = Field(description="Arrival sequence of the newest event in the view")
    rebuilding: bool
    masterplan: MasterplanInfo
    dimensions: list[DimensionOut]
    opds: list[OpdOut]
    kecamatan: list[KecamatanOut]
    daily: list[DailyOut]
    feed: list[FeedEntryOut]
    lag: dict[str, int] = Field(
        default_factory=dict, description="How far the view is behind each topic (events not yet applied)"
    )


class HistoryOut(BaseModel):
    at: datetime
    domain: str
    aggregate: str
    action: str
    label: str
    status: str | None
    detail: dict[str, Any]


class ItemOut(BaseModel):
    code: str
    domain: str
    aggregate: str
    status: str
    phase: str
    category: str | None
    opd: str | None
    facility: str | None
    kecamatan_code: str | None
    desa_code: str | None
    confidential: bool
    title: str | None
    title_withheld: bool = Field(False, description=WITHHELD)
    opened_at: datetime
    done_at: datetime | None
    updated_at: datetime


class TrackOut(ItemOut):
    category_label: str | None
    region_name: str | None = Field(description="Desa and kecamatan names")
    history: list[HistoryOut]


class TimelineEntryOut(HistoryOut):
    code: str | None
    category: str | None


class TimelineOut(BaseModel):
    citizen_ref: str
    items: list[ItemOut]
    timeline: list[TimelineEntryOut]


class TimelineLookupIn(RequestBody):
    citizen: str = Field(
        min_length=16,
        max_length=40,
        description=f"Citizen reference ({CITIZEN_REF_PREFIX}…) or a 16-digit NIK (turned into the reference, never stored)",
    )


class MyServiceOut(BaseModel):
    kind: Literal["complaint", "application", "appointment"]
    kind_label: str
    code: str = Field(
        description="Tracking code (complaint, permit application) or booking code (appointment)"
    )
    domain: str
    service: str = Field(description="Complaint category, permit type or polyclinic, in plain words")
    status: str
    status_label: str = Field(description="The status in plain words, as the tracking page shows it")
    phase: str
    filed_at: datetime
    updated_at: datetime
    tracking_url: str = Field(description="The item's tracking page on this view (path and query)")


class MyServicesPage(BaseModel):
    items: list[MyServiceOut]
    total: int
    page: int
    page_size: int


class RebuildOut(BaseModel):
    consumer: str
    topics: list[str]
    partitions: int
    records: int = Field(description="Records re-read and applied (or recognised) from the topics")
    complete: bool
    seconds: float


class FunctionOut(BaseModel):
    name: str
    description: str
    state: bool = Field(description="Read at a moment (end of period) rather than counted over it")
    params_schema: dict[str, Any]


# ----- routes ---------------------------------------------------------------------------


@router.get("/api/dashboard", response_model=DashboardOut, tags=["view"])
async def get_dashboard(request: Request, ctx: Ctx, lang: Lang = None) -> dict[str, Any]:
    """Everything on the dashboard: dimensions with indicators against targets and their
    trends, SLA compliance per OPD, the kecamatan breakdown, events per day, latest events."""
    return localise_dashboard(await handlers.dashboard(ctx), lang_of(request, lang))


@router.get("/api/dimensions", response_model=list[DimensionOut], tags=["view"])
async def get_dimensions(request: Request, ctx: Ctx, lang: Lang = None) -> list[dict[str, Any]]:
    """Smart-city dimensions of the masterplan, each with its programmes (RPJMD code, APBD
    budget line) and their indicators: actual against target, and the trend."""
    return localise_dashboard(await handlers.dashboard(ctx), lang_of(request, lang))["dimensions"]


@router.get("/api/indicators/{code}", response_model=IndicatorOut, tags=["view"])
async def get_indicator(code: str, request: Request, ctx: Ctx, lang: Lang = None) -> dict[str, Any]:
    indicator = find_indicator(
        localise_dashboard(await handlers.dashboard(ctx), lang_of(request, lang)), code
    )
    if indicator is None:
        raise NotFound(f"no indicator {code!r} in the masterplan")
    return indicator


@router.get("/api/opds", response_model=list[OpdOut], tags=["view"])
async def get_opds(ctx: Ctx) -> list[dict[str, Any]]:
    """Per OPD: open items, completed items, share completed within SLA (items with no
    sla_breached event), median handling time, breached items and breach events."""
    return await handlers.opd_table(ctx)


@router.get("/api/regions", response_model=list[KecamatanOut], tags=["view"])
async def get_regions(ctx: Ctx) -> list[dict[str, Any]]:
    """The kecamatan with open and total items by domain, and a shading level."""
    return await handlers.kecamatan_grid(ctx)


@router.get("/api/regions/{kecamatan_code}", response_model=KecamatanDetailOut, tags=["view"])
async def get_region(
    kecamatan_code: Annotated[str, Path(pattern=r"^\d{2}\.\d{2}\.\d{2}$")], ctx: Ctx
) -> dict[str, Any]:
    """One kecamatan's desa/kelurahan with counts by domain and category."""
    detail = await handlers.kecamatan_detail(ctx, kecamatan_code)
    if detail is None:
        raise NotFound(f"no kecamatan {kecamatan_code}")
    return detail


@router.get("/api/track/{code}", response_model=TrackOut, tags=["citizen"])
async def get_track(code: str, request: Request, ctx: Ctx, lang: Lang = None) -> dict[str, Any]:
    """Status of a tracking code (complaint, permit) or booking code (appointment) and
    what happened to the case, one entry per step in the citizen's words (the messages
    sent about it are not steps): public fields only."""
    found = await handlers.track(ctx, code)
    if found is None:
        raise NotFound(f"no item with code {code.strip().upper()[:40]!r}")
    return localise_track(found, lang_of(request, lang))


@router.get("/citizen/services", response_model=MyServicesPage, tags=["citizen"])
@router.get("/api/citizen/services", response_model=MyServicesPage, tags=["citizen"])
async def my_services(
    request: Request,
    citizen: CitizenSession,
    ctx: Ctx,
    page: PageNumber = 1,
    page_size: PageSize = 20,
    lang: Lang = None,
    code: Annotated[
        str | None, Query(max_length=40, description="Only this tracking or booking code")
    ] = None,
) -> dict[str, Any]:
    """ "Layanan saya": the complaints, permit applications and appointments started with
    the contact the citizen session proves, newest first, each with its status in plain
    words and its tracking page (Authorization: Bearer <session> from the notification
    service's POST /citizen/sessions; 401 without a valid one). A NIK stated in the
    session proves nothing, so it selects nothing. With `code`, the one item of that code
    if this contact started it (an empty page otherwise, whoever started it)."""
    items, total = await handlers.my_services(ctx, citizen.contact_ref, page, page_size, code)
    chosen = lang_of(request, lang)
    return page_of([localise_service(i, chosen) for i in items], total, page, page_size)


@router.get("/api/officer/citizens/{citizen_ref}/timeline", response_model=TimelineOut, tags=["officer"])
async def get_timeline(
    citizen_ref: Annotated[str, Path(pattern=CITIZEN_REF_PATTERN)],
    request: Request,
    _: Annotated[Officer, Depends(officer)],
    ctx: Ctx,
    lang: Lang = None,
) -> dict[str, Any]:
    """One citizen's complaints, applications, appointments and notifications, newest
    first (roles coordinator, admin)."""
    return localise_timeline(await handlers.timeline(ctx, citizen_ref), lang_of(request, lang))


@router.post("/api/officer/timeline", response_model=TimelineOut, tags=["officer"])
async def lookup_timeline(
    body: TimelineLookupIn,
    request: Request,
    _: Annotated[Officer, Depends(officer)],
    ctx: Ctx,
    lang: Lang = None,
) -> dict[str, Any]:
    """Like the GET, by citizen reference or NIK in the body (so a NIK never appears in a
    URL or a log); the NIK is turned into the reference and not kept."""
    try:
        data = await handlers.look_up_timeline(ctx, body.citizen)
    except NotACitizenReference as exc:
        raise InvalidField("citizen", str(exc)) from None
    return localise_timeline(data, lang_of(request, lang))


@router.get("/api/feed", response_model=list[FeedEntryOut], tags=["live"])
async def get_feed(
    request: Request,
    ctx: Ctx,
    after: Annotated[int, Query(ge=0, description="Only events after this sequence")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 30,
    lang: Lang = None,
) -> list[dict[str, Any]]:
    """Latest events, masked for the public (no citizen reference, masked codes, no
    title of a confidential complaint), oldest first."""
    chosen = lang_of(request, lang)
    return [localise_feed(e, chosen) for e in await handlers.recent_feed(ctx, after, limit)]


@router.get("/api/masterplan", tags=["view"])
async def get_masterplan(request: Request, ctx: Ctx, lang: Lang = None) -> dict[str, Any]:
    """The masterplan in force: dimensions, programmes and indicator definitions."""
    return masterplan_view(ctx.masterplan, lang_of(request, lang))


@router.get("/api/indicator-functions", response_model=list[FunctionOut], tags=["view"])
async def get_functions() -> list[dict[str, Any]]:
    """The named indicator functions a masterplan may use, with their parameters."""
    return indicator_functions()


@router.post("/admin/rebuild", response_model=RebuildOut, tags=["operations"])
async def post_rebuild(
    _: Annotated[Officer, Depends(admin)],
    ctx: Ctx,
    timeout: Annotated[float, Query(gt=0, le=3600)] = 600,
) -> dict[str, Any]:
    """Rebuild the read models from the topics (role admin): empties them and the
    consumer's inbox rows, then re-reads every topic from the beginning with a reader
    outside the live consumer group. 409 while another rebuild runs."""
    return await handlers.rebuild(ctx, timeout=timeout)


# ----- live feed (Server-Sent Events) ---------------------------------------------------

# Held open for as long as a dashboard is: outside the in-flight limit (app.py).
STREAM_PATH = "/events/stream"


@router.get(
    STREAM_PATH,
    tags=["live"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream(
    request: Request,
    ctx: Ctx,
    lang: Lang = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events (`event: sinergi`, `id` = arrival sequence), one per event as
    it is applied, masked like `/api/feed`. A reconnecting browser sends Last-Event-ID
    and gets what it missed (up to 50)."""
    chosen = lang_of(request, lang)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    return StreamingResponse(
        _events(request, ctx, chosen, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(entry: dict[str, Any], lang: str) -> str:
    payload = json.dumps(jsonable_encoder(localise_feed(entry, lang)), ensure_ascii=False)
    return f"id: {entry['seq']}\nevent: sinergi\ndata: {payload}\n\n"


async def _events(
    request: Request, ctx: handlers.Context, lang: str, after: int | None
) -> AsyncIterator[str]:
    hub = ctx.feed
    assert hub is not None, "the live feed runs in every served instance"
    settings = request.app.state.settings
    queue = await hub.subscribe()
    loop = asyncio.get_running_loop()
    ends = loop.time() + settings.stream_max_seconds
    last_sent = loop.time()
    seen = 0
    try:
        yield "retry: 3000\n: connected\n\n"
        if after is not None:
            for entry in await handlers.recent_feed(ctx, after, 50):
                seen = max(seen, entry["seq"])
                yield _sse(entry, lang)
        while loop.time() < ends and not service_of(request).shutting_down:
            try:
                entry = await asyncio.wait_for(queue.get(), timeout=1.0)
            except TimeoutError:
                if loop.time() - last_sent > 15:
                    last_sent = loop.time()
                    yield ": keep-alive\n\n"
                continue
            if entry["seq"] is not None and entry["seq"] <= seen:
                continue
            last_sent = loop.time()
            yield _sse(entry, lang)
    finally:
        hub.unsubscribe(queue)
