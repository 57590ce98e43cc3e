"""Named indicator functions over the read model.

The masterplan (masterplan.yaml) names one of these per indicator, with parameters, so
the regency adds indicators of the common shapes without code. Each function validates
its parameters (a pydantic model: unknown parameters are errors), builds one SQL query
for a reporting window, and turns the row into a value. Building the query and finishing
the value are pure and unit-tested; `evaluate` runs it.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from services.integration.domain import Window, ratio

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
    recipients: list[Literal["citizen", "opd", "role"]] = Field(
        default_factory=lambda: ["citizen"], description="Recipient kinds counted"
    )


class CitizenParams(Params):
    domains: list[str] = Field(default_factory=list)


class _Where:
    """AND-ed conditions with numbered asyncpg arguments."""

    def __init__(self, args: list[Any]) -> None:
        self.args = args
        self.parts: list[str] = []

    def add(self, template: str, value: Any) -> None:
        self.args.append(value)
        self.parts.append(template.replace("?", f"${len(self.args)}"))

    def any_of(self, column: str, values: Sequence[str]) -> None:
        if values:
            self.add(f"{column} = ANY(?)", list(values))

    def sql(self) -> str:
        return " AND ".join(self.parts) or "true"


def _item_filters(where: _Where, p: ItemFilter) -> None:
    where.any_of("domain", p.domains)
    where.any_of("category", p.categories)
    where.any_of("opd", p.opds)
    where.any_of("kecamatan_code", p.kecamatan)


@dataclass(frozen=True)
class Query:
    sql: str
    args: list[Any]


class IndicatorFunction:
    name: ClassVar[str]
    params_model: ClassVar[type[Params]]
    description: ClassVar[str]
    # A state indicator is read at a moment (the window's as_of); the others count
    # what happened within the window.
    state: ClassVar[bool] = False

    def unit(self, params: Params) -> Unit:
        return "count"

    def query(self, params: Any, window: Window) -> Query:
        raise NotImplementedError

    def value(self, params: Any, row: Mapping[str, Any]) -> float | None:
        raise NotImplementedError


class ShareWithinSla(IndicatorFunction):
    name = "share_within_sla"
    params_model = ItemFilter
    description = "Share of items completed (resolved, closed, decided) in the period without an SLA breach"

    def unit(self, params: Params) -> Unit:
        return "ratio"

    def query(self, params: ItemFilter, window: Window) -> Query:
        args: list[Any] = [window.start, window.end]
        where = _Where(args)
        _item_filters(where, params)
        return Query(
            "SELECT count(*) AS done, count(*) FILTER (WHERE sla_breaches = 0) AS within FROM items"
            f" WHERE phase = 'done' AND done_at >= $1 AND done_at < $2 AND {where.sql()}",
            args,
        )

    def value(self, params: ItemFilter, row: Mapping[str, Any]) -> float | None:
        return ratio(row["within"], row["done"])


class CountEvents(IndicatorFunction):
    name = "count_events"
    params_model = EventFilter
    description = "Number of events of the given types or actions in the period"

    def query(self, params: EventFilter, window: Window) -> Query:
        args: list[Any] = [window.start, window.end]
        where = _Where(args)
        if params.event_types and params.actions:
            args.extend([list(params.event_types), list(params.actions)])
            where.parts.append(f"(event_type = ANY(${len(args) - 1}) OR action = ANY(${len(args)}))")
        else:
            where.any_of("event_type", params.event_types)
            where.any_of("action", params.actions)
        where.any_of("domain", params.domains)
        where.any_of("category", params.categories)
        where.any_of("kecamatan_code", params.kecamatan)
        return Query(f"SELECT count(*) AS n FROM history WHERE at >= $1 AND at < $2 AND {where.sql()}", args)

    def value(self, params: EventFilter, row: Mapping[str, Any]) -> float | None:
        return float(row["n"])


class OpenItems(IndicatorFunction):
    name = "open_items"
    params_model = ItemFilter
    description = "Items open at the end of the period (now, for the running period)"
    state = True

    def query(self, params: ItemFilter, window: Window) -> Query:
        args: list[Any] = [window.as_of]
        where = _Where(args)
        _item_filters(where, params)
        # Open at `as_of`: opened by then, and still open now or ended after it.
        return Query(
            "SELECT count(*) AS n FROM items WHERE opened_at <= $1 AND (phase = 'open' OR"
            " COALESCE(CASE WHEN phase = 'done' THEN done_at END, last_event_at) > $1)"
            f" AND {where.sql()}",
            args,
        )

    def value(self, params: ItemFilter, row: Mapping[str, Any]) -> float | None:
        return float(row["n"])


class MedianDuration(IndicatorFunction):
    name = "median_duration"
    params_model = DurationParams
    description = "Median handling time (opened to done) or wait (check-in to call) in the period"

    def unit(self, params: Params) -> Unit:
        assert isinstance(params, DurationParams)
        return params.unit

    def query(self, params: DurationParams, window: Window) -> Query:
        args: list[Any] = [window.start, window.end]
        where = _Where(args)
        _item_filters(where, params)
        if params.measure == "wait":
            span, ended, extra = (
                "wait_ended_at - wait_started_at",
                "wait_ended_at",
                "wait_started_at IS NOT NULL",
            )
        else:
            span, ended, extra = "done_at - opened_at", "done_at", "phase = 'done'"
        return Query(
            f"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM {span})) AS seconds,"
            f" count(*) AS n FROM items WHERE {ended} >= $1 AND {ended} < $2 AND {extra} AND {where.sql()}",
            args,
        )

    def value(self, params: DurationParams, row: Mapping[str, Any]) -> float | None:
        seconds = row["seconds"]
        return None if seconds is None else float(seconds) / _SECONDS[params.unit]


class BedAvailability(IndicatorFunction):
    name = "bed_availability"
    params_model = BedParams
    description = "Available beds at the end of the period: share of all beds, or the count"
    state = True

    def unit(self, params: Params) -> Unit:
        assert isinstance(params, BedParams)
        return "ratio" if params.output == "share" else "count"

    def query(self, params: BedParams, window: Window) -> Query:
        args: list[Any] = [window.as_of]
        where = _Where(args)
        where.any_of("detail->>'facility'", params.facilities)
        where.any_of("detail->>'bed_class'", params.bed_classes)
        return Query(
            "SELECT coalesce(sum((detail->>'available')::int), 0) AS available,"
            " coalesce(sum((detail->>'total')::int), 0) AS total, count(*) AS wards FROM ("
            " SELECT DISTINCT ON (code) detail FROM history"
            f" WHERE action = 'bed_availability_changed' AND at <= $1 AND {where.sql()}"
            " ORDER BY code, at DESC, event_id DESC) latest",
            args,
        )

    def value(self, params: BedParams, row: Mapping[str, Any]) -> float | None:
        if not row["wards"]:
            return None
        if params.output == "count":
            return float(row["available"])
        return ratio(row["available"], row["total"])


class NotificationReach(IndicatorFunction):
    name = "notification_reach"
    params_model = NotificationParams
    description = "Share of the notifications created in the period that were delivered"

    def unit(self, params: Params) -> Unit:
        return "ratio"

    def query(self, params: NotificationParams, window: Window) -> Query:
        args: list[Any] = [window.start, window.end]
        where = _Where(args)
        where.any_of("channel", params.channels)
        where.any_of("recipient_kind", params.recipients)
        return Query(
            "SELECT count(*) AS sent, count(delivered_at) AS delivered FROM notifications"
            f" WHERE first_at >= $1 AND first_at < $2 AND {where.sql()}",
            args,
        )

    def value(self, params: NotificationParams, row: Mapping[str, Any]) -> float | None:
        return ratio(row["delivered"], row["sent"])


class DistinctCitizens(IndicatorFunction):
    name = "distinct_citizens"
    params_model = CitizenParams
    description = "Distinct citizens (by pseudonymous reference) who used a digital service in the period"

    def query(self, params: CitizenParams, window: Window) -> Query:
        args: list[Any] = [window.start, window.end]
        where = _Where(args)
        where.any_of("domain", params.domains)
        return Query(
            "SELECT count(DISTINCT citizen_ref) AS n FROM history"
            f" WHERE at >= $1 AND at < $2 AND citizen_ref IS NOT NULL AND {where.sql()}",
            args,
        )

    def value(self, params: CitizenParams, row: Mapping[str, Any]) -> float | None:
        return float(row["n"])


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


async def evaluate(
    conn: asyncpg.Connection, function: IndicatorFunction, params: Params, window: Window
) -> float | None:
    query = function.query(params, window)
    row = await conn.fetchrow(query.sql, *query.args)
    assert row is not None
    return function.value(params, row)
