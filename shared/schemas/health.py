"""Events of the health service (kesehatan: antrean online, beds), on ``health.events``.

Two aggregates publish: the appointment (booking, the BPJS antrean task flow, FHIR
export) and the ward (bed availability). Every payload repeats its aggregate's identity
and current state, so a consumer can keep a read model from any single event.

Health data is sensitive personal data (UU PDP 27/2022, art. 4): these events carry no
diagnosis, no NIK, no JKN card number and no phone number in clear — the patient is a
``citizen_ref`` (keyed HMAC of the NIK) and the contact is sealed for the notification
service only.

BPJS antrean task ids (``task_id``): 1 admission wait, 2 admission, 3 poli wait,
4 poli service, 5 pharmacy wait, 6 pharmacy, 7 done, 99 cancelled / no-show. Every task
change is published as ``queue_task_changed`` (the task log, as BPJS' `updatewaktu`
carries it); the milestones people are told about have their own event as well:
task 1 ``checked_in``, 4 ``called``, 5 ``served``, 7 ``completed``, 99 ``cancelled``
or ``no_show``. The task change comes first, then its milestone, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from shared.schemas.common import CitizenRef, KecamatanCode, Locale, SealedContact, SealedText
from shared.schemas.envelope import EventData

TOPIC = "health.events"
SOURCE = "/sinergi/health"
APPOINTMENT_PREFIX = "id.sinergi.health.appointment."
WARD_PREFIX = "id.sinergi.health.ward."

AppointmentStatus = Literal[
    "booked", "checked_in", "waiting", "in_service", "pharmacy", "done", "cancelled", "no_show"
]
TaskId = Literal[1, 2, 3, 4, 5, 6, 7, 99]
Payment = Literal["jkn", "non_jkn"]
FacilityKind = Literal["rsud", "puskesmas", "klinik"]
Code = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{0,19}$", examples=["RSUD-TJITRO"])]
Dimension = str  # configured per deployment (masterplan); the health domain is `living`


class AppointmentEvent(EventData):
    """Fields every appointment event carries."""

    appointment_id: str = Field(description="Aggregate id (UUID); also the CloudEvent subject")
    booking_code: str = Field(examples=["KES-2611-7K3M9Q"])
    status: AppointmentStatus
    facility: Code = Field(description="Code of the facility (RSUD, puskesmas)")
    polyclinic: Code = Field(examples=["INT"])
    doctor: Code | None = None
    date: dt.date = Field(description="Day of the visit (local, Asia/Jakarta)")
    queue_number: int = Field(ge=1, description="Per polyclinic per day")
    queue_code: str = Field(examples=["A-012"], description="Queue number as displayed and called")
    task_id: TaskId | None = Field(None, description="Current BPJS antrean task; none before check-in")
    payment: Payment
    new_patient: bool = False
    kecamatan_code: KecamatanCode = Field(description="Kecamatan of the facility")
    citizen_ref: CitizenRef
    contact: SealedContact | None = Field(None, description="For notifying the patient only")
    locale: Locale = "id"
    dimension: Dimension = "living"

    @property
    def tracking_code(self) -> str:
        """The code a citizen follows this aggregate by (the booking code)."""
        return self.booking_code


class AppointmentBooked(AppointmentEvent):
    booked_at: datetime
    session_start: datetime
    session_end: datetime
    estimated_at: datetime = Field(description="Session start + (position - 1) x minutes per patient")
    position: int = Field(ge=1, description="Position in the doctor's session")
    contact_ref: str | None = Field(
        None,
        description="Keyed hash of the contact the citizen verified and booked with "
        "(shared/kit/privacy.contact_ref); none for bookings made without a session",
    )


class AppointmentBookedAgain(AppointmentEvent):
    """Another contact booked the same patient (NIK) at the same polyclinic on the same
    day. Published on the earlier booking, whose contact on file is told; it carries
    nothing of the new booking or of who made it."""

    booked_again_at: datetime


class AppointmentQueueTaskChanged(AppointmentEvent):
    """One step of the BPJS antrean task flow; timestamps strictly increase per appointment."""

    task_at: datetime
    previous_task_id: TaskId | None = None
    task_name: str = Field(examples=["mulai tunggu poli"])
    changed_by: str = Field(description="'patient', 'system' or an officer's subject")


class AppointmentCheckedIn(AppointmentEvent):
    checked_in_at: datetime


class AppointmentCalled(AppointmentEvent):
    """The patient is called into the polyclinic (task 4)."""

    called_at: datetime
    called_by: str


class AppointmentServed(AppointmentEvent):
    """The polyclinic has served the patient (task 5); pharmacy may follow."""

    served_at: datetime
    served_by: str


class AppointmentCompleted(AppointmentEvent):
    """The visit is done (task 7); its FHIR Encounter can be exported."""

    completed_at: datetime


class AppointmentCancelled(AppointmentEvent):
    cancelled_at: datetime
    cancelled_by: str = "patient"
    reason: str | None = Field(
        None, description="No longer published (see `sealed_reason`); kept for events published before it"
    )
    sealed_reason: SealedText | None = Field(None, description="Why the patient cancelled, sealed")


class AppointmentSessionCancelled(AppointmentEvent):
    """The facility cancelled the doctor's session of the visit's date (the doctor on
    leave): the booking is cancelled (task 99) and its place given back; the patient is
    told and offered another date."""

    cancelled_at: datetime
    cancelled_by: str = Field(description="The officer's subject")
    reason: str | None = Field(None, max_length=300, description="Said to the patient, e.g. 'dokter cuti'")


class AppointmentNoShow(AppointmentEvent):
    """The patient did not check in before the session ended (task 99)."""

    session_end: datetime
    marked_at: datetime


class WardEvent(EventData):
    """Fields every ward event carries."""

    ward_id: str = Field(description="Aggregate id (UUID); also the CloudEvent subject")
    facility: Code
    ward: Code = Field(examples=["MAWAR"])
    name: str
    bed_class: str | None = Field(None, examples=["kelas_3", "vip", "icu"])
    kecamatan_code: KecamatanCode = Field(description="Kecamatan of the facility")
    dimension: Dimension = "living"

    @property
    def tracking_code(self) -> str:
        """The public code of the ward: `<facility>/<ward>`."""
        return f"{self.facility}/{self.ward}"


class WardBedAvailabilityChanged(WardEvent):
    total: int = Field(ge=0)
    occupied: int = Field(ge=0)
    available: int = Field(ge=0)
    updated_by: str
    updated_at: datetime


EVENTS: dict[str, type[EventData]] = {
    f"{APPOINTMENT_PREFIX}booked.v1": AppointmentBooked,
    f"{APPOINTMENT_PREFIX}booked_again.v1": AppointmentBookedAgain,
    f"{APPOINTMENT_PREFIX}queue_task_changed.v1": AppointmentQueueTaskChanged,
    f"{APPOINTMENT_PREFIX}checked_in.v1": AppointmentCheckedIn,
    f"{APPOINTMENT_PREFIX}called.v1": AppointmentCalled,
    f"{APPOINTMENT_PREFIX}served.v1": AppointmentServed,
    f"{APPOINTMENT_PREFIX}completed.v1": AppointmentCompleted,
    f"{APPOINTMENT_PREFIX}cancelled.v1": AppointmentCancelled,
    f"{APPOINTMENT_PREFIX}no_show.v1": AppointmentNoShow,
    f"{APPOINTMENT_PREFIX}session_cancelled.v1": AppointmentSessionCancelled,
    f"{WARD_PREFIX}bed_availability_changed.v1": WardBedAvailabilityChanged,
}
