"""Antrean's pages (booking a polyclinic place) and the one-time-code sign-in pages
every journey that needs a verified contact shares (`/masuk`). Thin routes as in
pages.py: read the form, call one use case, render. Everything works without JavaScript.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.portal import antrean_cases as cases
from services.portal import web
from services.portal.antrean_rules import (
    ANTREAN,
    CHECK,
    MASUK,
    PURPOSES,
    RESUBMISSION,
    STEPS,
    first_unanswered,
    next_page,
    previous_page,
)
from services.portal.clients.base import Refused
from services.portal.domain import NO, YES, Answer, Draft, code_and_service
from services.portal.i18n import translator
from services.portal.pages import Ctx
from services.portal.web import checked_form, language, not_found_page, see_other

router = APIRouter(include_in_schema=False)
# The order fields appear on a page, for the error summary.
FIELDS = {
    "fasilitas": ["fasilitas"],
    "poli": ["poli"],
    "tanggal": ["tanggal"],
    "pasien": ["nik", "nama", "bayar", "kartu", "baru"],
    "kontak": ["kontak", "nik"],
    "kode": ["kode"],
}
# The health service's answer when the day has no place left for the patient.
CONFLICT = 409
# A booking the citizen can still cancel.
CANCELLABLE = ("booked", "checked_in")


def _errors(request: Request, result: Answer) -> dict[str, str]:
    t = translator(language(request))
    return result.messages(t)


def day_label(t: Any, day: date) -> str:
    return f"{t(f'hari.{day.weekday()}')}, {day.day} {t(f'bulan.{day.month}')} {day.year}"


# ----- Antrean's questions -------------------------------------------------------------------


@router.get("/antrean")
async def antrean() -> Response:
    return see_other(f"/antrean/{STEPS[0]}")


async def _values(ctx: cases.Context, request: Request, step: str, draft: Draft) -> dict[str, Any]:
    """What a question page shows besides the citizen's answers."""
    t = translator(language(request))
    if step == "fasilitas":
        return {"options": [(f["code"], f["name"], None) for f in await cases.facilities(ctx)]}
    if step == "poli":
        found = await cases.polyclinics(ctx, draft.get("fasilitas", ""))
        return {"options": [(p["code"], p["name"], None) for p in found]}
    if step == "tanggal":
        found = await cases.days(ctx, draft.get("fasilitas", ""), draft.get("poli", ""))
        return {"days": [(d.day.isoformat(), day_label(t, d.day), d.places) for d in found]}
    if step == "pasien":
        return {
            "payments": [
                ("jkn", t("antrean.pasien.bayar_jkn"), None),
                ("non_jkn", t("antrean.pasien.bayar_umum"), None),
            ],
            "visits": [(YES, t("antrean.pasien.baru_ya"), None), (NO, t("antrean.pasien.baru_tidak"), None)],
        }
    return {}


def _form_page(
    request: Request, template: str, step: str, errors: dict[str, str] | None, **values: Any
) -> HTMLResponse:
    """A question page of Antrean or the sign-in (question.html's shape), 422 with errors."""
    return web.render(
        request,
        template,
        status_code=422 if errors else 200,
        step=step,
        errors=errors or {},
        order=FIELDS[step],
        **values,
    )


async def _question(
    ctx: cases.Context,
    request: Request,
    step: str,
    draft: Draft,
    *,
    checking: bool,
    errors: dict[str, str] | None = None,
    form: Any = None,
) -> HTMLResponse:
    t = translator(language(request))
    return _form_page(
        request,
        f"antrean/{step}.html",
        step,
        errors,
        action=f"/antrean/{step}",
        title=t(f"antrean.{step}.title"),
        draft=draft,
        form=form,
        back=f"/antrean/{CHECK}" if checking else previous_page(step),
        checking=checking,
        **await _values(ctx, request, step, draft),
    )


@router.get("/antrean/{step}", response_class=HTMLResponse)
async def question(request: Request, ctx: Ctx, step: str, ubah: str | None = None) -> Response:
    if step not in (*STEPS, CHECK):
        return not_found_page(request)
    if step == CHECK:
        return await check_answers(request, ctx)
    draft = await cases.stored(ctx, request.state.session, ANTREAN)
    missing = first_unanswered(draft)
    if missing and STEPS.index(missing) < STEPS.index(step):
        return see_other(f"/antrean/{missing}")
    return await _question(ctx, request, step, draft, checking=bool(ubah))


@router.post("/antrean/{step}", response_class=HTMLResponse)
async def answer(request: Request, ctx: Ctx, step: str) -> Response:
    form = await checked_form(request)
    if step not in (*STEPS, CHECK):
        return not_found_page(request)
    if step == CHECK:
        return await send(request, ctx)
    checking = form.get("ubah") == "1"
    fields = web.text_fields(form)
    draft, result = await cases.answer(ctx, request.state.session, step, fields)
    if result.errors:
        errors = _errors(request, result)
        return await _question(ctx, request, step, draft, checking=checking, errors=errors, form=form)
    signed_in = await cases.session_of(ctx, request.state.session) is not None
    return see_other(next_page(draft, step, checking=checking, signed_in=signed_in))


def _summary(t: Any, draft: Draft, names: dict[str, str], phone: str) -> list[tuple[str, str, str]]:
    payment = t("antrean.pasien.bayar_jkn") if draft.get("bayar") == "jkn" else t("antrean.pasien.bayar_umum")
    rows = [
        ("fasilitas", names.get(draft["fasilitas"], draft["fasilitas"]), "/antrean/fasilitas?ubah=1"),
        ("poli", names.get(draft["poli"], draft["poli"]), "/antrean/poli?ubah=1"),
        ("tanggal", day_label(t, date.fromisoformat(draft["tanggal"])), "/antrean/tanggal?ubah=1"),
        ("nik", draft["nik"], "/antrean/pasien?ubah=1"),
        ("nama", draft.get("nama") or "—", "/antrean/pasien?ubah=1"),
        ("bayar", payment, "/antrean/pasien?ubah=1"),
    ]
    if draft.get("bayar") == "jkn":
        rows.append(("kartu", draft.get("kartu", ""), "/antrean/pasien?ubah=1"))
    rows.append(("baru", t(f"antrean.pasien.baru_{draft.get('baru')}"), "/antrean/pasien?ubah=1"))
    rows.append(("telepon", phone, f"/masuk?untuk={ANTREAN}"))
    return rows


async def check_answers(
    request: Request, ctx: cases.Context, errors: dict[str, str] | None = None
) -> Response:
    session = request.state.session
    draft = await cases.stored(ctx, session, ANTREAN)
    missing = first_unanswered(draft)
    if missing:
        return see_other(f"/antrean/{missing}")
    signin = await cases.signed_in(ctx, session)
    if signin is None:
        return see_other(f"/masuk?untuk={ANTREAN}")
    t = translator(language(request))
    names = {f["code"]: f["name"] for f in await cases.facilities(ctx)}
    names.update({p["code"]: p["name"] for p in await cases.polyclinics(ctx, draft["fasilitas"])})
    return web.check_answers_page(
        request,
        "antrean",
        rows=_summary(t, draft, names, signin["kontak"]),
        errors=errors,
        back=f"/antrean/{STEPS[-1]}",
        title=t("antrean.periksa.title"),
        button=t("antrean.button.book"),
        labels="antrean.periksa.",
    )


async def send(request: Request, ctx: cases.Context) -> Response:
    session = request.state.session
    missing = first_unanswered(await cases.stored(ctx, session, ANTREAN))
    if missing:
        return see_other(f"/antrean/{missing}")
    try:
        booked = await cases.book(ctx, session, language(request))
    except cases.SignInNeeded:
        return see_other(f"/masuk?untuk={ANTREAN}")
    except Refused as refused:
        if refused.status == CONFLICT:
            # A day taken meanwhile (or a booking the service will not say more about):
            # the portal's words and the way on, not the service's.
            return await check_answers(
                request, ctx, errors={"": translator(language(request))("antrean.error.taken")}
            )
        return await check_answers(
            request, ctx, errors=web.refusal(request, "antrean.error.book", refused.messages)
        )
    return see_other(f"/antrean/selesai/{quote(booked['booking_code'])}")


# ----- booked: the booking, its cancel button ------------------------------------------------


@router.get("/antrean/selesai/{code}", response_class=HTMLResponse)
async def booked(request: Request, ctx: Ctx, code: str) -> HTMLResponse:
    found = code_and_service(code)
    booking = await ctx.health.appointment(found[0]) if found and found[1] == "health" else None
    if booking is None:
        return not_found_page(request)
    day = date.fromisoformat(booking["date"])
    t = translator(language(request))
    return web.render(
        request,
        "antrean/selesai.html",
        booking=booking,
        day=day_label(t, day),
        when=web.when,
        cancellable=booking["status"] in CANCELLABLE,
        errors={},
    )


@router.post("/antrean/batal/{code}")
async def cancel(request: Request, ctx: Ctx, code: str) -> Response:
    """Cancel with the session of the phone that booked; without a live one, the citizen
    proves the phone again and comes back to the booking."""
    await checked_form(request)
    found = code_and_service(code)
    if found is None or found[1] != "health":
        return not_found_page(request)
    page = f"/antrean/selesai/{quote(found[0])}"
    try:
        await cases.cancel(ctx, request.state.session, found[0])
    except cases.SignInNeeded:
        return see_other("/masuk?" + urlencode({"untuk": ANTREAN, "lanjut": page}))
    return see_other(page)


# ----- the sign-in with a one-time code (shared by the journeys) -----------------------------


@router.get("/masuk")
async def sign_in(request: Request, ctx: Ctx, untuk: str = ANTREAN, lanjut: str | None = None) -> Response:
    if untuk not in PURPOSES:
        return not_found_page(request)
    await cases.start(ctx, request.state.session, untuk, web.safe_return(lanjut) if lanjut else None)
    return see_other("/masuk/kontak")


def _sign_in_page(request: Request, step: str, signin: Draft, **values: Any) -> HTMLResponse:
    purpose = signin.get("untuk", ANTREAN)
    t = translator(language(request))
    # Back to where the sign-in was asked for: the booking's last question, the application on Lacak.
    back = {ANTREAN: f"/antrean/{STEPS[-1]}", RESUBMISSION: signin.get("lanjut", "/")}.get(purpose, "/")
    return _form_page(
        request,
        f"{MASUK}/{step}.html",
        step,
        values.pop("errors", None),
        action=f"/masuk/{step}",
        title=t(f"masuk.{step}.title_{purpose}"),
        purpose=purpose,
        email_too=PURPOSES[purpose][0],
        draft=signin,
        back=back if step == "kontak" else "/masuk/kontak",
        checking=False,
        **values,
    )


@router.get("/masuk/{step}", response_class=HTMLResponse)
async def sign_in_page(request: Request, ctx: Ctx, step: str, ulang: str | None = None) -> Response:
    if step not in ("kontak", "kode"):
        return not_found_page(request)
    signin = await cases.stored(ctx, request.state.session, MASUK)
    if not signin.get("untuk"):
        return see_other("/")
    if step == "kode" and not signin.get("kontak"):
        return see_other("/masuk/kontak")
    return _sign_in_page(request, step, signin, form=None, resent=bool(ulang))


@router.post("/masuk/{step}", response_class=HTMLResponse)
async def sign_in_answer(request: Request, ctx: Ctx, step: str) -> Response:
    form = await checked_form(request)
    session = request.state.session
    fields = web.text_fields(form)
    if step == "kontak":
        signin, result = await cases.send_code(ctx, session, fields)
        if result.errors:
            return _sign_in_page(request, step, signin, form=form, errors=_errors(request, result))
        return see_other("/masuk/kode")
    if step != "kode":
        return not_found_page(request)
    if form.get("aksi") == "ulang":
        await cases.resend(ctx, session)
        return see_other("/masuk/kode?ulang=1")
    signin, result = await cases.verify(ctx, session, fields)
    if result.errors:
        return _sign_in_page(request, step, signin, form=form, errors=_errors(request, result), resent=False)
    return see_other(web.safe_return(signin.get("lanjut")))


@router.post("/keluar")
async def sign_out(request: Request, ctx: Ctx) -> Response:
    """Forget the citizen session (the notification service's token is short-lived; the
    portal keeps it nowhere else)."""
    await checked_form(request)
    await cases.sign_out(ctx, request.state.session)
    return see_other("/")
