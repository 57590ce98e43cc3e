"""The pure Open311 GeoReport v2 mapping (services/complaints/open311.py): documents with
the specification's fields, a form becoming a filing (or the errors naming every field to
fix), GET requests' window, what a public request hides, JSON and XML. No I/O."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.complaints import open311
from services.complaints.catalogue import load_catalogue
from services.complaints.domain import Status
from shared.kit.errors import InvalidFields
from shared.reference import all_desa
from tests import open311_support as spec

CATALOGUE = load_catalogue()
NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
NIK = "3306061708900001"
FORM = {
    "service_code": "jalan_rusak",
    "address_id": "33.06.01.2001",
    "description": "Lubang besar di jalan desa membahayakan pengendara motor.",
}


def refused(form: dict[str, str]) -> dict[str, str]:
    """The descriptions of the refusal, by field."""
    with pytest.raises(InvalidFields) as caught:
        open311.filing(form, CATALOGUE)
    return {".".join(str(p) for p in loc[1:]): message for loc, message in caught.value.errors}


# ----- services --------------------------------------------------------------------------------


def test_every_category_is_a_service_with_the_specifications_fields() -> None:
    services = open311.services(CATALOGUE)
    assert [s["service_code"] for s in services] == list(CATALOGUE.categories)
    for s in services:
        assert set(s) == spec.SERVICE
        assert s["type"] in spec.SERVICE_TYPES and s["metadata"] is True
        category = CATALOGUE.categories[s["service_code"]]
        assert s["group"] == CATALOGUE.opds[category.opd].name
        assert category.dimension in s["keywords"]


def test_a_definition_lists_its_attributes_as_the_specification_does() -> None:
    definition = open311.service_definition(CATALOGUE.categories["sampah"])
    assert set(definition) == spec.DEFINITION and definition["service_code"] == "sampah"
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert set(attributes) == {"kind", "title", "nik", "anonymous", "confidential", "desa"}
    assert [a["order"] for a in definition["attributes"]] == list(range(1, len(attributes) + 1))
    for a in attributes.values():
        assert set(a) >= spec.ATTRIBUTE and a["datatype"] in spec.DATATYPES
        if a["datatype"].endswith("valuelist"):
            assert a["values"] and all(set(v) == spec.VALUE for v in a["values"])
    assert {v["key"] for v in attributes["desa"]["values"]} == {d.code for d in all_desa()}
    assert {v["key"] for v in attributes["kind"]["values"]} == {
        "pengaduan",
        "aspirasi",
        "permintaan_informasi",
    }
    # Every attribute a definition names is one a form may carry.
    assert set(attributes) == open311.ATTRIBUTES


def test_discovery_names_the_endpoint_and_both_formats() -> None:
    document = open311.discovery("https://x.example/open311/v2", NOW)
    assert set(document) == spec.DISCOVERY
    (endpoint,) = document["endpoints"]
    assert set(endpoint) == spec.ENDPOINT
    assert set(endpoint["formats"]) == {"application/json", "text/xml; charset=utf-8"}


# ----- POST requests ---------------------------------------------------------------------------


def test_a_form_without_a_nik_is_an_anonymous_filing() -> None:
    filing = open311.filing(FORM, CATALOGUE)
    assert filing["anonymous"] is True and filing["reporter"].nik is None
    assert (filing["category"], filing["desa_code"], filing["kecamatan_code"]) == (
        "jalan_rusak",
        "33.06.01.2001",
        "33.06.01",
    )
    assert filing["kind"] == "pengaduan" and filing["confidential"] is False
    assert filing["title"] == FORM["description"]  # the description's first line, it being short


def test_a_named_form_keeps_the_reporter_for_the_sealed_contact() -> None:
    filing = open311.filing(
        {
            **FORM,
            "attribute[nik]": NIK,
            "first_name": "Siti",
            "last_name": "Aminah",
            "phone": "0812-3456-7890",
            "email": "warga@example.com",
            "attribute[confidential]": "true",
            "attribute[kind]": "aspirasi",
            "attribute[title]": "Jalan desa berlubang",
            "lat": "-7.71",
            "long": "110.01",
            "device_id": "abc",
            "account_id": "",
        },
        CATALOGUE,
    )
    reporter = filing["reporter"]
    assert (reporter.nik, reporter.name, reporter.phone, reporter.email) == (
        NIK,
        "Siti Aminah",
        "+6281234567890",
        "warga@example.com",
    )
    assert filing["anonymous"] is False and filing["confidential"] is True
    assert filing["kind"] == "aspirasi" and filing["title"] == "Jalan desa berlubang"
    assert (filing["location"].lat, filing["location"].lon) == (-7.71, 110.01)


def test_an_address_string_is_placed_by_its_desa_and_kecamatan() -> None:
    assert (
        open311.filing(
            {**FORM, "address_id": "", "address_string": "Jl. Raya, Desa Harjobinangun, Grabag"}, CATALOGUE
        )["desa_code"]
        == "33.06.01.2001"
    )
    names = [d.name for d in all_desa()]
    kecamatan = {d.kecamatan_name for d in all_desa()}
    shared_name = next(n for n in names if names.count(n) > 1 and n not in kecamatan)
    ambiguous = refused({**FORM, "address_id": "", "address_string": f"Desa {shared_name}"})
    assert "add the kecamatan" in ambiguous["address_string"]
    nowhere = refused({**FORM, "address_id": "", "address_string": "Jalan Malioboro, Yogyakarta"})
    assert "names no desa/kelurahan" in nowhere["address_string"]


def test_a_location_that_cannot_be_placed_in_a_desa_is_refused_clearly() -> None:
    alone = refused({**FORM, "address_id": "", "lat": "-7.71", "long": "110.01"})
    assert "cannot be placed in a desa/kelurahan" in alone["lat"] and "address_id" in alone["lat"]
    outside = refused({**FORM, "lat": "-6.2", "long": "106.8"})
    assert outside["lat"] == "lat/long is outside Kabupaten Purworejo"
    assert "a location is required" in refused({**FORM, "address_id": ""})["address_id"]
    assert "Purworejo" in refused({**FORM, "address_id": "31.71.01.1001"})["address_id"]
    half = refused({**FORM, "lat": "-7.71"})
    assert "lat and long go together" in next(iter(half.values()))
    differ = refused({**FORM, "attribute[desa]": "33.06.01.2002"})
    assert "different desa" in differ["address_id"]


def test_photos_are_named_uploads_never_fetched_urls() -> None:
    photo = uuid.uuid4()
    assert open311.filing({**FORM, "media_url": f"urn:uuid:{photo}"}, CATALOGUE)["photos"] == [photo]
    refusal = refused({**FORM, "media_url": "http://169.254.169.254/latest/meta-data"})
    assert "not fetched" in refusal["media_url"] and "POST /complaints/photos" in refusal["media_url"]


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"service_code": "potholes"}, "service_code", "unknown service_code"),
        ({"description": "rusak"}, "description", "at least 10"),
        ({"attribute[nik]": "123"}, "attribute[nik]", "NIK"),
        ({"attribute[nik]": NIK}, "email", "email or phone"),
        ({"attribute[anonymous]": "false"}, "attribute[nik]", "NIK"),
        ({"attribute[anonymous]": "maybe"}, "attribute[anonymous]", "pattern"),
        ({"attribute[colour]": "red"}, "attribute[colour]", "unknown attribute"),
        ({"attribute[kind]": "pujian"}, "attribute[kind]", "pengaduan"),
        ({"phone": "021-555-1234"}, "phone", ""),
        ({"email": "bukan-email"}, "email", ""),
        ({"jurisdiction_id": "kota.example"}, "jurisdiction_id", "purworejokab.go.id"),
    ],
)
def test_each_bad_field_is_named(change: dict[str, str], field: str, says: str) -> None:
    assert says in refused({**FORM, **change})[field]


def test_all_bad_fields_are_named_at_once() -> None:
    found = refused({"service_code": "x", "description": "", "media_url": "ftp://a"})
    assert {"service_code", "description", "address_id", "media_url"} <= set(found)


# ----- GET requests ----------------------------------------------------------------------------


def test_the_default_window_is_the_last_90_days_with_at_most_1000() -> None:
    q = open311.request_query(NOW, open311.RequestFilters())
    assert (q.filed_from, q.filed_to, q.limit) == (NOW - timedelta(days=90), NOW, 1000)
    start = open311.request_query(NOW, open311.RequestFilters(start_date="2026-10-01T00:00:00+07:00"))
    assert start.filed_to - start.filed_from == timedelta(days=90)  # type: ignore[operator]
    end = open311.request_query(NOW, open311.RequestFilters(end_date="2026-10-01T00:00:00Z"))
    assert end.filed_to == datetime(2026, 10, 1, tzinfo=UTC)


def test_a_window_longer_than_90_days_or_without_a_timezone_is_refused() -> None:
    with pytest.raises(InvalidFields, match="at most 90 days"):
        open311.request_query(
            NOW, open311.RequestFilters(start_date="2026-01-01T00:00:00Z", end_date="2026-06-01T00:00:00Z")
        )
    with pytest.raises(InvalidFields, match="timezone"):
        open311.request_query(NOW, open311.RequestFilters(start_date="2026-10-01T00:00:00"))
    with pytest.raises(InvalidFields, match="open or closed"):
        open311.request_query(NOW, open311.RequestFilters(status="pending"))


def test_status_and_service_code_filters_and_ids_overriding_them() -> None:
    q = open311.request_query(NOW, open311.RequestFilters(status="open", service_code="sampah, jalan_rusak"))
    assert q.categories == ["sampah", "jalan_rusak"]
    assert set(q.statuses or []) == {"submitted", "verified", "dispatched", "in_progress", "resolved"}
    closed = open311.request_query(NOW, open311.RequestFilters(status="closed"))
    assert set(closed.statuses or []) == {"closed", "rejected", "merged"}
    ids = open311.request_query(
        NOW, open311.RequestFilters(service_request_id="adu-1,ADU-2", status="nonsense")
    )
    assert ids == open311.RequestQuery(tracking_codes=["ADU-1", "ADU-2"])


def row(**overrides: Any) -> dict[str, Any]:
    return {
        "tracking_code": "ADU-2612-7K3M-9QW2-XAB4D",
        "category": "jalan_rusak",
        "opd": "DPUPR",
        "status": Status.DISPATCHED.value,
        "description": "Lubang di depan rumah Pak Budi, RT 02",
        "desa_code": "33.06.01.2001",
        "lat": -7.71,
        "lon": 110.01,
        "anonymous": False,
        "confidential": False,
        "filed_at": NOW,
        "updated_at": NOW + timedelta(hours=2),
        "expected_at": NOW + timedelta(days=80),
        "last_note": "Diteruskan ke Dinas Pekerjaan Umum dan Penataan Ruang",
        **overrides,
    }


def test_a_request_has_the_specifications_fields() -> None:
    r = open311.request(row(), CATALOGUE)
    assert set(r) == spec.REQUEST
    assert r["status"] == "open" and r["agency_responsible"] == "Dinas Pekerjaan Umum dan Penataan Ruang"
    assert r["expected_datetime"] == NOW + timedelta(days=80)
    assert (r["lat"], r["long"], r["address_id"]) == (-7.71, 110.01, "33.06.01.2001")
    assert r["address"] == "Desa Harjobinangun, Kecamatan Grabag, Kabupaten Purworejo"
    assert r["description"] == row()["description"] and r["media_url"] is None
    for status in ("closed", "rejected", "merged"):
        assert open311.request(row(status=status), CATALOGUE)["status"] == "closed"


@pytest.mark.parametrize("private", ["confidential", "anonymous"])
def test_confidential_and_anonymous_requests_hide_what_and_where_the_citizen_wrote(private: str) -> None:
    r = open311.request(row(**{private: True}), CATALOGUE)
    assert r["description"] is None and r["status_notes"] is None
    assert r["lat"] is None and r["long"] is None
    assert "Budi" not in json.dumps(r, default=str)
    assert r["address_id"] == "33.06.01.2001"  # the desa, as the public view shows it


# ----- rendering, keys -------------------------------------------------------------------------


def test_xml_is_the_specifications_document_with_its_declaration() -> None:
    body = open311.render([open311.request(row(), CATALOGUE)], "service_requests", "xml")
    (item,) = spec.xml_items(body, "requests")
    assert set(item) == spec.REQUEST
    assert item["status"] == "open" and item["requested_datetime"] == NOW.isoformat()
    assert item["media_url"] == ""
    errors = open311.render(open311.errors(403, ["api_key is required"]), "errors", "xml")
    assert spec.xml_items(errors, "errors") == [{"code": "403", "description": "api_key is required"}]
    definition = ET.fromstring(
        open311.render(
            open311.service_definition(CATALOGUE.categories["sampah"]), "service_definition", "xml"
        )
    )
    kind = definition.find("attributes/attribute/values/value/key")
    assert kind is not None and kind.text == "aspirasi"  # the contract's first kind
    assert definition.findtext("attributes/attribute/variable") == "true"


def test_json_is_utf8_with_w3c_datetimes() -> None:
    body = open311.render([{"at": NOW, "name": "Pelayanan — Dinas"}], "x", "json")
    assert json.loads(body) == [{"at": "2026-12-01T03:00:00+00:00", "name": "Pelayanan — Dinas"}]


def test_error_descriptions_name_their_field() -> None:
    assert open311.field_descriptions([(("body", "lat"), "bad"), (("query", "x", 0), "no"), ((), "m")]) == [
        "lat: bad",
        "x.0: no",
        "m",
    ]


def test_keys_are_random_and_kept_only_as_a_hash() -> None:
    first, second = open311.new_api_key(), open311.new_api_key()
    assert first != second and first.startswith("o311_") and len(first) > 40
    assert open311.key_hash(first) != open311.key_hash(second)
    assert first not in open311.key_hash(first) and len(open311.key_hash(first)) == 64
    assert open311.key_prefix(first) == first[:11]
