"""The portal's own tables: drafts of citizens' forms and officers' sessions (the only
module that runs SQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from shared.kit import audit


async def load(pool: asyncpg.Pool, session_hash: str, journey: str, fresh_since: datetime) -> dict[str, Any]:
    """The draft's answers, or an empty draft when there is none or it went idle."""
    answers = await pool.fetchval(
        "SELECT answers FROM drafts WHERE session_hash = $1 AND journey = $2 AND updated_at > $3",
        session_hash,
        journey,
        fresh_since,
    )
    return dict(answers) if answers else {}


async def save(
    pool: asyncpg.Pool, session_hash: str, journey: str, answers: dict[str, Any], now: datetime
) -> None:
    await pool.execute(
        """INSERT INTO drafts (session_hash, journey, answers, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (session_hash, journey) DO UPDATE
           SET answers = EXCLUDED.answers, updated_at = EXCLUDED.updated_at""",
        session_hash,
        journey,
        answers,
        now,
    )


async def delete(pool: asyncpg.Pool, session_hash: str, journey: str) -> None:
    await pool.execute("DELETE FROM drafts WHERE session_hash = $1 AND journey = $2", session_hash, journey)


async def take(pool: asyncpg.Pool, session_hash: str, journey: str, fresh_since: datetime) -> dict[str, Any]:
    """The draft's answers, once: it is deleted as it is read (empty when there is none
    or it went idle)."""
    answers = await pool.fetchval(
        "DELETE FROM drafts WHERE session_hash = $1 AND journey = $2 RETURNING"
        " CASE WHEN updated_at > $3 THEN answers END",
        session_hash,
        journey,
        fresh_since,
    )
    return dict(answers) if answers else {}


async def purge_journey(pool: asyncpg.Pool, journey: str, idle_since: datetime) -> int:
    """Delete one journey's drafts idle since before `idle_since`; how many went."""
    status = await pool.execute(
        "DELETE FROM drafts WHERE journey = $1 AND updated_at <= $2", journey, idle_since
    )
    return int(status.split()[-1])


async def purge_idle(pool: asyncpg.Pool, idle_since: datetime) -> int:
    """Delete drafts idle since before `idle_since`; how many went."""
    status = await pool.execute("DELETE FROM drafts WHERE updated_at <= $1", idle_since)
    return int(status.split()[-1])


# ----- officers' sessions (the workspace, /petugas) ----------------------------------------

_OFFICER_COLUMNS = "subject, name, roles, opd, tokens, access_expires_at, created_at, last_seen_at, facility"


async def add_officer_session(pool: asyncpg.Pool, session_hash: str, session: dict[str, Any]) -> None:
    await pool.execute(
        f"INSERT INTO officer_sessions (session_hash, {_OFFICER_COLUMNS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        session_hash,
        *(session[name] for name in _OFFICER_COLUMNS.split(", ")),
    )


async def touch_officer_session(pool: asyncpg.Pool, session_hash: str, now: datetime) -> None:
    """The session's last page is `now`: its idle clock starts again."""
    await pool.execute(
        "UPDATE officer_sessions SET last_seen_at = $2 WHERE session_hash = $1", session_hash, now
    )


async def officer_session(pool: asyncpg.Pool, session_hash: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {_OFFICER_COLUMNS} FROM officer_sessions WHERE session_hash = $1", session_hash
    )
    return dict(row) if row else None


@asynccontextmanager
async def renewing_officer_session(
    pool: asyncpg.Pool, session_hash: str
) -> AsyncIterator[tuple[dict[str, Any] | None, Callable[[str, datetime], Awaitable[None]]]]:
    """The session locked while its token is renewed (the provider takes each refresh
    token once: two pages renewing at once would end the session), and how to keep the
    new tokens."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_OFFICER_COLUMNS} FROM officer_sessions WHERE session_hash = $1 FOR UPDATE",
            session_hash,
        )

        async def keep(tokens: str, access_expires_at: datetime) -> None:
            await conn.execute(
                "UPDATE officer_sessions SET tokens = $2, access_expires_at = $3 WHERE session_hash = $1",
                session_hash,
                tokens,
                access_expires_at,
            )

        yield (dict(row) if row else None), keep


async def end_officer_session(pool: asyncpg.Pool, session_hash: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"DELETE FROM officer_sessions WHERE session_hash = $1 RETURNING {_OFFICER_COLUMNS}", session_hash
    )
    return dict(row) if row else None


async def purge_officer_sessions(pool: asyncpg.Pool, idle_since: datetime, created_since: datetime) -> int:
    """Delete sessions idle since before `idle_since` or begun before `created_since`."""
    status = await pool.execute(
        "DELETE FROM officer_sessions WHERE last_seen_at <= $1 OR created_at <= $2", idle_since, created_since
    )
    return int(status.split()[-1])


async def audit_read(pool: asyncpg.Pool, actor: audit.Actor, records: list[str], events: list[str]) -> None:
    """Record in the portal's audit trail that `actor` read (or asked for) the personal
    data of `records` (a citizen's export: its references and its id)."""
    await audit.record_read_by(pool, actor, records, events)
