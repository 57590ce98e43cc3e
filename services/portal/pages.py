"""The portal's pages: thin routes that read a form, call one use case and render.
Every journey works without JavaScript; `lokasi.js` only adds the phone's position."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from services.portal import domain, handlers, izin_cases
from services.portal.clients.base import Refused
from services.portal.domain import CHECK, KINDS, MAX_PHOTOS, NO, STEPS, YES, Draft
from services.portal.i18n import permit_name, translator
from services.portal.web import (
    LANGUAGE_COOKIE,
    LANGUAGE_MAX_AGE,
    check_answers_page,
    checked_form,
    chosen_file,
    inline_file,
    language,
    not_found_page,
    refusal,
    render,
    safe_return,
    see_other,
    text_fields,
    when,
)
from shared.kit.app import context_dependency
from shared.kit.i18n import LANGUAGES
from shared.reference import find_desa
from shared.reference.regions import REGENCY_CENTRE

router = APIRouter(include_in_schema=False)
Ctx = Annotated[handlers.Context, Depends(context_dependency(handlers.Context))]
# The order fields appear on a page, for the error summary.
FIELDS = {
    "jenis": ["jenis"],
    "kategori": ["kategori"],
    "kecamatan": ["kecamatan"],
    "desa": ["desa"],
    "isi": ["judul", "uraian"],
    "foto": ["foto"],
    "privasi": ["anonim", "rahasia"],
    "pelapor": ["nik", "telepon", "email"],
}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    return render(request, "index.html")


@router.get("/bahasa")
async def switch_language(request: Request, ke: str = "id", kembali: str = "/") -> Response:
    """The language switch: a link, so it works without JavaScript."""
    response = see_other(safe_return(kembali))
    if ke in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            ke,
            max_age=LANGUAGE_MAX_AGE,
            samesite="lax",
            httponly=True,
            secure=request.state.secure,
        )
    return response


# ----- Lapor --------------------------------------------------------------------------------


@router.get("/lapor")
async def lapor() -> Response:
    return see_other("/lapor/jenis")


async def _step_values(ctx: handlers.Context, request: Request, step: str, draft: Draft) -> dict[str, Any]:
    """What a question page shows besides the citizen's answers."""
    t = translator(language(request))
    if step == "jenis":
        return {"options": [(k, t(f"jenis.{k}"), t(f"jenis.{k}_hint")) for k in KINDS]}
    if step == "kategori":
        return {"options": [(c["code"], c["name"], None) for c in await handlers.categories(ctx)]}
    if step in ("kecamatan", "desa"):
        values = domain.place_choices(step, draft)
        if step == "desa" and ctx.tiles is not None:
            values["map_centre"] = "{:.5f},{:.5f}".format(*REGENCY_CENTRE)
        return values
    if step == "foto":
        return {"photos": draft.photos, "max_photos": MAX_PHOTOS, "multipart": True}
    if step == "privasi":
        return {
            "anonymous_options": [
                (NO, t("privasi.anonim_tidak"), t("privasi.anonim_tidak_hint")),
                (YES, t("privasi.anonim_ya"), t("privasi.anonim_ya_hint")),
            ],
            "confidential_options": [
                (NO, t("privasi.rahasia_tidak"), t("privasi.rahasia_tidak_hint")),
                (YES, t("privasi.rahasia_ya"), t("privasi.rahasia_ya_hint")),
            ],
        }
    return {}


async def _question(
    ctx: handlers.Context,
    request: Request,
    step: str,
    draft: Draft,
    *,
    checking: bool,
    errors: dict[str, str] | None = None,
    form: FormData | None = None,
) -> HTMLResponse:
    t = translator(language(request))
    previous = domain.previous_page(draft, step)
    back = f"/lapor/{CHECK}" if checking else (f"/lapor/{previous}" if previous else "/")
    return render(
        request,
        f"lapor/{step}.html",
        status_code=422 if errors else 200,
        step=step,
        title=t(f"{step}.title"),
        draft=draft,
        errors=errors or {},
        order=FIELDS[step],
        form=form,
        back=back,
        checking=checking,
        **await _step_values(ctx, request, step, draft),
    )


def _ahead_of(draft: Draft, step: str) -> str | None:
    """The first unanswered page before `step`, if the citizen skipped ahead."""
    order = domain.steps_for(draft)
    missing = domain.first_unanswered(draft)
    if missing is None or step not in order or order.index(missing) >= order.index(step):
        return None
    return missing


@router.get("/lapor/{step}", response_class=HTMLResponse)
async def question(request: Request, ctx: Ctx, step: str, ubah: str | None = None) -> Response:
    if step == CHECK:
        return await check_answers(request, ctx)
    if step not in STEPS:
        return not_found_page(request)
    draft = await handlers.draft(ctx, request.state.session)
    missing = _ahead_of(draft, step)
    if missing:
        return see_other(f"/lapor/{missing}")
    return await _question(ctx, request, step, draft, checking=bool(ubah))


@router.post("/lapor/{step}", response_class=HTMLResponse)
async def answer(request: Request, ctx: Ctx, step: str) -> Response:
    form = await checked_form(request)
    if step == CHECK:
        return await send(request, ctx)
    if step not in STEPS:
        return not_found_page(request)
    checking = form.get("ubah") == "1"
    session = request.state.session
    if step == "foto":
        return await _photo(request, ctx, form, checking)
    fields = text_fields(form)
    draft, result = await handlers.answer(ctx, session, step, fields)
    if result.errors:
        t = translator(language(request))
        errors = result.messages(t)
        return await _question(ctx, request, step, draft, checking=checking, errors=errors, form=form)
    following = domain.next_page(draft, step, checking=checking)
    return see_other(f"/lapor/{following}" + ("?ubah=1" if checking and following != CHECK else ""))


async def _photo(request: Request, ctx: handlers.Context, form: FormData, checking: bool) -> Response:
    """A photo goes to the complaints service as soon as it is chosen; the service's
    refusal (not a JPEG or PNG, too large) is shown next to the field."""
    session = request.state.session
    upload = chosen_file(form, "foto")
    chosen = upload is not None
    draft = await handlers.draft(ctx, session)
    if upload is not None:
        try:
            draft = await handlers.add_photo(
                ctx, session, await upload.read(), upload.filename or "foto", upload.content_type or ""
            )
        except Refused as refused:
            message = refused.messages.get("file") or next(iter(refused.messages.values()), "")
            return await _question(ctx, request, "foto", draft, checking=checking, errors={"foto": message})
    if form.get("aksi") != "lanjut":
        if not chosen:
            t = translator(language(request))
            errors = {"foto": t("error.foto.empty")}
            return await _question(ctx, request, "foto", draft, checking=checking, errors=errors)
        return see_other("/lapor/foto" + ("?ubah=1" if checking else ""))
    draft = await handlers.photos_done(ctx, session)
    return see_other(f"/lapor/{domain.next_page(draft, 'foto', checking=checking)}")


def _summary(draft: Draft, t: Any, categories: dict[str, str]) -> list[tuple[str, str, str]]:
    desa = find_desa(draft.get("desa", ""))
    place = f"{desa.name}, {desa.kecamatan_name}" if desa else ""
    if draft.get("lokasi"):
        place += f" ({t('periksa.koordinat')})"
    count = len(draft.photos)
    rows = [
        ("jenis", t(f"jenis.{draft.get('jenis')}"), "jenis"),
        ("kategori", categories.get(draft.get("kategori", ""), draft.get("kategori", "")), "kategori"),
        ("lokasi", place, "kecamatan"),
        ("judul", draft.get("judul", ""), "isi"),
        ("uraian", draft.get("uraian", ""), "isi"),
        ("foto", t("periksa.foto_count", count=count) if count else t("periksa.foto_none"), "foto"),
        ("anonim", t(f"periksa.anonim_{draft.get('anonim')}"), "privasi"),
        ("rahasia", t(f"periksa.rahasia_{draft.get('rahasia')}"), "privasi"),
    ]
    if not draft.anonymous:
        contact = ", ".join(v for v in (draft.get("telepon"), draft.get("email")) if v)
        rows += [("nik", draft.get("nik", ""), "pelapor"), ("kontak", contact, "pelapor")]
    return rows


async def check_answers(
    request: Request, ctx: handlers.Context, errors: dict[str, str] | None = None
) -> Response:
    draft = await handlers.draft(ctx, request.state.session)
    missing = domain.first_unanswered(draft)
    if missing:
        return see_other(f"/lapor/{missing}")
    t = translator(language(request))
    categories = {c["code"]: c["name"] for c in await handlers.categories(ctx)}
    previous = domain.previous_page(draft, CHECK)
    return check_answers_page(
        request,
        "lapor",
        rows=_summary(draft, t, categories),
        errors=errors,
        back=f"/lapor/{previous}",
        title=t("periksa.title"),
        button=t("button.send"),
        labels="periksa.",
        change="/lapor/%s?ubah=1",
        note=t("periksa.send_note"),
    )


async def send(request: Request, ctx: handlers.Context) -> Response:
    draft = await handlers.draft(ctx, request.state.session)
    if domain.first_unanswered(draft):
        return see_other(f"/lapor/{domain.first_unanswered(draft)}")
    try:
        code = await handlers.submit(ctx, request.state.session, language(request))
    except Refused as refused:
        return await check_answers(request, ctx, errors=refusal(request, "error.kirim", refused.messages))
    return see_other(f"/lapor/selesai/{quote(code)}")


@router.get("/lapor/selesai/{code}", response_class=HTMLResponse)
async def confirmation(request: Request, code: str) -> HTMLResponse:
    return confirmation_page(request, code, "complaints", "selesai.", again="/lapor/jenis")


def confirmation_page(
    request: Request, code: str, service: str, texts: str, *, again: str, **values: Any
) -> HTMLResponse:
    """A journey's confirmation panel: the tracking code, the QR code of its Lacak link
    (drawn here as inline SVG) and the way to start again; `texts` is the journey's
    message keys' prefix."""
    found = domain.code_and_service(code)
    if found is None or found[1] != service:
        return not_found_page(request)
    track_path = f"/lacak?kode={found[0]}"
    link = str(request.base_url).rstrip("/") + track_path
    qr = segno.make(link, error="m").svg_inline(scale=4, border=2, omitsize=True)
    return render(
        request, "selesai.html", code=found[0], qr=qr, track_path=track_path, p=texts, again=again, **values
    )


# ----- Lacak --------------------------------------------------------------------------------


@router.get("/peta/{z}/{x}/{y}.png")
async def map_tile(ctx: Ctx, z: int, x: int, y: int) -> Response:
    """A tile of the desa page's map, passed on from the regency's tile server."""
    found = await handlers.map_tile(ctx, z, x, y)
    if found is None:
        return Response(status_code=404)
    content, media_type = found
    # Tiles change rarely; the browser keeps them for a day.
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/lacak/foto-hasil/{code}")
async def resolution_photo(request: Request, ctx: Ctx, code: str) -> Response:
    """The photo of the finished work a complaint was resolved with, for whoever follows
    it by its code (as Lacak shows the complaint itself)."""
    found = domain.code_and_service(code[:60])
    shown = await handlers.resolution_photo(ctx, found[0]) if found and found[1] == "complaints" else None
    if shown is None:
        return not_found_page(request)
    return inline_file(*shown)


@router.get("/lacak", response_class=HTMLResponse)
async def track(
    request: Request, ctx: Ctx, kode: str | None = None, terkirim: str | None = None
) -> HTMLResponse:
    """Any code: the service its prefix names is asked, and only that one."""
    return await track_page(request, ctx, kode, sent=bool(terkirim))


async def track_page(
    request: Request,
    ctx: handlers.Context,
    kode: str | None,
    *,
    errors: dict[str, str] | None = None,
    sent: bool = False,
) -> HTMLResponse:
    """Lacak for `kode`; an application waiting for documents offers an upload for each
    (`errors` are those uploads' refusals)."""
    t = translator(language(request))
    errors = dict(errors or {})
    case = None
    if kode is not None:
        found = domain.code_and_service(kode[:60]) if kode.strip() else None
        if not kode.strip():
            errors["kode"] = t("error.lacak.empty")
        elif found is None:
            errors["kode"] = t("error.lacak.invalid")
        else:
            case = await handlers.track(ctx, *found)
            if case is None:
                errors["kode"] = t("error.lacak.unknown")
    resubmission = await izin_cases.resubmission(ctx, request.state.session, case) if case else None
    if resubmission:
        lang = language(request)
        resubmission.missing = [(c, permit_name(lang, f"berkas.{c}", n)) for c, n in resubmission.missing]
    order = ["kode", *(f"berkas-{c}" for c, _ in (resubmission.missing if resubmission else []))]
    return render(
        request,
        "lacak.html",
        422 if errors else 200,
        errors=errors,
        order=order,
        typed=kode,
        case=case,
        when=when,
        resubmission=resubmission,
        sent=sent and case is not None and case.status != "documents_incomplete",
    )
