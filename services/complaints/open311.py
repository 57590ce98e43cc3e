"""Open311 GeoReport v2, mapped onto complaints: pure, no I/O.

What the specification names and what Sinergi holds, both ways: a complaint category is
a *service*, a complaint is a *service request* whose id is its tracking code; a form
POSTed by a client application becomes the arguments of the ordinary filing (so an Open311
report is a complaint like any other: its events, SLA clocks and notifications); a stored
complaint becomes the specification's request fields, without what the complaints
service keeps out of public views. Documents are rendered as JSON or as XML (the standard
library's ElementTree: output only, nothing here parses XML).

The specification: GeoReport v2 (services, service definition, requests, tokens, errors,
discovery). Sinergi's own rules on top of it are in docs/open311.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

from services.complaints.catalogue import Catalogue
from services.complaints.domain import (
    DESCRIPTION_LENGTH,
    OPEN_STATUSES,
    TITLE_LENGTH,
    Category,
    Reporter,
    Status,
    within_purworejo,
)
from shared.kit.errors import InvalidFields
from shared.reference import Desa, all_desa, find_desa
from shared.reference.fields import DesaCode, MobilePhone, Nik
from shared.schemas.common import GeoPoint
from shared.schemas.complaints import ComplaintKind

JURISDICTION = "purworejokab.go.id"
FORMATS = {"json": "application/json", "xml": "text/xml; charset=utf-8"}
# GET requests: the specification's window and the most one answer lists.
MAX_WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
# Photos are never fetched from a client's URL: a photo is uploaded first (POST
# /complaints/photos) and named as `urn:uuid:<its id>`.
MEDIA_URN = re.compile(r"urn:uuid:([0-9a-fA-F-]{36})")
KEY_PREFIX = "o311_"
_ATTRIBUTE = re.compile(r"attribute\[([a-z_]+)\]")
_YES_NO = [{"key": "true", "name": "Ya"}, {"key": "false", "name": "Tidak"}]
_KIND_NAMES = {
    "pengaduan": "Pengaduan (keluhan atas layanan)",
    "aspirasi": "Aspirasi (saran dan usulan)",
    "permintaan_informasi": "Permintaan informasi",
}


# ----- API keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """A client application's key, as kept: its hash, never the key."""

    id: uuid.UUID
    client: str
    prefix: str
    issued_at: datetime
    issued_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_api_key() -> str:
    """A new key: 256 random bits, shown once to whoever issues it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    # A key is random and long, so a plain SHA-256 cannot be reversed by guessing.
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """Enough of a key for an administrator to tell keys apart in a list."""
    return key[: len(KEY_PREFIX) + 6]


# ----- services --------------------------------------------------------------------------------


def service(category: Category, catalogue: Catalogue) -> dict[str, Any]:
    opd = catalogue.opds[category.opd]
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": f"{category.name}: ditindaklanjuti oleh {opd.name} ({opd.code}).",
        "metadata": True,
        "type": "realtime",
        "keywords": ", ".join((category.code, category.dimension, opd.code)),
        "group": opd.name,
    }


def services(catalogue: Catalogue) -> list[dict[str, Any]]:
    return [service(c, catalogue) for c in catalogue.categories.values()]


def _desa_label(desa: Desa) -> str:
    return f"{desa.kind.capitalize()} {desa.name}, Kecamatan {desa.kecamatan_name}"


def _attribute(
    code: str, datatype: str, description: str, *, required: bool = False, values: list[Any] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "variable": True,
        "code": code,
        "datatype": datatype,
        "required": required,
        "datatype_description": None,
        "order": 0,
        "description": description,
    }
    if values is not None:
        entry["values"] = values
    return entry


def service_definition(category: Category) -> dict[str, Any]:
    """The attributes a request for `category` may carry (`attribute[code]` when POSTed)."""
    attributes = [
        _attribute(
            "kind",
            "singlevaluelist",
            "Jenis laporan (default: pengaduan)",
            values=[{"key": k, "name": _KIND_NAMES[k]} for k in get_args(ComplaintKind)],
        ),
        _attribute(
            "title",
            "string",
            f"Judul singkat ({TITLE_LENGTH[0]}-{TITLE_LENGTH[1]} karakter); default: awal deskripsi",
        ),
        _attribute(
            "nik",
            "string",
            "NIK pelapor (16 digit). Tanpa NIK laporan dicatat sebagai anonim; dengan NIK, "
            "email atau phone wajib untuk kabar perkembangan",
        ),
        _attribute(
            "anonymous", "singlevaluelist", "Sembunyikan pelapor dari petugas dan publik", values=_YES_NO
        ),
        _attribute(
            "confidential", "singlevaluelist", "Rahasiakan isi laporan dari tampilan publik", values=_YES_NO
        ),
        _attribute(
            "desa",
            "singlevaluelist",
            "Desa/kelurahan lokasi (kode Kemendagri, sama dengan address_id); wajib bila "
            "address_id kosong dan address_string tidak menyebut desa/kelurahan",
            values=[{"key": d.code, "name": _desa_label(d)} for d in all_desa()],
        ),
    ]
    for order, entry in enumerate(attributes, start=1):
        entry["order"] = order
    return {"service_code": category.code, "attributes": attributes}


def discovery(base_url: str, changeset: datetime) -> dict[str, Any]:
    return {
        "changeset": changeset,
        "contact": "Dinas Komunikasi dan Informatika Kabupaten Purworejo",
        "key_service": "API keys are issued by the regency's administrator (docs/open311.md)",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base_url,
                "changeset": changeset,
                "type": "production",
                "formats": list(FORMATS.values()),
            }
        ],
    }


# ----- POST requests ---------------------------------------------------------------------------


def _yes_no(name: str) -> Any:
    return Field(None, alias=f"attribute[{name}]", pattern="^(true|false)$")


class ReportForm(BaseModel):
    """The form a client POSTs, as the specification names its fields. Sinergi's own
    attributes come as `attribute[code]` (see `service_definition`)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False, str_strip_whitespace=True)

    service_code: str = Field(max_length=50)
    jurisdiction_id: str | None = Field(None, max_length=100)
    lat: float | None = Field(None, ge=-90, le=90)
    long: float | None = Field(None, ge=-180, le=180)
    address_string: str | None = Field(None, max_length=250)
    address_id: DesaCode | None = None
    email: EmailStr | None = None
    phone: MobilePhone | None = None
    first_name: str | None = Field(None, max_length=50)
    last_name: str | None = Field(None, max_length=50)
    description: str | None = Field(None, max_length=DESCRIPTION_LENGTH[1])
    media_url: str | None = Field(None, max_length=200)
    # Accepted as the specification allows, not kept: Sinergi needs neither.
    device_id: str | None = Field(None, max_length=100)
    account_id: str | None = Field(None, max_length=100)
    kind: ComplaintKind = Field("pengaduan", alias="attribute[kind]")
    title: str | None = Field(None, alias="attribute[title]", max_length=TITLE_LENGTH[1])
    nik: Nik | None = Field(None, alias="attribute[nik]")
    anonymous: str | None = _yes_no("anonymous")
    confidential: str | None = _yes_no("confidential")
    desa: DesaCode | None = Field(None, alias="attribute[desa]")

    @model_validator(mode="after")
    def _rules(self) -> ReportForm:
        if (self.lat is None) != (self.long is None):
            raise ValueError("lat and long go together: give both or neither")
        return self


ATTRIBUTES = frozenset(
    m.group(1) for f in ReportForm.model_fields.values() if f.alias and (m := _ATTRIBUTE.fullmatch(f.alias))
)


def _empty_is_absent(form: Mapping[str, str]) -> dict[str, str]:
    # HTML forms and client libraries send fields left blank as "": the same as absent.
    return {k: v for k, v in form.items() if v.strip() != ""}


def _field_errors(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    return [(tuple(e["loc"]) or ("form",), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]


def _place_by_address(address: str) -> tuple[Desa | None, str | None]:
    """The one desa/kelurahan `address` names (with its kecamatan where the name is not
    unique in Purworejo), or why none can be chosen."""
    text = address.lower()

    def named(name: str) -> bool:
        return re.search(rf"\b{re.escape(name.lower())}\b", text) is not None

    found = [d for d in all_desa() if named(d.name)]
    if len(found) > 1:  # a name several kecamatan have: the one the address names
        found = [d for d in found if named(d.kecamatan_name)] or found
    if len(found) > 1:  # "…, Grabag" named the kecamatan, not its desa Grabag
        found = [d for d in found if d.name.lower() != d.kecamatan_name.lower()] or found
    if len(found) == 1:
        return found[0], None
    if not found:
        return None, "names no desa/kelurahan of Kabupaten Purworejo"
    return None, "names a desa/kelurahan that several kecamatan have: add the kecamatan"


def _desa_of(form: ReportForm, errors: list[tuple[tuple[str | int, ...], str]]) -> Desa | None:
    codes = {c for c in (form.address_id, form.desa) if c}
    if len(codes) > 1:
        errors.append((("address_id",), "address_id and attribute[desa] name different desa/kelurahan"))
        return None
    if codes:
        return find_desa(codes.pop())
    if form.address_string:
        desa, why = _place_by_address(form.address_string)
        if desa is not None:
            return desa
        errors.append((("address_string",), f"{why}; give address_id (Kemendagri desa/kelurahan code)"))
        return None
    if form.lat is not None:
        errors.append(
            (
                ("lat",),
                "lat/long alone cannot be placed in a desa/kelurahan: give address_id (its "
                "Kemendagri code, e.g. 33.06.01.2001), attribute[desa] or address_string naming it",
            )
        )
        return None
    errors.append((("address_id",), "a location is required: address_id, address_string or lat/long"))
    return None


def _title(form: ReportForm, description: str, category: Category) -> str:
    if form.title:
        return form.title
    first_line = description.splitlines()[0].strip()
    title = first_line if len(first_line) <= TITLE_LENGTH[1] else first_line[: TITLE_LENGTH[1] - 1] + "…"
    return title if len(title) >= TITLE_LENGTH[0] else category.name


def _photos(media_url: str | None, errors: list[tuple[tuple[str | int, ...], str]]) -> list[uuid.UUID]:
    if not media_url:
        return []
    match = MEDIA_URN.fullmatch(media_url)
    if match is None:
        errors.append(
            (
                ("media_url",),
                "photos are not fetched from other hosts: upload the photo first with "
                "POST /complaints/photos and give media_url=urn:uuid:<its id>",
            )
        )
        return []
    return [uuid.UUID(match.group(1))]


def filing(form_data: Mapping[str, str], catalogue: Catalogue) -> dict[str, Any]:
    """The arguments of the complaints service's filing (`handlers.FileComplaint`) for the
    form a client POSTed, or `InvalidFields` naming every field to fix."""
    data = _empty_is_absent(form_data)
    errors: list[tuple[tuple[str | int, ...], str]] = [
        ((key,), f"unknown attribute; this service's are {sorted(ATTRIBUTES)}")
        for key in data
        if (m := _ATTRIBUTE.fullmatch(key)) and m.group(1) not in ATTRIBUTES
    ]
    try:
        form = ReportForm.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields([*errors, *_field_errors(exc)]) from None
    if form.jurisdiction_id not in (None, JURISDICTION):
        errors.append((("jurisdiction_id",), f"this endpoint serves {JURISDICTION} only"))
    category = catalogue.categories.get(form.service_code)
    if category is None:
        errors.append((("service_code",), f"unknown service_code '{form.service_code}'; see GET services"))
    description = form.description or ""
    if len(description) < DESCRIPTION_LENGTH[0]:
        errors.append(
            (("description",), f"describe the problem in at least {DESCRIPTION_LENGTH[0]} characters")
        )
    location = (
        GeoPoint(lat=form.lat, lon=form.long) if form.lat is not None and form.long is not None else None
    )
    if location is not None and not within_purworejo(location):
        errors.append((("lat",), "lat/long is outside Kabupaten Purworejo"))
    desa = _desa_of(form, errors)
    photos = _photos(form.media_url, errors)
    anonymous = form.anonymous == "true" or (form.anonymous is None and form.nik is None)
    if not anonymous and form.nik is None:
        errors.append(
            (("attribute[nik]",), "a named report needs the reporter's NIK (or attribute[anonymous]=true)")
        )
    if not anonymous and not (form.email or form.phone):
        errors.append((("email",), "a named report needs email or phone to send updates"))
    if errors or category is None or desa is None:
        raise InvalidFields(errors)
    name = " ".join(n for n in (form.first_name, form.last_name) if n) or None
    return {
        "kind": form.kind,
        "category": category.code,
        "title": _title(form, description, category),
        "description": description,
        "desa_code": desa.code,
        "kecamatan_code": desa.kecamatan_code,
        "anonymous": anonymous,
        "confidential": form.confidential == "true",
        "reporter": Reporter(nik=form.nik, name=name, phone=form.phone, email=form.email),
        "location": location,
        "photos": photos,
    }


def filed(tracking_code: str, token: uuid.UUID) -> list[dict[str, Any]]:
    """POST requests' answer: the request's id at once, and a token to follow it by."""
    return [
        {
            "service_request_id": tracking_code,
            "token": str(token),
            "service_notice": "Laporan diterima; ikuti dengan service_request_id (kode lacak).",
            "account_id": None,
        }
    ]


def token_answer(token: uuid.UUID, tracking_code: str) -> list[dict[str, Any]]:
    return [{"service_request_id": tracking_code, "token": str(token)}]


# ----- GET requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' filters, as the repository applies them (Sinergi's names)."""

    tracking_codes: list[str] | None = None
    categories: list[str] | None = None
    statuses: list[str] | None = None
    filed_from: datetime | None = None
    filed_to: datetime | None = None
    limit: int = MAX_REQUESTS


_STATUSES = {
    "open": sorted(OPEN_STATUSES),
    "closed": sorted(set(Status) - OPEN_STATUSES),
}


def _listed(value: str | None) -> list[str] | None:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    return items or None


def _instant(
    name: str, value: str | None, errors: list[tuple[tuple[str | int, ...], str]]
) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        errors.append(((name,), "a W3C date-time with its timezone, e.g. 2026-11-05T08:15:30+07:00"))
        return None
    return parsed


@dataclass(frozen=True)
class RequestFilters:
    """GET requests' parameters, as the specification names them (the route's query)."""

    service_request_id: str | None = None
    service_code: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = None


def request_query(now: datetime, filters: RequestFilters) -> RequestQuery:
    """GET requests' parameters as the specification defines them: `service_request_id`
    (comma list) overrides every other; otherwise the window is at most 90 days, by
    default the last 90, with at most 1000 requests, newest first."""
    codes = _listed(filters.service_request_id)
    if codes is not None:
        return RequestQuery(tracking_codes=[c.upper() for c in codes[:MAX_REQUESTS]])
    errors: list[tuple[tuple[str | int, ...], str]] = []
    start = _instant("start_date", filters.start_date, errors)
    end = _instant("end_date", filters.end_date, errors)
    statuses = _listed(filters.status)
    for s in statuses or []:
        if s not in _STATUSES:
            errors.append((("status",), f"unknown status '{s}': open or closed"))
    if start is not None and end is not None and end - start > MAX_WINDOW:
        errors.append((("end_date",), "start_date and end_date may span at most 90 days"))
    if start is not None and end is not None and end < start:
        errors.append((("end_date",), "end_date is before start_date"))
    if errors:
        raise InvalidFields(errors)
    if start is None and end is None:
        end = now
    if start is None:
        start = end - MAX_WINDOW  # type: ignore[operator]
    if end is None:
        end = start + MAX_WINDOW
    return RequestQuery(
        categories=_listed(filters.service_code),
        statuses=sorted({x for s in statuses or [] for x in _STATUSES[s]}) or None,
        filed_from=start,
        filed_to=end,
    )


def hidden(row: Mapping[str, Any]) -> bool:
    """What the citizen wrote, and where, stays out of public lists for a confidential or
    an anonymous complaint (the complaints service's public view hides it the same way)."""
    return bool(row["confidential"] or row["anonymous"])


def request(row: Mapping[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """A stored complaint (the repository's `open311_requests` row) as the specification's
    service request. The reporter and their contact are never in it."""
    category = catalogue.category(row["category"])
    opd = catalogue.opds.get(row["opd"] or "")
    desa = find_desa(row["desa_code"])
    private = hidden(row)
    return {
        "service_request_id": row["tracking_code"],
        "status": "open" if row["status"] in OPEN_STATUSES else "closed",
        "status_notes": None if private else row["last_note"],
        "service_name": category.name,
        "service_code": category.code,
        "description": None if private else row["description"],
        "agency_responsible": opd.name if opd else None,
        "service_notice": f"Status Sinergi: {row['status']}",
        "requested_datetime": row["filed_at"],
        "updated_datetime": row["updated_at"],
        "expected_datetime": row["expected_at"],
        "address": f"{_desa_label(desa)}, Kabupaten Purworejo" if desa else None,
        "address_id": row["desa_code"],
        "zipcode": None,
        "lat": None if private else row["lat"],
        "long": None if private else row["lon"],
        # Photos stay with the officers: they may show people or homes.
        "media_url": None,
    }


# ----- errors ----------------------------------------------------------------------------------


def errors(code: int, descriptions: Sequence[str]) -> list[dict[str, Any]]:
    return [{"code": code, "description": d} for d in descriptions]


def field_descriptions(field_errors: Sequence[tuple[Sequence[str | int], str]]) -> list[str]:
    """`field: message` for each error; the kit's "body"/"query" location is left out."""
    out = []
    for loc, message in field_errors:
        names = [str(p) for p in loc if p not in ("body", "query", "path", "form")]
        out.append(f"{'.'.join(names)}: {message}" if names else message)
    return out


# ----- rendering -------------------------------------------------------------------------------

# The XML element of one item of a list field, by the list's name.
_ITEMS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, Mapping):
        element.extend(_element(k, v) for k, v in value.items())
    elif isinstance(value, list):
        element.extend(_element(_ITEMS[tag], v) for v in value)
    else:
        element.text = _text(value)
    return element


def render(document: Any, root: str, fmt: str) -> bytes:
    """`document` as the specification's JSON, or as its XML under the element `root`
    (a list's items named as `_ITEMS` says: `service_requests` holds `request`s)."""
    if fmt == "json":
        return json.dumps(document, default=_text, ensure_ascii=False).encode()
    body = ET.tostring(_element(root, document), encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode()
