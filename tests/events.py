"""Complaint events as the complaints service publishes them, for tests that feed the
kit or a consumer directly. Fields every complaints event carries take a road damage
report in Kecamatan Grabag unless a test says otherwise."""

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
