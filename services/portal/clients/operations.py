"""The kit's operator endpoints, the same on every service (shared/kit/admin.py): outbox
state, dead letters and their replay, the audit trail. Called with the officer's own
token: the services decide that only administrators may (a 403 otherwise)."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Unavailable, Upstream, bearer


async def _got(upstream: Upstream, path: str, token: str, params: dict[str, Any] | None = None) -> Any:
    found = await upstream.get(path, params=params or {}, headers=bearer(token))
    if found is None:  # a service without the route is no answer, not an empty one
        raise Unavailable(upstream.name)
    return found


async def outbox(upstream: Upstream, token: str) -> dict[str, Any]:
    """Unpublished events, the oldest one's age, the last publication, failing events."""
    return dict(await _got(upstream, "/admin/outbox", token))


async def dead_letters(upstream: Upstream, token: str) -> dict[str, list[dict[str, Any]]]:
    """Per consumer group of the service: its dead letters, newest first."""
    return dict(await _got(upstream, "/admin/dead-letters", token))


async def replay(upstream: Upstream, token: str, choice: dict[str, str | int]) -> dict[str, int]:
    """Replay the letters `choice` names (consumer, and a reason or a letter's place);
    how many each consumer replayed."""
    return dict(await upstream.post("/admin/dead-letters/replay", params=choice, headers=bearer(token)))


async def audit(upstream: Upstream, token: str, filters: dict[str, str | int]) -> list[dict[str, Any]]:
    """The audit trail's entries `filters` find, newest first."""
    return list(await _got(upstream, "/admin/audit", token, filters))
