"""Notifications domain: rules, recipients, preferences, the delivery lifecycle.

Pure: no I/O. The consumer asks the rules which notifications an event causes and
`plan_delivery` decides channel, language and time for each; the worker moves each
notification through its lifecycle (after GOV.UK Notify):

    created ──▶ sending ──▶ delivered
       │           ├──▶ temporary-failure ──▶ sending … (exponential backoff, N attempts)
       │           ├──▶ permanent-failure  ──▶ created (an officer resends)
       └───────────┴──▶ technical-failure  ──▶ created (an officer resends, after a fix)

Every change appends a history entry; the handler stores it and publishes it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import secrets
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shared.kit.errors import IllegalTransition, InvalidField

CHANNELS: tuple[str, ...] = ("email", "whatsapp", "sms")
LOCALES: tuple[str, ...] = ("id", "en")
WIB = ZoneInfo("Asia/Jakarta")


class Status(StrEnum):
    CREATED = "created"
    SENDING = "sending"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary-failure"
    PERMANENT_FAILURE = "permanent-failure"
    TECHNICAL_FAILURE = "technical-failure"


# status -> statuses it may move to
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.CREATED: frozenset({Status.SENDING, Status.TECHNICAL_FAILURE}),
    Status.SENDING: frozenset(
        {Status.DELIVERED, Status.TEMPORARY_FAILURE, Status.PERMANENT_FAILURE, Status.TECHNICAL_FAILURE}
    ),
    Status.TEMPORARY_FAILURE: frozenset({Status.SENDING, Status.TECHNICAL_FAILURE}),
    Status.PERMANENT_FAILURE: frozenset({Status.CREATED}),
    Status.TECHNICAL_FAILURE: frozenset({Status.CREATED}),
    Status.DELIVERED: frozenset(),
}
#: Waiting for the worker.
WAITING = frozenset({Status.CREATED, Status.TEMPORARY_FAILURE})
#: An officer may resend these.
FAILED = frozenset({Status.PERMANENT_FAILURE, Status.TECHNICAL_FAILURE})
#: Nothing more happens to these without an officer.
FINAL = frozenset({Status.DELIVERED, *FAILED})


def can_transition(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]


# ----- retries and rate limits --------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt n that failed temporarily is retried after
    ``base * factor**(n-1)`` seconds (capped); after ``max_attempts`` it is permanent."""

    max_attempts: int = 8
    base_seconds: float = 60.0
    factor: float = 2.0
    cap_seconds: float = 3600.0

    def delay(self, attempt: int) -> timedelta:
        seconds = min(self.cap_seconds, self.base_seconds * self.factor ** max(0, attempt - 1))
        return timedelta(seconds=seconds)

    def schedule(self) -> list[timedelta]:
        """Delays before each retry (max_attempts - 1 of them)."""
        return [self.delay(n) for n in range(1, self.max_attempts)]


class TokenBucket:
    """Rate limit: `rate` tokens a second, at most `capacity` saved up (the burst).
    Time is passed in (monotonic seconds), so the bucket is pure and testable."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def available(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)

    def take(self, wanted: int, now: float) -> int:
        """Take up to `wanted` whole tokens; returns how many were granted."""
        self._refill(now)
        granted = max(0, min(wanted, int(self.tokens)))
        self.tokens -= granted
        return granted

    def give_back(self, n: int) -> None:
        """Return tokens that were taken but not used."""
        self.tokens = min(self.capacity, self.tokens + n)


# ----- preferences and quiet hours -----------------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> time:
    match = _HHMM.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day as HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time (WIB by default) in which non-urgent messages wait.
    The window may cross midnight (21:00-06:00). start == end means no quiet hours."""

    start: time
    end: time
    tz: ZoneInfo = WIB

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(self.tz).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, now: datetime) -> datetime:
        """The first end of the window after `now` (aware, in UTC offset of `now`)."""
        local = now.astimezone(self.tz)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(now.tzinfo)

    def defer(self, now: datetime) -> datetime:
        """When a non-urgent message due at `now` may go out."""
        return self.ends_after(now) if self.contains(now) else now


@dataclass(frozen=True)
class Preferences:
    """A citizen's choices, kept under their citizen_ref (never the NIK) and the keyed
    hash of the contact they were set from."""

    channels: tuple[str, ...] = ()  # order of preference; empty = the rule's order
    locale: str | None = None
    quiet_hours: QuietHours | None = None
    opted_out: bool = False


ANY_CONTACT = ""  # preferences set before contacts were verified: they hold for any


def preferences_for(set_from: Mapping[str, Preferences], contact_refs: Sequence[str]) -> Preferences | None:
    """The preferences that govern a message to a citizen: those set from one of the
    contacts it may reach (in the order given: the phone's first), else those set before
    contacts were verified. Preferences someone set for the NIK from another contact
    change nothing here: stating a NIK proves nothing."""
    for ref in [*contact_refs, ANY_CONTACT]:
        if ref in set_from:
            return set_from[ref]
    return None


# ----- rules and recipients ------------------------------------------------------------------


class RuleError(ValueError):
    """rules.yaml or recipients.yaml does not say something the service understands."""


@dataclass(frozen=True)
class Rule:
    """Which event notifies whom, on which channels, with which template.

    `to` entries: ``citizen`` (the sealed contact in the event), ``opd`` (the event's
    OPD, from the recipients file) or ``role:<name>`` (e.g. ``role:coordinator``).
    `when` filters on fields of the event data (value or list of values).
    """

    id: str
    events: tuple[str, ...]
    to: tuple[str, ...]
    channels: tuple[str, ...]
    template: str
    required: bool = False  # legally required: sent even to a citizen who opted out
    urgent: bool = False  # not held back by quiet hours
    # Caused by an anonymous submission naming the contact (anyone can name any number or
    # address): limited for contacts that never proved themselves with a code.
    unsolicited: bool = False
    delivery: str = "first"  # first: one channel (the best available); all: every channel
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def matches(self, event_type: str, data: Mapping[str, Any]) -> bool:
        if event_type not in self.events:
            return False
        return all(data.get(key) in values for key, values in self.when.items())


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()

    def match(self, event_type: str, data: Mapping[str, Any]) -> list[Rule]:
        return [r for r in self.rules if r.matches(event_type, data)]

    @property
    def event_types(self) -> set[str]:
        return {t for r in self.rules for t in r.events}


_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(value)
    return (value,)


def parse_rules(document: Any) -> RuleSet:
    """Validate the rules document (as loaded from YAML); raises RuleError with the
    rule's id and the problem, so a broken edit is reported, not half-applied."""
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise RuleError("rules file must be a mapping with a 'rules' list")
    defaults = document.get("defaults") or {}
    rules: list[Rule] = []
    seen: set[str] = set()
    for n, raw in enumerate(document["rules"], 1):
        if not isinstance(raw, dict):
            raise RuleError(f"rule #{n} is not a mapping")
        rid = str(raw.get("id") or f"rule-{n}")
        if rid in seen:
            raise RuleError(f"rule {rid}: duplicate id")
        seen.add(rid)
        events = _as_tuple(raw.get("events", raw.get("event")))
        if not events or not all(isinstance(e, str) and e.startswith("id.sinergi.") for e in events):
            raise RuleError(f"rule {rid}: 'event' must name full event types (id.sinergi.….vN)")
        to = _as_tuple(raw.get("to"))
        for target in to:
            if target not in ("citizen", "opd") and not str(target).startswith("role:"):
                raise RuleError(f"rule {rid}: unknown recipient {target!r} (citizen, opd, role:<name>)")
        if not to:
            raise RuleError(f"rule {rid}: 'to' is required")
        channels = _as_tuple(raw.get("channels", defaults.get("channels", CHANNELS)))
        if not channels or any(c not in CHANNELS for c in channels):
            raise RuleError(f"rule {rid}: channels must be among {list(CHANNELS)}")
        template = raw.get("template")
        if not isinstance(template, str) or not _TEMPLATE_NAME.match(template):
            raise RuleError(f"rule {rid}: 'template' must be a name like complaints/filed")
        delivery = raw.get("delivery", defaults.get("delivery", "first"))
        if delivery not in ("first", "all"):
            raise RuleError(f"rule {rid}: delivery must be 'first' or 'all'")
        when = raw.get("when") or {}
        if not isinstance(when, dict):
            raise RuleError(f"rule {rid}: 'when' must map event fields to values")
        rules.append(
            Rule(
                id=rid,
                events=tuple(events),
                to=tuple(str(t) for t in to),
                channels=tuple(channels),
                template=template,
                required=bool(raw.get("required", False)),
                urgent=bool(raw.get("urgent", False)),
                unsolicited=bool(raw.get("unsolicited", False)),
                delivery=delivery,
                when={str(k): _as_tuple(v) for k, v in when.items()},
            )
        )
    return RuleSet(tuple(rules))


@dataclass(frozen=True)
class Contact:
    """Where a recipient is reached. For officers it comes from the recipients file;
    for a citizen it is the unsealed contact of the event, held only while needed."""

    email: str | None = None
    phone: str | None = None  # E.164, +62…
    name: str | None = None
    locale: str | None = None

    def reachable(self) -> tuple[str, ...]:
        return (("email",) if self.email else ()) + (("whatsapp", "sms") if self.phone else ())

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone


@dataclass(frozen=True)
class Recipients:
    """Officer addresses: per OPD code, per role, and a fallback for an unlisted OPD."""

    opds: Mapping[str, Contact] = field(default_factory=dict)
    roles: Mapping[str, Contact] = field(default_factory=dict)
    fallback: Contact | None = None

    def resolve(self, target: str, data: Mapping[str, Any]) -> tuple[str, str, Contact | None, bool]:
        """(kind, key, contact, used_fallback) for an officer target of a rule."""
        if target == "opd":
            code = data.get("opd")
            if not code:
                return "opd", "-", self.fallback, True
            contact = self.opds.get(code)
            return "opd", str(code), contact or self.fallback, contact is None
        role = target.removeprefix("role:")
        contact = self.roles.get(role)
        return "role", role, contact or self.fallback, contact is None


def parse_recipients(document: Any, normalize_phone: Callable[[str], str]) -> Recipients:
    if document is None:
        return Recipients()
    if not isinstance(document, dict):
        raise RuleError("recipients file must be a mapping")

    def contact(where: str, raw: Any) -> Contact:
        if not isinstance(raw, dict):
            raise RuleError(f"recipients {where}: must be a mapping with email and/or phone")
        phone = raw.get("phone")
        try:
            phone = normalize_phone(str(phone)) if phone else None
        except ValueError as exc:
            raise RuleError(f"recipients {where}: {exc}") from None
        email = raw.get("email")
        if not email and not phone:
            raise RuleError(f"recipients {where}: needs an email or a phone")
        locale = raw.get("locale", document.get("default_locale", "id"))
        if locale not in LOCALES:
            raise RuleError(f"recipients {where}: locale must be one of {list(LOCALES)}")
        return Contact(email=email, phone=phone, name=raw.get("name"), locale=locale)

    opds = {str(k): contact(f"opds.{k}", v) for k, v in (document.get("opds") or {}).items()}
    roles = {str(k): contact(f"roles.{k}", v) for k, v in (document.get("roles") or {}).items()}
    fallback = contact("fallback", document["fallback"]) if document.get("fallback") else None
    return Recipients(opds, roles, fallback)


# ----- planning one notification ------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    channels: tuple[str, ...]
    locale: str
    due_at: datetime
    deferred: bool


@dataclass(frozen=True)
class Skip:
    reason: str  # opted_out | no_contact | no_channel


def plan_delivery(
    rule: Rule,
    *,
    reachable: Sequence[str],
    now: datetime,
    event_locale: str | None,
    default_locale: str = "id",
    preferences: Preferences | None = None,
    recipient_locale: str | None = None,
) -> Plan | Skip:
    """Decide channels, language and time of one recipient's notification.

    - Opted out: nothing, unless the rule is legally required.
    - Channels: the citizen's order of preference (else the rule's), limited to what the
      rule allows and the contact reaches; a required message falls back to any
      channel the rule allows when the preferred ones cannot reach.
    - Language: the citizen's preference, else the officer's, else the event's.
    - Quiet hours hold a non-urgent message until they end.
    """
    prefs = preferences or Preferences()
    if prefs.opted_out and not rule.required:
        return Skip("opted_out")
    if not reachable:
        return Skip("no_contact")
    order = prefs.channels or rule.channels
    candidates = tuple(c for c in order if c in rule.channels and c in reachable)
    if not candidates and rule.required:
        candidates = tuple(c for c in rule.channels if c in reachable)
    if not candidates:
        return Skip("no_channel")
    channels = candidates[:1] if rule.delivery == "first" else candidates
    locale = prefs.locale or recipient_locale or event_locale or default_locale
    if locale not in LOCALES:
        locale = default_locale
    due = now
    if prefs.quiet_hours is not None and not rule.urgent:
        due = prefs.quiet_hours.defer(now)
    return Plan(channels, locale, due, deferred=due > now)


def template_candidates(
    template: str, channel: str, locale: str, default_locale: str = "id"
) -> list[tuple[str, bool]]:
    """Template files to try, best first, each with whether it is a fallback.

    ``<locale>/<template>.<channel>.j2``; for SMS and WhatsApp then the text they share,
    ``<locale>/<template>.text.j2``; then (fallbacks) the generic
    ``<locale>/generic.<email|text>.j2`` and the generic of the default locale.
    """
    kinds = [channel] if channel == "email" else [channel, "text"]
    generic = "email" if channel == "email" else "text"
    names = [(f"{locale}/{template}.{kind}.j2", False) for kind in kinds]
    names.append((f"{locale}/generic.{generic}.j2", True))
    if locale != default_locale:
        names.append((f"{default_locale}/generic.{generic}.j2", True))
    return names


def choose_template(
    candidates: Sequence[tuple[str, bool]], exists: Callable[[str], bool]
) -> tuple[str, bool] | None:
    """(name, is_fallback) of the first existing candidate, or None."""
    for name, fallback in candidates:
        if exists(name):
            return name, fallback
    return None


# ----- the notification and its lifecycle -----------------------------------------------------


class Outcome(StrEnum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    TECHNICAL = "technical"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    error: str | None = None
    provider_ref: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    status: Status
    attempt: int
    error: str | None = None
    actor: str = "system"
    next_attempt_at: datetime | None = None


@dataclass
class Notification:
    id: uuid.UUID
    source_event_id: str
    source_event_type: str
    event_time: datetime
    rule_id: str
    recipient_kind: str  # citizen | opd | role
    recipient_key: str  # citizen_ref, OPD code or role name
    channel: str
    locale: str
    template_name: str  # the rule's template, e.g. complaints/filed
    template: str  # the file used (or the one wanted, when none could be rendered)
    created_at: datetime
    due_at: datetime
    max_attempts: int
    tracking_code: str | None = None
    citizen_ref: str | None = None
    opd: str | None = None
    urgent: bool = False
    required: bool = False
    template_fallback: bool = False
    status: Status = Status.CREATED
    attempt: int = 0
    lease_until: datetime | None = None
    address_sealed: str | None = None
    address_masked: str | None = None
    subject: str | None = None
    body: str | None = None
    context: dict[str, Any] | None = None
    provider_ref: str | None = None
    correlation_id: str | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    updated_at: datetime | None = None
    contact_ref: str | None = None  # keyed hash of the address, of an unsolicited message
    address_ref: str | None = None  # keyed hash of the address, of any citizen message
    traceparent: str | None = None  # the source event's trace, continued by its delivery
    history: list[HistoryEntry] = field(default_factory=list)
    # Entries not yet stored (and published) by the handler.
    changes: list[HistoryEntry] = field(default_factory=list)

    @classmethod
    def create(cls, *, now: datetime, **fields: Any) -> Notification:
        n = cls(id=fields.pop("id", None) or uuid.uuid4(), created_at=now, **fields)
        n._record(now, Status.CREATED, next_attempt_at=n.due_at if n.due_at > now else None)
        return n

    @property
    def waiting(self) -> bool:
        return self.status in WAITING

    def start_sending(self, now: datetime, lease: timedelta) -> None:
        self._move(Status.SENDING)
        self.attempt += 1
        self.lease_until = now + lease
        self._record(now, Status.SENDING)

    def record(
        self,
        result: SendResult,
        now: datetime,
        policy: RetryPolicy,
        defer: Callable[[datetime], datetime] | None = None,
    ) -> None:
        """Apply the outcome of the attempt in flight. `defer` moves a retry out of the
        recipient's quiet hours (non-urgent messages)."""
        self.lease_until = None
        if result.provider_ref:
            self.provider_ref = result.provider_ref
        if result.outcome == Outcome.DELIVERED:
            self._move(Status.DELIVERED)
            self.delivered_at = now
            self.last_error = None
            self._record(now, Status.DELIVERED)
        elif result.outcome == Outcome.TEMPORARY:
            if self.attempt >= self.max_attempts:
                self._fail(
                    Status.PERMANENT_FAILURE, now, f"gave up after {self.attempt} attempts: {result.error}"
                )
                return
            self._move(Status.TEMPORARY_FAILURE)
            due = now + policy.delay(self.attempt)
            if defer is not None and not self.urgent:
                due = defer(due)
            self.due_at = due
            self.last_error = result.error
            self._record(now, Status.TEMPORARY_FAILURE, result.error, next_attempt_at=due)
        elif result.outcome == Outcome.PERMANENT:
            self._fail(Status.PERMANENT_FAILURE, now, result.error)
        else:
            self._fail(Status.TECHNICAL_FAILURE, now, result.error)

    def fail_technical(self, now: datetime, error: str) -> None:
        """Our side cannot send it (template, sealed contact, configuration)."""
        self._fail(Status.TECHNICAL_FAILURE, now, error)

    def lease_expired(self, now: datetime, policy: RetryPolicy) -> bool:
        """A `sending` notification whose worker vanished: count the attempt as a
        temporary failure so it is retried (or given up). Returns whether it applied."""
        if self.status != Status.SENDING or self.lease_until is None or self.lease_until > now:
            return False
        self.record(SendResult(Outcome.TEMPORARY, "delivery interrupted (worker lease expired)"), now, policy)
        return True

    def resend(self, now: datetime, actor: str) -> None:
        """An officer sends a failed notification again, from the first attempt."""
        if self.status not in FAILED:
            raise IllegalTransition(
                f"only a failed notification can be resent; this one is {self.status}",
                current=self.status,
                command="resend",
            )
        self._move(Status.CREATED)
        self.attempt = 0
        self.due_at = now
        self.last_error = None
        self.delivered_at = None
        self._record(now, Status.CREATED, actor=actor)

    def _fail(self, status: Status, now: datetime, error: str | None) -> None:
        self._move(status)
        self.lease_until = None
        self.last_error = error
        self._record(now, status, error)

    def _move(self, new: Status) -> None:
        if not can_transition(self.status, new):
            raise IllegalTransition(
                f"a notification that is {self.status} cannot become {new}",
                current=self.status,
                command=str(new),
            )
        self.status = new

    def _record(
        self,
        now: datetime,
        status: Status,
        error: str | None = None,
        *,
        actor: str = "system",
        next_attempt_at: datetime | None = None,
    ) -> None:
        self.updated_at = now
        entry = HistoryEntry(now, status, self.attempt, error, actor, next_attempt_at)
        self.history.append(entry)
        self.changes.append(entry)


def tracking_code_of(data: Any) -> str | None:
    """The code a citizen follows the aggregate by: tracking or booking code."""
    for name in ("tracking_code", "booking_code"):
        value = getattr(data, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def template_context(data: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What a template sees: the event's data (without the sealed contact) and extras."""
    clean = {k: v for k, v in data.items() if k != "contact"}
    return {"data": clean, **extra}


def quoting(context: Mapping[str, Any], texts: Mapping[str, str | None]) -> dict[str, Any]:
    """A template context with what the citizen wrote (opened, by clear name) in its data,
    for one rendering: the context kept holds those texts sealed, never in clear."""
    return {**context, "data": {**context["data"], **texts}}


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ----- citizens' one-time codes ----------------------------------------------------------------
#
# A citizen proves a phone number or email address with a 6-digit code sent to it. Only a
# keyed hash of the contact and of the code is kept; the message holding the code is
# kept sealed until it is sent. One challenge per contact: a new code replaces the last.
# How many codes a contact or a client address may ask for is the kit's rate limiter's
# (api.py), shared by every instance.

CODE_DIGITS = 6
CODE_VALIDITY = timedelta(minutes=5)
CODE_ATTEMPTS = 5  # wrong guesses before the code is dead (10^6 codes: 5 in a million)
CODE_SEND_ATTEMPTS = 3  # retries beyond the code's validity would deliver a dead code
CODE_RULE = "citizen-code"  # rule id and template name of code messages in the delivery log
CODE_SOURCE_TYPE = "sinergi.citizen.code"  # what caused them (no domain event does)
PHONE_CHANNELS: tuple[str, ...] = ("whatsapp", "sms")  # WhatsApp first: cheaper, more read
# A code a phone channel did not take goes by the next one at once: it is valid 5 minutes,
# too short for the retry schedule.
CODE_FALLBACK: dict[str, str] = dict(itertools.pairwise(PHONE_CHANNELS))
_CODE = re.compile(rf"^[0-9]{{{CODE_DIGITS}}}$")


class CodeRefused(InvalidField):
    """Wrong, expired, exhausted, already used or never sent: one answer for all, so it
    tells nothing about the contact or the code."""

    def __init__(self) -> None:
        super().__init__("code", "kode salah atau sudah tidak berlaku; minta kode baru")


def is_code(text: str) -> bool:
    return bool(_CODE.match(text))


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(key: str, contact_ref: str, code: str) -> str:
    """Keyed hash of a code, bound to its contact: a code sent to one contact is no
    use for another, and the table alone cannot be brute-forced (10^6 codes)."""
    return hmac.new(key.encode(), f"code:{contact_ref}:{code}".encode(), hashlib.sha256).hexdigest()


def code_message(code: str) -> tuple[str, str]:
    """(subject, body) of a code message: the code and its validity, nothing else."""
    minutes = int(CODE_VALIDITY.total_seconds() // 60)
    body = (
        f"Kode verifikasi Sinergi Anda: {code}. Berlaku {minutes} menit. "
        "Jangan berikan kode ini kepada siapa pun, termasuk petugas."
    )
    return "Kode verifikasi Sinergi", body


@dataclass
class CodeChallenge:
    """The code last sent to one contact."""

    contact_ref: str
    kind: str  # phone | email
    code_hash: str
    issued_at: datetime
    expires_at: datetime
    attempts: int = 0
    used_at: datetime | None = None

    @classmethod
    def issue(cls, *, contact_ref: str, kind: str, hashed: str, now: datetime) -> CodeChallenge:
        """A new challenge (it replaces the contact's last: that code is dead)."""
        return cls(contact_ref, kind, hashed, issued_at=now, expires_at=now + CODE_VALIDITY)

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at and self.attempts < CODE_ATTEMPTS

    def verify(self, hashed: str, now: datetime) -> bool:
        """Try a code (by its hash); a correct one is used up, every try counts."""
        if not self.usable(now):
            return False
        self.attempts += 1
        if not hmac.compare_digest(self.code_hash, hashed):
            return False
        self.used_at = now
        return True


def code_notification(
    *,
    now: datetime,
    contact_ref: str,
    channel: str,
    address_sealed: str,
    address_masked: str,
    subject: str | None,
    body_sealed: str,
    correlation_id: str | None,
    source_event_id: str | None = None,
) -> Notification:
    """The notification the delivery worker sends a code with. Its body is sealed (the
    worker opens it) and it keeps no template context, so it cannot be resent: a code
    is asked for again instead. `source_event_id` names the request a fallback belongs to."""
    challenge = uuid.uuid4()
    return Notification.create(
        now=now,
        id=challenge,
        source_event_id=source_event_id or f"citizen-code:{challenge}",
        source_event_type=CODE_SOURCE_TYPE,
        event_time=now,
        rule_id=CODE_RULE,
        recipient_kind="citizen",
        recipient_key=contact_ref,
        channel=channel,
        locale="id",
        template_name=CODE_RULE,
        template=CODE_RULE,
        due_at=now,
        max_attempts=CODE_SEND_ATTEMPTS,
        urgent=True,  # not held by quiet hours: the citizen is waiting for it
        required=True,
        address_sealed=address_sealed,
        address_masked=address_masked,
        address_ref=contact_ref,
        subject=subject if channel == "email" else None,
        body=body_sealed,
        correlation_id=correlation_id,
    )


def code_fallback(
    n: Notification, result: SendResult, now: datetime, configured: Collection[str]
) -> tuple[SendResult, Notification | None]:
    """The outcome to record for a code's attempt, and the same code on the next phone
    channel when the attempt failed there and that channel is `configured`: due at once,
    and the failed attempt final (never retried: one code, one message on its way).
    Otherwise the outcome as it was and no fallback. A technical failure (our side: the
    sealed address or message) would fail on any channel."""
    fallback = CODE_FALLBACK.get(n.channel)
    failed = result.outcome in (Outcome.TEMPORARY, Outcome.PERMANENT)
    address, masked, body = n.address_sealed, n.address_masked, n.body  # unless purged meanwhile
    if n.rule_id != CODE_RULE or not failed or fallback is None or fallback not in configured:
        return result, None
    if not (address and masked and body):
        return result, None
    final = SendResult(Outcome.PERMANENT, f"{result.error}; the code goes by {fallback}", result.provider_ref)
    again = code_notification(
        now=now,
        contact_ref=n.recipient_key,
        channel=fallback,
        address_sealed=address,
        address_masked=masked,
        subject=None,
        body_sealed=body,
        correlation_id=n.correlation_id,
        source_event_id=n.source_event_id,
    )
    return final, again
