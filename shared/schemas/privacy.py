"""Events about a citizen's personal data (UU PDP 27/2022), published by every domain
service on its own topic, so every consumer of that topic hears them."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.schemas.common import CitizenRef
from shared.schemas.envelope import EventData

PREFIX = "id.sinergi.privacy.citizen."


class CitizenDataErased(EventData):
    """A service erased a citizen's personal data on request; consumers holding data
    about the same `citizen_ref` erase theirs (the integration view drops the timeline)."""

    citizen_ref: CitizenRef
    service: str = Field(description="The service that erased its records")
    erased_at: datetime
    records: dict[str, int] = Field(description="Records changed per kind, e.g. {'complaints': 2}")


EVENTS: dict[str, type[EventData]] = {f"{PREFIX}erased.v1": CitizenDataErased}
