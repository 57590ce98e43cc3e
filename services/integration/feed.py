"""The live feed behind `/events/stream`: one poller per process reads newly applied
events from the history table (by arrival sequence) while anyone listens, masks them
for the public and fans them out to every open stream.

Reading from the database rather than from the consumer keeps the feed correct with
several instances (each one's viewers see every instance's events) and shows only what
has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from services.integration.domain import public_feed_entry
from services.integration.repository import ReadModel
from services.integration.texts import with_titles
from shared.kit.data_keys import DataKeyClient

log = logging.getLogger(__name__)


class FeedHub:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        poll_seconds: float = 1.0,
        batch: int = 50,
        text_keys: DataKeyClient | None = None,
    ) -> None:
        self._pool = pool
        self.text_keys = text_keys
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._last = 0

    @property
    def listeners(self) -> int:
        return len(self._subscribers)

    async def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=200)
        if self._task is None or self._task.done():
            async with self._pool().acquire() as conn:
                last = await ReadModel(conn).max_seq()
            if self._task is None or self._task.done():  # still: no one started it meanwhile
                self._last = last
                self._task = asyncio.create_task(self._run(), name="integration-feed")
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    async def close(self) -> None:
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while self._subscribers:
            try:
                async with self._pool().acquire() as conn:
                    rows = await ReadModel(conn).feed(after=self._last, limit=self.batch)
            except Exception as exc:  # the database may be away for a moment
                log.warning("live feed poll failed", extra={"error": repr(exc)[:200]})
                rows = []
            for row in await with_titles(self.text_keys, rows):
                self._last = max(self._last, row["seq"])
                self.publish(public_feed_entry(row))
            await asyncio.sleep(self.poll_seconds)

    def publish(self, entry: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():  # a slow viewer loses the oldest, never blocks the others
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(entry)
