"""The operations pages' rules, pure: which services each page asks, which
notifications count as failed deliveries, how an age reads, and what the audit trail's
search form and a replay's form accept (as message keys).

Whether an officer may see or do any of it is the services' to decide (their 403 is the
"not authorised" page): the failed deliveries are the notification officers' (and the
administrators'), the rest the administrators' only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from services.portal.domain import Answer, choice
from shared.kit.codes import WIB, is_public_code, normalise_code

DELIVERIES = "/petugas/pengiriman"
DEAD_LETTERS = "/petugas/operasi/surat-mati"
OUTBOX = "/petugas/operasi/outbox"
AUDIT = "/petugas/operasi/audit"
# A citizen's data export, for the data protection officer (ekspor_rules.py).
CITIZEN_DATA = "/petugas/operasi/data-warga"
# The operations section's pages, in the navigation's order (its first is the section's).
SECTION = (DELIVERIES, DEAD_LETTERS, OUTBOX, AUDIT, CITIZEN_DATA)

# The notification service's statuses of a delivery that failed, for good or for now.
FAILING = ("permanent-failure", "technical-failure", "temporary-failure")
# The services whose consumer groups dead-letter (docs/architecture.md) and the services
# that publish through an outbox, by the portal's client names.
CONSUMERS = ("notifications", "integration")
PRODUCERS = ("complaints", "permits", "health", "notifications")
# Every service keeps an audit trail of its officers' actions.
AUDITED = ("complaints", "permits", "health", "notifications", "integration")
ACTIONS = ("write", "read")
# The audit trail's search form, in page order (the error summary's order).
AUDIT_FIELDS = ("layanan", "petugas", "tindakan", "kode", "dari", "sampai", "halaman")
PAGE_SIZE = 20
# The kit's limits on the audit trail's search (shared/kit/admin.py).
SEARCH_LENGTH = 200
LAST_AUDIT_OFFSET = 100_000
# An error is shown this long at most: enough to tell one failure from another.
ERROR_LENGTH = 300


def delivery_id(value: str) -> str | None:
    """A notification's id as the service writes it, or None for anything else."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def age(since: datetime | None, now: datetime) -> tuple[str, int] | None:
    """How long ago, as a message key and its number: minutes under an hour, hours under
    two days, else days."""
    if since is None:
        return None
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return "operasi.age.minutes", minutes
    if minutes < 48 * 60:
        return "operasi.age.hours", minutes // 60
    return "operasi.age.days", minutes // (24 * 60)


def seconds_ago(seconds: float | None, now: datetime) -> datetime | None:
    return None if seconds is None else now - timedelta(seconds=seconds)


def short_error(error: str | None) -> str:
    text = " ".join((error or "").split())
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"


def reasons_of(letters: list[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Each reason among the letters still waiting, with how many wait, the most first."""
    counted: dict[str, int] = {}
    for letter in letters:
        if not letter.get("applied"):
            counted[str(letter["reason"])] = counted.get(str(letter["reason"]), 0) + 1
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


def read_replay(form: Mapping[str, str]) -> Answer:
    """A replay's form as the kit's choice: a consuming service's consumer group and
    either a reason or one letter's place (partition and offset)."""
    answer = Answer()
    choice(answer, form, "layanan", CONSUMERS)
    group = (form.get("grup") or "").strip()
    if not re.fullmatch(r"[\w.-]{1,200}", group):
        answer.refuse("grup", "error.grup.choose")
    picked: dict[str, str | int] = {"consumer": group}
    reason = (form.get("alasan") or "").strip()
    place = [(form.get(name) or "").strip() for name in ("partisi", "offset")]
    if reason and re.fullmatch(r"[a-z_]{1,100}", reason):
        picked["reason"] = reason
    elif all(part.isdigit() for part in place):
        picked["partition"], picked["offset"] = int(place[0]), int(place[1])
    else:
        answer.refuse("alasan", "error.replay.choose")
    answer.values = {"service": answer.values.get("layanan"), "choice": picked} if not answer.errors else {}
    return answer


def read_audit_search(form: Mapping[str, str]) -> Answer:
    """The audit trail's search (an address's query): the service, and the kit's filters
    for an officer, an action, a record and a range of days (WIB, both included)."""
    answer = Answer()
    service = (form.get("layanan") or AUDITED[0]).strip()
    if service not in AUDITED:
        answer.refuse("layanan", "error.layanan.choose")
    filters: dict[str, str | int] = {}
    for name, key in (("petugas", "subject"), ("kode", "aggregate")):
        value = (form.get(name) or "").strip()
        if len(value) > SEARCH_LENGTH:
            answer.refuse(name, f"error.{name}.long")
        elif value:
            # A tracking code as the services write it; any other record (an id) as typed.
            code = normalise_code(value)
            filters[key] = code if name == "kode" and is_public_code(code) else value
    action = (form.get("tindakan") or "").strip()
    if action and action not in ACTIONS:
        answer.refuse("tindakan", "error.tindakan.choose")
    elif action:
        filters["action"] = action
    days = {name: _day(answer, form, name) for name in ("dari", "sampai")}
    if days["dari"] and days["sampai"] and days["sampai"] < days["dari"]:
        answer.refuse("sampai", "error.sampai.before")
    if days["dari"]:
        filters["since"] = datetime.combine(days["dari"], time(), WIB).isoformat()
    if days["sampai"]:
        filters["until"] = datetime.combine(days["sampai"] + timedelta(days=1), time(), WIB).isoformat()
    page = (form.get("halaman") or "1").strip()
    number = int(page) if page.isdigit() and 0 < int(page) <= LAST_AUDIT_OFFSET // PAGE_SIZE else 1
    # One entry more than a page: whether there is a next page.
    filters.update({"limit": PAGE_SIZE + 1, "offset": (number - 1) * PAGE_SIZE})
    answer.values = {"service": service, "filters": filters, "page": number} if not answer.errors else {}
    return answer


def _day(answer: Answer, form: Mapping[str, str], name: str) -> date | None:
    value = (form.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        answer.refuse(name, f"error.{name}.invalid")
        return None
