"""Events about a citizen's personal data (UU PDP 27/2022), published by every domain
service on its own topic, so every consumer of that topic hears them."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.schemas.common import CitizenRef, ContactRef
from shared.schemas.envelope import EventData

PREFIX = "id.sinergi.privacy.citizen."


class CitizenDataErased(EventData):
    """A service erased a citizen's personal data on request; consumers holding data
    about the same `citizen_ref`, or about one of the `contact_refs` (what was filed or
    sent without a NIK: an anonymous complaint's messages, a one-time code's), erase
    theirs (the integration view drops the timeline)."""

    citizen_ref: CitizenRef
    service: str = Field(description="The service that erased its records")
    erased_at: datetime
    records: dict[str, int] = Field(description="Records changed per kind, e.g. {'complaints': 2}")
    contact_refs: list[ContactRef] = Field(
        default_factory=list,
        description="Keyed hashes of the phone numbers and email addresses the erasure request"
        " gave (never the contacts); empty in events published before they were carried",
    )


EVENTS: dict[str, type[EventData]] = {f"{PREFIX}erased.v1": CitizenDataErased}
