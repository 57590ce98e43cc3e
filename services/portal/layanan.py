"""Layanan saya's pages: after the one-time-code sign-in (antrean.py's /masuk pages,
`untuk=layanan`), everything the contact started, each linking to Lacak; for a resolved
complaint, the reporter's answer (fixed: a rating; not fixed: reopened, one question per
page); and the notification preferences form. Signing out (POST /keluar) forgets the
session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import ekspor_cases
from services.portal import layanan_cases as cases
from services.portal.antrean_cases import SignInNeeded
from services.portal.antrean_rules import ANY_CONTACT
from services.portal.domain import NO, YES, Answer
from services.portal.ekspor_rules import DOWNLOAD
from services.portal.i18n import translator
from services.portal.layanan_rules import CHANNELS, HOURS, LOCALES, RATINGS, read_fixed
from services.portal.pages import Ctx
from services.portal.web import (
    checked_form,
    json_download,
    language,
    message_page,
    not_found_page,
    render,
    see_other,
    text_fields,
    when,
)
from shared.kit.audit import Actor
from shared.reference.phone import mask_email, mask_phone

router = APIRouter(include_in_schema=False)
ORDER = ["kanal", "bahasa", "mulai", "selesai"]
SIGN_IN = f"/masuk?untuk={ANY_CONTACT}"
# What the list says after the citizen answered about a resolved complaint.
ANSWERED = ("dinilai", "dibuka")
# The pages of that answer: where "fixed" and "not fixed" lead, and their fields.
FIXED_NEXT = {YES: "nilai", NO: "belum-selesai"}
ANSWER_PAGES = {
    "nilai": ("layanan/nilai.html", ["nilai", "komentar"], cases.rate, "dinilai"),
    "belum-selesai": ("layanan/belum_selesai.html", ["alasan"], cases.reopen, "dibuka"),
}


def _masked(contact: str) -> str:
    return mask_email(contact) if "@" in contact else mask_phone(contact)


async def _page(
    request: Request,
    ctx: Any,
    page: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    answered: str | None = None,
) -> HTMLResponse:
    t = translator(language(request))
    found = await cases.overview(ctx, request.state.session, page, language(request))
    services = found.services or {}
    total, size = int(services.get("total", 0)), int(services.get("page_size", 1)) or 1
    return render(
        request,
        "layanan/index.html",
        status_code=422 if errors else 200,
        contact=_masked(found.contact),
        items=services.get("items", []),
        listed=found.services is not None,
        page=page,
        more=page * size < total,
        when=when,
        values=form if form is not None else found.preferences,
        channels=[(c, t(f"layanan.kanal_{c or 'otomatis'}"), None) for c in CHANNELS],
        locales=[(code, t(f"layanan.bahasa_{code}"), None) for code in LOCALES],
        hours=[(h, h) for h in HOURS],
        errors=errors or {},
        order=ORDER,
        saved=saved,
        answered=answered if answered in ANSWERED else None,
    )


@router.get("/layanan", response_class=HTMLResponse)
async def my_services(
    request: Request,
    ctx: Ctx,
    halaman: int = Query(1, ge=1, le=1000),
    tersimpan: str | None = None,
    aduan: str | None = None,
) -> Response:
    try:
        return await _page(request, ctx, halaman, saved=bool(tersimpan), answered=aduan)
    except SignInNeeded:
        return see_other(SIGN_IN)


@router.post("/layanan/pengaturan", response_class=HTMLResponse)
async def save_preferences(request: Request, ctx: Ctx) -> Response:
    form = await checked_form(request)
    fields = text_fields(form)
    try:
        result = await cases.save_preferences(ctx, request.state.session, fields)
        if result.errors:
            t = translator(language(request))
            errors = result.messages(t)
            return await _page(request, ctx, 1, form=fields, errors=errors)
    except SignInNeeded:
        return see_other(SIGN_IN)
    return see_other("/layanan?tersimpan=1#pengaturan")


@router.post(DOWNLOAD)
async def download(request: Request, ctx: Ctx) -> Response:
    """Unduh data saya: one JSON document of what every service links to the contact the
    citizen proved (a 503 page while any service is away: never a partial document)."""
    await checked_form(request)
    try:
        export = await ekspor_cases.own_export(ctx, request.state.session, Actor.of(request, "", "citizen"))
    except SignInNeeded:
        return see_other(SIGN_IN)
    return json_download(export.document, export.filename)


# ----- a resolved complaint: fixed or not -------------------------------------------------


def _complaint_page(
    request: Request,
    template: str,
    item: dict[str, Any],
    fields: list[str],
    result: Answer | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    t = translator(language(request))
    errors = result.messages(t) if result else {}
    return render(
        request,
        template,
        status_code=422 if errors else 200,
        item=item,
        back=f"/layanan/aduan/{item['code']}" if template != "layanan/aduan.html" else "/layanan",
        action=request.url.path,
        title=t("aduan.title", code=item["code"]),
        form=form or {},
        errors=errors,
        order=fields,
        ratings=[(r, t(f"aduan.nilai_{r}"), None) for r in RATINGS],
        fixed=[(YES, t("aduan.tuntas_ya"), None), (NO, t("aduan.tuntas_tidak"), None)],
    )


async def _waiting(request: Request, ctx: Any, code: str) -> dict[str, Any] | Response:
    """The citizen's own resolved complaint, or the page to show instead."""
    try:
        item = await cases.own_complaint(ctx, request.state.session, code, language(request))
    except SignInNeeded:
        return see_other(SIGN_IN)
    if item is None:
        return not_found_page(request)
    if not cases.waits_for_answer(item):
        return message_page(request, 409, "aduan.not_waiting_title", "error.aduan.not_waiting")
    return item


@router.get("/layanan/aduan/{code}", response_class=HTMLResponse)
async def fixed_question(request: Request, ctx: Ctx, code: str) -> Response:
    item = await _waiting(request, ctx, code)
    if isinstance(item, Response):
        return item
    return _complaint_page(request, "layanan/aduan.html", item, ["tuntas"])


@router.post("/layanan/aduan/{code}", response_class=HTMLResponse)
async def fixed_answer(request: Request, ctx: Ctx, code: str) -> Response:
    form = await checked_form(request)
    item = await _waiting(request, ctx, code)
    if isinstance(item, Response):
        return item
    result = read_fixed(text_fields(form))
    if result.errors:
        return _complaint_page(request, "layanan/aduan.html", item, ["tuntas"], result)
    next_page = FIXED_NEXT[result.values["tuntas"]]
    return see_other(f"/layanan/aduan/{item['code']}/{next_page}")


@router.get("/layanan/aduan/{code}/{step}", response_class=HTMLResponse)
async def answer_question(request: Request, ctx: Ctx, code: str, step: str) -> Response:
    if step not in ANSWER_PAGES:
        return not_found_page(request)
    item = await _waiting(request, ctx, code)
    if isinstance(item, Response):
        return item
    template, fields, _, _ = ANSWER_PAGES[step]
    return _complaint_page(request, template, item, fields)


@router.post("/layanan/aduan/{code}/{step}", response_class=HTMLResponse)
async def send_answer(request: Request, ctx: Ctx, code: str, step: str) -> Response:
    if step not in ANSWER_PAGES:
        return not_found_page(request)
    form = await checked_form(request)
    item = await _waiting(request, ctx, code)
    if isinstance(item, Response):
        return item
    template, fields, send, done = ANSWER_PAGES[step]
    fields_sent = text_fields(form)
    result = await send(ctx, item, fields_sent)
    if result.errors:
        return _complaint_page(request, template, item, fields, result, fields_sent)
    return see_other(f"/layanan?aduan={done}#daftar")
