"""What the integration view's tests share (tests/integration/test_integration_*.py,
tests/browser): the view's settings on topics and a consumer group of a test's own, and
events of every domain built from the real contracts, at the times a test chooses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.integration.app import IntegrationSettings
from shared.kit.consumer import dead_letter_topic
from shared.kit.privacy import citizen_ref, contact_ref
from shared.kit.settings import DEV_CITIZEN_REF_KEY, PlatformSettings
from shared.runtime.embedded import create_topics
from shared.runtime.select import Infrastructure
from shared.schemas import Envelope, EventData, make_envelope, privacy
from shared.schemas import complaints as ce
from shared.schemas import health as he
from shared.schemas import notifications as ne
from shared.schemas import permits as pe
from shared.schemas.registry import DOMAIN_TOPICS
from tests.events import permit_fields

NIK_1, NIK_2 = "3306061708900001", "3306065708900002"
REF_1, REF_2 = citizen_ref(NIK_1, DEV_CITIZEN_REF_KEY), citizen_ref(NIK_2, DEV_CITIZEN_REF_KEY)
# Contacts citizens gave (keyed hashes, as the filed / submitted / booked events carry them).
CONTACT_1 = contact_ref("+6281234567890", DEV_CITIZEN_REF_KEY)
CONTACT_2 = contact_ref("warga@example.com", DEV_CITIZEN_REF_KEY)


async def view_settings(
    infra: Infrastructure, platform: PlatformSettings, database: str, prefix: str, **overrides: Any
) -> IntegrationSettings:
    """The view's settings for one test: a consumer group of its own with its dead-letter
    topic and, unless `topics` is among the overrides, topics of its own
    (`<prefix>-<random>.<domain topic>`, in DOMAIN_TOPICS' order, three partitions each).
    The gauges are refreshed hourly: a test reads them when it wants them."""
    suffix = uuid.uuid4().hex[:8]
    group = f"integration-{prefix}-{suffix}"
    created = {dead_letter_topic(group): 1}
    if "topics" not in overrides:
        overrides["topics"] = [f"{prefix}-{suffix}.{t}" for t in DOMAIN_TOPICS]
        created |= dict.fromkeys(overrides["topics"], 3)
    await create_topics(infra.kafka_bootstrap, created)
    values: dict[str, Any] = {
        "database_url": database,
        "platform": platform,
        "consumer_group": group,
        "gauge_seconds": 3600,
    }
    return IntegrationSettings(**(values | overrides))


# ----- event builders (the real contracts) ----------------------------------------------


def new_code(prefix: str) -> str:
    """A new tracking or booking code, e.g. new_code("ADU")."""
    return f"{prefix}-2603-{uuid.uuid4().hex[:6].upper()}"


def at(envelope: Envelope, moment: datetime) -> Envelope:
    return envelope.model_copy(update={"time": moment})


@dataclass
class Complaint:
    code: str
    category: str
    dimension: str
    ref: str | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    desa: str = "33.06.01.2001"
    confidential: bool = False
    contact: str | None = None  # the contact reference the filed event carries

    def event(self, model: type[ce.ComplaintEvent], status: str, when: datetime, **extra: Any) -> Envelope:
        data = model(
            complaint_id=self.id,
            tracking_code=self.code,
            status=status,
            kind="pengaduan",
            category=self.category,
            dimension=self.dimension,
            desa_code=self.desa,
            kecamatan_code=self.desa[:8],
            citizen_ref=self.ref,
            confidential=self.confidential,
            **extra,
        )
        return at(make_envelope(data, subject=self.id, source=ce.SOURCE, region="33.06"), when)

    def filed(self, when: datetime, title: str = "Jalan berlubang di depan balai desa") -> Envelope:
        return self.event(
            ce.ComplaintFiled,
            "submitted",
            when,
            title=None if self.confidential else title,
            filed_at=when,
            verify_due=when + timedelta(days=3),
            close_due=when + timedelta(days=60),
            contact_ref=self.contact,
        )

    def verified(self, when: datetime) -> Envelope:
        return self.event(ce.ComplaintVerified, "verified", when, verified_by="koordinator")

    def dispatched(self, when: datetime, opd: str) -> Envelope:
        return self.event(
            ce.ComplaintDispatched,
            "dispatched",
            when,
            opd=opd,
            opd_name=opd,
            dispatched_by="koordinator",
            followup_due=when + timedelta(days=5),
        )

    def breached(self, when: datetime, opd: str) -> Envelope:
        return self.event(ce.ComplaintSlaBreached, "dispatched", when, opd=opd, clock="followup", due_at=when)

    def resolved(self, when: datetime, opd: str) -> Envelope:
        until = when + timedelta(days=14)
        return self.event(
            ce.ComplaintResolved, "resolved", when, opd=opd, resolved_by="petugas", reopen_until=until
        )


def permit_events(code: str, ref: str, start: datetime, contact: str | None = None) -> list[Envelope]:
    app_id = str(uuid.uuid4())
    common = permit_fields(app_id, code, ref)
    events: list[EventData] = [
        pe.ApplicationSubmitted(
            **common,
            status="submitted",
            submitted_at=start,
            sla_working_days=5,
            sla_due=start + timedelta(days=7),
            inspection_required=False,
            deemed_approval=True,
            documents=["npwp"],
            contact_ref=contact,
        ),
        pe.ApplicationApproved(
            **common,
            status="approved",
            decided_at=start + timedelta(seconds=20),
            approved_by="kabid",
            processing_working_days=1,
        ),
        pe.PermitIssued(
            **{**common, "permit_number": "503/PB/00001/2026"},
            status="issued",
            issued_at=start + timedelta(seconds=30),
            issued_by="kadis",
        ),
    ]
    return [
        at(
            make_envelope(d, subject=app_id, source=pe.SOURCE, region="33.06"),
            start + timedelta(seconds=10 * i),
        )
        for i, d in enumerate(events)
    ]


def appointment_events(code: str, ref: str, start: datetime, contact: str | None = None) -> list[Envelope]:
    ap_id = str(uuid.uuid4())
    common = {
        "appointment_id": ap_id,
        "booking_code": code,
        "facility": "RSUD-TJITRO",
        "polyclinic": "INT",
        "date": date.today(),
        "queue_number": 3,
        "queue_code": "A-003",
        "payment": "jkn",
        "kecamatan_code": "33.06.06",
        "citizen_ref": ref,
    }
    checked_in, called = start + timedelta(seconds=10), start + timedelta(seconds=40)
    events = [
        (
            he.AppointmentBooked(
                **common,
                status="booked",
                booked_at=start,
                session_start=start,
                session_end=start + timedelta(hours=3),
                estimated_at=start + timedelta(minutes=30),
                position=3,
                contact_ref=contact,
            ),
            start,
        ),
        (
            he.AppointmentCheckedIn(**common, status="checked_in", task_id=1, checked_in_at=checked_in),
            checked_in,
        ),
        (
            he.AppointmentCalled(**common, status="in_service", task_id=4, called_at=called, called_by="dr"),
            called,
        ),
    ]
    return [at(make_envelope(d, subject=ap_id, source=he.SOURCE, region="33.06"), w) for d, w in events]


def ward_event(available: int, when: datetime, ward: str = "MAWAR") -> Envelope:
    ward_id = f"ward-{ward}"
    data = he.WardBedAvailabilityChanged(
        ward_id=ward_id,
        facility="RSUD-TJITRO",
        ward=ward,
        name=f"Bangsal {ward.title()}",
        bed_class="kelas_3",
        kecamatan_code="33.06.06",
        total=40,
        occupied=40 - available,
        available=available,
        updated_by="admisi",
        updated_at=when,
    )
    return at(make_envelope(data, subject=ward_id, source=he.SOURCE, region="33.06"), when)


def notification_events(code: str, ref: str, start: datetime, delivered: bool = True) -> list[Envelope]:
    n_id = str(uuid.uuid4())
    statuses = ["created", "sending", "delivered" if delivered else "permanent-failure"]
    out = []
    for i, status in enumerate(statuses):
        when = start + timedelta(seconds=i)
        data = ne.EVENT_FOR_STATUS[status](
            notification_id=n_id,
            source_event_id=str(uuid.uuid4()),
            source_event_type="id.sinergi.complaints.complaint.filed.v1",
            tracking_code=code,
            rule="complaint-filed",
            recipient_kind="citizen",
            citizen_ref=ref,
            channel="sms",
            template="id/complaints/filed.sms.j2",
            locale="id",
            status=status,
            attempt=min(i, 1),
            at=when,
        )
        out.append(at(make_envelope(data, subject=n_id, source=ne.SOURCE, region="33.06"), when))
    return out


def erasure(ref: str, when: datetime, contacts: tuple[str, ...] = ()) -> Envelope:
    """The complaints service erased the citizen's data at `when`, asked with the contacts
    whose references are `contacts`."""
    data = privacy.CitizenDataErased(
        citizen_ref=ref,
        service="complaints",
        erased_at=when,
        records={"complaints": 1},
        contact_refs=list(contacts),
    )
    return at(make_envelope(data, subject=ref, source=ce.SOURCE, region="33.06"), when)
