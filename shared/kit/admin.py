"""Operator endpoints every service has (role ``admin``): outbox state, republishing
from the outbox, the dead letters of the service's consumers and their replay, and the
audit trail (searched by officer, action, record and time, a page at a time)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field

from shared.kit import audit
from shared.kit.auth import Officer, require_role
from shared.kit.consumer import LetterChoice, list_dead_letters, replay_chosen_letters, replay_dead_letters
from shared.kit.outbox import republish_since

router = APIRouter(prefix="/admin", tags=["operations"])
admin = require_role("admin")


class RepublishIn(BaseModel):
    since: AwareDatetime = Field(description="Republish events created at or after this time")
    topic: str | None = Field(None, max_length=200)


@router.get("/outbox", summary="Outbox state: pending events, oldest age, last published, recent failures")
async def outbox_state(request: Request, _: Annotated[Officer, Depends(admin)]) -> dict[str, Any]:
    pool = request.app.state.service.pool
    row = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE published_at IS NULL) AS pending,"
        " extract(epoch FROM now() - min(created_at) FILTER (WHERE published_at IS NULL)) AS oldest_age_s,"
        " count(*) AS retained, min(created_at) AS retained_since, max(published_at) AS last_published_at"
        " FROM outbox"
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


@router.get("/dead-letters", summary="The newest dead letters of each of this service's consumers")
async def dead_letters(
    request: Request,
    _: Annotated[Officer, Depends(admin)],
    limit: int = Query(200, ge=1, le=1000, description="At most this many per consumer, newest first"),
) -> dict[str, list[dict[str, Any]]]:
    """Per consumer group: each letter's place in the dead-letter topic, the reason and
    error, where it came from, the event's type, id, subject and tracking code (never its
    data), and whether a replay has applied it."""
    service = request.app.state.service
    return {c.name: await list_dead_letters(c, limit=limit) for c in service.consumers}


@router.post("/dead-letters/replay", summary="Re-deliver this service's dead letters")
async def replay(
    request: Request,
    _: Annotated[Officer, Depends(admin)],
    consumer: str | None = Query(None, max_length=200, description="Only this consumer group's"),
    reason: str | None = Query(None, max_length=100, description="Only the letters of this reason"),
    partition: int | None = Query(None, ge=0, description="With offset: one letter"),
    offset: int | None = Query(None, ge=0, description="With partition: one letter"),
) -> dict[str, int]:
    """Without a choice, every letter not replayed yet (the replay group remembers where
    it got to); with one, the letters chosen, whether replayed before or not."""
    if (partition is None) != (offset is None):
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("query", "offset" if offset is None else "partition"),
                    "msg": "give both partition and offset, or neither",
                    "input": None,
                }
            ]
        )
    choice = LetterChoice(reason, partition, offset)
    chosen = [c for c in request.app.state.service.consumers if consumer in (None, c.name)]
    if choice.everything:
        return {c.name: await replay_dead_letters(c) for c in chosen}
    return {c.name: await replay_chosen_letters(c, choice) for c in chosen}


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
    until: AwareDatetime | None = Query(None, description="Only entries before this time"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=100_000, description="Skip this many of the newest (paging)"),
) -> list[dict[str, Any]]:
    """Newest first; a page is `limit` entries after `offset`."""
    return await audit.search(
        request.app.state.service.pool,
        subject=subject,
        aggregate=aggregate,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


def parse_since(value: str) -> datetime:
    since = datetime.fromisoformat(value)
    if since.tzinfo is None:
        raise ValueError("give a timezone, e.g. 2026-11-28T08:00:00+07:00")
    return since
