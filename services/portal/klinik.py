"""The clinic workspace (/petugas/klinik/…) of a health officer, for their facility:
today's queue per polyclinic with "call next" and each visit's BPJS task steps, and the
bed board; and the waiting-room display (/antrean/layar/…), public, for a television:
the number called and the next ones, live over Server-Sent Events (a page without
JavaScript refreshes itself). Thin routes as in petugas.py: read the request, call one
use case (klinik_cases.py), render. Everything works without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from services.portal import klinik_cases as cases
from services.portal import klinik_rules as rules
from services.portal.clients.base import Refused
from services.portal.i18n import translator
from services.portal.pages import Ctx
from services.portal.petugas import Officer, officer_page, sent_form
from services.portal.petugas_cases import Signed
from services.portal.web import checked_form, language, refusal, render, see_other, text_fields, when
from shared.kit.app import service_of

router = APIRouter(include_in_schema=False)
HOME = "/petugas/klinik"
# The display's stream: one address (the kit's admission control lets it through by
# path), the polyclinic in its query.
DISPLAY_STREAM = "/antrean/layar/siaran"
# Without JavaScript the display reloads itself this often (seconds).
DISPLAY_REFRESH_SECONDS = 5


@dataclass(frozen=True)
class Shown:
    """What a clinic page shows besides its facility's data: the form the officer sent,
    as typed, with what was wrong with it (the page again, 422; `failed`: the ward whose
    form it was), or what was just done (`saved`: a ward's or a doctor's code; `changed`:
    a date's session; `called`: the queue number called)."""

    errors: dict[str, str] | None = None
    form: dict[str, str] | None = None
    failed: str | None = None
    saved: str | None = None
    changed: bool = False
    called: str | None = None


ASKED = Shown()  # the page as asked for


def _facility_home(code: str) -> str:
    return f"{HOME}/{quote(code)}"


def _clinic_page(
    request: Request,
    template: str,
    found: dict[str, Any],
    address: str,
    errors: dict[str, str] | None,
    **values: Any,
) -> HTMLResponse:
    """A page of the facility `found` with a form: refused (422) with `errors`, its
    form sent to `address` under the facility's own."""
    return officer_page(
        request,
        f"klinik/{template}",
        422 if errors else 200,
        facility=found,
        errors=errors or {},
        when=when,
        action=_facility_home(found["code"]) + address,
        **values,
    )


@router.get("/petugas/klinik", response_class=HTMLResponse)
async def clinic(request: Request, ctx: Ctx, officer: Officer) -> Response:
    """The officer's facility; the health office (every facility) chooses one."""
    own = rules.own_facility(officer.facility)
    if own is not None:
        return see_other(_facility_home(own))
    return officer_page(request, "klinik/fasilitas.html", facilities=await cases.facilities(ctx))


@router.get("/petugas/klinik/{facility}", response_class=HTMLResponse)
async def queues(request: Request, ctx: Ctx, officer: Officer, facility: str) -> Response:
    """Antrean hari ini: each polyclinic's current number and counts."""
    found, polyclinics = await cases.today(ctx, officer, facility)
    return officer_page(request, "klinik/antrean.html", facility=found, polyclinics=polyclinics)


async def _polyclinic_page(
    request: Request, ctx: Ctx, officer: Signed, facility: str, code: str, shown: Shown = ASKED
) -> HTMLResponse:
    found = await cases.facility(ctx, facility)
    poli = await cases.polyclinic(ctx, officer, facility, code)
    return _clinic_page(
        request,
        "poli.html",
        found,
        f"/poli/{quote(poli.code)}",
        shown.errors,
        poli=poli,
        order=["tugas"],
        called=shown.called,
        display=f"/antrean/layar/{quote(found['code'])}/{quote(poli.code)}",
    )


@router.get("/petugas/klinik/{facility}/poli/{code}", response_class=HTMLResponse)
async def polyclinic(
    request: Request,
    ctx: Ctx,
    officer: Officer,
    facility: str,
    code: str,
    dipanggil: str | None = Query(None, max_length=20),
) -> Response:
    return await _polyclinic_page(request, ctx, officer, facility, code, Shown(called=dipanggil))


@router.post("/petugas/klinik/{facility}/poli/{code}/panggil", response_class=HTMLResponse)
async def call_next(request: Request, ctx: Ctx, officer: Officer, facility: str, code: str) -> Response:
    """Panggil berikutnya: the lowest number waiting for the polyclinic is called."""
    await checked_form(request)
    page = f"{_facility_home(facility)}/poli/{quote(code)}"

    try:
        called = await cases.call_next(ctx, officer, facility, code)
    except Refused as refused:
        errors = refusal(request, "klinik.error.call", refused.messages)
        return await _polyclinic_page(request, ctx, officer, facility, code, Shown(errors))
    return see_other(f"{page}?" + urlencode({"dipanggil": called}))


@router.post("/petugas/klinik/{facility}/poli/{code}/tugas", response_class=HTMLResponse)
async def set_task(request: Request, ctx: Ctx, officer: Officer, facility: str, code: str) -> Response:
    """A visit's next BPJS task (its button on the queue page)."""
    form = await checked_form(request)
    fields = text_fields(form)

    async def again(errors: dict[str, str]) -> HTMLResponse:
        return await _polyclinic_page(request, ctx, officer, facility, code, Shown(errors))

    page = f"{_facility_home(facility)}/poli/{quote(code)}"
    return await sent_form(request, cases.set_task(ctx, officer, fields), again, page)


# ----- beds -------------------------------------------------------------------------------


async def _beds_page(request: Request, ctx: Ctx, facility: str, shown: Shown = ASKED) -> HTMLResponse:
    found, wards = await cases.wards(ctx, facility)
    return _clinic_page(
        request,
        "tempat_tidur.html",
        found,
        "/tempat-tidur",
        shown.errors,
        wards=wards,
        form=shown.form or {},
        failed=shown.failed,
        saved=shown.saved,
        order=["total", "terisi"],
    )


@router.get("/petugas/klinik/{facility}/tempat-tidur", response_class=HTMLResponse)
async def beds(
    request: Request,
    ctx: Ctx,
    officer: Officer,
    facility: str,
    disimpan: str | None = Query(None, max_length=20),
) -> Response:
    return await _beds_page(request, ctx, facility, Shown(saved=disimpan))


@router.post("/petugas/klinik/{facility}/tempat-tidur/{ward}", response_class=HTMLResponse)
async def update_beds(request: Request, ctx: Ctx, officer: Officer, facility: str, ward: str) -> Response:
    form = await checked_form(request)
    fields = text_fields(form)

    async def again(errors: dict[str, str]) -> HTMLResponse:
        return await _beds_page(request, ctx, facility, Shown(errors, fields, failed=ward))

    done = f"{_facility_home(facility)}/tempat-tidur?" + urlencode({"disimpan": ward})
    return await sent_form(request, cases.update_beds(ctx, officer, facility, ward, fields), again, done)


# ----- doctors' schedules and quotas ---------------------------------------------------------


async def _schedules_page(request: Request, ctx: Ctx, facility: str, shown: Shown = ASKED) -> HTMLResponse:
    found, listed = await cases.doctors(ctx, facility)
    t = translator(language(request))
    return _clinic_page(
        request,
        "jadwal.html",
        found,
        "/jadwal/tanggal",
        shown.errors,
        doctors=listed,
        names={d.code: d.name for d in listed},
        doctor_options=[(d.code, f"{d.name} — {d.polyclinic}") for d in listed],
        weekdays=rules.WEEKDAYS,
        saved=shown.saved,
        changed=shown.changed,
        form=shown.form or {},
        order=["dokter", "tanggal", "perubahan", "kuota_jkn_tanggal", "kuota_umum_tanggal", "alasan"],
        changes=[(value, t(f"klinik.tanggal.{value}"), None) for value in rules.DATE_CHANGES],
    )


@router.get("/petugas/klinik/{facility}/jadwal", response_class=HTMLResponse)
async def schedules(
    request: Request,
    ctx: Ctx,
    officer: Officer,
    facility: str,
    disimpan: str | None = Query(None, max_length=30),
    diubah: str | None = Query(None, max_length=1),
) -> Response:
    """Each doctor's week (sessions, minutes per patient, daily quotas) and the dates
    changed from it, with the form changing one date."""
    return await _schedules_page(request, ctx, facility, Shown(saved=disimpan, changed=bool(diubah)))


@router.post("/petugas/klinik/{facility}/jadwal/tanggal", response_class=HTMLResponse)
async def change_date(request: Request, ctx: Ctx, officer: Officer, facility: str) -> Response:
    """One date of a doctor's session: on leave (the day's patients are told and offered
    another date) or other quotas."""
    form = await checked_form(request)
    fields = text_fields(form)

    async def again(errors: dict[str, str]) -> HTMLResponse:
        return await _schedules_page(request, ctx, facility, Shown(errors, fields))

    done = f"{_facility_home(facility)}/jadwal?diubah=1"
    return await sent_form(request, cases.change_date(ctx, officer, facility, fields), again, done)


def _weekday(value: str) -> int:
    """A weekday from the address (0 = Monday); anything else is an unknown page."""
    if not value.isdigit() or int(value) not in rules.WEEKDAYS:
        raise cases.NotFound
    return int(value)


async def _schedule_page(
    request: Request, ctx: Ctx, facility: str, code: str, weekday: int, shown: Shown = ASKED
) -> HTMLResponse:
    found, doctor = await cases.doctor(ctx, facility, code)
    current = doctor.schedules.get(weekday)
    values = shown.form or (
        {
            "mulai": current["start"],
            "selesai": current["end"],
            "menit": str(current["minutes_per_patient"]),
            "kuota_jkn": str(current["quota_jkn"]),
            "kuota_umum": str(current["quota_non_jkn"]),
            "aktif": "ya" if current["active"] else "tidak",
        }
        if current
        else {"aktif": "ya"}
    )
    t = translator(language(request))
    return _clinic_page(
        request,
        "jadwal_ubah.html",
        found,
        f"/jadwal/{quote(doctor.code)}/{weekday}",
        shown.errors,
        doctor=doctor,
        weekday=weekday,
        form=values,
        order=["mulai", "selesai", "menit", "kuota_jkn", "kuota_umum", "aktif"],
        active=[(value, t(f"klinik.jadwal.aktif.{value}"), None) for value in rules.ACTIVE],
    )


@router.get("/petugas/klinik/{facility}/jadwal/{code}/{weekday}", response_class=HTMLResponse)
async def schedule(
    request: Request, ctx: Ctx, officer: Officer, facility: str, code: str, weekday: str
) -> Response:
    return await _schedule_page(request, ctx, facility, code, _weekday(weekday))


@router.post("/petugas/klinik/{facility}/jadwal/{code}/{weekday}/simpan", response_class=HTMLResponse)
async def update_schedule(
    request: Request, ctx: Ctx, officer: Officer, facility: str, code: str, weekday: str
) -> Response:
    form = await checked_form(request)
    day = _weekday(weekday)
    fields = text_fields(form)

    async def again(errors: dict[str, str]) -> HTMLResponse:
        return await _schedule_page(request, ctx, facility, code, day, Shown(errors, fields))

    done = f"{_facility_home(facility)}/jadwal?" + urlencode({"disimpan": code.upper()})
    sending = cases.update_schedule(ctx, officer, facility, code, day, fields)
    return await sent_form(request, sending, again, done)


# ----- the waiting-room display (public: no sign-in, no personal data) ---------------------


@router.get("/antrean/layar/{facility}/{code}", response_class=HTMLResponse)
async def display(request: Request, ctx: Ctx, facility: str, code: str) -> Response:
    state = await cases.display(ctx, facility, code)
    stream = f"{DISPLAY_STREAM}?" + urlencode({"fasilitas": facility.upper(), "poli": code.upper()})
    response = render(
        request, "layar.html", state=state, stream=stream, refresh=DISPLAY_REFRESH_SECONDS, errors={}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(DISPLAY_STREAM)
async def display_stream(
    request: Request,
    ctx: Ctx,
    fasilitas: str = Query(max_length=20),
    poli: str = Query(max_length=20),
) -> Response:
    await cases.queue_board(ctx, fasilitas, poli)  # an unknown polyclinic is the 404 page, not a stream
    service = service_of(request)
    return StreamingResponse(
        cases.display_events(ctx, fasilitas, poli, lambda: service.shutting_down),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
