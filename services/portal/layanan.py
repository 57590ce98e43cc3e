"""Layanan saya's pages: after the one-time-code sign-in (antrean.py's /masuk pages,
`untuk=layanan`), everything the contact started, each linking to Lacak, and the
notification preferences form. Signing out (POST /keluar) forgets the session."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.portal import layanan_cases as cases
from services.portal.antrean_cases import SignInNeeded
from services.portal.i18n import translator
from services.portal.layanan_rules import CHANNELS, HOURS, LOCALES
from services.portal.pages import Ctx
from services.portal.pages import _when as when
from services.portal.web import checked_form, language, render
from shared.reference.phone import mask_email, mask_phone

router = APIRouter(include_in_schema=False)
ORDER = ["kanal", "bahasa", "mulai", "selesai"]
SIGN_IN = "/masuk?untuk=layanan"


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
    )


@router.get("/layanan", response_class=HTMLResponse)
async def my_services(
    request: Request, ctx: Ctx, halaman: int = Query(1, ge=1, le=1000), tersimpan: str | None = None
) -> Response:
    try:
        return await _page(request, ctx, halaman, saved=bool(tersimpan))
    except SignInNeeded:
        return RedirectResponse(SIGN_IN, status_code=303)


@router.post("/layanan/pengaturan", response_class=HTMLResponse)
async def save_preferences(request: Request, ctx: Ctx) -> Response:
    form = await checked_form(request)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        result = await cases.save_preferences(ctx, request.state.session, fields)
        if result.errors:
            t = translator(language(request))
            errors = {name: t(key) for name, key in result.errors.items()}
            return await _page(request, ctx, 1, form=fields, errors=errors)
    except SignInNeeded:
        return RedirectResponse(SIGN_IN, status_code=303)
    return RedirectResponse("/layanan?tersimpan=1#pengaturan", status_code=303)
