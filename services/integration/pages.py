"""Server-rendered pages (Jinja2). They work without JavaScript; `live.js` adds live
updates (Server-Sent Events) where the browser runs it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.integration import domain, handlers
from services.integration.i18n import translator
from services.integration.masterplan import text
from services.integration.views import (
    Ctx,
    lang_of,
    localise_dashboard,
    localise_timeline,
    localise_track,
    officer,
)
from shared.schemas.common import CITIZEN_REF_PREFIX

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
bearer = HTTPBearer(auto_error=False)

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _number(value: float, lang: str, digits: int = 1) -> str:
    out = f"{value:,.{digits}f}"
    if lang == "id":  # 1.234,5
        out = out.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return out


def fmt_value(value: float | None, unit: str, lang: str) -> str:
    if value is None:
        return "—"
    if unit == "ratio":
        return _number(value * 100, lang) + "%"
    if unit == "count":
        return _number(value, lang, 0)
    return _number(value, lang) + " " + translator(lang)(f"unit.{unit}")


def fmt_money(value: int | None, lang: str) -> str:
    return "—" if value is None else "Rp " + _number(value, lang, 0)


def fmt_time(value: datetime | None, tz: Any, with_date: bool = True) -> str:
    if value is None:
        return "—"
    local = value.astimezone(tz)
    return local.strftime("%d/%m/%Y %H:%M" if with_date else "%H:%M:%S")


def _render(request: Request, ctx: handlers.Context, template: str, lang: str, **values: Any) -> HTMLResponse:
    tz = ctx.masterplan.timezone
    # Behind the edge the view lives under a path (/dasbor): links carry it.
    root = request.scope.get("root_path", "")

    def url(path: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if lang != "id":
            query["lang"] = lang
        return root + path + ("?" + urlencode(query) if query else "")

    def switch_url() -> str:
        query = {k: v for k, v in request.query_params.items() if k not in ("lang", "token")}
        query["lang"] = "en" if lang == "id" else "id"
        return request.url.path + "?" + urlencode(query)

    html = env.get_template(template).render(
        t=translator(lang),
        lang=lang,
        text=lambda value: text(value, lang),
        url=url,
        switch_url=switch_url(),
        value=lambda v, unit: fmt_value(v, unit, lang),
        money=lambda v: fmt_money(v, lang),
        time=lambda v, with_date=True: fmt_time(v, tz, with_date),
        number=lambda v, digits=1: "—" if v is None else _number(v, lang, digits),
        sparkline=domain.sparkline,
        region=ctx.masterplan.region,
        root=root,
        path=request.url.path.removeprefix(root) or "/",
        **values,
    )
    return HTMLResponse(html, headers={"Content-Language": lang, "Vary": "Accept-Language"})


@router.get("/", response_class=HTMLResponse)
async def dashboard_page(request: Request, ctx: Ctx, lang: str | None = None) -> HTMLResponse:
    chosen = lang_of(request, lang)
    data = localise_dashboard(await handlers.dashboard(ctx), chosen)
    return _render(request, ctx, "dashboard.html", chosen, data=data)


@router.get("/lacak", response_class=HTMLResponse)
async def track_page(
    request: Request,
    ctx: Ctx,
    kode: Annotated[str | None, Query(max_length=60)] = None,
    lang: str | None = None,
) -> HTMLResponse:
    chosen = lang_of(request, lang)
    item, error, status = None, None, 200
    if kode:
        code = domain.lookup_code(kode)
        if code is None:
            error, status = translator(chosen)("track.invalid"), 422
        else:
            found = await handlers.track(ctx, code)
            if found is None:
                error, status = translator(chosen)("track.not_found", code=code), 404
            else:
                item = localise_track(found, chosen)
    response = _render(request, ctx, "lacak.html", chosen, kode=kode or "", item=item, error=error)
    response.status_code = status
    return response


async def _signed_in(request: Request, token: str) -> int:
    """The officer check of the API (the kit's `require_role`: token, role, audit actor)
    for a token from the page: 200, or the 401 / 403 to show on the page."""
    try:
        await officer(request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))
    except HTTPException as exc:
        return exc.status_code
    return 200


async def _officer_page(
    request: Request,
    ctx: handlers.Context,
    token: str | None,
    citizen: str | None,
    lang: str | None,
    credentials: HTTPAuthorizationCredentials | None,
) -> HTMLResponse:
    """Without a token or a citizen, the sign-in form; otherwise the token is checked
    first. A client that can send headers may send the token as a bearer header."""
    chosen = lang_of(request, lang)
    t = translator(chosen)
    data, error, status = None, None, 200
    if not token and credentials is not None:
        token = credentials.credentials
    if token or citizen:
        status = await _signed_in(request, (token or "").strip())
        if status != 200:
            error = t("officer.unauthorised")
        elif citizen:
            try:
                data = localise_timeline(await handlers.look_up_timeline(ctx, citizen), chosen)
            except domain.NotACitizenReference as exc:
                error, status = t("officer.bad_ref", reason=str(exc)), 422
    response = _render(
        request,
        ctx,
        "petugas.html",
        chosen,
        data=data,
        error=error,
        token=token or "",
        # A NIK is never echoed back into the page; a reference is.
        citizen=citizen if citizen and citizen.strip().startswith(CITIZEN_REF_PREFIX) else "",
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/petugas", response_class=HTMLResponse)
async def officer_page(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[str | None, Query(max_length=2000)] = None,
    ref: Annotated[str | None, Query(max_length=40)] = None,
    lang: str | None = None,
) -> HTMLResponse:
    return await _officer_page(request, ctx, token, ref, lang, credentials)


@router.post("/petugas", response_class=HTMLResponse)
async def officer_page_post(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    lang: str | None = None,
) -> HTMLResponse:
    """The form posts the token and the reference (or NIK) in the body, out of URLs and logs."""
    form = await _form(request)
    return await _officer_page(
        request, ctx, form.get("token", "")[:2000], form.get("ref", "")[:40], lang, credentials
    )


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's text fields (the kit bounds the body's size)."""
    form = await request.form(max_files=0, max_fields=10)
    return {name: value for name, value in form.items() if isinstance(value, str)}


@router.get("/wilayah/{code}", response_class=HTMLResponse)
async def region_page(request: Request, ctx: Ctx, code: str, lang: str | None = None) -> HTMLResponse:
    detail = await handlers.kecamatan_detail(ctx, code)
    response = _render(request, ctx, "wilayah.html", lang_of(request, lang), detail=detail)
    if detail is None:
        response.status_code = 404
    return response
