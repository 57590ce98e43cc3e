"""A citizen's data export without I/O: what the data protection officer's form accepts,
and the one document the services' parts make."""

from __future__ import annotations

from datetime import UTC, datetime

from services.portal import ekspor_rules as rules
from services.portal.i18n import MESSAGES

NOW = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
EXPORT_ID = "4f1c9a2e-0000-4000-8000-000000000001"


def test_the_officers_form_needs_a_nik_and_takes_the_contacts_the_citizen_gave() -> None:
    read = rules.read_request(
        {"nik": " 3306 0617 0890 0001 ", "telepon": "0812-3456-7890", "email": "Warga@Example.COM"}
    )
    assert not read.errors
    assert read.values == {"nik": "3306061708900001", "phone": "+6281234567890", "email": "warga@example.com"}
    assert rules.read_request({"nik": "3306061708900001"}).values == {"nik": "3306061708900001"}


def test_the_officers_form_names_each_field_it_refuses() -> None:
    read = rules.read_request({"nik": "12345", "telepon": "12", "email": "no-at-sign"})
    assert read.errors == {
        "nik": "error.nik.invalid",
        "telepon": "error.telepon.invalid",
        "email": "error.email.invalid",
    }
    assert rules.read_request({}).errors == {"nik": "error.nik.empty"}
    for key in read.errors.values():
        assert key in MESSAGES["id"] and key in MESSAGES["en"]


def test_the_document_holds_every_part_by_service_in_the_services_order() -> None:
    parts = {
        "integration": {"service": "integration", "data": {"items": [{"code": "ADU-1"}]}},
        "complaints": {
            "service": "complaints",
            "data": {"complaints": [{"tracking_code": "ADU-1"}], "photos": []},
        },
    }
    document = rules.document(EXPORT_ID, NOW, parts)
    assert document == {
        "export_id": EXPORT_ID,
        "generated_at": "2026-12-06T23:00:00+00:00",
        "services_answered": ["complaints", "integration"],
        "services": {
            "complaints": {"complaints": [{"tracking_code": "ADU-1"}], "photos": []},
            "integration": {"items": [{"code": "ADU-1"}]},
        },
    }


def test_the_file_and_the_audit_rows_name_the_export_never_the_citizen() -> None:
    assert rules.filename(rules.OWN_FILE, EXPORT_ID, NOW) == "data-saya-20261206-4f1c9a2e.json"
    assert rules.filename(rules.OFFICER_FILE, EXPORT_ID, NOW) == "data-warga-20261206-4f1c9a2e.json"
    assert rules.records(["cr1_abc", "ct1_def"], EXPORT_ID) == ["cr1_abc", "ct1_def", f"export:{EXPORT_ID}"]
    assert set(rules.SERVICES) == {"complaints", "permits", "health", "notifications", "integration"}
