"""The portal's own table: drafts of citizens' forms (the only module that runs SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


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


async def purge_idle(pool: asyncpg.Pool, idle_since: datetime) -> int:
    """Delete drafts idle since before `idle_since`; how many went."""
    status = await pool.execute("DELETE FROM drafts WHERE updated_at <= $1", idle_since)
    return int(status.split()[-1])
