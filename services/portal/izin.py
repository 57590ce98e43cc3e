"""Izin's pages (applying for a permit) and, from Lacak, sending the documents an officer
asked for again. Thin routes as in pages.py: read the form, call one use case, render.
Everything works without JavaScript; documents go to the permits service the moment
they are chosen, and its refusal is shown next to the field.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from services.portal import izin_cases as cases
from services.portal import izin_rules as rules
from services.portal.antrean_cases import SignInNeeded
from services.portal.clients.base import Refused
from services.portal.domain import Draft, code_and_service, place_choices
from services.portal.handlers import track
from services.portal.i18n import permit_name, translator
from services.portal.izin_rules import CHECK, DOCUMENT_PAGE, FIELD_PAGE
from services.portal.pages import Ctx, confirmation_page, track_page
from services.portal.web import (
    check_answers_page,
    checked_form,
    chosen_file,
    language,
    not_found_page,
    refusal,
    render,
    see_other,
    text_fields,
)
from shared.kit.i18n import humanise
from shared.reference import find_desa

router = APIRouter(include_in_schema=False)
PermitType = dict[str, Any] | None


def label_of(lang: str, spec: dict[str, Any]) -> str:
    """A field's question in the page's language (the catalogue's Indonesian label else)."""
    return permit_name(lang, f"field.{spec['name']}", spec["label"])


def choice_label(t: Any, value: str) -> str:
    key = f"izin.pilihan.{value}"
    found = t(key)
    return found if found != humanise(key) else humanise(value)


def document_name(lang: str, document: dict[str, Any]) -> str:
    return permit_name(lang, f"berkas.{document['code']}", document["name"])


def type_hint(t: Any, permit_type: dict[str, Any]) -> str | None:
    key = f"izin.jenis.{permit_type['code']}_hint"
    found = t(key)
    return None if found == humanise(key) else found


# ----- the questions -------------------------------------------------------------------------


@router.get("/izin")
async def izin() -> Response:
    return see_other("/izin/jenis")


async def _values(
    ctx: cases.Context, request: Request, step: str, draft: Draft, chosen: PermitType
) -> dict[str, Any]:
    """What a question page shows besides the citizen's answers."""
    lang = language(request)
    t = translator(lang)
    if step == "jenis":
        types = await cases.permit_types(ctx)
        return {"options": [(p["code"], p["name"], type_hint(t, p)) for p in types]}
    if step == "syarat" and chosen:
        documents = [(document_name(lang, d), d.get("required", True)) for d in chosen.get("documents", [])]
        return {"permit": chosen, "documents": documents}
    if step in ("kecamatan", "desa"):
        return place_choices(step, draft)
    if step == rules.APPLYING_AS:
        return {
            "options": [
                (kind, t(f"izin.sebagai.{kind}"), t(f"izin.sebagai.{kind}_hint"))
                for kind in rules.APPLICANT_KINDS
            ]
        }
    if step == "pemohon":
        return {"known_by": rules.identity(chosen, draft)}
    if (spec := rules.field_of(chosen, step)) is not None:
        options = [(c, choice_label(t, c), None) for c in spec.get("choices", [])]
        value = (draft.get("rincian") or {}).get(spec["name"])
        return {"spec": spec, "label": label_of(lang, spec), "options": options, "value": value}
    if (document := rules.document_of(chosen, step)) is not None:
        uploaded = bool((draft.get("dokumen") or {}).get(document["code"]))
        return {"document": document_name(lang, document), "uploaded": uploaded, "multipart": True}
    return {}


def _order(step: str, chosen: PermitType, draft: Draft) -> list[str]:
    """The fields of a page in the order they appear, for the error summary."""
    if step == "pemohon":
        return [rules.identity(chosen, draft), "nama", "telepon", "email"]
    if step.startswith(FIELD_PAGE):
        return [step.removeprefix(FIELD_PAGE)]
    return ["berkas"] if step.startswith(DOCUMENT_PAGE) else [step]


async def _question(
    ctx: cases.Context,
    request: Request,
    step: str,
    draft: Draft,
    chosen: PermitType,
    *,
    checking: bool,
    errors: dict[str, str] | None = None,
    form: FormData | None = None,
) -> HTMLResponse:
    t = translator(language(request))
    # The permits service's messages from a refused application, until the page is answered.
    if not errors:
        said = (draft.get("galat") or {}).get(step) or {}
        errors = {name: f"{t('izin.error.layanan')}: {message}" for name, message in said.items()}
    previous = rules.previous_page(chosen, step)
    back = f"/izin/{CHECK}" if checking else (f"/izin/{previous}" if previous else "/")
    template = step if step in rules.fixed_steps(chosen) else step.split("-", 1)[0]
    return render(
        request,
        f"izin/{template}.html",
        status_code=422 if errors else 200,
        step=step,
        action=f"/izin/{step}",
        title=t(f"izin.{template}.title"),
        draft=draft,
        errors=errors,
        order=_order(step, chosen, draft),
        form=form,
        back=back,
        checking=checking,
        **await _values(ctx, request, step, draft, chosen),
    )


def _known(step: str, chosen: PermitType) -> bool:
    return step in rules.steps_for(chosen)


@router.get("/izin/{step}", response_class=HTMLResponse)
async def question(request: Request, ctx: Ctx, step: str, ubah: str | None = None) -> Response:
    draft, chosen = await cases.draft(ctx, request.state.session)
    if step == CHECK:
        return await check_answers(request, ctx, draft, chosen)
    if not _known(step, chosen):
        return not_found_page(request)
    order = rules.steps_for(chosen)
    missing = rules.first_unanswered(draft, chosen)
    if missing and order.index(missing) < order.index(step):
        return see_other(f"/izin/{missing}")
    return await _question(ctx, request, step, draft, chosen, checking=bool(ubah))


@router.post("/izin/{step}", response_class=HTMLResponse)
async def answer(request: Request, ctx: Ctx, step: str) -> Response:
    form = await checked_form(request)
    session = request.state.session
    if step == CHECK:
        return await send(request, ctx)
    checking = form.get("ubah") == "1"
    if step.startswith(DOCUMENT_PAGE):
        return await _document(request, ctx, step, form, checking)
    draft, chosen = await cases.draft(ctx, session)
    if not _known(step, chosen):
        return not_found_page(request)
    fields = text_fields(form)
    draft, chosen, result = await cases.answer(ctx, session, step, fields)
    if result.errors:
        t = translator(language(request))
        errors = result.messages(t)
        return await _question(ctx, request, step, draft, chosen, checking=checking, errors=errors, form=form)
    following = rules.next_page(draft, chosen, step, checking=checking)
    return see_other(f"/izin/{following}" + ("?ubah=1" if checking and following != CHECK else ""))


async def _document(
    request: Request, ctx: cases.Context, step: str, form: FormData, checking: bool
) -> Response:
    """A required document goes to the permits service as soon as it is chosen; its
    refusal (not a PDF, JPEG or PNG by its content, over 10 MB) is shown next to the
    field and nothing is kept. Without a new file the page goes on when one is there."""
    session = request.state.session
    draft, chosen = await cases.draft(ctx, session)
    document = rules.document_of(chosen, step)
    if document is None:
        return not_found_page(request)
    upload = chosen_file(form, "berkas")
    if upload is not None:
        try:
            draft = await cases.add_document(
                ctx,
                session,
                document["code"],
                await upload.read(),
                upload.filename or "berkas",
                upload.content_type or "",
            )
        except Refused as refused:
            message = refused.messages.get("file") or next(iter(refused.messages.values()), "")
            return await _question(
                ctx, request, step, draft, chosen, checking=checking, errors={"berkas": message}
            )
    elif not rules.answered(draft, step, chosen):
        errors = {"berkas": translator(language(request))("error.berkas.empty")}
        return await _question(ctx, request, step, draft, chosen, checking=checking, errors=errors)
    following = rules.next_page(draft, chosen, step, checking=checking)
    return see_other(f"/izin/{following}")


# ----- check, send, done ---------------------------------------------------------------------


def _shown(t: Any, spec: dict[str, Any], value: Any) -> str:
    if value is None:
        return t("izin.periksa.kosong")
    if spec["kind"] == "choice":
        return choice_label(t, str(value))
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".").replace(",", " ").replace(".", ",").replace(" ", ".")
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")
    return str(value)


def _summary(lang: str, draft: Draft, chosen: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The check page's rows: (label, value, the page that asks it)."""
    t = translator(lang)
    desa = find_desa(draft.get("desa", ""))
    known_by = rules.identity(chosen, draft)
    contact = ", ".join(v for v in (draft.get("telepon"), draft.get("email")) if v)
    rows = [
        (t("izin.periksa.jenis"), chosen["name"], "jenis"),
        (t("izin.periksa.lokasi"), f"{desa.name}, {desa.kecamatan_name}" if desa else "", "kecamatan"),
    ]
    if rules.takes_both(chosen):
        rows.append(
            (t("izin.periksa.sebagai"), t(f"izin.sebagai.{draft.get(rules.APPLYING_AS)}"), rules.APPLYING_AS)
        )
    rows += [
        (t(f"izin.pemohon.{known_by}"), draft.get(known_by, ""), "pemohon"),
        (t("izin.pemohon.nama"), draft.get("nama", ""), "pemohon"),
        (t("izin.periksa.kontak"), contact, "pemohon"),
    ]
    details = draft.get("rincian") or {}
    rows += [
        (label_of(lang, f), _shown(t, f, details.get(f["name"])), FIELD_PAGE + f["name"])
        for f in chosen["fields"]
    ]
    rows += [
        (document_name(lang, d), t("izin.periksa.terunggah"), DOCUMENT_PAGE + d["code"])
        for d in rules.required_documents(chosen)
    ]
    return rows


async def check_answers(
    request: Request,
    ctx: cases.Context,
    draft: Draft,
    chosen: PermitType,
    errors: dict[str, str] | None = None,
) -> Response:
    missing = rules.first_unanswered(draft, chosen)
    if missing or chosen is None:
        return see_other(f"/izin/{missing or 'jenis'}")
    t = translator(language(request))
    return check_answers_page(
        request,
        "izin",
        rows=_summary(language(request), draft, chosen),
        errors=errors,
        back=f"/izin/{rules.previous_page(chosen, CHECK)}",
        title=t("izin.periksa.title"),
        button=t("izin.button.send"),
        labels=None,
        change="/izin/%s?ubah=1",
        note=t("izin.periksa.send_note", days=chosen["sla_working_days"]),
    )


async def send(request: Request, ctx: cases.Context) -> Response:
    session = request.state.session
    draft, chosen = await cases.draft(ctx, session)
    missing = rules.first_unanswered(draft, chosen)
    if missing or chosen is None:
        return see_other(f"/izin/{missing or 'jenis'}")
    try:
        submitted = await cases.submit(ctx, session, language(request))
    except cases.SentBack as sent_back:
        if sent_back.page != CHECK:
            return see_other(f"/izin/{sent_back.page}?ubah=1")
        draft, chosen = await cases.draft(ctx, session)
        return await check_answers(
            request, ctx, draft, chosen, refusal(request, "izin.error.kirim", sent_back.general)
        )
    except Refused as refused:
        draft, chosen = await cases.draft(ctx, session)
        return await check_answers(
            request, ctx, draft, chosen, refusal(request, "izin.error.kirim", refused.messages)
        )
    query = urlencode({"hari": submitted.get("sla_working_days", "")})
    return see_other(f"/izin/selesai/{quote(submitted['tracking_code'])}?{query}")


@router.get("/izin/selesai/{code}", response_class=HTMLResponse)
async def confirmation(request: Request, code: str, hari: str = "") -> HTMLResponse:
    """`hari`: the working days the service answered (shown only when a number)."""
    sla = int(hari) if hari.isascii() and hari.isdigit() and len(hari) <= 3 else None
    return confirmation_page(request, code, "permits", "izin.selesai.", again="/izin/jenis", sla=sla)


# ----- Lacak: sending the documents an officer asked for again --------------------------------


async def _case(ctx: cases.Context, form: FormData) -> Any:
    raw = form.get("kode")
    found = code_and_service(raw[:60]) if isinstance(raw, str) else None
    if found is None or found[1] != "permits":
        return None
    return await track(ctx, *found)


@router.post("/lacak/berkas", response_class=HTMLResponse)
async def missing_document(request: Request, ctx: Ctx) -> Response:
    """One asked-for document, uploaded from Lacak (kept by this browser until sent)."""
    form = await checked_form(request)
    case = await _case(ctx, form)
    document = form.get("dokumen")
    if case is None or document not in (case.facts.get("missing") or []):
        return not_found_page(request)
    field = f"berkas-{document}"
    upload = chosen_file(form, field)
    if upload is None:
        errors = {field: translator(language(request))("error.berkas.empty")}
        return await track_page(request, ctx, case.code, errors=errors)
    try:
        await cases.add_missing(
            ctx,
            request.state.session,
            case.code,
            str(document),
            await upload.read(),
            upload.filename or "berkas",
            upload.content_type or "",
        )
    except SignInNeeded:
        return see_other(rules.applicant_sign_in(case.code))
    except Refused as refused:
        message = refused.messages.get("file") or next(iter(refused.messages.values()), "")
        return await track_page(request, ctx, case.code, errors={field: message})
    return see_other("/lacak?" + urlencode({"kode": case.code}) + "#berkas")


@router.post("/lacak/kirim", response_class=HTMLResponse)
async def send_missing(request: Request, ctx: Ctx) -> Response:
    """Send the asked-for documents together; the SLA clock resumes."""
    form = await checked_form(request)
    t = translator(language(request))
    case = await _case(ctx, form)
    if case is None or not case.facts.get("missing"):
        return not_found_page(request)
    try:
        missing = await cases.send_missing(ctx, request.state.session, case)
    except SignInNeeded:
        return see_other(rules.applicant_sign_in(case.code))
    except Refused as refused:
        errors = refusal(request, "izin.error.berkas", refused.messages)
        if refused.status == HTTPStatus.NOT_FOUND:
            # The service refuses this contact: not the phone or email the applicant gave.
            errors = {"": t("izin.lacak.not_applicant")}
        return await track_page(request, ctx, case.code, errors=errors)
    if missing:
        return await track_page(
            request, ctx, case.code, errors={f"berkas-{c}": t("error.berkas.empty") for c in missing}
        )
    return see_other("/lacak?" + urlencode({"kode": case.code, "terkirim": "1"}))
