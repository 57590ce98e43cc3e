"""The one clock of the services: aware UTC. Use cases take a `clock` in their context,
defaulting to this, so tests can move time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo


def utc_now() -> datetime:
    return datetime.now(UTC)


def clock_on(day: date, tz: tzinfo, now: Callable[[], datetime] = utc_now) -> Callable[[], datetime]:
    """A clock on whose local date in `tz` it is `day` now, running on at the real pace
    (the real time moved by whole days): a service started in development on a "today"
    of its own, for tests whose rules accept only today (a clinic's queue)."""
    shift = timedelta(days=(day - now().astimezone(tz).date()).days)

    def shifted() -> datetime:
        return now() + shift

    return shifted
