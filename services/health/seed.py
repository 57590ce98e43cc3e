"""Seed reference data of the health service (seed.yaml): facilities, polyclinics,
doctors and their schedules, wards. Parsed and checked here (pure); the handler loads it
into the empty tables at start-up, after which officers manage it through the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, get_args

import yaml

from services.health.domain import REFERENCE_CODE, Doctor, Facility, Polyclinic, Schedule
from shared.reference import UnknownRegion, require_kecamatan
from shared.schemas.health import FacilityKind

DEFAULT_PATH = Path(__file__).with_name("seed.yaml")
CODE = re.compile(REFERENCE_CODE)
FACILITY_KINDS = get_args(FacilityKind)


@dataclass(frozen=True)
class WardSeed:
    facility_code: str
    code: str
    name: str
    bed_class: str | None
    total: int
    occupied: int


@dataclass(frozen=True)
class Seed:
    facilities: list[Facility]
    polyclinics: list[Polyclinic]
    doctors: list[Doctor]
    schedules: list[Schedule]
    wards: list[WardSeed]


def _code(value: Any, what: str) -> str:
    text = str(value)
    if not CODE.fullmatch(text):
        raise ValueError(f"{what} code {text!r} must match {CODE.pattern}")
    return text


def _time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def load_seed(path: Path = DEFAULT_PATH) -> Seed:
    raw = yaml.safe_load(path.read_text())
    facilities: list[Facility] = []
    polyclinics: list[Polyclinic] = []
    wards: list[WardSeed] = []
    for f in raw["facilities"]:
        code = _code(f["code"], "facility")
        if f["kind"] not in FACILITY_KINDS:
            raise ValueError(f"facility {code}: kind must be one of {FACILITY_KINDS}")
        try:
            kecamatan = require_kecamatan(str(f["kecamatan_code"])).code
        except UnknownRegion as exc:
            raise ValueError(f"facility {code}: {exc}") from None
        facilities.append(Facility(code, f["name"], f["kind"], kecamatan, f.get("address")))
        for p in f.get("polyclinics", []):
            polyclinics.append(Polyclinic(code, _code(p["code"], "polyclinic"), p["name"], p["queue_prefix"]))
        for w in f.get("wards", []):
            ward = WardSeed(
                code, _code(w["code"], "ward"), w["name"], w.get("bed_class"), w["total"], w["occupied"]
            )
            if not 0 <= ward.occupied <= ward.total:
                raise ValueError(f"ward {code}/{ward.code}: occupied must be between 0 and total")
            wards.append(ward)
    known_polis = {(p.facility_code, p.code) for p in polyclinics}
    doctors: list[Doctor] = []
    schedules: list[Schedule] = []
    for d in raw["doctors"]:
        doctor = Doctor(_code(d["code"], "doctor"), d["name"], d["facility"], d["polyclinic"])
        if (doctor.facility_code, doctor.polyclinic_code) not in known_polis:
            raise ValueError(
                f"doctor {doctor.code} names unknown polyclinic {d['facility']}/{d['polyclinic']}"
            )
        doctors.append(doctor)
        for s in d.get("schedules", []):
            for weekday in s["weekdays"]:
                schedules.append(
                    Schedule(
                        doctor_code=doctor.code,
                        weekday=int(weekday),
                        start=_time(s["start"]),
                        end=_time(s["end"]),
                        minutes_per_patient=int(s["minutes_per_patient"]),
                        quota_jkn=int(s["quota_jkn"]),
                        quota_non_jkn=int(s["quota_non_jkn"]),
                    ).validated()
                )
    return Seed(facilities, polyclinics, doctors, schedules, wards)
