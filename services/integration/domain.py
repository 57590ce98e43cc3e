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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo

from shared.kit.privacy import CONTACT_REF_PREFIX, citizen_ref
from shared.reference import InvalidNIK, parse_nik
from shared.schemas import EventData
from shared.schemas import complaints as ce
from shared.schemas import health as he
from shared.schemas import notifications as ne
from shared.schemas import permits as pe
from shared.schemas import privacy as pv
from shared.schemas.common import CITIZEN_REF_PATTERN, CITIZEN_REF_PREFIX
from shared.schemas.registry import DOMAINS

Phase = Literal["open", "done", "ended"]
OPEN: Phase = "open"
DONE: Phase = "done"
ENDED: Phase = "ended"


def _phases(statuses: Any, *, done: Collection[str], ended: Collection[str] = ()) -> dict[str, Phase]:
    """Status -> phase for every status of a producer's contract (its status Literal):
    the ones named `done` or `ended`, every other one open. Naming a status the contract
    does not have is an error at import, so a renamed status cannot go unnoticed."""
    known = get_args(statuses)
    strays = (set(done) | set(ended)) - set(known)
    if strays:
        raise ValueError(f"not statuses of the contract: {sorted(strays)}")
    return {s: DONE if s in done else ENDED if s in ended else OPEN for s in known}


# Status -> phase per domain, over the producers' status enums (shared/schemas). "done"
# counts for SLA compliance and handling time; "ended" is a terminal state that is not a
# completion (rejected as not within authority, merged, cancelled, no-show). Unknown
# statuses (a newer producer) are open.
PHASES: dict[str, dict[str, Phase]] = {
    "complaints": _phases(ce.ComplaintStatus, done={"resolved", "closed"}, ended={"rejected", "merged"}),
    # A permit decision within (or outside) the SLA is a completion, a rejection too.
    "permits": _phases(pe.PermitStatus, done={"approved", "rejected", "issued", "revoked", "expired"}),
    "health": _phases(he.AppointmentStatus, done={"done"}, ended={"cancelled", "no_show"}),
}

# The events whose decision time completes a permit application (the contract's `Decision`).
_DECISIONS = (pe.ApplicationApproved, pe.ApplicationRejected, pe.DeemedApproved)

_TYPE = re.compile(
    r"^id\.sinergi\.(?P<domain>[a-z0-9_]+)\.(?P<aggregate>[a-z0-9_]+)\.(?P<action>[a-z0-9_]+)\.v(?P<version>\d+)$"
)
_REF = re.compile(CITIZEN_REF_PATTERN)
_CONTACT_REF = re.compile(rf"^{CONTACT_REF_PREFIX}[0-9a-f]{{32}}$")
# A lookup accepts any code an event carried: producers' formats differ (the kit's public
# codes, shorter older ones), so this is looser than shared.kit.codes.CODE_PATTERN.
_LOOKUP_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{3,39}$")


def phase_of(domain: str, status: str | None) -> Phase:
    return PHASES.get(domain, {}).get(status or "", OPEN)


# A complaint's title is shown in public (the live feed, the tracking page) only once an
# officer has verified the complaint: until someone has read it, it may say anything, and
# a rejected or merged one (spam, a duplicate) is never shown.
_TITLE_UNSEEN = {"submitted", "rejected", "merged"}
TITLE_PUBLIC_STATUSES: dict[str, frozenset[str]] = {
    "complaints": frozenset(get_args(ce.ComplaintStatus)) - _TITLE_UNSEEN,
}


def public_title(domain: str, status: str | None, *, confidential: bool, title: str | None) -> str | None:
    """An item's title as the public may see it: never of a confidential item, and of a
    complaint only once verified."""
    if confidential or title is None:
        return None
    shown = TITLE_PUBLIC_STATUSES.get(domain)
    return title if shown is None or status in shown else None


def title_withheld(domain: str, status: str | None, *, confidential: bool, title: str | None) -> bool:
    """Whether the public would see a title here that can no longer be read: the citizen's
    data was erased, so their text key is gone (or was when the view read the event). The
    pages then say so in neutral words, naming no one."""
    shown = TITLE_PUBLIC_STATUSES.get(domain)
    return shown is not None and status in shown and not confidential and title is None


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


def safe_contact_ref(value: object) -> str | None:
    """A contact reference (keyed hash of a phone number or email address), or None:
    anything else, a contact in clear above all, is never stored."""
    return value if isinstance(value, str) and _CONTACT_REF.match(value) else None


def lookup_code(raw: str) -> str | None:
    """A tracking or booking code as typed (any case, surrounding spaces), or None when
    it cannot be one."""
    code = raw.strip().upper()
    return code if _LOOKUP_CODE.match(code) else None


def _internal(domain: str, *actions: str) -> frozenset[str]:
    """Actions of a domain's events the citizen is not shown as steps of their case;
    naming an action the domain's contract has no event for is an error at import."""
    known = {parse_type(t).action for t in DOMAINS[domain].events}
    strays = set(actions) - known
    if strays:
        raise ValueError(f"not actions of {domain}: {sorted(strays)}")
    return frozenset(actions)


# The services' own bookkeeping on a case: SLA clocks (officers act on them; the page
# shows the status) and the queue's internal tasks (the citizen sees called, served).
INTERNAL_STEPS: dict[str, frozenset[str]] = {
    "complaints": _internal("complaints", "sla_warning", "sla_breached"),
    "permits": _internal("permits", "sla_warning", "sla_breached"),
    "health": _internal("health", "queue_task_changed"),
}


def case_history(item_domain: str, entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """What happened to a citizen's case, one entry per step, in the given order: the
    events of the item's own domain (filed, verified, dispatched; submitted, issued;
    booked, called ...) without the services' bookkeeping. Messages about the case are
    not steps of it: no notification state (created, sending, delivered) is one."""
    internal = INTERNAL_STEPS.get(item_domain, frozenset())
    return [e for e in entries if e["domain"] == item_domain and e["action"] not in internal]


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
    title: str | None = None  # in clear: only from events published before titles were sealed
    # The title as the citizen's event carries it, sealed with their text key (`title_key_id`
    # at `title_producer`): opened when shown, unreadable once the citizen is erased.
    sealed_title: str | None = None
    title_key_id: str | None = None
    title_producer: str | None = None
    done_at: datetime | None = None
    # The contact the citizen gave when they started it (its keyed hash): a session
    # proving that contact lists the item under "my services".
    contact_ref: str | None = None
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
    """A service erased a citizen's data: drop their reference, and what is keyed by the
    contacts the erasure named (an anonymous complaint), up to `erased_at`."""

    citizen_ref: str
    erased_at: datetime
    contact_refs: tuple[str, ...] = ()

    @property
    def refs(self) -> tuple[str, ...]:
        """Every reference the erasure covers, the citizen's first."""
        return (self.citizen_ref, *self.contact_refs)


@dataclass(frozen=True)
class Projection:
    history: HistoryEntry
    item: Item | None = None
    notification: Notification | None = None
    erasure: Erasure | None = None


@dataclass(frozen=True)
class _Event:
    """The envelope's part of what an event says."""

    id: str
    type: str
    kind: EventType
    at: datetime
    subject: str

    def entry(self, code: str | None, status: str | None, **fields: Any) -> HistoryEntry:
        kind = self.kind
        return HistoryEntry(
            self.id, self.at, kind.domain, self.type, kind.aggregate, kind.action, code, status, **fields
        )


def project(
    *,
    event_id: str,
    event_type: str,
    time: datetime,
    subject: str,
    data: EventData,
    producer: str | None = None,
) -> Projection | None:
    """What one event says. `data` is the payload as its contract's model (the kit parsed
    it); a model this view does not know is kept generically from the fields it carries
    (also those of a newer minor version); `producer`: the service that published it (whose
    text keys open what the citizen wrote in it). Returns None for event types outside
    Sinergi's naming."""
    try:
        kind = parse_type(event_type)
    except ValueError:
        return None
    event = _Event(event_id, event_type, kind, _aware(time), subject)
    if isinstance(data, ce.ComplaintEvent):
        return _complaint(event, data, producer)
    if isinstance(data, pe.PermitEvent):
        return _permit(event, data)
    if isinstance(data, he.AppointmentEvent):
        return _appointment(event, data)
    if isinstance(data, he.WardBedAvailabilityChanged):
        return _ward(event, data)
    if isinstance(data, ne.NotificationEvent):
        return _notification(event, data)
    if isinstance(data, pv.CitizenDataErased):
        return _erasure(event, data)
    return _other(event, data)


def _item(
    event: _Event,
    d: ce.ComplaintEvent | pe.PermitEvent | he.AppointmentEvent,
    *,
    code: str,
    aggregate_id: str,
    opened_at: datetime | None,
    detail: dict[str, Any],
    contact_ref: str | None = None,
    **fields: Any,
) -> Projection:
    """An item event: the item's row as this event has it, and its history entry."""
    item = Item(
        code=code,
        domain=event.kind.domain,
        aggregate=event.kind.aggregate,
        aggregate_id=aggregate_id or event.subject,
        status=d.status,
        phase=phase_of(event.kind.domain, d.status),
        opened_at=min(_maybe_aware(opened_at) or event.at, event.at),
        last_event_at=event.at,
        last_event_id=event.id,
        last_event_type=event.type,
        dimension=_str(d.dimension),
        kecamatan_code=_str(d.kecamatan_code),
        citizen_ref=safe_ref(d.citizen_ref),
        contact_ref=safe_contact_ref(contact_ref),
        **fields,
    )
    history = event.entry(
        item.code,
        item.status,
        citizen_ref=item.citizen_ref,
        opd=item.opd,
        category=item.category,
        kecamatan_code=item.kecamatan_code,
        desa_code=item.desa_code,
        dimension=item.dimension,
        confidential=item.confidential,
        detail={k: v for k, v in detail.items() if v is not None},
    )
    return Projection(history, item)


def _complaint(event: _Event, d: ce.ComplaintEvent, producer: str | None) -> Projection:
    detail: dict[str, Any] = {}
    if isinstance(d, ce.ComplaintSlaWarning | ce.ComplaintSlaBreached):
        detail["clock"] = d.clock
    elif isinstance(d, ce.ComplaintRated):
        detail["rating"] = d.rating
    elif isinstance(d, ce.ComplaintRejected):
        detail["reason_code"] = d.reason_code
    filed = d if isinstance(d, ce.ComplaintFiled) else None
    # What the citizen wrote stays sealed here; the pages open it while its key exists.
    sealed = None if d.confidential or filed is None else filed.sealed_title
    return _item(
        event,
        d,
        code=d.tracking_code,
        aggregate_id=d.complaint_id,
        opened_at=filed.filed_at if filed else None,
        detail=detail,
        contact_ref=filed.contact_ref if filed else None,
        opd=_str(d.opd),
        category=_str(d.category),
        kind=_str(d.kind),
        desa_code=_str(d.desa_code),
        confidential=d.confidential,
        title=None if d.confidential or filed is None else _str(filed.title),
        sealed_title=sealed.sealed if sealed is not None and sealed.key_id else None,
        title_key_id=sealed.key_id if sealed is not None else None,
        title_producer=producer if sealed is not None and sealed.key_id else None,
        done_at=event.at if isinstance(d, ce.ComplaintResolved) else None,
        sla_breaches=1 if isinstance(d, ce.ComplaintSlaBreached) else 0,
    )


def _permit(event: _Event, d: pe.PermitEvent) -> Projection:
    detail: dict[str, Any] = {}
    if isinstance(d, pe.PermitIssued):
        detail["permit_number"] = d.permit_number or None
    elif isinstance(d, pe.InspectionRecorded):
        detail["result"] = d.result
    return _item(
        event,
        d,
        code=d.tracking_code,
        aggregate_id=d.application_id,
        opened_at=d.submitted_at if isinstance(d, pe.ApplicationSubmitted) else None,
        detail=detail,
        contact_ref=d.contact_ref if isinstance(d, pe.ApplicationSubmitted) else None,
        opd=_str(d.opd),
        category=_str(d.permit_type),
        kind=_str(d.applicant_kind),
        desa_code=_str(d.desa_code),
        done_at=_aware(d.decided_at) if isinstance(d, _DECISIONS) else None,
        sla_breaches=1 if isinstance(d, pe.SlaBreached) else 0,
    )


def _appointment(event: _Event, d: he.AppointmentEvent) -> Projection:
    detail: dict[str, Any] = {"queue_code": d.queue_code, "facility": d.facility, "date": str(d.date)}
    if isinstance(d, he.AppointmentQueueTaskChanged):
        detail["task_id"] = d.task_id
    return _item(
        event,
        d,
        code=d.booking_code,
        aggregate_id=d.appointment_id,
        opened_at=d.booked_at if isinstance(d, he.AppointmentBooked) else None,
        detail=detail,
        contact_ref=d.contact_ref if isinstance(d, he.AppointmentBooked) else None,
        category=_str(d.polyclinic),
        kind=_str(d.payment),
        facility=_str(d.facility),
        done_at=_aware(d.completed_at) if isinstance(d, he.AppointmentCompleted) else None,
        wait_started_at=_aware(d.checked_in_at) if isinstance(d, he.AppointmentCheckedIn) else None,
        wait_ended_at=_aware(d.called_at) if isinstance(d, he.AppointmentCalled) else None,
    )


def _ward(event: _Event, d: he.WardBedAvailabilityChanged) -> Projection:
    detail = {
        "facility": d.facility,
        "ward": d.ward,
        "name": _str(d.name),
        "bed_class": _str(d.bed_class),
        "total": d.total,
        "occupied": d.occupied,
        "available": d.available,
    }
    return Projection(
        event.entry(
            d.tracking_code,
            None,
            kecamatan_code=_str(d.kecamatan_code),
            dimension=_str(d.dimension),
            detail=detail,
        )
    )


def _notification(event: _Event, d: ne.NotificationEvent) -> Projection:
    ref = safe_ref(d.citizen_ref)
    code = _str(d.tracking_code)  # the item notified about
    detail = {"channel": d.channel, "recipient": d.recipient_kind}
    history = event.entry(code, d.status, citizen_ref=ref, opd=_str(d.opd), detail=detail)
    notification = Notification(
        notification_id=d.notification_id or event.subject,
        status=d.status,
        first_at=event.at,
        last_event_at=event.at,
        last_event_id=event.id,
        code=code,
        recipient_kind=d.recipient_kind,
        citizen_ref=ref,
        opd=_str(d.opd),
        channel=d.channel,
        template=_str(d.template),
        delivered_at=event.at if isinstance(d, ne.NotificationDelivered) else None,
    )
    return Projection(history, notification=notification)


def _erasure(event: _Event, d: pv.CitizenDataErased) -> Projection:
    # The erasure itself is kept without the reference: only that it happened, and where.
    history = event.entry(None, None, detail={"service": d.service})
    ref = safe_ref(d.citizen_ref)
    if ref is None:
        return Projection(history)
    contacts = tuple(r for r in map(safe_contact_ref, d.contact_refs) if r)
    return Projection(history, erasure=Erasure(ref, max(_aware(d.erased_at), event.at), contacts))


def _other(event: _Event, d: EventData) -> Projection:
    """A model this view does not know yet: kept in the history, public fields only, read
    by name (pydantic keeps a payload's extra fields as attributes)."""

    def text(name: str) -> str | None:
        return _str(getattr(d, name, None))

    return Projection(
        event.entry(
            text("tracking_code") or text("booking_code"),
            text("status"),
            citizen_ref=safe_ref(getattr(d, "citizen_ref", None)),
            kecamatan_code=text("kecamatan_code"),
        )
    )


# ----- merging (commutative) ------------------------------------------------------------

Row = TypeVar("Row", Item, Notification)


def _newest(current: Row, fact: Row) -> Row:
    """The row whose state fields hold: the newer event's (event time, then event id)."""
    newer = (fact.last_event_at, fact.last_event_id) > (current.last_event_at, current.last_event_id)
    return fact if newer else current


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None else b if a is None else max(a, b)


def merge_item(current: Item | None, fact: Item) -> Item:
    """Fold what one event says into the item's row. An older event than the one the
    row's state came from changes none of the state fields."""
    if current is None:
        return fact
    confidential = current.confidential or fact.confidential
    return replace(
        _newest(current, fact),
        citizen_ref=current.citizen_ref or fact.citizen_ref,
        contact_ref=current.contact_ref or fact.contact_ref,
        confidential=confidential,
        title=None if confidential else (current.title or fact.title),
        sealed_title=None if confidential else (current.sealed_title or fact.sealed_title),
        title_key_id=None if confidential else (current.title_key_id or fact.title_key_id),
        title_producer=None if confidential else (current.title_producer or fact.title_producer),
        opened_at=min(current.opened_at, fact.opened_at),
        done_at=_max(current.done_at, fact.done_at),
        wait_started_at=_min(current.wait_started_at, fact.wait_started_at),
        wait_ended_at=_min(current.wait_ended_at, fact.wait_ended_at),
        sla_breaches=current.sla_breaches + fact.sla_breaches,
    )


def merge_notification(current: Notification | None, fact: Notification) -> Notification:
    if current is None:
        return fact
    return replace(
        _newest(current, fact),
        code=current.code or fact.code,
        recipient_kind=current.recipient_kind or fact.recipient_kind,
        citizen_ref=current.citizen_ref or fact.citizen_ref,
        opd=current.opd or fact.opd,
        channel=current.channel or fact.channel,  # fixed per notification
        template=current.template or fact.template,
        first_at=min(current.first_at, fact.first_at),
        delivered_at=_min(current.delivered_at, fact.delivered_at),
    )


def fold_item(current: Item | None, facts: Iterable[Item]) -> Item | None:
    """Several facts about one item folded into its row at once (a consumer batch):
    the same row as merging them one by one, in any order."""
    return functools.reduce(merge_item, facts, current)


def fold_notification(current: Notification | None, facts: Iterable[Notification]) -> Notification | None:
    return functools.reduce(merge_notification, facts, current)


def erased(at: datetime, erased_at: datetime | None) -> bool:
    """Whether something of `at` falls under an erasure (everything up to it does)."""
    return erased_at is not None and at <= erased_at


# An item without what its citizen wrote, in clear or sealed.
UNTITLED: dict[str, None] = {
    "title": None,
    "sealed_title": None,
    "title_key_id": None,
    "title_producer": None,
}


def scrub_item(item: Item, erased_at: datetime | None) -> Item:
    """An item of an erased citizen keeps its public state, not whose it was (neither
    reference) nor the citizen's own words. Decided on the merged row (its earliest
    time), so the order in which the item's events and the erasure arrive does not matter."""
    if (item.citizen_ref is None and item.contact_ref is None) or not erased(item.opened_at, erased_at):
        return item
    return replace(item, citizen_ref=None, contact_ref=None, **UNTITLED)


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
    codes are not personal), and no title of a confidential or unverified item."""
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
        "title": public_title(
            row["domain"], row.get("item_status"), confidential=confidential, title=row.get("title")
        ),
        "title_withheld": title_withheld(
            row["domain"], row.get("item_status"), confidential=confidential, title=row.get("title")
        ),
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
    now = _aware(now)
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


# ----- citizen lookup ---------------------------------------------------------------------


class NotACitizenReference(ValueError):
    pass


def lookup_ref(value: str, key: str) -> str:
    """An officer may look a citizen up by their citizen reference or by NIK: a NIK is
    turned into the reference at once (keyed HMAC) and never stored or logged."""
    value = value.strip()
    if value.startswith(CITIZEN_REF_PREFIX):
        if safe_ref(value) is None:
            raise NotACitizenReference(
                f"a citizen reference is {CITIZEN_REF_PREFIX} followed by 32 hex digits"
            )
        return value
    try:
        nik = parse_nik(value)
    except InvalidNIK:
        raise NotACitizenReference(
            f"give a citizen reference ({CITIZEN_REF_PREFIX}…) or a valid 16-digit NIK"
        ) from None
    return citizen_ref(nik.value, key)


# ----- helpers ----------------------------------------------------------------------------


def _str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _maybe_aware(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)
