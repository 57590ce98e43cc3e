"""The operations pages of the officers' workspace: the failed deliveries the
notification officers resend (`/petugas/pengiriman`), and the administrators' section
(`/petugas/operasi/…`): dead letters per consumer group with their replay, the outboxes
of the producing services, the audit trails. Thin routes as in petugas.py: read the
request, call one use case (operasi_cases.py), render. Everything works without
JavaScript; every action is a form sent with POST and answered with a redirect.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import ekspor_cases
from services.portal import operasi_cases as cases
from services.portal import operasi_rules as rules
from services.portal.clients.base import Refused
from services.portal.ekspor_rules import FIELDS
from services.portal.i18n import translator
from services.portal.pages import Ctx
from services.portal.petugas import Officer, officer_page
from services.portal.web import checked_form, instant, json_download, language, see_other, text_fields, when
from shared.kit.audit import Actor

router = APIRouter(include_in_schema=False)
Page = Annotated[int, Query(ge=1, le=1000)]


def _values(request: Request, ctx: Ctx) -> dict[str, Any]:
    """What every operations page shows: the section's navigation, times and ages."""
    t, now = translator(language(request)), ctx.clock()

    def ago(since: str | None) -> str:
        found = rules.age(instant(since), now)
        return t(found[0], n=found[1]) if found else "—"

    return {"section": rules.SECTION, "here": request.url.path, "when": when, "ago": ago}


# ----- failed deliveries (notification officers) -------------------------------------------


async def _deliveries(
    request: Request, ctx: Ctx, officer: cases.Signed, number: int, status_code: int = 200, **values: Any
) -> HTMLResponse:
    found = await cases.failed_deliveries(ctx, officer, number)
    total, size = int(found.get("total", 0)), int(found.get("page_size", rules.PAGE_SIZE)) or 1
    items = [{**n, "error": rules.short_error(n.get("last_error"))} for n in found.get("items", [])]
    return officer_page(
        request,
        "operasi/pengiriman.html",
        status_code,
        items=items,
        total=total,
        page=number,
        more=number * size < total,
        **_values(request, ctx),
        **values,
    )


@router.get(rules.DELIVERIES, response_class=HTMLResponse)
async def deliveries(
    request: Request, ctx: Ctx, officer: Officer, halaman: Page = 1, dikirim: bool = False
) -> Response:
    """The notifications whose delivery failed, newest first, each with its resend."""
    return await _deliveries(request, ctx, officer, halaman, sent=dikirim)


@router.post(f"{rules.DELIVERIES}/kirim-ulang", response_class=HTMLResponse)
async def resend(request: Request, ctx: Ctx, officer: Officer) -> Response:
    form = await checked_form(request)
    number = str(form.get("halaman") or "1")
    number = number if number.isdigit() and 0 < int(number) <= 1000 else "1"
    try:
        await cases.resend(ctx, officer, str(form.get("id") or ""))
    except Refused as refused:
        # Not failed (any more): sent already, or still being retried by the service.
        return await _deliveries(request, ctx, officer, int(number), refused.status, refused=True)
    return see_other(f"{rules.DELIVERIES}?" + urlencode({"halaman": number, "dikirim": "true"}))


# ----- dead letters (administrators) --------------------------------------------------------


async def _dead_letters(
    request: Request, ctx: Ctx, officer: cases.Signed, status_code: int = 200, **values: Any
) -> HTMLResponse:
    groups = await cases.dead_letters(ctx, officer)
    for group in groups:
        for letter in group.letters or ():
            letter["error"] = rules.short_error(letter.get("error"))
    values.setdefault("errors", {})
    return officer_page(
        request, "operasi/surat_mati.html", status_code, groups=groups, **_values(request, ctx), **values
    )


@router.get(rules.DEAD_LETTERS, response_class=HTMLResponse)
async def dead_letters(
    request: Request, ctx: Ctx, officer: Officer, diputar: int | None = Query(None, ge=0, le=100_000)
) -> Response:
    """Each consumer group's dead letters: why, from where, which event; replay."""
    return await _dead_letters(request, ctx, officer, replayed=diputar)


@router.post(f"{rules.DEAD_LETTERS}/putar-ulang", response_class=HTMLResponse)
async def replay(request: Request, ctx: Ctx, officer: Officer) -> Response:
    form = await checked_form(request)
    fields = text_fields(form)
    result, replayed = await cases.replay(ctx, officer, fields)
    if result.errors:
        t = translator(language(request))
        errors = {name: t(key) for name, key in result.errors.items()}
        return await _dead_letters(request, ctx, officer, 422, errors=errors)
    return see_other(f"{rules.DEAD_LETTERS}?" + urlencode({"diputar": replayed}))


# ----- outboxes (administrators) --------------------------------------------------------------


@router.get(rules.OUTBOX, response_class=HTMLResponse)
async def outboxes(request: Request, ctx: Ctx, officer: Officer) -> Response:
    """Each producing service's outbox: unpublished events, the oldest's age, the last
    publication."""
    now = ctx.clock()
    rows = [
        (
            found.service,
            found.state,
            rules.seconds_ago(found.state.get("oldest_age_s"), now) if found.state else None,
        )
        for found in await cases.outboxes(ctx, officer)
    ]
    return officer_page(request, "operasi/outbox.html", rows=rows, **_values(request, ctx))


# ----- the audit trail (administrators) -------------------------------------------------------


@router.get(rules.AUDIT, response_class=HTMLResponse)
async def audit(request: Request, ctx: Ctx, officer: Officer) -> Response:
    """The audit trail of one service, searched by officer, action, record and days."""
    form = {k: v for k, v in request.query_params.items() if k in rules.AUDIT_FIELDS}
    search = rules.read_audit_search(form)
    t = translator(language(request))
    actions = [(action, t(f"operasi.action.{action}")) for action in rules.ACTIONS]
    values = {"form": form, "services": rules.AUDITED, "actions": actions, **_values(request, ctx)}
    if search.errors:
        errors = {name: t(key) for name, key in search.errors.items()}
        return officer_page(
            request, "operasi/audit.html", 422, errors=errors, entries=[], page=1, more=False, **values
        )
    trail = await cases.audit(ctx, officer, search)
    query = {k: v for k, v in form.items() if k != "halaman" and v}
    address = f"{rules.AUDIT}?" + urlencode(query).replace("%", "%%") + ("&" if query else "") + "halaman=%d"
    return officer_page(
        request,
        "operasi/audit.html",
        entries=trail.entries,
        page=search.values["page"],
        more=trail.more,
        address=address,
        **values,
    )


# ----- a citizen's data export (the data protection officer) ----------------------------------


def _citizen_data_page(
    request: Request, ctx: Ctx, status_code: int = 200, form: dict[str, str] | None = None, **values: Any
) -> HTMLResponse:
    return officer_page(
        request,
        "operasi/data_warga.html",
        status_code,
        form=form or {},
        order=list(FIELDS),
        **_values(request, ctx),
        **values,
    )


@router.get(rules.CITIZEN_DATA, response_class=HTMLResponse)
async def citizen_data(request: Request, ctx: Ctx, officer: Officer) -> Response:
    """The form of a citizen's data export: NIK, and the phone and email they gave."""
    return _citizen_data_page(request, ctx)


@router.post(rules.CITIZEN_DATA, response_class=HTMLResponse)
async def citizen_data_export(request: Request, ctx: Ctx, officer: Officer) -> Response:
    """The citizen's data from every service as one JSON document (the services decide
    that only administrators may: their 403 is the "not authorised" page)."""
    form = await checked_form(request)
    fields = {k: v for k, v in form.items() if isinstance(v, str) and k in FIELDS}
    role = "admin" if "admin" in officer.roles else next(iter(officer.roles), "")
    actor = Actor.of(request, officer.subject, role, officer.opd)
    result, export = await ekspor_cases.officer_export(ctx, officer, actor, fields)
    if export is None:
        t = translator(language(request))
        return _citizen_data_page(request, ctx, 422, form=fields, errors=result.messages(t))
    return json_download(export.document, export.filename)
