"""Audit trail of officer actions.

`require_role` records who is acting on which route in a context variable; the unit of
work writes that, with the aggregates and events the action produced, into `audit_log`
inside the action's own transaction. Admins read it at `GET /admin/audit`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import Request


@dataclass(frozen=True)
class Actor:
    subject: str
    role: str
    opd: str | None
    method: str
    route: str
    path: str
    address: str | None = None  # the client's address as the service saw it

    @classmethod
    def of(cls, request: Request, subject: str, role: str, opd: str | None = None) -> Actor:
        """Who acts through `request`: the route's template, the path, the address."""
        route = request.scope.get("route")
        return cls(
            subject=subject,
            role=role,
            opd=opd,
            method=request.method,
            route=getattr(route, "path", request.url.path),
            path=request.url.path,
            address=request.client.host if request.client else None,
        )


_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_actor", default=None)


def set_actor(actor: Actor) -> None:
    _actor.set(actor)


def current_actor() -> Actor | None:
    return _actor.get()


async def record(conn: asyncpg.Connection, aggregates: list[str], events: list[str]) -> None:
    """Write the current officer's action (if any) in the caller's transaction."""
    actor = _actor.get()
    if actor is None or actor.method in ("GET", "HEAD", "OPTIONS"):
        return
    await _insert(conn, actor, "write", aggregates, events)


async def record_read(
    conn: asyncpg.Connection | asyncpg.Pool, records: list[str], events: Sequence[str] = ()
) -> None:
    """Write that the current officer read the personal data of `records` (complaint,
    application or appointment codes, citizen references): UU PDP asks who saw what.
    `events` names what the read was for (a citizen's export: requested, delivered)."""
    actor = _actor.get()
    if actor is not None:
        await _insert(conn, actor, "read", records, list(events))


async def record_read_by(
    conn: asyncpg.Connection | asyncpg.Pool, actor: Actor, records: list[str], events: Sequence[str] = ()
) -> None:
    """`record_read` for an actor the caller names (a page of the portal, which has no
    officer route of its own to set one)."""
    await _insert(conn, actor, "read", records, list(events))


async def search(
    pool: asyncpg.Pool,
    *,
    subject: str | None,
    aggregate: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """The trail's entries that match (None: any), newest first: `limit` of them after
    the `offset` newest; `since` inclusive, `until` exclusive."""
    rows = await pool.fetch(
        "SELECT at, action, subject, role, opd, method, route, path, aggregates, events, address FROM audit_log"
        " WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR aggregates @> ARRAY[$2])"
        " AND ($3::text IS NULL OR action = $3) AND ($4::timestamptz IS NULL OR at >= $4)"
        " AND ($5::timestamptz IS NULL OR at < $5)"
        " ORDER BY id DESC LIMIT $6 OFFSET $7",
        subject,
        aggregate,
        action,
        since,
        until,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def _insert(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: Actor,
    action: str,
    aggregates: list[str],
    events: list[str],
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (subject, role, opd, method, route, path, aggregates, events, action, address)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        actor.subject,
        actor.role,
        actor.opd,
        actor.method,
        actor.route,
        actor.path,
        sorted(set(aggregates)),
        events,
        action,
        actor.address,
    )
