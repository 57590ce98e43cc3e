"""The officers' workspace (/petugas): signing in with the regency's identity provider
(or the development sign-in where there is none), the complaints lists and a
complaint's page with its forms. Thin routes as in pages.py: read the request, call one
use case (petugas_cases.py), render. Everything works without JavaScript.

A signed-out officer asking for any workspace page is sent to sign in and comes back to
it; what an officer may see and do is decided by the complaints service with their own
token (a 403 there is the "not authorised" page).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from services.portal import klinik_cases
from services.portal import petugas_cases as cases
from services.portal.clients.base import Refused
from services.portal.domain import Answer
from services.portal.i18n import translator
from services.portal.pages import Ctx
from services.portal.petugas_rules import (
    CHECKABLE,
    CLINIC_HOME,
    DELIVERIES_HOME,
    DOCUMENT_CHECK,
    DOCUMENT_CHECK_FIELDS,
    FIELDS,
    IMAGE_TYPES,
    KEPT_FORM_PARAM,
    PERMIT_FIELDS,
    PERMIT_STEPS,
    PERMITS_HOME,
    REJECTION_REASONS,
    RESOLUTION_PHOTO,
    SIGN_IN,
    STEPS,
    TABS,
    Role,
    due_label,
    home_of,
    page_of,
    permit_steps_for,
    return_path,
    steps_for,
    tab_of,
)
from services.portal.web import (
    CsrfRefused,
    checked_form,
    chosen_file,
    inline_file,
    instant,
    language,
    refusal,
    render,
    see_other,
    text_fields,
    when,
)
from shared.kit.auth import ROLES
from shared.kit.web import page_headers
from shared.reference import find_desa, find_kecamatan

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
# A service's answer to a command its case's status no longer allows.
CONFLICT = 409
# Where a page's errors carry that answer: a notice above the page, not the error summary.
STALE = "stale"
# The officer's session cookie: only the workspace's pages are sent it.
OFFICER_COOKIE = "petugas"
COOKIE_PATH = "/petugas"
# The roles the development sign-in offers (each workspace's, and the administrator's).
DEVELOPMENT_ROLES = (
    Role.COORDINATOR.value,
    Role.OPD_OFFICER.value,
    Role.PERMIT_OFFICER.value,
    Role.HEALTH_OFFICER.value,
    Role.NOTIFICATION_OFFICER.value,
    "admin",
)
assert set(DEVELOPMENT_ROLES) <= set(ROLES)


async def signed_officer(request: Request, ctx: Ctx) -> cases.Signed:
    """The officer of this browser; `SignInNeeded` (a redirect, below) when none."""
    officer = await cases.current(ctx, request.cookies.get(OFFICER_COOKIE))
    request.state.officer = officer
    return officer


Officer = Annotated[cases.Signed, Depends(signed_officer)]


@dataclass(frozen=True)
class ListPage:
    """A list's tab (a status of the service's) and page, from its address."""

    status: str | None = Query(None, max_length=30)
    halaman: int = Query(1, ge=1, le=1000)


Asked = Annotated[ListPage, Depends()]


@dataclass(frozen=True)
class CasePage:
    """A case's page, from its address: the step just done, and the id of a form kept
    while the officer signed in again."""

    selesai: str | None = Query(None, max_length=20)
    formulir: str | None = Query(None, max_length=64)


Shown = Annotated[CasePage, Depends()]


def officer_page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("errors", {})
    response = render(
        request, f"petugas/{template}", status_code, officer=getattr(request.state, "officer", None), **values
    )
    access = request.app.state.service.context.officers
    if access is not None and access.provider is not None:
        response.headers.update(sign_out_headers(access.provider.issuer))
    return response


@cache
def sign_out_headers(issuer: str) -> dict[str, str]:
    """The kit's page policy, with the provider's origin as a form's target: signing out
    (a form) is answered with a redirect to the provider's end-session endpoint."""
    parts = urlsplit(issuer)
    headers = page_headers(form_targets=[f"{parts.scheme}://{parts.netloc}"])
    return {"Content-Security-Policy": headers["Content-Security-Policy"]}


def _message(
    request: Request, status_code: int, title: str, body: str, link: tuple[str, str] | None = None
) -> HTMLResponse:
    t = translator(language(request))
    return officer_page(request, "message.html", status_code, title=t(title), paragraphs=[t(body)], link=link)


# ----- signing in and out --------------------------------------------------------------------


@router.get("/petugas")
async def workspace(officer: Officer) -> Response:
    """The officer's list: complaints, or the licensing office's applications."""
    return see_other(home_of(officer.role))


@router.get("/petugas/masuk", response_class=HTMLResponse)
async def sign_in(request: Request, ctx: Ctx, lanjut: str | None = Query(None, max_length=500)) -> Response:
    """To the provider's sign-in page (or, in development without one, the development
    sign-in form)."""
    then = return_path(lanjut)
    if cases.development_sign_in(ctx):
        return await _development_page(request, ctx, then, {}, {})
    return see_other(await cases.begin(ctx, request.state.session, then))


async def _development_page(
    request: Request, ctx: Ctx, then: str, form: dict[str, str], errors: dict[str, str]
) -> HTMLResponse:
    t = translator(language(request))
    opds = [(o["code"], f"{o['code']} — {o['name']}") for o in await ctx.complaints.opds()]
    roles = [(role, t(f"petugas.role.{role}"), None) for role in DEVELOPMENT_ROLES]
    facilities = [(f["code"], f"{f['code']} — {f['name']}") for f in await klinik_cases.facilities(ctx)]
    return officer_page(
        request,
        "dev_masuk.html",
        422 if errors else 200,
        then=then,
        form=form,
        errors=errors,
        order=["nama", "peran", "opd", "fasilitas"],
        roles=roles,
        opds=opds,
        facilities=facilities,
    )


@router.post("/petugas/masuk", response_class=HTMLResponse)
async def development_sign_in(request: Request, ctx: Ctx) -> Response:
    """The development sign-in (no identity provider, never in production)."""
    form = await checked_form(request)
    if not cases.development_sign_in(ctx):
        return _message(request, 404, "notfound.title", "notfound.body")
    fields = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    t = translator(language(request))
    opds = {o["code"] for o in await ctx.complaints.opds()}
    errors: dict[str, str] = {}
    if not fields.get("nama"):
        errors["nama"] = t("error.petugas_nama.empty")
    if fields.get("peran") not in DEVELOPMENT_ROLES:
        errors["peran"] = t("error.peran.choose")
    elif fields["peran"] == Role.OPD_OFFICER and fields.get("opd") not in opds:
        errors["opd"] = t("error.opd.choose")
    elif fields["peran"] == Role.HEALTH_OFFICER and fields.get("fasilitas") not in {
        f["code"] for f in await klinik_cases.facilities(ctx)
    }:
        errors["fasilitas"] = t("error.fasilitas_petugas.choose")
    if errors:
        return await _development_page(request, ctx, return_path(fields.get("lanjut")), fields, errors)
    opd = fields.get("opd") if fields["peran"] == Role.OPD_OFFICER else None
    facility = fields.get("fasilitas") if fields["peran"] == Role.HEALTH_OFFICER else None
    cookie = await cases.sign_in_for_development(ctx, fields["peran"], opd, fields["nama"], facility)
    return _signed_in(request, cookie, return_path(fields.get("lanjut")))


def _signed_in(request: Request, cookie: str, then: str) -> Response:
    response = see_other(then)
    response.set_cookie(
        OFFICER_COOKIE, cookie, httponly=True, samesite="lax", secure=request.state.secure, path=COOKIE_PATH
    )
    return response


@router.get("/petugas/masuk/kembali", response_class=HTMLResponse)
async def returned(
    request: Request,
    ctx: Ctx,
    code: str | None = Query(None, max_length=4000),
    state: str | None = Query(None, max_length=200),
    error: str | None = Query(None, max_length=200),
) -> Response:
    """The provider's redirect after the officer signed in there (or did not)."""
    if error or not code or not state or cases.development_sign_in(ctx):
        return _message(request, 400, "petugas.failed.title", "petugas.failed.body", _again(request))
    try:
        cookie, then = await cases.finish(ctx, request.state.session, code, state)
    except cases.SignInFailed as failed:
        log.info("officer sign-in refused", extra={"reason": str(failed)[:200]})
        return _message(request, 400, "petugas.failed.title", "petugas.failed.body", _again(request))
    return _signed_in(request, cookie, then)


def _again(request: Request) -> tuple[str, str]:
    return SIGN_IN, translator(language(request))("petugas.signin_again")


@router.post("/petugas/keluar")
async def sign_out(request: Request, ctx: Ctx) -> Response:
    """End the session here and at the provider (RP-initiated logout), which sends the
    browser back to the signed-out page."""
    await checked_form(request)
    after = f"{ctx.officers.public_url if ctx.officers else ''}/petugas/keluar/selesai"
    provider_logout = await cases.sign_out(ctx, request.cookies.get(OFFICER_COOKIE), after)
    response = see_other(provider_logout or "/petugas/keluar/selesai")
    response.delete_cookie(
        OFFICER_COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=request.state.secure
    )
    return response


@router.get("/petugas/keluar/selesai", response_class=HTMLResponse)
async def signed_out(request: Request) -> HTMLResponse:
    t = translator(language(request))
    return _message(
        request, 200, "petugas.signedout.title", "petugas.signedout.body", (SIGN_IN, t("petugas.signin"))
    )


# ----- complaints -----------------------------------------------------------------------------


@router.get("/petugas/aduan", response_class=HTMLResponse)
async def complaints(request: Request, ctx: Ctx, officer: Officer, asked: Asked) -> Response:
    role = officer.role
    if role is None or role not in TABS:  # no complaints list of theirs (a notification officer's)
        raise cases.NotAllowed
    tab = tab_of(role, asked.status)
    found = await cases.work_list(ctx, officer, tab, asked.halaman)
    return officer_page(
        request,
        "aduan.html",
        categories={c["code"]: c["name"] for c in await ctx.complaints.categories()},
        role=role.value,
        tabs=TABS[role],
        tab=tab,
        **_listed(found, "next_due", asked.halaman, ctx.clock()),
    )


def _listed(found: dict[str, Any], due: str, page: int, now: datetime) -> dict[str, Any]:
    """A service's page of a work list as a list page shows it: each row's SLA label
    (from its `due` field) and the way to the next page."""
    items = [
        {**item, "due": due_label(instant(item.get(due)), now), "due_text": when(item.get(due))}
        for item in found.get("items", [])
    ]
    total, size = int(found.get("total", 0)), int(found.get("page_size", 1)) or 1
    return {"items": items, "total": total, "page": page, "more": page * size < total, "when": when}


def _place(desa_code: str) -> str:
    desa = find_desa(desa_code)
    kecamatan = find_kecamatan(desa.kecamatan_code) if desa else None
    return f"{desa.name}, {kecamatan.name}" if desa and kecamatan else desa_code


@dataclass(frozen=True)
class StepForms:
    """What a case's page shows of its step forms: the step just `done`, or the form of
    the step that `failed` as typed with its `errors`, or as the officer had typed it
    before signing in again (`restored`)."""

    errors: dict[str, str] | None = None
    form: dict[str, Any] | None = None
    failed: str | None = None
    done: str | None = None
    restored: bool = False

    @property
    def status(self) -> int:
        """The page's status: its form refused (422), or the case moved on meanwhile (409)."""
        if not self.errors:
            return 200
        return CONFLICT if STALE in self.errors else 422

    def values(self, order: list[str], action: str) -> dict[str, Any]:
        """The page's values of its forms, their fields in `order`, sent to `action`."""
        return {
            "form": self.form or {},
            "errors": self.errors or {},
            "failed": self.failed,
            "order": order,
            "done": self.done,
            "restored": self.restored,
            "when": when,
            "action": action,
        }


async def _case_page(
    request: Request, ctx: Ctx, officer: cases.Signed, code: str, shown: StepForms
) -> HTMLResponse:
    t = translator(language(request))
    view = await cases.case(ctx, officer, code)
    complaint = view.complaint
    order = [name for step in steps_for(officer.role, complaint["status"]) for name in FIELDS.get(step, [])]
    return officer_page(
        request,
        "kasus.html",
        shown.status,
        c=complaint,
        place=_place(complaint["desa_code"]),
        steps=steps_for(officer.role, complaint["status"]),
        opds=[(o["code"], f"{o['code']} — {o['name']}") for o in view.opds],
        reasons=[(r, t(f"petugas.reason.{r}"), None) for r in REJECTION_REASONS],
        suggestions=view.suggestions,
        actor=lambda subject: _actor(t, officer, subject),
        **shown.values(order, f"/petugas/aduan/{quote(code)}"),
    )


def _actor(t: Any, officer: cases.Signed, subject: str) -> str:
    """Who did a step, as far as the workspace knows: the reporter, the officer signed
    in, else an officer by the start of their account's id (the provider's subject)."""
    if subject == "citizen":
        return t("petugas.actor.citizen")
    if subject == officer.subject:
        return officer.name
    return t("petugas.actor.officer", id=subject[:8])


@router.get("/petugas/aduan/{code}", response_class=HTMLResponse)
async def complaint_page(request: Request, ctx: Ctx, officer: Officer, code: str, shown: Shown) -> Response:
    done = shown.selesai if shown.selesai in STEPS else None
    return await _case_page(request, ctx, officer, code, await _restored(request, ctx, shown, done))


@router.post("/petugas/aduan/{code}/{step}", response_class=HTMLResponse)
async def complaint_step(request: Request, ctx: Ctx, officer: Officer, code: str, step: str) -> Response:
    async def send(form: FormData, fields: dict[str, str]) -> Answer:
        upload = chosen_file(form, RESOLUTION_PHOTO)
        photo = (
            cases.Photo(await upload.read(), upload.filename or "foto", upload.content_type or "")
            if upload
            else None
        )
        return await cases.act(ctx, officer, code, step, fields, photo)

    page = partial(_case_page, request, ctx, officer, code)
    return await _form_step(request, step, STEPS, page, f"/petugas/aduan/{quote(code)}", send)


async def _form_step(
    request: Request,
    step: str,
    known: Collection[str],
    page: Callable[[StepForms], Awaitable[HTMLResponse]],
    address: str,
    send: Callable[[FormData, dict[str, str]], Awaitable[Answer]],
) -> Response:
    """A step's form sent from a case's page at `address`: unknown steps are unknown
    pages; else `sent_form`, the page again with the form as typed when it is refused."""
    form = await checked_form(request)
    if step not in known:
        return _message(request, 404, "notfound.title", "notfound.body")
    fields = text_fields(form)

    async def again(errors: dict[str, str]) -> HTMLResponse:
        return await page(StepForms(errors=errors, form=fields, failed=step))

    done = f"{address}?" + urlencode({"selesai": step})
    return await sent_form(request, send(form, fields), again, done)


async def sent_form(
    request: Request,
    sending: Awaitable[Answer],
    again: Callable[[dict[str, str]], Awaitable[HTMLResponse]],
    done: str,
) -> Response:
    """A form sent to a service: on to `done`, or the page `again` with the form's errors
    (in the page's words) or the service's refusal (its reasons) in the error summary; a
    case that moved on meanwhile (409) is the page as it is now with a plain notice."""
    try:
        result = await sending
    except Refused as refused:
        if refused.status == CONFLICT:
            # Someone moved the case on meanwhile: the page as it is now, and why the
            # form did nothing (not an error of what the officer typed).
            return await again({STALE: translator(language(request))("petugas.stale")})
        return await again(refusal(request, "petugas.error.step", refused.messages))
    if result.errors:
        t = translator(language(request))
        return await again(result.messages(t))
    return see_other(done)


# ----- permit applications (the licensing office) ------------------------------------------


@router.get("/petugas/izin", response_class=HTMLResponse)
async def applications(request: Request, ctx: Ctx, officer: Officer, asked: Asked) -> Response:
    tab = tab_of(Role.PERMIT_OFFICER, asked.status)
    found = await cases.applications(ctx, officer, tab, asked.halaman)
    return officer_page(
        request,
        "izin.html",
        kinds={k["code"]: k["name"] for k in await ctx.permits.permit_types()},
        tabs=TABS[Role.PERMIT_OFFICER],
        tab=tab,
        **_listed(found, "sla_due_at", asked.halaman, ctx.clock()),
    )


async def _application_page(
    request: Request, ctx: Ctx, officer: cases.Signed, code: str, shown: StepForms
) -> HTMLResponse:
    view = await cases.application(ctx, officer, code)
    a = view.application
    steps = permit_steps_for(a)
    order = DOCUMENT_CHECK_FIELDS + [n for step in steps for n in PERMIT_FIELDS[step]]
    return officer_page(
        request,
        "permohonan.html",
        shown.status,
        a=a,
        documents=view.documents,
        images=IMAGE_TYPES,
        place=_place(a["desa_code"]),
        checkable=a["status"] == CHECKABLE,
        steps=steps,
        **shown.values(order, f"/petugas/izin/{quote(code)}"),
    )


@router.get("/petugas/izin/{code}", response_class=HTMLResponse)
async def application_page(request: Request, ctx: Ctx, officer: Officer, code: str, shown: Shown) -> Response:
    done = shown.selesai if shown.selesai == DOCUMENT_CHECK or shown.selesai in PERMIT_STEPS else None
    return await _application_page(request, ctx, officer, code, await _restored(request, ctx, shown, done))


@router.post("/petugas/izin/{code}/berkas", response_class=HTMLResponse)
async def document_check(request: Request, ctx: Ctx, officer: Officer, code: str) -> Response:
    form = await checked_form(request)
    fields: dict[str, Any] = text_fields(form)
    missing = [v for v in form.getlist("kurang") if isinstance(v, str)]
    fields["kurang"] = missing

    async def again(errors: dict[str, str]) -> HTMLResponse:
        shown = StepForms(errors=errors, form=fields, failed=DOCUMENT_CHECK)
        return await _application_page(request, ctx, officer, code, shown)

    done = f"/petugas/izin/{quote(code)}?" + urlencode({"selesai": DOCUMENT_CHECK})
    return await sent_form(request, cases.check_documents(ctx, officer, code, fields, missing), again, done)


@router.post("/petugas/izin/{code}/{step}", response_class=HTMLResponse)
async def application_step(request: Request, ctx: Ctx, officer: Officer, code: str, step: str) -> Response:
    """An inspection scheduled or its result, the decision, issuing or revoking."""

    async def send(_: FormData, fields: dict[str, str]) -> Answer:
        return await cases.permit_step(ctx, officer, code, step, fields)

    page = partial(_application_page, request, ctx, officer, code)
    return await _form_step(request, step, PERMIT_STEPS, page, f"/petugas/izin/{quote(code)}", send)


@router.get("/petugas/izin/{code}/dokumen/{document_id}")
async def application_document(ctx: Ctx, officer: Officer, code: str, document_id: str) -> Response:
    """An uploaded document, shown by the browser itself (an image, its PDF viewer)."""
    return inline_file(await cases.document(ctx, officer, code, document_id), document_id)


@router.get("/petugas/aduan/{code}/foto/{photo_id}")
async def complaint_photo(ctx: Ctx, officer: Officer, code: str, photo_id: str) -> Response:
    """A photo of the complaint (the reporter's, or of the finished work)."""
    return inline_file(await cases.complaint_photo(ctx, officer, code, photo_id), photo_id)


# ----- what the workspace answers instead of a page -----------------------------------------


def error_pages(app: FastAPI) -> None:
    """A signed-out officer goes to sign in (and comes back); the services' 403 is the
    "not authorised" page; an unknown complaint the workspace's 404."""

    @app.exception_handler(cases.SignInNeeded)
    async def _sign_in(request: Request, _: cases.SignInNeeded) -> Response:
        here = page_of(request.method, request.url.path)
        if request.method == "GET" and request.url.query:
            here += f"?{request.url.query}"
        kept = await _keep_form(request) if request.method == "POST" else None
        if kept is not None:
            here += "?" + urlencode({KEPT_FORM_PARAM: kept})
        response = see_other(f"{SIGN_IN}?" + urlencode({"lanjut": return_path(here)}))
        response.delete_cookie(OFFICER_COOKIE, path=COOKIE_PATH)
        return response

    @app.exception_handler(cases.NotAllowed)
    async def _not_allowed(request: Request, _: cases.NotAllowed) -> HTMLResponse:
        return _message(request, 403, "petugas.forbidden.title", "petugas.forbidden.body", _home(request))

    @app.exception_handler(cases.NotFound)
    async def _not_found(request: Request, _: cases.NotFound) -> HTMLResponse:
        return _message(request, 404, "petugas.notfound.title", "petugas.notfound.body", _home(request))


async def _keep_form(request: Request) -> str | None:
    """What the officer typed into the form they sent, kept while they sign in again
    (a form of this browser's, by its CSRF token); the id to come back with."""
    try:
        form = await checked_form(request)
    except CsrfRefused:
        return None
    sent = {name: [v for v in form.getlist(name) if isinstance(v, str)] for name in form}
    ctx = request.app.state.service.context
    return await cases.keep_form(ctx, request.state.session, request.url.path, sent)


async def _restored(request: Request, ctx: Ctx, shown: CasePage, done: str | None) -> StepForms:
    """The page's forms after the step `done`, or with the form as the officer had typed
    it before signing in again, if kept."""
    kept_id, browser = shown.formulir, request.state.session
    found = await cases.restore_form(ctx, browser, kept_id, request.url.path) if kept_id else None
    if found is None:
        return StepForms(done=done)
    step, fields = found
    return StepForms(form=fields, failed=step, done=done, restored=True)


def _home(request: Request) -> tuple[str, str]:
    """The way back to the officer's own list."""
    officer = getattr(request.state, "officer", None)
    home = home_of(officer.role if officer else None)
    names = {
        PERMITS_HOME: "petugas.home_izin",
        DELIVERIES_HOME: "petugas.home_pengiriman",
        CLINIC_HOME: "petugas.home_klinik",
    }
    key = names.get(home, "petugas.home")
    return home, translator(language(request))(key)
