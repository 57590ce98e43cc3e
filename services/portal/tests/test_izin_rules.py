"""Izin's rules without I/O: the pages a permit type makes, what each page accepts, the
application a finished draft makes, where the permits service's field messages belong,
and what Lacak offers of an application waiting for documents."""

from __future__ import annotations

from typing import Any

import pytest

from services.portal import izin_rules as rules
from services.portal.i18n import MESSAGES, PERMIT_NAMES_EN, permit_name, translator
from services.portal.izin_rules import CHECK

PBG: dict[str, Any] = {
    "code": "pbg",
    "name": "Persetujuan Bangunan Gedung (PBG)",
    "applicants": ["business", "person"],
    "sla_working_days": 28,
    "documents": [
        {"code": "ktp", "name": "KTP pemohon", "required": True},
        {"code": "krk", "name": "Keterangan Rencana Kabupaten (KRK)", "required": True},
        {"code": "spesifikasi_teknis", "name": "Spesifikasi teknis", "required": False},
    ],
    "fields": [
        {
            "name": "building_function",
            "kind": "choice",
            "label": "Fungsi",
            "required": True,
            "choices": ["hunian", "usaha"],
        },
        {
            "name": "floors",
            "kind": "integer",
            "label": "Jumlah lantai",
            "required": True,
            "minimum": 1,
            "maximum": 5000,
        },
        {
            "name": "land_area_m2",
            "kind": "number",
            "label": "Luas tanah (m²)",
            "required": False,
            "minimum": 0.5,
        },
    ],
}
BUSINESS = {"code": "izin_usaha", "applicants": ["business"], "documents": [], "fields": []}
FINISHED = {
    "jenis": "pbg",
    "syarat": "ya",
    "kecamatan": "33.06.01",
    "desa": "33.06.01.2001",
    "sebagai": "perorangan",
    "nik": "3306061708900001",
    "nama": "Budi Santoso",
    "telepon": "081234567890",
    "email": "",
    "rincian": {"building_function": "hunian", "floors": 2, "land_area_m2": None},
    "dokumen": {"ktp": "u-1", "krk": "u-2"},
}


def test_the_pages_follow_the_permit_type_one_field_and_one_required_document_each() -> None:
    assert rules.steps_for(None) == ("jenis", "syarat", "kecamatan", "desa", "pemohon")
    assert rules.steps_for(PBG) == (
        "jenis",
        "syarat",
        "kecamatan",
        "desa",
        "sebagai",
        "pemohon",
        "rincian-building_function",
        "rincian-floors",
        "rincian-land_area_m2",
        "dokumen-ktp",
        "dokumen-krk",
    )
    assert rules.previous_page(PBG, CHECK) == "dokumen-krk"
    assert rules.previous_page(PBG, "jenis") is None


def test_a_draft_goes_on_to_its_first_unanswered_page_and_a_change_back_to_the_check_page() -> None:
    assert rules.first_unanswered(FINISHED, PBG) is None
    without_krk = {**FINISHED, "dokumen": {"ktp": "u-1"}}
    assert rules.first_unanswered(without_krk, PBG) == "dokumen-krk"
    assert rules.next_page(FINISHED, PBG, "pemohon", checking=False) == "rincian-building_function"
    assert rules.next_page(FINISHED, PBG, "pemohon", checking=True) == CHECK
    assert rules.next_page(FINISHED, PBG, "dokumen-krk", checking=False) == CHECK
    # An optional field left empty is an answer (None), not a question still open.
    assert rules.answered(FINISHED, "rincian-land_area_m2", PBG)
    assert not rules.answered({**FINISHED, "rincian": {}}, "rincian-land_area_m2", PBG)


def test_another_permit_type_forgets_the_answers_of_the_first() -> None:
    same = rules.read_page("jenis", {"jenis": "pbg"}, FINISHED, PBG, {"pbg", "slf"})
    assert same.values == {"jenis": "pbg"}
    other = rules.read_page("jenis", {"jenis": "slf"}, FINISHED, PBG, {"pbg", "slf"})
    assert other.values == {"jenis": "slf", "rincian": {}, "dokumen": {}, "syarat": ""}
    assert rules.read_page("jenis", {"jenis": "imb"}, {}, None, {"pbg"}).errors == {
        "jenis": "error.jenis.choose"
    }


def test_the_applicant_is_known_by_nik_or_by_nib_as_the_type_takes_them() -> None:
    assert rules.identity(PBG) == "nik" and rules.identity(BUSINESS) == "nib"
    # A PBG is a person's or a business's: the citizen says which on a page of its own.
    assert rules.identity(PBG, {"sebagai": "badan_usaha"}) == "nib"
    assert rules.identity(PBG, {"sebagai": "perorangan"}) == "nik"
    assert "sebagai" not in rules.steps_for(BUSINESS)
    assert rules.read_page("sebagai", {}, {}, PBG, set()).errors == {"sebagai": "error.sebagai.choose"}
    as_business = {**FINISHED, "sebagai": "badan_usaha", "nib": "9120001234567", "nama": "CV Maju"}
    assert rules.application_body(as_business, PBG, "id")["applicant"] == {
        "nib": "9120001234567",
        "name": "CV Maju",
        "phone": "081234567890",
    }
    # Changing the answer asks for what the other kind is known by.
    assert rules.first_unanswered({**FINISHED, "sebagai": "badan_usaha"}, PBG) == "pemohon"
    person = rules.read_page(
        "pemohon",
        {"nik": "3306 0617 0890 0001", "nama": "  Budi   Santoso ", "telepon": "0812-3456-7890"},
        {},
        PBG,
        set(),
    )
    assert not person.errors
    assert person.values == {
        "nik": "3306061708900001",
        "nama": "Budi Santoso",
        "telepon": "+6281234567890",
        "email": "",
    }
    business = rules.read_page(
        "pemohon", {"nib": "912000123456", "nama": "C", "email": "x@"}, {}, BUSINESS, set()
    )
    assert business.errors == {
        "nib": "error.nib.invalid",
        "nama": "error.nama.short",
        "email": "error.email.invalid",
    }
    assert not rules.answered({"nik": "3306061708900001", "nama": "Budi"}, "pemohon", BUSINESS)


@pytest.mark.parametrize(
    ("name", "typed", "value", "error"),
    [
        ("floors", "2", 2, None),
        ("floors", "1.200", 1200, None),
        ("floors", "2,5", None, "error.izin.whole"),
        ("floors", "dua", None, "error.izin.number"),
        ("floors", "", None, "error.izin.empty"),
        ("land_area_m2", "120,5", 120.5, None),
        ("land_area_m2", "1.250,75", 1250.75, None),
        ("land_area_m2", "", None, None),
        ("building_function", "usaha", "usaha", None),
        ("building_function", "pabrik", None, "error.izin.choose"),
        ("building_function", "", None, "error.izin.choose"),
    ],
)
def test_a_field_is_read_as_its_kind_says(name: str, typed: str, value: Any, error: str | None) -> None:
    found = rules.read_page(f"rincian-{name}", {name: typed}, {"rincian": {"floors": 1}}, PBG, set())
    if error:
        assert found.errors == {name: error}
    else:
        assert not found.errors
        assert found.values == {"rincian": {"floors": 1, name: value}}


@pytest.mark.parametrize(
    ("spec", "typed", "message"),
    [
        (
            {"name": "floors", "kind": "integer", "minimum": 1, "maximum": 100},
            "0",
            "Tulis angka 1 atau lebih",
        ),
        (
            {"name": "floors", "kind": "integer", "minimum": 1, "maximum": 100},
            "101",
            "Tulis angka paling besar 100",
        ),
        ({"name": "luas", "kind": "number", "minimum": 0.5}, "0,25", "Tulis angka 0,5 atau lebih"),
        (
            {"name": "modal", "kind": "integer", "maximum": 1e15},
            "2e15",
            "Tulis angka, misalnya 120 atau 120,5",
        ),
        (
            {"name": "modal", "kind": "integer", "maximum": 1e6},
            "2.000.000",
            "Tulis angka paling besar 1.000.000",
        ),
        (
            {"name": "nama_usaha", "kind": "text", "max_length": 5},
            "Warung Sari",
            "Tulis paling banyak 5 huruf",
        ),
    ],
)
def test_the_limits_the_catalogue_publishes_are_said_on_the_fields_page(
    spec: dict[str, Any], typed: str, message: str
) -> None:
    answer = rules.Answer()
    rules.read_field(answer, {spec["name"]: typed}, spec)
    assert answer.values == {}
    t = translator("id")
    assert answer.messages(t) == {spec["name"]: message}
    within = rules.Answer()
    rules.read_field(within, {spec["name"]: "1"}, spec)
    read_as = {"integer": 1, "number": 1.0, "text": "1"}[spec["kind"]]
    assert not within.errors and within.values == {spec["name"]: read_as}


def test_a_kbli_code_is_five_digits() -> None:
    answer = rules.Answer()
    rules.read_field(answer, {"kbli": "5610"}, {"name": "kbli", "kind": "kbli"})
    assert answer.errors == {"kbli": "error.izin.kbli"}
    answer = rules.Answer()
    rules.read_field(answer, {"kbli": " 56101 "}, {"name": "kbli", "kind": "kbli"})
    assert answer.values == {"kbli": "56101"}


def test_a_finished_draft_makes_the_application_the_permits_service_takes() -> None:
    assert rules.application_body(FINISHED, PBG, "en") == {
        "permit_type": "pbg",
        "applicant": {"nik": "3306061708900001", "name": "Budi Santoso", "phone": "081234567890"},
        "desa_code": "33.06.01.2001",
        "details": {"building_function": "hunian", "floors": 2},
        "documents": [{"code": "ktp", "upload": "u-1"}, {"code": "krk", "upload": "u-2"}],
        "locale": "en",
    }


def test_the_services_field_messages_go_to_the_page_that_asks_each_field() -> None:
    messages = {
        "floors": "floors must be at least 1",
        "phone": "not a mobile number",
        "desa_code": "unknown desa",
        "documents": "required documents missing: krk",
    }
    assert rules.refused_on(PBG, messages) == {
        "rincian-floors": {"floors": "floors must be at least 1"},
        "pemohon": {"telepon": "not a mobile number"},
        "desa": {"desa": "unknown desa"},
        CHECK: {"": "required documents missing: krk"},
    }


def test_lacak_offers_the_asked_for_documents_only_while_the_application_waits_for_them() -> None:
    waiting = {
        "status": "documents_incomplete",
        "permit_type": "pbg",
        "missing_documents": ["krk"],
        "sla": {"state": "paused", "remaining_working_days": 27, "due_at": None},
    }
    facts = rules.application_facts(waiting)
    assert facts == {
        "permit_type": "pbg",
        "sla_state": "paused",
        "sla_remaining": 27,
        "sla_due": None,
        "missing": ["krk"],
    }
    assert rules.missing_documents(waiting, PBG) == [("krk", "Keterangan Rencana Kabupaten (KRK)")]
    assert rules.missing_documents({**waiting, "status": "submitted"}, PBG) == []
    assert rules.application_facts({**waiting, "status": "submitted"})["missing"] == []
    assert rules.still_missing(["krk", "ktp"], {"krk": "u-9"}) == ["ktp"]
    assert rules.still_missing(["krk"], {"krk": "u-9"}) == []


def test_izin_has_its_texts_in_english_and_the_catalogues_names_fall_back_to_indonesian() -> None:
    keys = {k for k in MESSAGES["id"] if k.startswith(("izin.", "home.izin", "error.izin.", "error.nib."))}
    assert keys and keys <= set(MESSAGES["en"])
    assert permit_name("en", "berkas.krk", "KRK") == PERMIT_NAMES_EN["berkas.krk"]
    assert permit_name("id", "berkas.krk", "KRK") == "KRK"
    assert permit_name("en", "berkas.baru", "Berkas baru") == "Berkas baru"
