"""A citizen's data key, read or made in one statement (shared/kit/data_keys.py), on the
real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from pydantic import SecretStr

from shared.kit.data_keys import DEV_MASTER_KEY, DataKeys
from tests.harness import migrated_pool_fixture, wait_for

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "complaints" / "migrations"
pool = migrated_pool_fixture(MIGRATIONS)
KEYS = DataKeys(SecretStr(DEV_MASTER_KEY))


async def test_a_key_is_made_once_and_read_after(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        made = await KEYS.key_for(conn, "citizen-a")
        again = await KEYS.key_for(conn, "citizen-a")
        other = await KEYS.key_for(conn, "citizen-b")
        assert await conn.fetchval("SELECT count(*) FROM citizen_keys") == 2
    assert again == made
    assert other[0] != made[0] and other[1] != made[1]


async def test_two_first_uses_at_once_share_the_key_the_first_made(pool: asyncpg.Pool) -> None:
    """The second transaction waits for the first's key and then reads it (in a statement
    of its own: its first one's snapshot predates that key)."""
    async with pool.acquire() as first, pool.acquire() as second:
        making = first.transaction()
        await making.start()
        made = await KEYS.key_for(first, "citizen-c")
        async with second.transaction():
            waiting = asyncio.create_task(KEYS.key_for(second, "citizen-c"))

            async def blocked() -> bool:
                return bool(await first.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"))

            await wait_for(blocked)
            await making.commit()
            assert await waiting == made
        assert await first.fetchval("SELECT count(*) FROM citizen_keys") == 1
