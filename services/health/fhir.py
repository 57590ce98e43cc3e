"""A finished visit as FHIR R4 resources, the shape SATUSEHAT (Kemenkes) takes: a
transaction Bundle with the Patient, identified by NIK, and the ambulatory Encounter.

Pure mapping, validated by the `fhir.resources` models. fhir.resources 8 defaults to
FHIR R5; its `R4B` package is the R4-compatible one (Encounter and Patient are
unchanged between R4 and R4B), so that is what is used here.

No diagnosis is exported: this service does not hold one (the EMR adds Conditions).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.health.domain import Appointment, Doctor, Facility, Polyclinic, Task
from shared.reference import InvalidNIK, parse_nik

NIK_SYSTEM = "https://fhir.kemkes.go.id/id/nik"
DEFAULT_SYSTEM_BASE = "https://sinergi.purworejokab.go.id/fhir"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_PATIENT_NAMESPACE = uuid.UUID("5a1c6d2e-8f47-4b0e-9a55-3306a0000001")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _period(start: datetime | None, end: datetime | None) -> dict[str, str]:
    return {k: v for k, v in (("start", _iso(start)), ("end", _iso(end))) if v}


def encounter_bundle(
    appointment: Appointment,
    facility: Facility,
    polyclinic: Polyclinic,
    doctor: Doctor | None,
    system_base: str = DEFAULT_SYSTEM_BASE,
) -> dict[str, Any]:
    """The bundle as JSON-ready dict; raises pydantic's ValidationError if invalid."""
    nik = appointment.patient.nik
    # Stable per patient, not the NIK itself: the same patient gets the same fullUrl.
    patient_id = uuid.uuid5(_PATIENT_NAMESPACE, appointment.citizen_ref)
    arrived = appointment.task_time(Task.ADMISSION_WAIT)
    in_service = appointment.task_time(Task.POLI_SERVICE)
    served = appointment.task_time(Task.PHARMACY_WAIT)
    done = appointment.task_time(Task.DONE)

    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": NIK_SYSTEM, "value": nik}],
        "active": True,
    }
    if appointment.patient.name:
        patient["name"] = [{"use": "official", "text": appointment.patient.name}]
    try:
        parsed = parse_nik(nik)
        patient["gender"] = "female" if parsed.sex == "P" else "male"
        patient["birthDate"] = parsed.birth_date.isoformat()
    except InvalidNIK:
        pass  # stored NIKs were validated at booking; be lenient with old rows

    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [{"system": f"{system_base}/booking-code", "value": appointment.booking_code}],
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": f"urn:uuid:{patient_id}", "display": appointment.patient.name or None},
        "participant": [
            {
                "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND", "display": "attender"}]}],
                "individual": {"display": doctor.name if doctor else appointment.doctor_code},
            }
        ],
        "period": _period(arrived, done),
        "location": [{"location": {"display": f"{polyclinic.name}, {facility.name}"}}],
        "statusHistory": [
            {"status": "arrived", "period": _period(arrived, in_service)},
            {"status": "in-progress", "period": _period(in_service, served)},
            {"status": "finished", "period": _period(served, done)},
        ],
        "serviceProvider": {"display": facility.name},
    }
    if encounter["subject"]["display"] is None:
        del encounter["subject"]["display"]

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{patient_id}",
                "resource": patient,
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={NIK_SYSTEM}|{nik}",
                },
            },
            {
                "fullUrl": f"urn:uuid:{appointment.id}",
                "resource": encounter,
                "request": {"method": "POST", "url": "Encounter"},
            },
        ],
    }
    return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)
