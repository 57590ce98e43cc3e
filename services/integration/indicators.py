"""Named indicator functions over the read model.

The masterplan (masterplan.yaml) names one of these per indicator, with parameters, so
the regency adds indicators of the common shapes without code. Each function validates
its parameters (a pydantic model: unknown parameters are errors) and turns the row of
its query for a reporting window into a value. The queries, one per function name, are
the repository's (`repository.INDICATOR_QUERIES`); both halves are pure and unit-tested.

| function            | value                                                       | unit        |
|---------------------|-------------------------------------------------------------|-------------|
| share_within_sla    | share of items completed in the period with no SLA breach    | ratio       |
| count_events        | events of the given types / actions in the period            | count       |
| open_items          | items open at the end of the period (now for the running one)| count       |
| median_duration     | median handling time (opened -> done) or wait (check-in ->   | minutes,    |
|                     | called) of items finishing in the period                    | hours, days |
| bed_availability    | available beds (share of all beds, or count) at period end   | ratio/count |
| notification_reach  | share of notifications created in the period delivered       | ratio       |
| distinct_citizens   | distinct citizens (pseudonymous) using any service in period | count       |
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.integration.domain import ratio
from shared.schemas.notifications import RecipientKind

Unit = Literal["ratio", "count", "minutes", "hours", "days"]
_SECONDS = {"minutes": 60.0, "hours": 3600.0, "days": 86400.0}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ItemFilter(Params):
    domains: list[Literal["complaints", "permits", "health"]] = Field(default_factory=list)
    categories: list[str] = Field(
        default_factory=list, description="Complaint categories, permit types or polyclinics"
    )
    opds: list[str] = Field(default_factory=list)
    kecamatan: list[str] = Field(default_factory=list, description="Kecamatan codes, e.g. 33.06.06")


class EventFilter(Params):
    event_types: list[str] = Field(default_factory=list, description="Full CloudEvent types")
    actions: list[str] = Field(default_factory=list, description="Last part of the type, e.g. issued")
    domains: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    kecamatan: list[str] = Field(default_factory=list)


class DurationParams(ItemFilter):
    measure: Literal["handling", "wait"] = "handling"
    unit: Literal["minutes", "hours", "days"] = "hours"


class BedParams(Params):
    facilities: list[str] = Field(default_factory=list)
    bed_classes: list[str] = Field(default_factory=list)
    output: Literal["share", "count"] = "share"


class NotificationParams(Params):
    channels: list[str] = Field(default_factory=list, description="email, sms, whatsapp")
    recipients: list[RecipientKind] = Field(
        default_factory=lambda: ["citizen"], description="Recipient kinds counted"
    )


class CitizenParams(Params):
    domains: list[str] = Field(default_factory=list)


class IndicatorFunction:
    name: ClassVar[str]
    params_model: ClassVar[type[Params]]
    description: ClassVar[str]
    # A state indicator is read at a moment (the window's as_of); the others count
    # what happened within the window.
    state: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Named after its class (ShareWithinSla: share_within_sla) and described by its
        # docstring, so that neither is written twice.
        cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        cls.description = inspect.cleandoc(cls.__doc__ or "")

    def unit(self, params: Params) -> Unit:
        return "count"

    def value(self, params: Any, row: Mapping[str, Any]) -> float | None:
        """The value from the row of the function's query (a count `n` unless overridden)."""
        return float(row["n"])


class Share(IndicatorFunction):
    """A function whose value is a share: the row's `part` over its `whole`."""

    part: ClassVar[str]
    whole: ClassVar[str]

    def unit(self, params: Params) -> Unit:
        return "ratio"

    def value(self, params: Any, row: Mapping[str, Any]) -> float | None:
        return ratio(row[self.part], row[self.whole])


class ShareWithinSla(Share):
    """Share of items completed (resolved, closed, decided) in the period without an SLA breach"""

    params_model = ItemFilter
    part, whole = "within", "done"


class CountEvents(IndicatorFunction):
    """Number of events of the given types or actions in the period"""

    params_model = EventFilter


class OpenItems(IndicatorFunction):
    """Items open at the end of the period (now, for the running period)"""

    params_model = ItemFilter
    state = True


class MedianDuration(IndicatorFunction):
    """Median handling time (opened to done) or wait (check-in to call) in the period"""

    params_model = DurationParams

    def unit(self, params: Params) -> Unit:
        assert isinstance(params, DurationParams)
        return params.unit

    def value(self, params: DurationParams, row: Mapping[str, Any]) -> float | None:
        seconds = row["seconds"]
        return None if seconds is None else float(seconds) / _SECONDS[params.unit]


class BedAvailability(IndicatorFunction):
    """Available beds at the end of the period: share of all beds, or the count"""

    params_model = BedParams
    state = True

    def unit(self, params: Params) -> Unit:
        assert isinstance(params, BedParams)
        return "ratio" if params.output == "share" else "count"

    def value(self, params: BedParams, row: Mapping[str, Any]) -> float | None:
        if not row["wards"]:
            return None
        if params.output == "count":
            return float(row["available"])
        return ratio(row["available"], row["total"])


class NotificationReach(Share):
    """Share of the notifications created in the period that were delivered"""

    params_model = NotificationParams
    part, whole = "delivered", "sent"


class DistinctCitizens(IndicatorFunction):
    """Distinct citizens (by pseudonymous reference) who used a digital service in the period"""

    params_model = CitizenParams


FUNCTIONS: dict[str, IndicatorFunction] = {
    f.name: f
    for f in (
        ShareWithinSla(),
        CountEvents(),
        OpenItems(),
        MedianDuration(),
        BedAvailability(),
        NotificationReach(),
        DistinctCitizens(),
    )
}
