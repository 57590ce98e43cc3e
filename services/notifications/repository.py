"""asyncpg queries for the notification service's own tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.notifications.domain import (
    CODE_RULE,
    FINAL,
    WAITING,
    CodeChallenge,
    HistoryEntry,
    Notification,
    Preferences,
    QuietHours,
    Status,
)
from shared.kit.citizen_data import Citizen
from shared.kit.privacy import open_contact
from shared.kit.sql import Column, Where, column_arrays, insert_many_sql, jsonb_texts, update_many_sql
from shared.schemas.common import SealedContact

# Every column of notifications (as in migration 001) with its PostgreSQL type, in the
# order of the bulk statements' parameters.
_TABLE: tuple[Column, ...] = (
    ("id", "uuid"),
    ("source_event_id", "text"),
    ("source_event_type", "text"),
    ("event_time", "timestamptz"),
    ("rule_id", "text"),
    ("recipient_kind", "text"),
    ("recipient_key", "text"),
    ("tracking_code", "text"),
    ("citizen_ref", "text"),
    ("opd", "text"),
    ("channel", "text"),
    ("locale", "text"),
    ("template_name", "text"),
    ("template", "text"),
    ("template_fallback", "boolean"),
    ("urgent", "boolean"),
    ("required", "boolean"),
    ("status", "text"),
    ("attempt", "integer"),
    ("max_attempts", "integer"),
    ("due_at", "timestamptz"),
    ("lease_until", "timestamptz"),
    ("address_sealed", "text"),
    ("address_masked", "text"),
    ("subject", "text"),
    ("body", "text"),
    ("context", "jsonb"),
    ("provider_ref", "text"),
    ("correlation_id", "text"),
    ("last_error", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("delivered_at", "timestamptz"),
    ("contact_ref", "text"),
    ("traceparent", "text"),
    ("address_ref", "text"),
)
_COLUMNS = ", ".join(name for name, _ in _TABLE)
_INSERT_MANY = insert_many_sql(
    "notifications",
    _TABLE,
    on_conflict="(source_event_id, rule_id, recipient_key, channel) DO NOTHING",
    returning="id",
)
# What may change after creation.
_MUTABLE_NAMES = {
    "template",
    "template_fallback",
    "status",
    "attempt",
    "due_at",
    "lease_until",
    "address_sealed",
    "subject",
    "body",
    "provider_ref",
    "last_error",
    "updated_at",
    "delivered_at",
}
_MUTABLE = tuple(column for column in _TABLE if column[0] in _MUTABLE_NAMES)
_UPDATE_MANY = update_many_sql("notifications", ("id", "uuid"), _MUTABLE)
_WAITING = [s.value for s in WAITING]
# Statuses written into SQL as literals, not parameters: the planner matches a partial
# index (migration 001: notifications_sending) only against a literal.
_SENDING = f"'{Status.SENDING}'"
_FINAL = ", ".join(f"'{s}'" for s in sorted(FINAL))
# NOTIFY channel the delivery worker listens on (migration 002 notifies it on insert).
DELIVERY_CHANNEL = "sinergi_notifications"

# A citizen's messages: $1 their citizen reference, $2 the keyed hashes of their contacts
# (a one-time code's message is keyed by its contact alone).
_CITIZENS_MESSAGES = (
    "recipient_kind = 'citizen' AND (citizen_ref = $1 OR address_ref = ANY($2::text[])"
    " OR contact_ref = ANY($2::text[]) OR recipient_key = ANY($2::text[]))"
)

# Citizen messages stored before migration 007: an address without its keyed hash (the
# partial index of migration 009 holds exactly these).
_ADDRESS_REF_MISSING = "recipient_kind = 'citizen' AND address_ref IS NULL AND address_sealed IS NOT NULL"

# Columns of the officers' list (no address, no body).
LIST_COLUMNS = (
    "id, status, channel, locale, template_name, template, template_fallback, rule_id,"
    " recipient_kind, recipient_key, opd, citizen_ref, address_masked, tracking_code,"
    " source_event_id, source_event_type, event_time, urgent, required, attempt, max_attempts,"
    " due_at, last_error, created_at, updated_at, delivered_at"
)


@dataclass(frozen=True)
class ListFilter:
    status: tuple[Status, ...] = ()  # any of these
    channel: str | None = None
    tracking_code: str | None = None
    event_type: str | None = None
    rule: str | None = None
    recipient_kind: str | None = None
    opd: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    page: int = 1
    page_size: int = 20


class NotificationRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add_all(self, notifications: Sequence[Notification]) -> list[Notification]:
        """Insert many in one statement, with their history; returns those really
        inserted, in order. The others (this event already notified this recipient on
        this channel, by this rule) are left out and their pending changes dropped."""
        if not notifications:
            return []
        rows = await self.conn.fetch(_INSERT_MANY, *_arrays(notifications, _TABLE))
        inserted = {row["id"] for row in rows}
        fresh: list[Notification] = []
        for n in notifications:
            if n.id in inserted:
                fresh.append(n)
            else:
                n.changes.clear()
        await self._save_history(fresh)
        return fresh

    async def save(self, n: Notification) -> None:
        await self.save_all([n])

    async def save_all(self, notifications: Sequence[Notification]) -> None:
        """Store what may have changed of many, with their new history, in two
        statements (the rows, then their history in order)."""
        if not notifications:
            return
        await self.conn.execute(
            _UPDATE_MANY, [n.id for n in notifications], *_arrays(notifications, _MUTABLE)
        )
        await self._save_history(notifications)

    async def _save_history(self, notifications: Sequence[Notification]) -> None:
        entries = [(n.id, h) for n in notifications for h in n.changes]
        if not entries:
            return
        # Rows go in in array order, so each notification's history ids follow its changes.
        await self.conn.execute(
            "INSERT INTO notification_history (notification_id, at, status, attempt, error, actor,"
            " next_attempt_at) SELECT i, a, s, n, e, w, x FROM unnest($1::uuid[], $2::timestamptz[],"
            " $3::text[], $4::int[], $5::text[], $6::text[], $7::timestamptz[]) WITH ORDINALITY"
            " AS u(i, a, s, n, e, w, x, o) ORDER BY o",
            [i for i, _ in entries],
            [h.at for _, h in entries],
            [h.status.value for _, h in entries],
            [h.attempt for _, h in entries],
            [h.error for _, h in entries],
            [h.actor for _, h in entries],
            [h.next_attempt_at for _, h in entries],
        )

    async def get(self, notification_id: uuid.UUID, *, for_update: bool = False) -> Notification | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM notifications WHERE id = $1{lock}", notification_id
        )
        if row is None:
            return None
        history = await self.history(notification_id)
        return self._to_domain(row, history)

    async def get_many(
        self, ids: Sequence[uuid.UUID], *, for_update: bool = False
    ) -> dict[uuid.UUID, Notification]:
        """The notifications of `ids` that exist, without their history. Locked in id
        order, so two transactions locking overlapping sets cannot deadlock."""
        lock = " FOR UPDATE" if for_update else ""
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM notifications WHERE id = ANY($1::uuid[]) ORDER BY id{lock}", list(ids)
        )
        return {row["id"]: self._to_domain(row) for row in rows}

    async def history(self, notification_id: uuid.UUID) -> list[HistoryEntry]:
        rows = await self.conn.fetch(
            "SELECT at, status, attempt, error, actor, next_attempt_at FROM notification_history"
            " WHERE notification_id = $1 ORDER BY id",
            notification_id,
        )
        return [
            HistoryEntry(
                at=r["at"],
                status=Status(r["status"]),
                attempt=r["attempt"],
                error=r["error"],
                actor=r["actor"],
                next_attempt_at=r["next_attempt_at"],
            )
            for r in rows
        ]

    @staticmethod
    def _to_domain(row: Any, history: list[HistoryEntry] | None = None) -> Notification:
        values = dict(row)
        values["status"] = Status(values["status"])
        return Notification(**values, history=history or [])

    async def claim_due(self, channel: str, now: datetime, limit: int) -> list[Notification]:
        """Lock up to `limit` due notifications of `channel` that no other worker holds.
        The caller moves them to `sending` and commits, so no one else claims them."""
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM notifications"
            " WHERE channel = $1 AND status = ANY($2::text[]) AND due_at <= $3"
            " ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED",
            channel,
            _WAITING,
            now,
            limit,
        )
        return [self._to_domain(r) for r in rows]

    async def expired_leases(self, now: datetime, limit: int = 100) -> list[Notification]:
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM notifications WHERE status = {_SENDING} AND lease_until < $1"
            " ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [self._to_domain(r) for r in rows]

    async def list(self, f: ListFilter) -> tuple[list[dict[str, Any]], int]:
        w = Where()
        for condition, value in (
            ("channel =", f.channel),
            ("tracking_code =", f.tracking_code),
            ("source_event_type =", f.event_type),
            ("rule_id =", f.rule),
            ("recipient_kind =", f.recipient_kind),
            ("opd =", f.opd),
            ("created_at >=", f.created_from),
            ("created_at <", f.created_to),
        ):
            if value:
                w.add(f"{condition} {w.param(value)}")
        if f.status:
            w.add(f"status = ANY({w.param([s.value for s in f.status])}::text[])")
        clause = w.clause
        total = await self.conn.fetchval(f"SELECT count(*) FROM notifications {clause}", *w.args)
        rows = await self.conn.fetch(
            f"SELECT {LIST_COLUMNS} FROM notifications {clause} ORDER BY created_at DESC, id"
            f" LIMIT {w.param(f.page_size)} OFFSET {w.param((f.page - 1) * f.page_size)}",
            *w.args,
        )
        return [dict(r) for r in rows], int(total)

    async def queue_depth(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT channel, count(*) AS n FROM notifications WHERE status = ANY($1::text[]) GROUP BY channel",
            _WAITING,
        )
        return {r["channel"]: r["n"] for r in rows}

    async def unsolicited_sent(self, contact_refs: Iterable[str], since: datetime) -> dict[str, int | None]:
        """Per contact: how many unsolicited messages it was sent since `since`, or None
        for a contact that proved itself with a code (no limit)."""
        rows = await self.conn.fetch(
            "SELECT r.ref, EXISTS (SELECT 1 FROM verified_contacts v WHERE v.contact_ref = r.ref) AS proved,"
            " (SELECT count(*) FROM notifications n WHERE n.contact_ref = r.ref AND n.created_at >= $2) AS sent"
            " FROM unnest($1::text[]) AS r(ref)",
            list(contact_refs),
            since,
        )
        return {row["ref"]: None if row["proved"] else int(row["sent"]) for row in rows}

    async def without_address_ref(self, limit: int) -> list[Notification]:
        """Up to `limit` citizen messages whose address has no keyed hash yet, locked
        (another instance backfilling at the same time takes others)."""
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM notifications WHERE {_ADDRESS_REF_MISSING}"
            " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit,
        )
        return [self._to_domain(row) for row in rows]

    async def set_address_refs(self, refs: Mapping[uuid.UUID, str]) -> None:
        """Store each message's address hash (`updated_at` stays: retention counts from
        the message's last change, not from this)."""
        await self.conn.execute(
            "UPDATE notifications SET address_ref = r.ref"
            " FROM unnest($1::uuid[], $2::text[]) AS r(id, ref) WHERE notifications.id = r.id",
            list(refs),
            list(refs.values()),
        )

    async def purge_content(self, before: datetime) -> int:
        """Forget addresses, bodies and template contexts of final notifications last
        changed before `before` (UU PDP: keep personal data only as long as needed)."""
        result = await self.conn.execute(
            "UPDATE notifications SET address_sealed = NULL, body = NULL, subject = NULL, context = NULL,"
            f" contact_ref = NULL, address_ref = NULL WHERE status IN ({_FINAL})"
            " AND updated_at < $1 AND (address_sealed IS NOT NULL OR body IS NOT NULL OR context IS NOT NULL)",
            before,
        )
        return int(result.split()[-1])

    async def erase_citizen(
        self, citizen_ref: str | None, contact_refs: Sequence[str] = ()
    ) -> dict[str, int]:
        """A citizen's data erased on request upstream: forget their preferences, the
        contacts they proved and the addresses and texts of their notifications, found by
        the citizen reference or by the keyed hash of a contact the erasure named (what
        was sent without a NIK: an anonymous complaint's messages, a one-time code's);
        pending ones are cancelled as technical failures (no address is left to send to)."""
        refs = list(contact_refs)
        pending = await self.conn.execute(
            f"UPDATE notifications SET status = '{Status.TECHNICAL_FAILURE}', last_error = 'citizen data erased',"
            f" updated_at = now() WHERE {_CITIZENS_MESSAGES} AND status NOT IN ({_FINAL})",
            citizen_ref,
            refs,
        )
        content = await self.conn.execute(
            "UPDATE notifications SET address_sealed = NULL, address_masked = NULL, body = NULL,"
            " subject = NULL, context = NULL, citizen_ref = NULL, contact_ref = NULL, address_ref = NULL,"
            f" recipient_key = 'erased:' || id::text WHERE {_CITIZENS_MESSAGES}",
            citizen_ref,
            refs,
        )
        prefs = await self.conn.execute(
            "DELETE FROM preferences WHERE citizen_ref = $1 OR contact_ref = ANY($2::text[])",
            citizen_ref,
            refs,
        )
        # Whether and when the contact proved itself, and its pending code: about it too.
        verified = await self.conn.execute(
            "DELETE FROM verified_contacts WHERE contact_ref = ANY($1::text[])", refs
        )
        await self.conn.execute("DELETE FROM citizen_codes WHERE contact_ref = ANY($1::text[])", refs)
        return {
            "notifications": int(content.split()[-1]),
            "cancelled": int(pending.split()[-1]),
            "preferences": int(prefs.split()[-1]),
            "verified_contacts": int(verified.split()[-1]),
        }

    # ----- preferences -----------------------------------------------------------------------

    async def get_preferences(self, citizen_ref: str, contact_ref: str, tz: Any) -> Preferences | None:
        """What was set for this citizen from this contact (nothing set from another)."""
        return (await self.preferences_of([citizen_ref], tz)).get(citizen_ref, {}).get(contact_ref)

    async def preferences_of(self, citizen_refs: Iterable[str], tz: Any) -> dict[str, dict[str, Preferences]]:
        """The stored preferences of these citizens, per contact they were set from ('':
        before contacts were verified); those who have none are absent."""
        refs = list(citizen_refs)
        if not refs:
            return {}
        rows = await self.conn.fetch(
            "SELECT citizen_ref, contact_ref, channels, locale, quiet_start, quiet_end, opted_out"
            " FROM preferences WHERE citizen_ref = ANY($1::text[])",
            refs,
        )
        found: dict[str, dict[str, Preferences]] = {}
        for row in rows:
            found.setdefault(row["citizen_ref"], {})[row["contact_ref"]] = _preferences(row, tz)
        return found

    async def put_preferences(self, citizen_ref: str, contact_ref: str, prefs: Preferences) -> None:
        quiet = prefs.quiet_hours
        await self.conn.execute(
            "INSERT INTO preferences (citizen_ref, contact_ref, channels, locale, quiet_start, quiet_end,"
            " opted_out, updated_at) VALUES ($1, $7, $2, $3, $4, $5, $6, now())"
            " ON CONFLICT (citizen_ref, contact_ref) DO UPDATE SET channels = EXCLUDED.channels,"
            " locale = EXCLUDED.locale, quiet_start = EXCLUDED.quiet_start,"
            " quiet_end = EXCLUDED.quiet_end, opted_out = EXCLUDED.opted_out, updated_at = now()",
            citizen_ref,
            list(prefs.channels),
            prefs.locale,
            quiet.start if quiet else None,
            quiet.end if quiet else None,
            prefs.opted_out,
            contact_ref,
        )

    # ----- delivery holds ----------------------------------------------------------------------

    async def held_channels(self) -> set[str]:
        rows = await self.conn.fetch("SELECT channel FROM delivery_holds")
        return {r["channel"] for r in rows}

    async def holds(self) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT channel, reason, held_by, held_at FROM delivery_holds ORDER BY channel"
        )
        return [dict(r) for r in rows]

    async def hold(self, channel: str, reason: str, held_by: str) -> None:
        await self.conn.execute(
            "INSERT INTO delivery_holds (channel, reason, held_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel) DO UPDATE SET reason = EXCLUDED.reason, held_by = EXCLUDED.held_by,"
            " held_at = now()",
            channel,
            reason,
            held_by,
        )

    async def release(self, channel: str) -> bool:
        result = await self.conn.execute("DELETE FROM delivery_holds WHERE channel = $1", channel)
        return result.split()[-1] != "0"

    async def wake_delivery(self) -> None:
        """Wake the delivery workers of every instance (at commit), as a new notification does."""
        await self.conn.execute(f"SELECT pg_notify('{DELIVERY_CHANNEL}', '')")


class CodeRepository:
    """The citizen_codes table (migration 003): one challenge per contact."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self, contact_ref: str) -> CodeChallenge | None:
        """The contact's challenge, with the contact locked for the transaction (also
        when it has none yet), so two requests for one contact go one after the other."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 16))", contact_ref)
        row = await self.conn.fetchrow(
            "SELECT contact_ref, kind, code_hash, issued_at, expires_at, attempts, used_at"
            " FROM citizen_codes WHERE contact_ref = $1",
            contact_ref,
        )
        return CodeChallenge(**dict(row)) if row else None

    async def put(self, c: CodeChallenge) -> None:
        await self.conn.execute(
            "INSERT INTO citizen_codes (contact_ref, kind, code_hash, issued_at, expires_at, attempts,"
            " used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (contact_ref) DO UPDATE SET kind = EXCLUDED.kind, code_hash = EXCLUDED.code_hash,"
            " issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at,"
            " attempts = EXCLUDED.attempts, used_at = EXCLUDED.used_at",
            c.contact_ref,
            c.kind,
            c.code_hash,
            c.issued_at,
            c.expires_at,
            c.attempts,
            c.used_at,
        )

    async def mark_verified(self, contact_ref: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO verified_contacts (contact_ref, first_verified_at) VALUES ($1, $2)"
            " ON CONFLICT (contact_ref) DO NOTHING",
            contact_ref,
            now,
        )

    async def purge(self, now: datetime) -> int:
        """Forget challenges whose code is over."""
        result = await self.conn.execute("DELETE FROM citizen_codes WHERE expires_at < $1", now)
        return int(result.split()[-1])


def _arrays(notifications: Sequence[Notification], columns: Sequence[Column]) -> list[list[Any]]:
    """The parameters of a bulk statement over `columns`: one array a column, a jsonb
    column's values as JSON text (as the kit's bulk statements take them)."""
    arrays = column_arrays(notifications, [name for name, _ in columns])
    for i, (_, pg_type) in enumerate(columns):
        if pg_type == "jsonb":
            arrays[i] = jsonb_texts(arrays[i])
    return arrays


def _preferences(row: Any, tz: Any) -> Preferences:
    quiet = (
        QuietHours(row["quiet_start"], row["quiet_end"], tz)
        if row["quiet_start"] is not None and row["quiet_end"] is not None
        else None
    )
    return Preferences(
        channels=tuple(row["channels"] or ()),
        locale=row["locale"],
        quiet_hours=quiet,
        opted_out=row["opted_out"],
    )


class CitizenMessages:
    """What the notification service holds about a citizen, for their export: the
    messages to them (found by their citizen reference, or by the keyed hash of the
    address they went to), the preferences they set and the contacts they proved.

    An address is given in clear only to the citizen who proved it (`Citizen.proven`,
    the kit's citizen route), opened here for the answer and never logged; anyone else
    (the data protection officer) gets it masked as the delivery log shows it. A code's
    message keeps its body sealed until purged: it is left out (the code is spent)."""

    def __init__(self, contact_key: str) -> None:
        self._contact_key = contact_key

    async def export(self, conn: asyncpg.Connection, citizen: Citizen) -> dict[str, list[dict[str, Any]]]:
        refs = list(citizen.contact_refs)
        messages = await conn.fetch(
            "SELECT id, source_event_type, tracking_code, rule_id, channel, locale, status, subject, body,"
            " address_sealed, address_masked, address_ref, created_at, delivered_at FROM notifications"
            f" WHERE {_CITIZENS_MESSAGES}"
            " ORDER BY created_at, id",
            citizen.citizen_ref,
            refs,
        )
        preferences = await conn.fetch(
            "SELECT channels, locale, quiet_start, quiet_end, opted_out, updated_at FROM preferences"
            " WHERE citizen_ref = $1 OR contact_ref = ANY($2::text[]) ORDER BY updated_at",
            citizen.citizen_ref,
            refs,
        )
        verified = await conn.fetch(
            "SELECT first_verified_at FROM verified_contacts WHERE contact_ref = ANY($1::text[])", refs
        )
        return {
            "notifications": [self._message(dict(row), citizen) for row in messages],
            "preferences": [dict(row) for row in preferences],
            "verified_contacts": [dict(row) for row in verified],
        }

    def _message(self, row: dict[str, Any], citizen: Citizen) -> dict[str, Any]:
        sealed, ref = row.pop("address_sealed"), row.pop("address_ref")
        masked = row.pop("address_masked")
        row["address"] = masked
        if citizen.proven and sealed and ref in citizen.contact_refs:
            try:
                opened = open_contact(self._contact_key, SealedContact(sealed=sealed, channels=[]))
                row["address"] = opened.get("email") or opened.get("phone") or masked
            except ValueError:
                pass  # a key since changed: the masked address says which it was
        if row["rule_id"] == CODE_RULE:
            row["body"] = None
        return row
