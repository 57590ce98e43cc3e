"""Operator endpoints every service has (role ``admin``): outbox state, republishing
from the outbox, and replaying dead letters through the service's consumers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from shared.kit.auth import Officer, require_role
from shared.kit.consumer import replay_dead_letters
from shared.kit.outbox import republish_since

router = APIRouter(prefix="/admin", tags=["operations"])
admin = require_role("admin")


class RepublishIn(BaseModel):
    since: AwareDatetime = Field(description="Republish events created at or after this time")
    topic: str | None = Field(None, max_length=200)


@router.get("/outbox", summary="Outbox state: pending events, oldest age, recent failures")
async def outbox_state(request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    pool = request.app.state.service.pool
    row = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE published_at IS NULL) AS pending,"
        " extract(epoch FROM now() - min(created_at) FILTER (WHERE published_at IS NULL)) AS oldest_age_s,"
        " count(*) AS retained, min(created_at) AS retained_since FROM outbox"
    )
    failures = await pool.fetch(
        "SELECT event_id::text, event_type, attempts, last_error FROM outbox"
        " WHERE published_at IS NULL AND attempts > 0 ORDER BY id LIMIT 20"
    )
    return {**dict(row), "failing": [dict(r) for r in failures]}


@router.post("/outbox/republish", summary="Republish retained events since a time, in order")
async def republish(
    body: RepublishIn, request: Request, _: Annotated[Officer, Depends(admin)]
) -> dict[str, Any]:
    """After a broker lost its data (the embedded broker keeps it in memory): consumers
    deduplicate by event id, so republishing is safe."""
    count = await republish_since(request.app.state.service.pool, body.since, body.topic)
    request.app.state.service.relay.wake()
    return {"republishing": count, "since": body.since}


@router.post("/dead-letters/replay", summary="Re-deliver this service's dead letters")
async def replay(request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, int]:
    service = request.app.state.service
    return {c.name: await replay_dead_letters(c) for c in service.consumers}


@router.get(
    "/audit", summary="Officer actions and reads of personal data: who, what, which record, when, from where"
)
async def audit_trail(
    request: Request,
    _: Annotated[Officer, Depends(admin)],
    subject: str | None = Query(None, max_length=200),
    aggregate: str | None = Query(
        None, max_length=200, description="A record: code, id or citizen reference"
    ),
    action: Literal["write", "read"] | None = None,
    since: AwareDatetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    rows = await request.app.state.service.pool.fetch(
        "SELECT at, action, subject, role, opd, method, route, path, aggregates, events, address FROM audit_log"
        " WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR aggregates @> ARRAY[$2])"
        " AND ($3::text IS NULL OR action = $3) AND ($4::timestamptz IS NULL OR at >= $4)"
        " ORDER BY id DESC LIMIT $5",
        subject,
        aggregate,
        action,
        since,
        limit,
    )
    return [dict(r) for r in rows]


def parse_since(value: str) -> datetime:
    since = datetime.fromisoformat(value)
    if since.tzinfo is None:
        raise ValueError("give a timezone, e.g. 2026-11-28T08:00:00+07:00")
    return since
