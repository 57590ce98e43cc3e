"""The clinic workspace's pure rules: codes, the officer's facility, the task button, the
bed form and what the waiting-room display shows."""

from __future__ import annotations

from datetime import date
from typing import get_args

from services.portal import klinik_rules as rules
from services.portal.i18n import MESSAGES
from services.portal.petugas_rules import CLINIC_HOME, Role, home_of, role_of
from shared.schemas.health import AppointmentStatus, TaskId

TODAY = date(2026, 12, 7)


def test_a_health_officer_lands_on_the_clinic_workspace() -> None:
    assert role_of(["health_officer"]) is Role.HEALTH_OFFICER
    assert home_of(Role.HEALTH_OFFICER) == CLINIC_HOME
    # The coordinator's workspace wins for an officer holding both.
    assert role_of(["health_officer", "coordinator"]) is Role.COORDINATOR


def test_codes_are_the_health_services_or_none() -> None:
    assert rules.known_code("pkm-bayan") == "PKM-BAYAN"
    assert rules.known_code("../admin") is None
    assert rules.known_code("A" * 21) is None


def test_the_health_office_chooses_its_facility() -> None:
    assert rules.own_facility("PKM-BAYAN") == "PKM-BAYAN"
    assert rules.own_facility("*") is None
    assert rules.own_facility(None) is None


def test_a_task_button_names_a_booking_and_a_task_from_one_to_seven() -> None:
    sent = rules.read_task({"kode": "KES-1", "tugas": "4"})
    assert sent.values == {"code": "KES-1", "task": 4} and not sent.errors
    for task in ("0", "8", "99", "x", ""):
        assert rules.read_task({"kode": "KES-1", "tugas": task}).errors == {"tugas": "error.tugas.choose"}
    assert rules.read_task({"tugas": "2"}).errors == {"tugas": "error.tugas.choose"}


def test_beds_are_whole_numbers_with_no_more_occupied_than_exist() -> None:
    assert rules.read_beds({"total": "12", "terisi": "12"}).values == {"body": {"total": 12, "occupied": 12}}
    assert rules.read_beds({"total": "12", "terisi": "13"}).errors == {"terisi": "error.terisi.over"}
    assert rules.read_beds({"total": "", "terisi": "-1"}).errors == {
        "total": "error.total.empty",
        "terisi": "error.terisi.number",
    }
    assert rules.read_beds({"total": "5001", "terisi": "2.5"}).errors == {
        "total": "error.total.large",
        "terisi": "error.terisi.number",
    }


def test_the_display_shows_the_last_number_called_and_the_next_ones_only() -> None:
    board = {
        "now_serving": ["K-001", "K-004"],
        "upcoming": ["K-002", "K-003", "K-005", "K-006", "K-007"],
        "waiting": 5,
        "polyclinic_name": "Poli Umum",
    }
    assert rules.display_state(board) == {
        "called": "K-004",
        "upcoming": ["K-002", "K-003", "K-005", "K-006"],
        "waiting": 5,
    }
    assert rules.display_state(None) == {"called": None, "upcoming": [], "waiting": 0}


def test_a_weekday_session_reads_local_times_and_bounded_numbers() -> None:
    form = {
        "mulai": "7.30",
        "selesai": "12:00",
        "menit": "15",
        "kuota_jkn": "12",
        "kuota_umum": "0",
        "aktif": "ya",
    }
    assert rules.read_schedule(form).values == {
        "body": {
            "start": "07:30",
            "end": "12:00",
            "minutes_per_patient": 15,
            "quota_jkn": 12,
            "quota_non_jkn": 0,
            "active": True,
        }
    }
    assert not rules.read_schedule({**form, "aktif": "tidak"}).values["body"]["active"]
    refused = rules.read_schedule(
        {"mulai": "24.00", "selesai": "12", "menit": "0", "kuota_jkn": "1001", "kuota_umum": "-1"}
    )
    assert refused.errors == {
        "mulai": "error.mulai.time",
        "selesai": "error.selesai.time",
        "menit": "error.menit.range",
        "kuota_jkn": "error.kuota_jkn.range",
        "kuota_umum": "error.kuota_umum.range",
        "aktif": "error.aktif.choose",
    }
    assert rules.read_schedule({**form, "selesai": "07.30"}).errors == {"selesai": "error.selesai.order"}


def test_one_dates_change_is_a_leave_or_other_quotas_from_today_on() -> None:
    today = TODAY
    leave = rules.read_date_change(
        {"dokter": "D1", "tanggal": "24-12-2026", "perubahan": "cuti", "alasan": " dokter cuti "},
        {"D1"},
        today,
    )
    assert leave.values == {
        "doctor": "D1",
        "date": date(2026, 12, 24),
        "body": {"cancelled": True, "reason": "dokter cuti"},
    }
    quotas = rules.read_date_change(
        {
            "dokter": "D1",
            "tanggal": "2026-12-07",
            "perubahan": "kuota",
            "kuota_jkn_tanggal": "3",
            "kuota_umum_tanggal": "0",
        },
        {"D1"},
        today,
    )
    assert quotas.values["body"] == {"cancelled": False, "quota_jkn": 3, "quota_non_jkn": 0, "reason": None}
    refused = rules.read_date_change(
        {
            "dokter": "D2",
            "tanggal": "06-12-2026",
            "perubahan": "kuota",
            "kuota_jkn_tanggal": "",
            "alasan": "x" * 301,
        },
        {"D1"},
        today,
    )
    assert refused.errors == {
        "dokter": "error.dokter.choose",
        "tanggal": "error.tanggal.before_today",
        "alasan": "error.alasan_jadwal.long",
        "kuota_jkn_tanggal": "error.kuota_jkn_tanggal.range",
        "kuota_umum_tanggal": "error.kuota_umum_tanggal.range",
    }
    assert (
        rules.read_date_change({"tanggal": "31-02-2026"}, {"D1"}, today).errors["tanggal"]
        == "error.tanggal.date"
    )


def test_every_status_task_weekday_and_form_message_is_in_both_languages() -> None:
    keys = [f"klinik.status.{status}" for status in get_args(AppointmentStatus)]
    keys += [f"klinik.task.{task}" for task in get_args(TaskId)]
    keys += [f"klinik.day.{day}" for day in rules.WEEKDAYS]
    keys += [f"klinik.jadwal.aktif.{value}" for value in rules.ACTIVE]
    keys += [f"klinik.tanggal.{value}" for value in rules.DATE_CHANGES]
    empty: dict[str, str] = {}
    for answer in (
        rules.read_task(empty),
        rules.read_beds({"total": "1", "terisi": "2"}),
        rules.read_beds({"total": "x", "terisi": "9999"}),
        rules.read_beds(empty),
        rules.read_schedule({"mulai": "9.00", "selesai": "8.00"}),
        rules.read_schedule(empty),
        rules.read_date_change(
            {"perubahan": "kuota", "tanggal": "1-1-2020", "alasan": "x" * 301}, set(), TODAY
        ),
        rules.read_date_change({"tanggal": "x"}, set(), TODAY),
    ):
        keys += list(answer.errors.values())
    for lang in ("id", "en"):
        missing = [key for key in keys if key not in MESSAGES[lang]]
        assert not missing, (lang, missing)
