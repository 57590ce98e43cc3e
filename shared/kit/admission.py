"""Admission control: a service takes a newcomer only while the requests it already
handles are fresh, and answers the rest 503 with Retry-After at once, instead of
queueing them.

A queue in front of a busy service answers everyone late: past its held rate, the wait
grows without bound, clients time out and retry, and memory grows with the waiting
requests. On a process's one event loop the queue is invisible (requests wait for the
loop and for a pooled connection, not in a list), so the rule is a latency budget: when
`floor` requests in flight have each been in flight longer than `budget`, the service
is behind and a newcomer would wait at least that long. A burst is taken as long as the
service keeps up; `limit` bounds what is in flight at all (memory), and `floor` requests
are always taken, however old: on a saturated machine every request takes longer than
the budget, and the service must still keep its pool and its core busy rather than take
one request at a time. Counting `floor` of them, not the oldest alone, keeps one slow
request (an export, a statement waiting on a lock) from refusing the quick ones that
pass it.

Behind is not yet refused: as CoDel does for a network queue (Nichols and Jacobson,
"Controlling Queue Delay", 2012), refusals start only once the service has stayed behind
for `interval`, so a short stall (a checkpoint's fsync, a collection, a slow statement)
at an ordinary rate costs no citizen a "try again". Once refusing, a service that is
behind again within `memory` of its last refusal refuses at once: an overload that
comes and goes is a standing one, not a stall.

A refusal costs as little as it can: this middleware runs outside every other (before
routing, the correlation id and the per-route metrics), does not read the body, does not
log, and counts the refusal in one counter (`sinergi_http_refused_busy_total`).

Operations endpoints always pass (a busy service must still say it is alive and be
scraped), and so do the long-lived streams a service names (a live feed holds its
connection for hours and would look like a request far behind).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from itertools import count, islice

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

OPERATIONS_PATHS = ("/health", "/ready", "/metrics")
BUSY_BODY = b'{"detail":"the service is busy; nothing was done, please try again shortly"}'
# How long after its last refusal a service behind again refuses at once, in intervals
# (CoDel keeps its drop count for 16 intervals; a shorter memory here, since a refusal
# is a citizen's retry, not a packet).
MEMORY_INTERVALS = 10


class Admission:
    """Pure ASGI middleware: a newcomer is refused 503 with `Retry-After: retry_after`
    when `limit` requests are in flight, or `floor` or more are and the `floor` oldest
    of them started more than `budget` seconds ago, for `interval` seconds now or within
    `memory` seconds of the last refusal."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        floor: int,
        budget: float,
        interval: float,
        retry_after: int,
        refused: Counter,
        exempt: Collection[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limit = limit
        self.floor = floor
        self.budget = budget
        self.interval = interval
        self.memory = MEMORY_INTERVALS * interval
        self.clock = clock
        # Since when the oldest in flight has been over the budget (None: it is not), and
        # when a newcomer was last refused for it.
        self.behind_since: float | None = None
        self.last_refused = -float("inf")
        self.refused = refused
        self.exempt = frozenset((*OPERATIONS_PATHS, *exempt))
        # Start times of the requests in flight, oldest first (admission order).
        self.in_flight: OrderedDict[int, float] = OrderedDict()
        self.tickets = count()
        # The whole answer, built once: a refusal only sends it.
        self.busy_start = {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BUSY_BODY)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
        self.busy_body = {"type": "http.response.body", "body": BUSY_BODY}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        now = self.clock()
        in_flight = self.in_flight
        taken = len(in_flight)
        if taken < self.floor:
            self.behind_since = None  # below the floor nobody waits: not behind
        elif taken >= self.limit or self._behind(now):
            self.refused.inc()
            await send(self.busy_start)
            await send(self.busy_body)
            return
        ticket = next(self.tickets)
        in_flight[ticket] = now
        try:
            await self.app(scope, receive, send)
        finally:
            del in_flight[ticket]

    def _behind(self, now: float) -> bool:
        """Whether the `floor` oldest in flight are over the budget and have been for
        the interval (or the service refused for it lately)."""
        # The floor-th oldest (admission order): when it is over the budget, so are all
        # older ones.
        if now - next(islice(self.in_flight.values(), self.floor - 1, None)) <= self.budget:
            self.behind_since = None
            return False
        if self.behind_since is None:
            self.behind_since = now
        if now - self.behind_since >= self.interval or now - self.last_refused <= self.memory:
            self.last_refused = now
            return True
        return False
