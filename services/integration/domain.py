"""The integration view's domain: pure functions from events to read-model rows.

No I/O. `project` turns one parsed event into what it says (a history entry, and for
items and notifications a *fact*); `merge_item` / `merge_notification` fold a fact into
the current row. The merges are commutative: fields that describe the aggregate's
current state come from the newest event (event time, then event id, so ties are
deterministic) and an older event never overwrites them; the other fields merge with
min / max / or / sum. Applying the same events in any order gives the same rows, which
is what makes a rebuild from the topics equal to the live view.

Also here: masking for public views (live feed, tracking page), reporting periods in
the regency's time zone, target assessment, trend sparklines, the kecamatan grid and
language choice.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.kit.privacy import CITIZEN_REF_PREFIX, citizen_ref
from shared.reference import InvalidNIK, parse_nik

Phase = Literal["open", "done", "ended"]
OPEN: Phase = "open"
DONE: Phase = "done"
ENDED: Phase = "ended"

# Status -> phase per domain. "done" counts for SLA compliance and handling time;
# "ended" is a terminal state that is not a completion (rejected as not within
# authority, merged, cancelled, no-show). Unknown statuses (a newer producer) are open.
PHASES: dict[str, dict[str, Phase]] = {
    "complaints": {
        "submitted": OPEN,
        "verified": OPEN,
        "dispatched": OPEN,
        "in_progress": OPEN,
        "resolved": DONE,
        "closed": DONE,
        "rejected": ENDED,
        "merged": ENDED,
    },
    "permits": {
        "submitted": OPEN,
        "documents_incomplete": OPEN,
        "documents_verified": OPEN,
        "inspection_scheduled": OPEN,
        "inspected": OPEN,
        "approved": DONE,
        "rejected": DONE,  # a decision within (or outside) the SLA is a completion
        "issued": DONE,
        "revoked": DONE,
        "expired": DONE,
    },
    "health": {
        "booked": OPEN,
        "checked_in": OPEN,
        "waiting": OPEN,
        "in_service": OPEN,
        "pharmacy": OPEN,
        "done": DONE,
        "cancelled": ENDED,
        "no_show": ENDED,
    },
}

# Actions whose event time (or decision time) completes an item.
DONE_ACTIONS: dict[str, frozenset[str]] = {
    "complaints": frozenset({"resolved"}),
    "permits": frozenset({"approved", "rejected", "deemed_approved"}),
    "health": frozenset({"completed"}),
}

_TYPE = re.compile(
    r"^id\.sinergi\.(?P<domain>[a-z0-9_]+)\.(?P<aggregate>[a-z0-9_]+)\.(?P<action>[a-z0-9_]+)\.v(?P<version>\d+)$"
)
_REF = re.compile(r"^cr1_[0-9a-f]{32}$")


def phase_of(domain: str, status: str | None) -> Phase:
    return PHASES.get(domain, {}).get(status or "", OPEN)


@dataclass(frozen=True)
class EventType:
    domain: str
    aggregate: str
    action: str
    version: int


@functools.lru_cache(maxsize=1024)  # a few dozen types, one parse per event otherwise
def parse_type(event_type: str) -> EventType:
    match = _TYPE.match(event_type)
    if match is None:
        raise ValueError(f"not a Sinergi event type: {event_type!r}")
    return EventType(match["domain"], match["aggregate"], match["action"], int(match["version"]))


def safe_ref(value: object) -> str | None:
    """A pseudonymous citizen reference, or None: anything else (a NIK that slipped
    into an event, garbage) is never stored."""
    return value if isinstance(value, str) and _REF.match(value) else None


# ----- what one event says ---------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    event_id: str
    at: datetime
    domain: str
    event_type: str
    aggregate: str
    action: str
    code: str | None
    status: str | None
    citizen_ref: str | None = None
    opd: str | None = None
    category: str | None = None
    kecamatan_code: str | None = None
    desa_code: str | None = None
    dimension: str | None = None
    confidential: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One row of `items` (also what a single event says about its item)."""

    code: str
    domain: str
    aggregate: str
    aggregate_id: str
    status: str
    phase: Phase
    opened_at: datetime
    last_event_at: datetime
    last_event_id: str
    last_event_type: str
    opd: str | None = None
    category: str | None = None
    kind: str | None = None
    dimension: str | None = None
    facility: str | None = None
    desa_code: str | None = None
    kecamatan_code: str | None = None
    citizen_ref: str | None = None
    confidential: bool = False
    title: str | None = None
    done_at: datetime | None = None
    wait_started_at: datetime | None = None
    wait_ended_at: datetime | None = None
    sla_breaches: int = 0


@dataclass(frozen=True)
class Notification:
    """One row of `notifications` (also what a single notification event says)."""

    notification_id: str
    status: str
    first_at: datetime
    last_event_at: datetime
    last_event_id: str
    code: str | None = None
    recipient_kind: str | None = None
    citizen_ref: str | None = None
    opd: str | None = None
    channel: str | None = None
    template: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Erasure:
    """A service erased a citizen's data: drop their reference up to `erased_at`."""

    citizen_ref: str
    erased_at: datetime


@dataclass(frozen=True)
class Projection:
    history: HistoryEntry
    item: Item | None = None
    notification: Notification | None = None
    erasure: Erasure | None = None


DELIVERED_STATUSES = frozenset({"delivered"})


def project(
    *,
    event_id: str,
    event_type: str,
    time: datetime,
    subject: str,
    data: Mapping[str, Any],
) -> Projection | None:
    """What one event says. `data` is the event payload as a dict (parsed by the kit,
    so it matches its model). Returns None for event types outside Sinergi's naming."""
    try:
        kind = parse_type(event_type)
    except ValueError:
        return None
    at = _aware(time)
    ref = safe_ref(data.get("citizen_ref"))
    if kind.domain == "complaints":
        return _complaint(event_id, event_type, kind, at, subject, data, ref)
    if kind.domain == "permits":
        return _permit(event_id, event_type, kind, at, subject, data, ref)
    if kind.domain == "health" and kind.aggregate == "appointment":
        return _appointment(event_id, event_type, kind, at, subject, data, ref)
    if kind.domain == "health" and kind.aggregate == "ward":
        return _ward(event_id, event_type, kind, at, data)
    if kind.domain == "notifications":
        return _notification(event_id, event_type, kind, at, subject, data, ref)
    if kind.domain == "privacy" and kind.action == "erased":
        return _erasure(event_id, event_type, kind, at, data, ref)
    # A domain this view does not know yet: kept in the history (public fields only).
    code = _str(data.get("tracking_code")) or _str(data.get("booking_code"))
    return Projection(
        HistoryEntry(
            event_id,
            at,
            kind.domain,
            event_type,
            kind.aggregate,
            kind.action,
            code,
            _str(data.get("status")),
            ref,
            kecamatan_code=_str(data.get("kecamatan_code")),
        )
    )


def _complaint(
    event_id: str,
    event_type: str,
    kind: EventType,
    at: datetime,
    subject: str,
    d: Mapping[str, Any],
    ref: str | None,
) -> Projection:
    confidential = bool(d.get("confidential"))
    status = str(d["status"])
    detail: dict[str, Any] = {}
    if kind.action in ("sla_warning", "sla_breached"):
        detail["clock"] = d.get("clock")
    if kind.action == "rated":
        detail["rating"] = d.get("rating")
    if kind.action == "rejected":
        detail["reason_code"] = d.get("reason_code")
    item = Item(
        code=str(d["tracking_code"]),
        domain="complaints",
        aggregate=kind.aggregate,
        aggregate_id=str(d.get("complaint_id") or subject),
        status=status,
        phase=phase_of("complaints", status),
        opened_at=min(_aware(d.get("filed_at")) or at, at),
        last_event_at=at,
        last_event_id=event_id,
        last_event_type=event_type,
        opd=_str(d.get("opd")),
        category=_str(d.get("category")),
        kind=_str(d.get("kind")),
        dimension=_str(d.get("dimension")),
        desa_code=_str(d.get("desa_code")),
        kecamatan_code=_str(d.get("kecamatan_code")),
        citizen_ref=ref,
        confidential=confidential,
        title=None if confidential else _str(d.get("title")),
        done_at=at if kind.action in DONE_ACTIONS["complaints"] else None,
        sla_breaches=1 if kind.action == "sla_breached" else 0,
    )
    return Projection(_history_of(item, event_id, event_type, kind, at, detail), item)


def _permit(
    event_id: str,
    event_type: str,
    kind: EventType,
    at: datetime,
    subject: str,
    d: Mapping[str, Any],
    ref: str | None,
) -> Projection:
    status = str(d["status"])
    detail: dict[str, Any] = {}
    if kind.action == "issued" and d.get("permit_number"):
        detail["permit_number"] = d.get("permit_number")
    if kind.action == "inspection_recorded":
        detail["result"] = d.get("result")
    done_at = None
    if kind.action in DONE_ACTIONS["permits"]:
        done_at = _aware(d.get("decided_at")) or at
    item = Item(
        code=str(d["tracking_code"]),
        domain="permits",
        aggregate=kind.aggregate,
        aggregate_id=str(d.get("application_id") or subject),
        status=status,
        phase=phase_of("permits", status),
        opened_at=min(_aware(d.get("submitted_at")) or at, at),
        last_event_at=at,
        last_event_id=event_id,
        last_event_type=event_type,
        opd=_str(d.get("opd")),
        category=_str(d.get("permit_type")),
        kind=_str(d.get("applicant_kind")),
        dimension=_str(d.get("dimension")),
        desa_code=_str(d.get("desa_code")),
        kecamatan_code=_str(d.get("kecamatan_code")),
        citizen_ref=ref,
        done_at=done_at,
        sla_breaches=1 if kind.action == "sla_breached" else 0,
    )
    return Projection(_history_of(item, event_id, event_type, kind, at, detail), item)


def _appointment(
    event_id: str,
    event_type: str,
    kind: EventType,
    at: datetime,
    subject: str,
    d: Mapping[str, Any],
    ref: str | None,
) -> Projection:
    status = str(d["status"])
    detail: dict[str, Any] = {"queue_code": d.get("queue_code"), "facility": d.get("facility")}
    if d.get("date") is not None:
        detail["date"] = str(d.get("date"))
    if kind.action == "queue_task_changed":
        detail["task_id"] = d.get("task_id")
    item = Item(
        code=str(d["booking_code"]),
        domain="health",
        aggregate=kind.aggregate,
        aggregate_id=str(d.get("appointment_id") or subject),
        status=status,
        phase=phase_of("health", status),
        opened_at=min(_aware(d.get("booked_at")) or at, at),
        last_event_at=at,
        last_event_id=event_id,
        last_event_type=event_type,
        opd=_str(d.get("opd")),
        category=_str(d.get("polyclinic")),
        kind=_str(d.get("payment")),
        dimension=_str(d.get("dimension")),
        facility=_str(d.get("facility")),
        kecamatan_code=_str(d.get("kecamatan_code")),
        citizen_ref=ref,
        done_at=(_aware(d.get("completed_at")) or at) if kind.action in DONE_ACTIONS["health"] else None,
        wait_started_at=(_aware(d.get("checked_in_at")) or at) if kind.action == "checked_in" else None,
        wait_ended_at=(_aware(d.get("called_at")) or at) if kind.action == "called" else None,
    )
    return Projection(_history_of(item, event_id, event_type, kind, at, detail), item)


def _ward(event_id: str, event_type: str, kind: EventType, at: datetime, d: Mapping[str, Any]) -> Projection:
    facility, ward = _str(d.get("facility")), _str(d.get("ward"))
    detail = {
        "facility": facility,
        "ward": ward,
        "name": _str(d.get("name")),
        "bed_class": _str(d.get("bed_class")),
        "total": int(d.get("total") or 0),
        "occupied": int(d.get("occupied") or 0),
        "available": int(d.get("available") or 0),
    }
    return Projection(
        HistoryEntry(
            event_id,
            at,
            "health",
            event_type,
            kind.aggregate,
            kind.action,
            f"{facility}/{ward}",
            None,
            kecamatan_code=_str(d.get("kecamatan_code")),
            dimension=_str(d.get("dimension")),
            detail=detail,
        )
    )


def _notification(
    event_id: str,
    event_type: str,
    kind: EventType,
    at: datetime,
    subject: str,
    d: Mapping[str, Any],
    ref: str | None,
) -> Projection:
    code = _str(d.get("tracking_code")) or _str(d.get("booking_code"))  # the item notified about
    status = _str(d.get("status")) or kind.action
    channel = _str(d.get("channel"))
    recipient = _str(d.get("recipient_kind")) or ("citizen" if ref else None)
    detail = {k: v for k, v in (("channel", channel), ("recipient", recipient)) if v}
    history = HistoryEntry(
        event_id,
        at,
        "notifications",
        event_type,
        kind.aggregate,
        kind.action,
        code,
        status,
        ref,
        opd=_str(d.get("opd")),
        detail=detail,
    )
    notification = Notification(
        notification_id=_str(d.get("notification_id")) or subject,
        status=status,
        first_at=at,
        last_event_at=at,
        last_event_id=event_id,
        code=code,
        recipient_kind=recipient,
        citizen_ref=ref,
        opd=_str(d.get("opd")),
        channel=channel,
        template=_str(d.get("template")),
        delivered_at=at if status in DELIVERED_STATUSES else None,
    )
    return Projection(history, notification=notification)


def _erasure(
    event_id: str, event_type: str, kind: EventType, at: datetime, d: Mapping[str, Any], ref: str | None
) -> Projection:
    # The erasure itself is kept without the reference: only that it happened, and where.
    history = HistoryEntry(
        event_id,
        at,
        "privacy",
        event_type,
        kind.aggregate,
        kind.action,
        None,
        None,
        detail={"service": d.get("service")},
    )
    if ref is None:
        return Projection(history)
    return Projection(history, erasure=Erasure(ref, max(_aware(d.get("erased_at")) or at, at)))


def _history_of(
    item: Item, event_id: str, event_type: str, kind: EventType, at: datetime, detail: dict[str, Any]
) -> HistoryEntry:
    return HistoryEntry(
        event_id=event_id,
        at=at,
        domain=item.domain,
        event_type=event_type,
        aggregate=kind.aggregate,
        action=kind.action,
        code=item.code,
        status=item.status,
        citizen_ref=item.citizen_ref,
        opd=item.opd,
        category=item.category,
        kecamatan_code=item.kecamatan_code,
        desa_code=item.desa_code,
        dimension=item.dimension,
        confidential=item.confidential,
        detail={k: v for k, v in detail.items() if v is not None},
    )


# ----- merging (commutative) ------------------------------------------------------------


def _newer(at: datetime, event_id: str, than_at: datetime, than_id: str) -> bool:
    return (at, event_id) > (than_at, than_id)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else max(a, b)


def merge_item(current: Item | None, fact: Item) -> Item:
    """Fold what one event says into the item's row. An older event than the one the
    row's state came from changes none of the state fields."""
    if current is None:
        return fact
    newer = _newer(fact.last_event_at, fact.last_event_id, current.last_event_at, current.last_event_id)
    state = fact if newer else current
    confidential = current.confidential or fact.confidential
    opened_at = _min(current.opened_at, fact.opened_at)
    assert opened_at is not None
    return replace(
        state,
        citizen_ref=current.citizen_ref or fact.citizen_ref,
        confidential=confidential,
        title=None if confidential else (current.title or fact.title),
        opened_at=opened_at,
        done_at=_max(current.done_at, fact.done_at),
        wait_started_at=_min(current.wait_started_at, fact.wait_started_at),
        wait_ended_at=_min(current.wait_ended_at, fact.wait_ended_at),
        sla_breaches=current.sla_breaches + fact.sla_breaches,
    )


def merge_notification(current: Notification | None, fact: Notification) -> Notification:
    if current is None:
        return fact
    newer = _newer(fact.last_event_at, fact.last_event_id, current.last_event_at, current.last_event_id)
    state = fact if newer else current
    first_at = _min(current.first_at, fact.first_at)
    assert first_at is not None
    return replace(
        state,
        code=current.code or fact.code,
        recipient_kind=current.recipient_kind or fact.recipient_kind,
        citizen_ref=current.citizen_ref or fact.citizen_ref,
        opd=current.opd or fact.opd,
        channel=current.channel or fact.channel,  # fixed per notification
        template=current.template or fact.template,
        first_at=first_at,
        delivered_at=_min(current.delivered_at, fact.delivered_at),
    )


def fold_item(current: Item | None, facts: Iterable[Item]) -> Item | None:
    """Several facts about one item folded into its row at once (a consumer batch):
    the same row as merging them one by one, in any order."""
    for fact in facts:
        current = merge_item(current, fact)
    return current


def fold_notification(current: Notification | None, facts: Iterable[Notification]) -> Notification | None:
    for fact in facts:
        current = merge_notification(current, fact)
    return current


def erased(at: datetime, erased_at: datetime | None) -> bool:
    """Whether something of `at` falls under an erasure (everything up to it does)."""
    return erased_at is not None and at <= erased_at


def scrub_item(item: Item, erased_at: datetime | None) -> Item:
    """An item of an erased citizen keeps its public state, not whose it was nor the
    citizen's own words. Decided on the merged row (its earliest time), so the order
    in which the item's events and the erasure arrive does not matter."""
    if item.citizen_ref is None or not erased(item.opened_at, erased_at):
        return item
    return replace(item, citizen_ref=None, title=None)


def scrub_notification(notification: Notification, erased_at: datetime | None) -> Notification:
    if notification.citizen_ref is None or not erased(notification.first_at, erased_at):
        return notification
    return replace(notification, citizen_ref=None)


# ----- masking for public views ----------------------------------------------------------

MASK = "•"


def mask_code(code: str | None) -> str | None:
    """A tracking or booking code is the citizen's key to their case: public views keep
    its prefix (and the period segment) and the last two characters only, e.g.
    ``ADU-2611-N9A7JV`` -> ``ADU-2611-••••JV``, ``ADU-2611-DQKV-NZY8-YPGF6`` ->
    ``ADU-2611-••••-••••-•••F6``."""
    if not code:
        return code
    parts = code.split("-")
    keep = 2 if len(parts) >= 3 else len(parts) - 1
    rest = "-".join(parts[keep:])
    secret = [i for i, ch in enumerate(rest) if ch != "-"]
    shown = set(secret[-2:]) if len(secret) > 3 else set()
    masked = "".join(ch if ch == "-" or i in shown else MASK for i, ch in enumerate(rest))
    return "-".join([*parts[:keep], masked])


def public_feed_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """One event for the public live feed: no citizen reference, masked codes (ward
    codes are not personal), and no title of a confidential item."""
    confidential = bool(row.get("confidential")) or bool(row.get("item_confidential"))
    code = row.get("code")
    aggregate = row.get("aggregate")
    detail = dict(row.get("detail") or {})
    public_detail = {
        k: detail[k] for k in ("clock", "channel", "available", "total", "bed_class") if k in detail
    }
    return {
        "seq": row.get("seq"),
        "at": row["at"],
        "domain": row["domain"],
        "aggregate": aggregate,
        "action": row["action"],
        "status": row.get("status"),
        "code": code if aggregate == "ward" else mask_code(code),
        "category": row.get("category"),
        "opd": row.get("opd"),
        "kecamatan_code": row.get("kecamatan_code"),
        "title": None if confidential else row.get("title"),
        "detail": public_detail,
    }


# ----- reporting periods ------------------------------------------------------------------

Period = Literal["day", "week", "month", "quarter", "year"]
PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Window:
    """A reporting period [start, end) in UTC, with its local label; `as_of` is when a
    state indicator is read (the end, or now for the running period)."""

    start: datetime
    end: datetime
    as_of: datetime
    label: str


def _period_start(period: Period, local: datetime) -> datetime:
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(day=1, month=3 * ((day.month - 1) // 3) + 1)
    return day.replace(day=1, month=1)


def _shift(period: Period, start: datetime, n: int) -> datetime:
    """The start of the period `n` periods after the one starting at `start` (local)."""
    if period == "day":
        return (start + timedelta(days=n)).replace(hour=0)
    if period == "week":
        return (start + timedelta(weeks=n)).replace(hour=0)
    months = {"month": 1, "quarter": 3, "year": 12}[period] * n
    index = start.year * 12 + (start.month - 1) + months
    return start.replace(year=index // 12, month=index % 12 + 1, day=1)


def _label(period: Period, start: datetime) -> str:
    if period == "day":
        return start.strftime("%d/%m")
    if period == "week":
        return "W" + start.strftime("%V")
    if period == "month":
        return start.strftime("%m/%Y")
    if period == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return str(start.year)


def windows(period: Period, now: datetime, tz: ZoneInfo, count: int = 1) -> list[Window]:
    """The last `count` periods up to and including the running one, oldest first."""
    now = _aware(now) or datetime.now(UTC)
    current = _period_start(period, now.astimezone(tz))
    result = []
    for back in range(count - 1, -1, -1):
        start = _shift(period, current, -back)
        end = _shift(period, start, 1)
        start_utc, end_utc = _relocalise(start, tz), _relocalise(end, tz)
        result.append(Window(start_utc, end_utc, min(end_utc, now), _label(period, start)))
    return result


def _relocalise(local: datetime, tz: ZoneInfo) -> datetime:
    # Rebuild the local wall time in the zone (DST-safe), then convert to UTC.
    naive = local.replace(tzinfo=None)
    return naive.replace(tzinfo=tz).astimezone(UTC)


# ----- targets, trends, shading -----------------------------------------------------------

Direction = Literal["higher", "lower"]
Assessment = Literal["met", "not_met", "no_data"]


def assess(actual: float | None, target: float, direction: Direction) -> Assessment:
    if actual is None or math.isnan(actual):
        return "no_data"
    if direction == "higher":
        return "met" if actual >= target else "not_met"
    return "met" if actual <= target else "not_met"


def attainment(actual: float | None, target: float, direction: Direction) -> float | None:
    """How far towards the target, 0..1 (for a progress bar)."""
    if actual is None:
        return None
    if direction == "higher":
        return 1.0 if target <= 0 else max(0.0, min(1.0, actual / target))
    if actual <= target:
        return 1.0
    return max(0.0, min(1.0, target / actual)) if actual > 0 else 1.0


def ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    points: list[tuple[float, float]]  # (x, y) of the periods that have a value
    target_y: float | None
    max_value: float


def sparkline(
    values: Sequence[float | None], target: float | None, width: int = 180, height: int = 44, pad: int = 4
) -> Sparkline:
    """Coordinates of a small line chart (SVG, y grows downwards) of `values`, with the
    target as a horizontal line; periods without a value are left out."""
    known = [v for v in values if v is not None]
    top = max([*known, target or 0.0, 0.0])
    top = top * 1.1 if top > 0 else 1.0
    n = len(values)
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def y_of(v: float) -> float:
        return round(pad + inner_h - (v / top) * inner_h, 1)

    points = [
        (round(pad + (inner_w * i / (n - 1) if n > 1 else inner_w / 2), 1), y_of(v))
        for i, v in enumerate(values)
        if v is not None
    ]
    return Sparkline(width, height, points, y_of(target) if target is not None else None, top)


def shade(count: int, highest: int, levels: int = 5) -> int:
    """Shading level 0..levels-1 of a count relative to the highest one (0 = none)."""
    if count <= 0 or highest <= 0:
        return 0
    return max(1, min(levels - 1, math.ceil((levels - 1) * count / highest)))


# Rough geography of Kabupaten Purworejo (north at the top, the coast at the bottom):
# (row, column) of each kecamatan in a 4 x 5 grid. Other regencies get code order.
KECAMATAN_GRID: dict[str, tuple[int, int]] = {
    "33.06.13": (0, 0),  # Bruno
    "33.06.12": (0, 1),  # Kemiri
    "33.06.14": (0, 2),  # Gebang
    "33.06.16": (0, 3),  # Bener
    "33.06.11": (1, 0),  # Pituruh
    "33.06.10": (1, 1),  # Butuh
    "33.06.08": (1, 2),  # Bayan
    "33.06.15": (1, 3),  # Loano
    "33.06.01": (2, 0),  # Grabag
    "33.06.09": (2, 1),  # Kutoarjo
    "33.06.07": (2, 2),  # Banyuurip
    "33.06.06": (2, 3),  # Purworejo
    "33.06.05": (2, 4),  # Kaligesing
    "33.06.02": (3, 1),  # Ngombol
    "33.06.03": (3, 2),  # Purwodadi
    "33.06.04": (3, 3),  # Bagelen
}


def grid_position(code: str, index: int, columns: int = 5) -> tuple[int, int]:
    return KECAMATAN_GRID.get(code, (index // columns, index % columns))


# ----- language ---------------------------------------------------------------------------

LANGUAGES = ("id", "en")


def choose_language(requested: str | None, accept_language: str | None) -> str:
    """`?lang=` wins, then the browser's Accept-Language; Indonesian by default."""
    if requested and requested.lower()[:2] in LANGUAGES:
        return requested.lower()[:2]
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        lang = tag.strip().lower()[:2]
        if lang in LANGUAGES and quality > 0 and (best is None or quality > best[0]):
            best = (quality, lang)
    return best[1] if best else "id"


# ----- citizen lookup ---------------------------------------------------------------------


class NotACitizenReference(ValueError):
    pass


def lookup_ref(value: str, key: str) -> str:
    """An officer may look a citizen up by their citizen reference or by NIK: a NIK is
    turned into the reference at once (keyed HMAC) and never stored or logged."""
    value = value.strip()
    if value.startswith(CITIZEN_REF_PREFIX):
        if safe_ref(value) is None:
            raise NotACitizenReference("a citizen reference is cr1_ followed by 32 hex digits")
        return value
    try:
        nik = parse_nik(value)
    except InvalidNIK:
        raise NotACitizenReference("give a citizen reference (cr1_…) or a valid 16-digit NIK") from None
    return citizen_ref(nik.value, key)


# ----- helpers ----------------------------------------------------------------------------


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _aware(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
