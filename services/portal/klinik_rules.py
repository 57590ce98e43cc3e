"""The clinic workspace's rules, pure: which facility a health officer works for, the
codes a clinic page's address may hold, the BPJS task steps a visit's buttons offer,
what a ward's bed form accepts (as message keys) and what the waiting-room display
shows of a polyclinic's board.

Whether an officer may see or do something is the health service's to decide with the
officer's own token (a 403 there is the "not authorised" page here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from typing import Any

from services.portal.domain import Answer, choice

# The health service's reference codes (facility, polyclinic, ward), as people type them:
# anything else is an unknown page and never reaches the service's address.
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")
# The claim value of the health office: every facility (shared/kit/auth.py).
EVERY_FACILITY = "*"
# The BPJS task ids an officer sets, in order (the health service keeps them strictly in
# order and says which one may follow; 99 is cancelling, the patient's).
TASKS = (1, 2, 3, 4, 5, 6, 7)
# The health service's bounds on a ward's beds (services/health/api.py BedsIn).
MOST_BEDS = 5000
# How many numbers after the one called the waiting-room display shows.
UPCOMING = 4
# The health service's bounds on a weekly schedule (services/health/domain.py Schedule).
MINUTES_PER_PATIENT = (1, 240)
MOST_QUOTA = 1000
# Weekdays as the health service numbers them: 0 = Monday (Senin) … 6 = Sunday (Minggu).
WEEKDAYS = range(7)
ACTIVE = ("ya", "tidak")
# A change of one date: the doctor on leave, or other quotas that day.
DATE_CHANGES = ("cuti", "kuota")
REASON_LENGTH = 300  # the health service's (SessionChangeIn.reason)


def known_code(value: str) -> str | None:
    """A reference code as the health service writes it, or None for a malformed one."""
    return value.upper() if CODE.match(value) else None


def own_facility(claim: str | None) -> str | None:
    """The facility an officer's workspace opens on: their token's, none for the health
    office (it chooses one) or an officer without the claim."""
    return claim if claim and claim != EVERY_FACILITY else None


def read_task(form: Mapping[str, str]) -> Answer:
    """A visit's task button: the booking code and the task id."""
    answer = Answer()
    task = (form.get("tugas") or "").strip()
    code = (form.get("kode") or "").strip()
    if not task.isdigit() or int(task) not in TASKS:
        answer.refuse("tugas", "error.tugas.choose")
    if not code or len(code) > 40:
        answer.refuse("tugas", "error.tugas.choose")
    if not answer.errors:
        answer.values = {"code": code, "task": int(task)}
    return answer


def _count(answer: Answer, form: Mapping[str, str], name: str) -> int | None:
    value = (form.get(name) or "").strip()
    if not value:
        answer.refuse(name, f"error.{name}.empty")
    elif not value.isdigit():
        answer.refuse(name, f"error.{name}.number")
    elif int(value) > MOST_BEDS:
        answer.refuse(name, f"error.{name}.large")
    else:
        return int(value)
    return None


def read_beds(form: Mapping[str, str]) -> Answer:
    """A ward's bed counts as the health service's body: whole numbers from 0, occupied
    no more than the total."""
    answer = Answer()
    total, occupied = _count(answer, form, "total"), _count(answer, form, "terisi")
    if total is not None and occupied is not None and occupied > total:
        answer.refuse("terisi", "error.terisi.over")
    if not answer.errors:
        answer.values = {"body": {"total": total, "occupied": occupied}}
    return answer


def _whole(answer: Answer, form: Mapping[str, str], name: str, least: int, most: int) -> int | None:
    value = (form.get(name) or "").strip()
    if not value.isdigit() or not least <= int(value) <= most:
        answer.refuse(name, f"error.{name}.range")
        return None
    return int(value)


def _time(answer: Answer, form: Mapping[str, str], name: str) -> time | None:
    found = re.fullmatch(r"(\d{1,2})[.:](\d{2})", (form.get(name) or "").strip())
    if found and int(found[1]) < 24 and int(found[2]) < 60:
        return time(int(found[1]), int(found[2]))
    answer.refuse(name, f"error.{name}.time")
    return None


def read_schedule(form: Mapping[str, str]) -> Answer:
    """A doctor's weekday session as the health service's body: start before end (local
    time, HH:MM; 08.00 is read too), minutes per patient, both daily quotas, active."""
    answer = Answer()
    start, end = _time(answer, form, "mulai"), _time(answer, form, "selesai")
    if start is not None and end is not None and end <= start:
        answer.refuse("selesai", "error.selesai.order")
    minutes = _whole(answer, form, "menit", *MINUTES_PER_PATIENT)
    jkn = _whole(answer, form, "kuota_jkn", 0, MOST_QUOTA)
    other = _whole(answer, form, "kuota_umum", 0, MOST_QUOTA)
    active = (form.get("aktif") or "").strip()
    if active not in ACTIVE:
        answer.refuse("aktif", "error.aktif.choose")
    if not answer.errors:
        assert start is not None and end is not None
        answer.values = {
            "body": {
                "start": start.strftime("%H:%M"),
                "end": end.strftime("%H:%M"),
                "minutes_per_patient": minutes,
                "quota_jkn": jkn,
                "quota_non_jkn": other,
                "active": active == "ya",
            }
        }
    return answer


def _date(answer: Answer, form: Mapping[str, str], name: str, today: date) -> date | None:
    """A date as officers write it (24-12-2026, 24/12/2026) or as a date field sends it
    (2026-12-24); today or later."""
    value = (form.get(name) or "").strip()
    found = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", value)
    try:
        day = date(int(found[3]), int(found[2]), int(found[1])) if found else date.fromisoformat(value)
    except ValueError:
        answer.refuse(name, f"error.{name}.date")
        return None
    if day < today:
        answer.refuse(name, f"error.{name}.before_today")
        return None
    return day


def read_date_change(form: Mapping[str, str], doctors: set[str], today: date) -> Answer:
    """One date of a doctor's session: on leave, or other quotas (both given); as the
    health service's body, with the doctor and the date."""
    answer = Answer()
    choice(answer, form, "dokter", doctors)
    day = _date(answer, form, "tanggal", today)
    choice(answer, form, "perubahan", DATE_CHANGES)
    reason = (form.get("alasan") or "").strip()
    if len(reason) > REASON_LENGTH:
        answer.refuse("alasan", "error.alasan_jadwal.long")
    body: dict[str, Any] = {"cancelled": True, "reason": reason or None}
    if answer.values.get("perubahan") == "kuota":
        jkn = _whole(answer, form, "kuota_jkn_tanggal", 0, MOST_QUOTA)
        other = _whole(answer, form, "kuota_umum_tanggal", 0, MOST_QUOTA)
        body = {"cancelled": False, "quota_jkn": jkn, "quota_non_jkn": other, "reason": reason or None}
    if not answer.errors:
        assert day is not None
        answer.values = {"doctor": answer.values["dokter"], "date": day, "body": body}
    return answer


def display_state(board: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the waiting-room display shows: the number called last and the next ones
    (queue numbers only; no name ever reaches the board)."""
    if not board:
        return {"called": None, "upcoming": [], "waiting": 0}
    serving = list(board.get("now_serving") or [])
    upcoming = list(board.get("upcoming") or [])
    return {
        "called": serving[-1] if serving else None,
        "upcoming": upcoming[:UPCOMING],
        "waiting": int(board.get("waiting") or 0),
    }
