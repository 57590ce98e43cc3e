"""The officers' workspace's rules without I/O: the PKCE pieces, when a session ends and
its token is renewed, the way back after signing in, the SLA labels of a list, which
forms an officer is shown and what they accept, and the merge suggestions."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.portal.i18n import MESSAGES
from services.portal.petugas_rules import (
    FIELDS,
    HOME,
    KEPT_FORM_FOR,
    PERMIT_FIELDS,
    PERMIT_STEPS,
    REFRESH_MARGIN,
    REJECTION_REASONS,
    STEPS,
    TABS,
    Due,
    Role,
    SessionPolicy,
    due_label,
    form_fields,
    home_of,
    kept_fields,
    needs_refresh,
    page_of,
    permit_steps_for,
    pkce_challenge,
    pkce_verifier,
    read_document_check,
    read_permit_step,
    read_step,
    return_path,
    role_of,
    steps_for,
    suggestions,
    tab_of,
)
from shared.schemas.complaints import ComplaintRejected

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 10:00 WIB on a Monday
CODE = "ADU-2612-7K3M-9QW2-XAB4D"
OTHER = "ADU-2612-8P4N-0RX3-YBC5E"


def test_the_rfc_7636_example_challenge() -> None:
    # RFC 7636 appendix B: this verifier's S256 challenge.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_verifier_is_long_random_and_url_safe() -> None:
    first, second = pkce_verifier(), pkce_verifier()
    assert first != second
    assert 43 <= len(first) <= 128 and re.fullmatch(r"[A-Za-z0-9_-]+", first)
    digest = base64.urlsafe_b64decode(pkce_challenge(first) + "=")
    assert digest == hashlib.sha256(first.encode()).digest()


def test_a_session_ends_when_idle_or_at_its_absolute_lifetime() -> None:
    policy = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=8))
    began = NOW - timedelta(hours=1)
    assert policy.alive(began, NOW - timedelta(minutes=29), NOW)
    assert not policy.alive(began, NOW - timedelta(minutes=30), NOW)
    # Busy all day, it still ends eight hours after signing in.
    began = NOW - timedelta(hours=8)
    assert not policy.alive(began, NOW - timedelta(seconds=1), NOW)
    assert policy.alive(began, NOW - timedelta(seconds=1), NOW - timedelta(seconds=1))
    assert policy.ends_at(began) == NOW


def test_a_token_is_renewed_before_it_expires() -> None:
    assert not needs_refresh(NOW + REFRESH_MARGIN + timedelta(seconds=1), NOW)
    assert needs_refresh(NOW + REFRESH_MARGIN, NOW)
    assert needs_refresh(NOW - timedelta(seconds=1), NOW)


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/petugas/aduan/ADU-1?x=1", "/petugas/aduan/ADU-1?x=1"),
        (None, HOME),
        ("https://elsewhere.example/petugas", HOME),
        ("//elsewhere.example/petugas", HOME),
        ("/petugas//elsewhere.example", HOME),
        ("/lapor", HOME),
        ("/petugas/masuk", HOME),
        ("/petugas/keluar/selesai", HOME),
    ],
)
def test_after_signing_in_only_a_workspace_page(asked: str | None, goes: str) -> None:
    assert return_path(asked) == goes


def test_a_form_comes_back_to_its_page() -> None:
    assert page_of("POST", f"/petugas/aduan/{CODE}/verifikasi") == f"/petugas/aduan/{CODE}"
    assert page_of("GET", f"/petugas/aduan/{CODE}") == f"/petugas/aduan/{CODE}"


def test_sla_labels() -> None:
    assert due_label(None, NOW) is None
    assert due_label(NOW, NOW) == Due.BREACHED
    assert due_label(NOW - timedelta(days=2), NOW) == Due.BREACHED
    # 23:59 WIB today is still today; 00:00 WIB tomorrow is not.
    assert due_label(datetime(2026, 12, 7, 16, 59, tzinfo=UTC), NOW) == Due.DUE_TODAY
    assert due_label(datetime(2026, 12, 7, 17, 0, tzinfo=UTC), NOW) == Due.ON_TRACK
    assert due_label(NOW + timedelta(days=3), NOW) == Due.ON_TRACK


def test_each_label_and_status_has_words_in_both_languages() -> None:
    for lang in ("id", "en"):
        for label in Due:
            assert f"petugas.due.{label}" in MESSAGES[lang]
        for role in (Role.COORDINATOR, Role.OPD_OFFICER):
            for status in TABS[role]:
                assert f"petugas.status.{status}" in MESSAGES[lang]
        for step in STEPS:
            assert f"petugas.step.{step}" in MESSAGES[lang] and f"petugas.done.{step}" in MESSAGES[lang]
        for reason in REJECTION_REASONS:
            assert f"petugas.reason.{reason}" in MESSAGES[lang]
        # The page that says the identity provider is away (the portal's 503 page).
        assert "unavailable.identity" in MESSAGES[lang]


def test_roles_and_their_lists() -> None:
    assert role_of(["admin"]) == Role.COORDINATOR
    assert role_of(["coordinator", "offline_access"]) == Role.COORDINATOR
    assert role_of(["opd_officer"]) == Role.OPD_OFFICER
    assert role_of(["notification_officer"]) == Role.NOTIFICATION_OFFICER
    assert role_of(["health_officer", "notification_officer"]) == Role.HEALTH_OFFICER
    assert role_of(["offline_access"]) is None
    assert tab_of(Role.COORDINATOR, None) == "submitted"
    assert tab_of(Role.OPD_OFFICER, "submitted") == "dispatched"
    assert tab_of(Role.OPD_OFFICER, "in_progress") == "in_progress"


def test_the_forms_shown_follow_the_service_state_machine() -> None:
    assert steps_for(Role.COORDINATOR, "submitted") == ["verifikasi", "tolak", "gabung"]
    assert steps_for(Role.COORDINATOR, "verified") == ["tolak", "gabung", "disposisi"]
    assert steps_for(Role.OPD_OFFICER, "dispatched") == ["tanggapan", "progres", "selesai"]
    assert steps_for(Role.OPD_OFFICER, "verified") == []
    assert steps_for(None, "submitted") == []
    assert set(REJECTION_REASONS) == set(ComplaintRejected.model_fields["reason_code"].annotation.__args__)


def test_rejecting_needs_a_reason_and_an_explanation() -> None:
    answer = read_step(
        "tolak", {"alasan_kode": "not_within_authority", "alasan": " Urusan provinsi. "}, set(), CODE
    )
    assert answer.values == {"body": {"reason_code": "not_within_authority", "reason": "Urusan provinsi."}}
    assert read_step("tolak", {}, set(), CODE).errors == {
        "alasan_kode": "error.alasan_kode.choose",
        "alasan": "error.alasan_penolakan.empty",
    }
    assert read_step("tolak", {"alasan_kode": "x", "alasan": "y" * 2001}, set(), CODE).errors == {
        "alasan_kode": "error.alasan_kode.choose",
        "alasan": "error.alasan_penolakan.long",
    }


def test_disposing_needs_a_known_opd() -> None:
    assert read_step("disposisi", {"opd": "DPUPR"}, {"DPUPR"}, CODE).values == {
        "body": {"opd": "DPUPR", "note": None}
    }
    assert read_step("disposisi", {"opd": "XYZ"}, {"DPUPR"}, CODE).errors == {"opd": "error.opd.choose"}


def test_merging_takes_a_suggestion_or_a_typed_code_but_never_itself() -> None:
    assert read_step("gabung", {"duplikat": OTHER}, set(), CODE).values == {"body": {"duplicate_of": OTHER}}
    typed = read_step(
        "gabung", {"duplikat": OTHER, "duplikat_kode": " adu-2612-7k3m-9qw2-xab4d "}, set(), CODE
    )
    assert typed.errors == {"duplikat": "error.duplikat.self"}
    assert read_step("gabung", {"duplikat_kode": "IZN-2612-8P4N-0RX3-YBC5E"}, set(), CODE).errors == {
        "duplikat": "error.duplikat.invalid"
    }
    assert read_step("gabung", {}, set(), CODE).errors == {"duplikat": "error.duplikat.choose"}


def test_an_opd_officers_texts() -> None:
    assert read_step("tanggapan", {"tanggapan": "Oke"}, set(), CODE).errors == {
        "tanggapan": "error.tanggapan.short"
    }
    assert read_step("progres", {"catatan_progres": ""}, set(), CODE).errors == {
        "catatan_progres": "error.catatan_progres.empty"
    }
    assert read_step("selesai", {"penyelesaian": "Jalan sudah ditambal."}, set(), CODE).values == {
        "body": {"resolution": "Jalan sudah ditambal."}
    }
    for step, names in FIELDS.items():
        for name in names:
            for key in [k for k in MESSAGES["id"] if k.startswith(f"error.{name}.")]:
                assert key in MESSAGES["en"], (step, key)


def test_merge_suggestions_are_earlier_open_complaints() -> None:
    this = {"tracking_code": CODE, "filed_at": "2026-12-07T02:00:00+00:00"}

    def item(code: str, status: str, at: str) -> dict[str, str]:
        return {"tracking_code": code, "status": status, "filed_at": at}

    candidates = [
        item(CODE, "submitted", "2026-12-07T02:00:00+00:00"),
        item("ADU-A", "dispatched", "2026-12-05T02:00:00+00:00"),
        item("ADU-B", "submitted", "2026-12-06T02:00:00+00:00"),
        item("ADU-C", "resolved", "2026-12-01T02:00:00+00:00"),
        item("ADU-D", "submitted", "2026-12-07T03:00:00+00:00"),
    ]
    assert [s["tracking_code"] for s in suggestions(this, candidates)] == ["ADU-A", "ADU-B"]


def test_the_licensing_office_gets_the_permits_queue() -> None:
    assert role_of(["permit_officer"]) == Role.PERMIT_OFFICER
    assert home_of(Role.PERMIT_OFFICER) == "/petugas/izin"
    assert home_of(Role.OPD_OFFICER) == home_of(None) == HOME
    for lang in ("id", "en"):
        for status in TABS[Role.PERMIT_OFFICER]:
            assert f"petugas.izin.status.{status}" in MESSAGES[lang]


def test_a_document_check_is_complete_or_names_what_is_missing() -> None:
    documents = {"ktp", "sertifikat_tanah", "gambar_teknis"}
    complete = read_document_check({"hasil": "complete"}, ["ktp"], documents)
    assert complete.values == {"body": {"outcome": "complete", "missing": [], "note": None}}
    incomplete = read_document_check(
        {"hasil": "incomplete", "catatan_berkas": " Gambar belum ditandatangani. "},
        ["gambar_teknis", "ktp", "gambar_teknis"],
        documents,
    )
    assert incomplete.values == {
        "body": {
            "outcome": "incomplete",
            "missing": ["gambar_teknis", "ktp"],
            "note": "Gambar belum ditandatangani.",
        }
    }
    assert read_document_check({"hasil": "incomplete"}, [], documents).errors == {
        "kurang": "error.kurang.choose"
    }
    assert read_document_check({"hasil": "incomplete"}, ["paspor"], documents).errors == {
        "kurang": "error.kurang.choose"
    }
    assert read_document_check({}, [], documents).errors == {"hasil": "error.hasil.choose"}


def test_every_history_action_has_the_officers_words() -> None:
    for lang in ("id", "en"):
        for service, officers in (("complaints", "petugas.action"), ("permits", "petugas.izin.action")):
            actions = [k.rsplit(".", 1)[1] for k in MESSAGES["id"] if k.startswith(f"history.{service}.")]
            assert actions
            for action in actions:
                assert f"{officers}.{action}" in MESSAGES[lang], (lang, action)


def test_an_applications_forms_follow_the_permits_state_machine() -> None:
    def shown(status: str, inspects: bool = True, result: str | None = None) -> list[str]:
        application = {"status": status, "inspection_required": inspects, "inspection_result": result}
        return permit_steps_for(application)

    assert shown("submitted") == ["tolak"]
    assert shown("documents_verified") == ["jadwal", "tolak"]
    assert shown("documents_verified", inspects=False) == ["setujui", "tolak"]
    assert shown("inspection_scheduled") == ["jadwal", "tinjauan", "tolak"]
    assert shown("inspected", result="passed") == ["setujui", "tolak"]
    assert shown("inspected", result="failed") == ["jadwal", "tolak"]
    assert shown("approved") == ["terbitkan"]
    assert shown("issued") == ["cabut"]
    assert shown("rejected") == shown("revoked") == []
    # Every step is one of the service's commands, with words and fields in both languages.
    commands = {"inspection", "inspection/result", "approve", "reject", "issue", "revoke"}
    assert {command for command, _ in PERMIT_STEPS.values()} == commands
    for lang in ("id", "en"):
        for step, fields in PERMIT_FIELDS.items():
            for key in ("step", "submit", "done"):
                assert f"petugas.izin.{key}.{step}" in MESSAGES[lang]
            assert step in PERMIT_STEPS and fields


def test_an_inspection_is_scheduled_in_the_future_by_a_named_inspector() -> None:
    form = {"tanggal": "2026-12-09", "jam": "09:30", "peninjau": " Tim Teknis 2 ", "catatan_jadwal": ""}
    answer = read_permit_step("jadwal", form, NOW)
    assert answer.values == {
        "body": {"scheduled_for": "2026-12-09T09:30:00+07:00", "inspector": "Tim Teknis 2", "note": None}
    }
    typed = read_permit_step("jadwal", {**form, "tanggal": "09/12/2026", "jam": "09.30"}, NOW)
    assert typed.values == answer.values
    past = read_permit_step("jadwal", {**form, "tanggal": "2026-12-01"}, NOW)
    assert past.errors == {"tanggal": "error.tanggal.past"}
    wrong = read_permit_step("jadwal", {"tanggal": "31-02-2027", "jam": "25:00"}, NOW)
    assert wrong.errors == {
        "tanggal": "error.tanggal.invalid",
        "jam": "error.jam.invalid",
        "peninjau": "error.peninjau.empty",
    }
    assert read_permit_step("jadwal", {}, NOW).errors.keys() == {"tanggal", "jam", "peninjau"}
    for key in wrong.errors.values():
        assert key in MESSAGES["id"] and key in MESSAGES["en"]


def test_a_result_a_decision_and_an_issue_as_the_service_takes_them() -> None:
    result = read_permit_step("tinjauan", {"hasil_tinjau": "passed", "temuan": "Sesuai gambar."}, NOW)
    assert result.values == {"body": {"result": "passed", "findings": "Sesuai gambar."}}
    assert read_permit_step("tinjauan", {"hasil_tinjau": "maybe"}, NOW).errors == {
        "hasil_tinjau": "error.hasil_tinjau.choose"
    }
    assert read_permit_step("setujui", {}, NOW).values == {"body": {"note": None}}
    rejected = read_permit_step("tolak", {"alasan_tolak": "KRK kedaluwarsa\n\n Gambar tidak sesuai "}, NOW)
    assert rejected.values == {"body": {"reasons": ["KRK kedaluwarsa", "Gambar tidak sesuai"], "note": None}}
    assert read_permit_step("tolak", {"alasan_tolak": " \n "}, NOW).errors == {
        "alasan_tolak": "error.alasan_tolak.empty"
    }
    assert read_permit_step("tolak", {"alasan_tolak": "ok"}, NOW).errors == {
        "alasan_tolak": "error.alasan_tolak.short"
    }
    assert read_permit_step("terbitkan", {}, NOW).values == {"body": {"valid_until": None}}
    until = read_permit_step("terbitkan", {"berlaku_sampai": "2031-12-31"}, NOW)
    assert until.values == {"body": {"valid_until": "2031-12-31"}}
    assert read_permit_step("terbitkan", {"berlaku_sampai": "2026-12-07"}, NOW).errors == {
        "berlaku_sampai": "error.berlaku_sampai.past"
    }
    assert read_permit_step("cabut", {"alasan_cabut": "Bangunan menyalahi izin."}, NOW).values == {
        "body": {"reason": "Bangunan menyalahi izin."}
    }


def test_a_form_sent_after_the_session_ended_keeps_only_its_own_fields() -> None:
    code = "IZN-2612-7K3M-9QW2-XAB4D"
    assert form_fields(f"/petugas/izin/{code}/jadwal") == ("jadwal", PERMIT_FIELDS["jadwal"])
    assert form_fields(f"/petugas/izin/{code}/berkas") == ("berkas", ["hasil", "kurang", "catatan_berkas"])
    assert form_fields("/petugas/aduan/ADU-1/tolak") == ("tolak", FIELDS["tolak"])
    for other in (
        "/petugas/masuk",
        "/petugas/keluar",
        "/petugas/izin/x/lain",
        "/lapor/isi",
        "/petugas/aduan/x/y/z",
    ):
        assert form_fields(other) is None
    sent = {
        "peninjau": ["Tim Teknis 2"],
        "tanggal": ["2027-01-15"],
        "jam": [" "],
        "csrf": ["0" * 64],
        "password": ["rahasia"],
        "access_token": ["eyJ..."],
    }
    assert kept_fields(PERMIT_FIELDS["jadwal"], sent) == {"peninjau": "Tim Teknis 2", "tanggal": "2027-01-15"}
    assert kept_fields(["hasil", "kurang"], {"kurang": ["krk", "ktp"], "hasil": ["incomplete"]}) == {
        "hasil": "incomplete",
        "kurang": ["krk", "ktp"],
    }
    assert kept_fields(["alasan"], {"alasan": ["x" * 10_000]})["alasan"] == "x" * 5000
    assert timedelta(minutes=15) == KEPT_FORM_FOR
