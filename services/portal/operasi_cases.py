"""The operations pages' use cases, with the officer's own token: the notification
service's failed deliveries and their resending; the consuming services' dead letters
and their replay; the producing services' outboxes; the services' audit trails.

A service that does not answer leaves its row or group marked so (the others still
show); a 403 is `NotAllowed` as everywhere in the workspace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from services.portal import operasi_rules as rules
from services.portal.clients import operations
from services.portal.clients.base import Unavailable, Upstream
from services.portal.domain import Answer
from services.portal.handlers import Context
from services.portal.petugas_cases import NotFound, Signed, as_officer

T = TypeVar("T")


def _service(ctx: Context, name: str) -> Upstream:
    return {upstream.name: upstream for upstream in ctx.upstreams}[name]


async def failed_deliveries(ctx: Context, officer: Signed, page: int) -> dict[str, Any]:
    """A page of the notifications whose delivery failed, for good or for now."""
    return await as_officer(
        lambda: ctx.notifications.deliveries(officer.token, rules.FAILING, page, rules.PAGE_SIZE)
    )


async def resend(ctx: Context, officer: Signed, notification_id: str) -> None:
    """Send a failed notification again; `Refused` (409) when it is not failed now."""
    found = rules.delivery_id(notification_id)
    if found is None:
        raise NotFound
    await as_officer(lambda: ctx.notifications.resend(officer.token, found))


@dataclass
class Group:
    """A consumer group's dead letters (None: its service did not answer)."""

    service: str
    name: str
    letters: list[dict[str, Any]] | None
    reasons: list[tuple[str, int]] = field(default_factory=list)


async def dead_letters(ctx: Context, officer: Signed) -> list[Group]:
    """Every consuming service's consumer groups, each with its dead letters."""
    answers = await _each(ctx, officer, operations.dead_letters, rules.CONSUMERS)
    groups: list[Group] = []
    for name, found in zip(rules.CONSUMERS, answers, strict=True):
        if found is None:
            groups.append(Group(name, name, None))
        else:
            groups += [
                Group(name, group, letters, rules.reasons_of(letters)) for group, letters in found.items()
            ]
    return groups


async def _each(
    ctx: Context, officer: Signed, call: Callable[[Upstream, str], Awaitable[T]], names: Sequence[str]
) -> list[T | None]:
    """`call` of each service named, all at once (one away costs the page its timeout
    once, not once each); None for a service that does not answer."""
    return await asyncio.gather(
        *(_or_none(partial(call, _service(ctx, name), officer.token)) for name in names)
    )


async def _or_none(call: Callable[[], Awaitable[T]]) -> T | None:
    """A service's answer, or None when it does not answer (the page says so)."""
    try:
        return await as_officer(call)
    except Unavailable:
        return None


async def replay(ctx: Context, officer: Signed, form: Mapping[str, str]) -> tuple[Answer, int]:
    """Replay the letters the form names (a reason's, or one): the form's errors, and how
    many letters were replayed."""
    result = rules.read_replay(form)
    if result.errors:
        return result, 0
    service = _service(ctx, result.values["service"])
    done = await as_officer(lambda: operations.replay(service, officer.token, result.values["choice"]))
    return result, sum(done.values())


@dataclass
class Outbox:
    service: str
    state: dict[str, Any] | None  # None: the service did not answer


async def outboxes(ctx: Context, officer: Signed) -> list[Outbox]:
    """Each producing service's outbox state."""
    states = await _each(ctx, officer, operations.outbox, rules.PRODUCERS)
    return [Outbox(name, state) for name, state in zip(rules.PRODUCERS, states, strict=True)]


@dataclass
class Trail:
    entries: list[dict[str, Any]]
    more: bool


async def audit(ctx: Context, officer: Signed, search: Answer) -> Trail:
    """A page of the chosen service's audit trail that the search finds."""
    service = _service(ctx, search.values["service"])
    filters = search.values["filters"]
    entries = await as_officer(lambda: operations.audit(service, officer.token, filters))
    return Trail(entries[: rules.PAGE_SIZE], len(entries) > rules.PAGE_SIZE)
