"""The one clock of the services: aware UTC. Use cases take a `clock` in their context,
defaulting to this, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
