"""Server-rendered pages (Jinja2). They work without JavaScript; `live.js` adds live
updates (Server-Sent Events) where the browser runs it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.integration import domain, handlers
from services.integration.api import (
    consumer_lag,
    ctx_of,
    lang_of,
    localise_dashboard,
    localise_history,
    localise_track,
)
from services.integration.i18n import translator
from services.integration.masterplan import text
from shared.kit.auth import decode_token

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
STATIC = HERE / "static"
OFFICER_ROLES = {"admin", "coordinator"}

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


def _render(request: Request, template: str, lang: str, **values: Any) -> HTMLResponse:
    ctx = ctx_of(request)
    tz = ctx.masterplan.timezone

    def url(path: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if lang != "id":
            query["lang"] = lang
        return path + ("?" + urlencode(query) if query else "")

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
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, headers={"Content-Language": lang, "Vary": "Accept-Language"})


@router.get("/", response_class=HTMLResponse)
async def dashboard_page(request: Request, lang: str | None = None) -> HTMLResponse:
    chosen = lang_of(request, lang)
    data = {
        **localise_dashboard(await handlers.dashboard(ctx_of(request)), chosen),
        "lag": consumer_lag(request),
    }
    return _render(request, "dashboard.html", chosen, data=data)


@router.get("/lacak", response_class=HTMLResponse)
async def track_page(
    request: Request, kode: Annotated[str | None, Query(max_length=60)] = None, lang: str | None = None
) -> HTMLResponse:
    chosen = lang_of(request, lang)
    item, error, status = None, None, 200
    if kode:
        code = kode.strip().upper()
        if not handlers.CODE_PATTERN.match(code):
            error, status = translator(chosen)("track.invalid"), 422
        else:
            found = await handlers.track(ctx_of(request), code)
            if found is None:
                error, status = translator(chosen)("track.not_found", code=code), 404
            else:
                item = localise_track(found, chosen)
    response = _render(request, "lacak.html", chosen, kode=kode or "", item=item, error=error)
    response.status_code = status
    return response


async def _officer_page(
    request: Request, token: str | None, citizen: str | None, lang: str | None
) -> HTMLResponse:
    chosen = lang_of(request, lang)
    t = translator(chosen)
    data, error, status = None, None, 200
    bearer = request.headers.get("authorization", "")
    if not token and bearer.lower().startswith("bearer "):
        token = bearer[7:]  # a client that can send headers may use them here too
    if token or citizen:
        secret = request.app.state.settings.platform.auth_secret.get_secret_value()
        try:
            officer = decode_token(secret, (token or "").strip())
        except jwt.PyJWTError:
            officer = None
        if officer is None or officer.role not in OFFICER_ROLES:
            error, status = t("officer.unauthorised"), 401 if officer is None else 403
        elif citizen:
            key = request.app.state.settings.platform.citizen_ref_key.get_secret_value()
            try:
                ref = domain.lookup_ref(citizen, key)
            except domain.NotACitizenReference as exc:
                error, status = t("officer.bad_ref", reason=str(exc)), 422
            else:
                data = await handlers.timeline(ctx_of(request), ref)
                data["timeline"] = [localise_history(e, chosen) for e in data["timeline"]]
    response = _render(
        request,
        "petugas.html",
        chosen,
        data=data,
        error=error,
        token=token or "",
        # A NIK is never echoed back into the page; a reference is.
        citizen=citizen if citizen and citizen.strip().startswith("cr1_") else "",
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@router.get("/petugas", response_class=HTMLResponse)
async def officer_page(
    request: Request,
    token: Annotated[str | None, Query(max_length=2000)] = None,
    ref: Annotated[str | None, Query(max_length=40)] = None,
    lang: str | None = None,
) -> HTMLResponse:
    return await _officer_page(request, token, ref, lang)


@router.post("/petugas", response_class=HTMLResponse)
async def officer_page_post(request: Request, lang: str | None = None) -> HTMLResponse:
    """The form posts the token and the reference (or NIK) in the body, out of URLs and logs.
    An urlencoded body is read directly (the kit bounds its size)."""
    try:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"), max_num_fields=10)
    except ValueError:
        form = {}
    token = (form.get("token") or [""])[0][:2000]
    ref = (form.get("ref") or [""])[0][:40]
    return await _officer_page(request, token, ref, lang)


@router.get("/wilayah/{code}", response_class=HTMLResponse)
async def region_page(request: Request, code: str, lang: str | None = None) -> HTMLResponse:
    chosen = lang_of(request, lang)
    detail = await handlers.kecamatan_detail(ctx_of(request), code)
    response = _render(request, "wilayah.html", chosen, detail=detail)
    if detail is None:
        response.status_code = 404
    return response


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    types = {"live.js": "text/javascript", "style.css": "text/css"}
    if name not in types:
        return Response(status_code=404)
    return Response(
        (STATIC / name).read_bytes(),
        media_type=types[name],
        headers={"Cache-Control": "public, max-age=300"},
    )
