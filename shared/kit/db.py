"""Database pool and numbered SQL migrations.

Each service keeps `migrations/NNN_name.sql`; the kit adds its own tables (outbox,
inbox) from `shared/kit/migrations/` first. Applied files are recorded in
`schema_migrations`, under an advisory lock so two instances starting together do not race.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x5345_4D49  # arbitrary, constant across services (one DB per service)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(url: str, *, timeout: float = 5) -> asyncpg.Connection:
    """A single connection with the same codecs as the pool's (for long-lived listeners)."""
    conn = await asyncpg.connect(url, timeout=timeout)
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pooled connections carry no session state (no LISTEN, no SET, only transaction-
    scoped advisory locks; an open transaction is still rolled back by asyncpg), so the
    default reset query, one more round trip per request, is skipped."""


class _TimedPool(asyncpg.Pool):
    """A pool that reports how long each acquisition took (waiting included, failures
    too: a timeout is the longest wait). `_acquire` is asyncpg's one path to a connection:
    `acquire()` in both its forms and the pool's own `fetch`/`execute` go through it."""

    def __init__(self, *args: Any, observe_wait: Callable[[float], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._observe_wait = observe_wait

    async def _acquire(self, timeout: float | None) -> Any:
        started = time.perf_counter()
        try:
            return await super()._acquire(timeout)
        finally:
            self._observe_wait(time.perf_counter() - started)


async def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    observe_wait: Callable[[float], None] = lambda seconds: None,
) -> asyncpg.Pool:
    """A pool with the kit's codecs; `observe_wait` is given the seconds each acquisition
    took (the service's acquire-wait histogram)."""
    # asyncpg.create_pool takes no pool class; the arguments it adds are its own defaults.
    return await _TimedPool(
        url,
        observe_wait=observe_wait,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        init=_init_connection,
        reset=_keep_session,
        # Requests must not hang on a dead database: fail fast, the pool reconnects.
        timeout=5,
        command_timeout=30,
    )


def _migration_files(*folders: Path) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for folder in folders:
        prefix = "kit" if folder == KIT_MIGRATIONS else "service"
        files += [(f"{prefix}/{p.name}", p) for p in sorted(folder.glob("*.sql"))]
    return files


async def migrate(url: str, service_migrations: Path) -> list[str]:
    """Apply pending migrations (kit first, then the service's); returns what was applied."""
    conn = await asyncpg.connect(url)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, path in _migration_files(KIT_MIGRATIONS, service_migrations):
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations(name) VALUES ($1)", name)
            applied.append(name)
            log.info("migration applied", extra={"migration": name})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied
