"""Events as the domain services publish them, for tests that feed the kit or a consumer
directly. Fields every complaints event carries take a road damage report in Kecamatan
Grabag unless a test says otherwise; every permits event, a business licence at DPMPTSP."""

from __future__ import annotations

from typing import Any, TypeVar

from shared.schemas import Envelope, make_envelope
from shared.schemas.complaints import SOURCE, ComplaintEvent

E = TypeVar("E", bound=ComplaintEvent)


def complaint_data(model: type[E], complaint_id: str, n: int = 0, **fields: Any) -> E:
    common: dict[str, Any] = {
        "complaint_id": complaint_id,
        "tracking_code": f"ADU-2611-{n:06d}",
        "kind": "pengaduan",
        "category": "jalan_rusak",
        "dimension": "mobility",
        "desa_code": "33.06.01.2001",
        "kecamatan_code": "33.06.01",
    }
    return model(**(common | fields))


def complaint_event(model: type[ComplaintEvent], complaint_id: str, n: int = 0, **fields: Any) -> Envelope:
    """The event's CloudEvent, keyed (subject) by the complaint."""
    data = complaint_data(model, complaint_id, n, **fields)
    return make_envelope(data, subject=complaint_id, source=SOURCE, region="33.06")


def permit_fields(application_id: str, tracking_code: str, citizen_ref: str) -> dict[str, Any]:
    """What every permits event of one application carries (its status and the event's
    own fields come on top)."""
    return {
        "application_id": application_id,
        "tracking_code": tracking_code,
        "permit_type": "izin_usaha",
        "opd": "DPMPTSP",
        "dimension": "economy",
        "applicant_kind": "business",
        "desa_code": "33.06.06.1007",
        "kecamatan_code": "33.06.06",
        "citizen_ref": citizen_ref,
    }
