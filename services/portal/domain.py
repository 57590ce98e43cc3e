"""The portal's rules, pure: the Lapor journey's pages in order, what each page accepts
and refuses (as message keys, translated by the pages), the complaint the answers make,
which service holds a code, and a case's history in plain words.

The portal keeps no case: the answers live in a draft until the complaint is filed with
the complaints service, and Lacak asks the service that holds the code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.kit.codes import COMPLAINT_PREFIX, HEALTH_PREFIX, PERMIT_PREFIX, is_public_code, normalise_code
from shared.reference import all_desa, all_kecamatan, find_desa, find_kecamatan
from shared.reference.nik import InvalidNIK, parse_nik
from shared.reference.phone import InvalidPhone, normalize_mobile
from shared.reference.regions import REGENCY_LATITUDES, REGENCY_LONGITUDES, within_regency

LAPOR = "lapor"
KINDS = ("pengaduan", "aspirasi", "permintaan_informasi")
# The complaints service takes up to three photos a complaint.
MAX_PHOTOS = 3
# The complaints service's limits on what a citizen writes (services/complaints/api.py).
TITLE_LENGTH = (5, 150)
DESCRIPTION_LENGTH = (10, 5000)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
YES, NO = "ya", "tidak"

# Lapor's question pages in order (check answers after the last).
STEPS = ("jenis", "kategori", "kecamatan", "desa", "isi", "foto", "privasi", "pelapor")
CHECK = "periksa"
# A page whose answer is one with the next: changing the kecamatan from the check page
# goes on to the desa, whether or not the kecamatan changed.
GOES_ON_TO = {"kecamatan": "desa"}


class Draft(dict[str, Any]):
    """A citizen's answers so far (JSON-shaped: kept in the portal's database)."""

    @property
    def anonymous(self) -> bool:
        return self.get("anonim") == YES

    @property
    def photos(self) -> list[str]:
        return list(self.get("foto", []))


@dataclass
class Answer:
    """What a page made of a submitted form: new answers, or errors by field."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field -> message key
    said: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> its message's values

    def refuse(self, name: str, key: str, **values: Any) -> None:
        """The first refusal of a field stands (with the values its message names)."""
        if name not in self.errors:
            self.errors[name] = key
            if values:
                self.said[name] = values

    def messages(self, t: Callable[..., str]) -> dict[str, str]:
        """The errors in a page's words (`t`, the page's translator)."""
        return {name: t(key, **self.said.get(name, {})) for name, key in self.errors.items()}


def steps_for(draft: Mapping[str, Any]) -> tuple[str, ...]:
    """The pages this draft goes through: an anonymous report asks for no reporter."""
    return tuple(s for s in STEPS if not (s == "pelapor" and Draft(draft).anonymous))


def answered(draft: Mapping[str, Any], step: str) -> bool:
    needs = {
        "jenis": ("jenis",),
        "kategori": ("kategori",),
        "kecamatan": ("kecamatan",),
        "desa": ("desa",),
        "isi": ("judul", "uraian"),
        "foto": ("foto_selesai",),
        "privasi": ("anonim", "rahasia"),
        "pelapor": ("nik",),
    }[step]
    return all(draft.get(name) not in (None, "") for name in needs)


def first_unanswered(draft: Mapping[str, Any]) -> str | None:
    return next((s for s in steps_for(draft) if not answered(draft, s)), None)


def next_page(draft: Mapping[str, Any], step: str, *, checking: bool) -> str:
    """Where a page leads once answered: on, or back to the check page when the citizen
    came to change one answer (unless that change opened a question, e.g. a new kecamatan
    needs its desa)."""
    missing = first_unanswered(draft)
    if checking:
        return missing or GOES_ON_TO.get(step, CHECK)
    order = steps_for(draft)
    later = order[order.index(step) + 1 :] if step in order else ()
    return later[0] if later else (missing or CHECK)


def previous_page(draft: Mapping[str, Any], step: str) -> str | None:
    order = (*steps_for(draft), CHECK)
    index = order.index(step) if step in order else 0
    return order[index - 1] if index > 0 else None


# ----- each page's answers ----------------------------------------------------------------


def choice(answer: Answer, form: Mapping[str, str], name: str, allowed: tuple[str, ...] | set[str]) -> None:
    value = (form.get(name) or "").strip()
    if value not in allowed:
        answer.refuse(name, f"error.{name}.choose")
    else:
        answer.values[name] = value


def read_page(step: str, form: Mapping[str, str], draft: Mapping[str, Any], categories: set[str]) -> Answer:
    """A page's submitted form as answers or errors; `categories` are the codes the
    complaints service offers now."""
    answer = Answer()
    if step == "jenis":
        choice(answer, form, "jenis", KINDS)
    elif step == "kategori":
        choice(answer, form, "kategori", categories)
    elif step == "kecamatan":
        code = (form.get("kecamatan") or "").strip()
        if find_kecamatan(code) is None:
            answer.refuse("kecamatan", "error.kecamatan.choose")
        else:
            answer.values["kecamatan"] = code
            if draft.get("kecamatan") != code:
                answer.values["desa"] = ""  # a desa of another kecamatan no longer fits
    elif step == "desa":
        _read_desa(answer, form, draft)
    elif step == "isi":
        read_text(answer, form, "judul", TITLE_LENGTH)
        read_text(answer, form, "uraian", DESCRIPTION_LENGTH)
    elif step == "privasi":
        choice(answer, form, "anonim", (YES, NO))
        choice(answer, form, "rahasia", (YES, NO))
    elif step == "pelapor":
        _read_reporter(answer, form)
    return answer


def _read_desa(answer: Answer, form: Mapping[str, str], draft: Mapping[str, Any]) -> None:
    desa = find_desa((form.get("desa") or "").strip())
    if desa is None or desa.kecamatan_code != draft.get("kecamatan"):
        answer.refuse("desa", "error.desa.choose")
    else:
        answer.values["desa"] = desa.code
    # Coordinates only come from the phone (lokasi.js); without them the report goes
    # with its desa alone.
    point = coordinates(form.get("lat"), form.get("lon"))
    answer.values["lokasi"] = point


def place_choices(step: str, draft: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a location page (`kecamatan`, then `desa` within the chosen
    kecamatan), for every journey that asks where."""
    if step == "kecamatan":
        return {"options": [(k.code, k.name) for k in all_kecamatan()]}
    kecamatan = find_kecamatan(draft.get("kecamatan", ""))
    desa = [d for d in all_desa() if kecamatan and d.kecamatan_code == kecamatan.code]
    return {
        "options": [(d.code, d.name) for d in desa],
        "kecamatan_name": kecamatan.name if kecamatan else "",
    }


def coordinates(lat: str | None, lon: str | None) -> dict[str, float] | None:
    try:
        point = {"lat": round(float(lat or ""), 6), "lon": round(float(lon or ""), 6)}
    except ValueError:
        return None
    return point if within_regency(point["lat"], point["lon"]) else None


def read_text(answer: Answer, form: Mapping[str, str], name: str, length: tuple[int, int]) -> None:
    value = (form.get(name) or "").strip()
    if not value:
        answer.refuse(name, f"error.{name}.empty")
    elif len(value) < length[0]:
        answer.refuse(name, f"error.{name}.short")
    elif len(value) > length[1]:
        answer.refuse(name, f"error.{name}.long")
    else:
        answer.values[name] = value


def read_nik(answer: Answer, form: Mapping[str, str]) -> None:
    """The NIK as typed (spaces allowed), checked as the population registry writes it."""
    nik = re.sub(r"\s", "", form.get("nik") or "")
    if not nik:
        answer.refuse("nik", "error.nik.empty")
    else:
        try:
            answer.values["nik"] = parse_nik(nik).value
        except InvalidNIK:
            answer.refuse("nik", "error.nik.invalid")


def read_digits(
    answer: Answer, form: Mapping[str, str], name: str, count: int, separators: str = r"\s"
) -> None:
    """A number of exactly `count` digits as typed (`separators` allowed between them),
    refused as `error.<name>.empty` or `error.<name>.invalid`."""
    value = re.sub(separators, "", form.get(name) or "")
    if not value:
        answer.refuse(name, f"error.{name}.empty")
    elif not (value.isascii() and value.isdigit() and len(value) == count):
        answer.refuse(name, f"error.{name}.invalid")
    else:
        answer.values[name] = value


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def read_contacts(answer: Answer, form: Mapping[str, str], *, required: bool) -> None:
    """A form's mobile number (`telepon`, kept as +62…) and email address, each "" when
    not given; at least one of them when `required`."""
    phone = (form.get("telepon") or "").strip()
    email = (form.get("email") or "").strip()
    if required and not (phone or email):
        answer.refuse("telepon", "error.kontak.empty")
    answer.values["telepon"] = ""
    if phone:
        try:
            answer.values["telepon"] = normalize_mobile(phone)
        except InvalidPhone:
            answer.refuse("telepon", "error.telepon.invalid")
    if email and not is_email(email):
        answer.refuse("email", "error.email.invalid")
    else:
        answer.values["email"] = email


def _read_reporter(answer: Answer, form: Mapping[str, str]) -> None:
    read_nik(answer, form)
    read_contacts(answer, form, required=True)


def complaint_body(draft: Mapping[str, Any], locale: str) -> dict[str, Any]:
    """What the complaints service's POST /complaints takes, from a finished draft."""
    d = Draft(draft)
    body: dict[str, Any] = {
        "kind": d["jenis"],
        "category": d["kategori"],
        "title": d["judul"],
        "description": d["uraian"],
        "desa_code": d["desa"],
        "anonymous": d.anonymous,
        "confidential": d.get("rahasia") == YES,
        "locale": locale,
        "photos": d.photos,
    }
    if d.get("lokasi"):
        body["location"] = d["lokasi"]
    if not d.anonymous:
        reporter = {"nik": d["nik"], "phone": d.get("telepon") or None, "email": d.get("email") or None}
        body["reporter"] = {k: v for k, v in reporter.items() if v}
    return body


# ----- Lacak -------------------------------------------------------------------------------

SERVICE_OF_PREFIX = {COMPLAINT_PREFIX: "complaints", PERMIT_PREFIX: "permits", HEALTH_PREFIX: "health"}


def code_and_service(raw: str) -> tuple[str, str] | None:
    """The code as the services keep it and the service that holds it, or None when what
    was typed cannot be a code."""
    code = normalise_code(raw)
    if not is_public_code(code):
        return None
    service = SERVICE_OF_PREFIX.get(code.split("-", 1)[0])
    return (code, service) if service else None


@dataclass(frozen=True)
class Line:
    """One thing that happened to the citizen's case, in plain words (a message key)."""

    at: str
    key: str
    note: str | None = None


def history_lines(service: str, history: list[Mapping[str, Any]]) -> list[Line]:
    """The case's history as the citizen reads it: one line per thing that happened to
    the case (an action of the service's history, not a message the citizen was sent),
    oldest first. An action's detail after ':' (a rejection's reason code) is left to the
    service's note."""
    return [
        Line(entry["at"], f"history.{service}.{entry['action'].split(':', 1)[0]}", entry.get("note"))
        for entry in history
    ]


# ----- the map of the desa page -------------------------------------------------------------

# The zoom levels the map offers: the whole regency (11) to a street (18).
MAP_ZOOMS = range(11, 19)


def tile_of(lat: float, lon: float, zoom: int) -> tuple[int, int]:
    """The Web Mercator (slippy map) tile holding a point at `zoom`: (x, y)."""
    n = 2**zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tile_in_regency(zoom: int, x: int, y: int) -> bool:
    """Whether the portal passes this tile on: one of the map's zoom levels and within the
    regency, so the portal never serves as anybody's general map proxy."""
    if zoom not in MAP_ZOOMS:
        return False
    west, north = tile_of(REGENCY_LATITUDES[1], REGENCY_LONGITUDES[0], zoom)
    east, south = tile_of(REGENCY_LATITUDES[0], REGENCY_LONGITUDES[1], zoom)
    return west <= x <= east and north <= y <= south
