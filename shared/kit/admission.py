"""Admission control: a service handles at most so many requests at once and answers the
rest 503 with Retry-After at once, instead of queueing them.

A queue in front of a busy service answers everyone late: past its held rate, the wait
grows without bound, clients time out and retry, and memory grows with the waiting
requests. Bounding what is in flight keeps the accepted requests as fast as at the held
rate and tells the others, in milliseconds, when to try again (the portal and the
citizens' apps show "coba lagi"). A request that finds every place taken waits a few
milliseconds for one, so a short burst is absorbed rather than refused.

Operations endpoints always pass (a busy service must still say it is alive and be
scraped), and so do the long-lived streams a service names (a live feed holds its
connection for hours and would hold a place all that time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.kit.http import send_json

OPERATIONS_PATHS = ("/health", "/ready", "/metrics")
BUSY_BODY = b'{"detail":"the service is busy; nothing was done, please try again shortly"}'


class Admission:
    """Pure ASGI middleware; `limit` requests in flight, a newcomer waits up to `wait`
    seconds for a place, then gets 503 with `Retry-After: retry_after`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        wait: float,
        retry_after: int,
        refused: Counter,
        exempt: Collection[str] = (),
    ) -> None:
        self.app = app
        self.places = asyncio.Semaphore(limit)
        self.wait = wait
        self.retry_after = str(retry_after).encode()
        self.refused = refused
        self.exempt = frozenset((*OPERATIONS_PATHS, *exempt))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if not await self._admitted():
            self.refused.inc()
            await self._busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.places.release()

    async def _admitted(self) -> bool:
        if not self.places.locked():
            await self.places.acquire()  # a free place: taken without waiting
            return True
        try:
            async with asyncio.timeout(self.wait):
                await self.places.acquire()
        except TimeoutError:
            return False
        return True

    async def _busy(self, send: Send) -> None:
        await send_json(send, 503, BUSY_BODY, [(b"retry-after", self.retry_after)])
