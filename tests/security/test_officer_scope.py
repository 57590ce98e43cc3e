"""An officer acts only within their OPD or facility, and officers' reads of personal
data are audited.

- A health officer carries a `facility` claim and changes or reads only that facility:
  its wards and beds, polyclinics, doctors and schedules (quotas), queue calls, BPJS task
  steps and FHIR exports. The health office may be given every facility (`*`).
- An `opd_officer` without an `opd` claim is refused, not shown every OPD's complaints.
- A refusal is a 403 whose reason names no person.
"""

from __future__ import annotations

import httpx

from tests.harness import Served, officer_headers
from tests.integration import test_health_service as health_tests
from tests.integration.test_complaints_service import NIK, complaint_body
from tests.integration.test_health_service import FACILITY, booking, make_polyclinic, nik, visit_day

OTHER = "PKM-BAYAN"


def refused_without_names(answer: httpx.Response) -> bool:
    return answer.status_code == 403 and NIK not in answer.text and "081234567890" not in answer.text


async def test_a_health_officer_acts_only_for_their_own_facility(health_service: Served) -> None:
    health = health_service.client
    own = officer_headers("health_officer", facility=FACILITY, subject="petugas-rsud")
    other = officer_headers("health_officer", facility=OTHER, subject="petugas-bayan")
    unscoped = officer_headers("health_officer", subject="petugas-tanpa-fasilitas")
    dinkes = officer_headers("health_officer", facility="*", subject="petugas-dinkes")
    polyclinic = await make_polyclinic(health, "SCP")
    day = visit_day(health_service.context)
    body = booking(day, polyclinic, nik=nik(31))
    booked = await health.post(
        "/appointments", json=body, headers=health_tests.patient_session(health_service.context, body)
    )
    assert booked.status_code == 201, booked.text
    code = booked.json()["booking_code"]
    hours = {"start": "08:00", "end": "12:00", "minutes_per_patient": 10, "quota_jkn": 12, "quota_non_jkn": 4}
    actions = [
        ("PUT", f"/facilities/{FACILITY}/wards/MAWAR/beds", {"total": 40, "occupied": 30}),
        (
            "PUT",
            f"/facilities/{FACILITY}/polyclinics/{polyclinic}",
            {"name": "Poli Uji", "queue_prefix": "U"},
        ),
        ("PUT", f"/doctors/{polyclinic}-D01/schedules/{day.weekday()}", hours),
        (
            "PUT",
            f"/doctors/{polyclinic}-D02",
            {"name": "dr. Kedua", "facility": FACILITY, "polyclinic": polyclinic},
        ),
        ("POST", f"/facilities/{FACILITY}/polyclinics/{polyclinic}/call-next", None),
        ("GET", f"/appointments/{code}/fhir", None),
    ]
    for method, path, body in actions:
        for headers in (other, unscoped):
            answer = await health.request(method, path, json=body, headers=headers)
            assert refused_without_names(answer), (method, path, answer.status_code, answer.text)
        for headers in (own, dinkes):
            answer = await health.request(method, path, json=body, headers=headers)
            assert answer.status_code not in (401, 403), (method, path, answer.status_code, answer.text)

    task = await health.post(f"/appointments/{code}/tasks", json={"task_id": 3}, headers=other)
    assert refused_without_names(task), task.text


async def test_an_opd_officer_without_an_opd_is_refused_and_sees_only_their_opd(
    complaints_service: Served,
) -> None:
    complaints = complaints_service.client
    admin = officer_headers("admin")
    codes = {}
    for category, opd in (("jalan_rusak", "DPUPR"), ("sampah", "DLH")):
        code = (await complaints.post("/complaints", json=complaint_body(category=category))).json()[
            "tracking_code"
        ]
        assert (await complaints.post(f"/officer/complaints/{code}/verify", headers=admin)).status_code == 200
        disposed = await complaints.post(
            f"/officer/complaints/{code}/dispatch",
            json={"opd": opd, "note": "Mohon ditindaklanjuti"},
            headers=admin,
        )
        assert disposed.status_code == 200, disposed.text
        codes[opd] = code

    without = officer_headers("opd_officer", subject="opd-tanpa-opd")
    assert refused_without_names(await complaints.get("/officer/complaints", headers=without))
    assert refused_without_names(
        await complaints.get(f"/officer/complaints/{codes['DPUPR']}", headers=without)
    )

    dpupr = officer_headers("opd_officer", opd="DPUPR", subject="opd-dpupr")
    listed = (await complaints.get("/officer/complaints", headers=dpupr)).json()
    assert {item["tracking_code"] for item in listed["items"]} == {codes["DPUPR"]}
    assert (await complaints.get(f"/officer/complaints/{codes['DPUPR']}", headers=dpupr)).status_code == 200
    assert refused_without_names(await complaints.get(f"/officer/complaints/{codes['DLH']}", headers=dpupr))


async def test_an_officers_read_of_a_complaint_is_in_the_audit_trail(complaints_service: Served) -> None:
    complaints = complaints_service.client
    code = (await complaints.post("/complaints", json=complaint_body())).json()["tracking_code"]
    reader = officer_headers("coordinator", subject="koordinator-pembaca")
    assert (await complaints.get(f"/officer/complaints/{code}", headers=reader)).status_code == 200
    trail = (
        await complaints.get(
            "/admin/audit",
            params={"subject": "koordinator-pembaca", "action": "read"},
            headers=officer_headers(),
        )
    ).json()
    assert len(trail) == 1
    entry = trail[0]
    assert entry["route"] == "/officer/complaints/{tracking_code}" and entry["method"] == "GET"
    assert code in entry["aggregates"] and entry["address"]
