"""Layanan saya's use cases: what the signed-in contact started (the integration view),
their answer to a resolved complaint (the complaints service), and their notification
preferences (the notification service), with the citizen session the sign-in keeps; an
expired or refused session sends the citizen to sign in again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from services.portal.antrean_cases import SignInNeeded, session_of, signed_in
from services.portal.clients.base import Refused, Unavailable
from services.portal.domain import Answer
from services.portal.handlers import Context
from services.portal.layanan_rules import (
    PAGE_SIZE,
    RESOLVED,
    form_of,
    read_preferences,
    read_rating,
    read_reopen,
)

T = TypeVar("T")
# The session is not (or no longer) valid, or lacks the NIK preferences are kept under.
SIGN_IN_AGAIN = (401, 403)


@dataclass
class Overview:
    contact: str
    services: dict[str, Any] | None  # None while the integration view is away
    preferences: dict[str, str]


async def _signed(ctx: Context, session_id: str, call: Callable[[str], Awaitable[T]]) -> T:
    token = await session_of(ctx, session_id)
    if token is None:
        raise SignInNeeded
    try:
        return await call(token)
    except Refused as refused:
        if refused.status in SIGN_IN_AGAIN:
            raise SignInNeeded from refused
        raise


async def overview(ctx: Context, session_id: str, page: int, lang: str) -> Overview:
    signin = await signed_in(ctx, session_id)
    if signin is None:
        raise SignInNeeded
    try:
        services: dict[str, Any] | None = await _signed(
            ctx, session_id, lambda s: ctx.integration.my_services(s, page, PAGE_SIZE, lang)
        )
    except Unavailable:
        # The list says so; the preferences, another service's, still work.
        services = None
    preferences = await _signed(ctx, session_id, ctx.notifications.preferences)
    return Overview(signin["kontak"], services, form_of(preferences))


async def save_preferences(ctx: Context, session_id: str, form: Mapping[str, str]) -> Answer:
    result = read_preferences(form)
    if not result.errors:
        body = result.values["body"]
        await _signed(ctx, session_id, lambda s: ctx.notifications.save_preferences(s, body))
    return result


# ----- a resolved complaint --------------------------------------------------------------

# The complaints service's answer when the complaint no longer waits for the citizen.
NOT_WAITING = 409


async def own_complaint(ctx: Context, session_id: str, code: str, lang: str) -> dict[str, Any] | None:
    """The complaint of `code` as Layanan saya lists it, when this contact filed it;
    None otherwise (whoever filed it: the page answers as for an unknown code)."""
    found = await _signed(ctx, session_id, lambda s: ctx.integration.my_services(s, 1, 1, lang, code=code))
    items = [i for i in found.get("items", []) if i.get("kind") == "complaint"]
    return items[0] if items else None


def waits_for_answer(item: Mapping[str, Any]) -> bool:
    return item.get("status") == RESOLVED


async def _answer(
    ctx: Context,
    own: Mapping[str, Any],
    result: Answer,
    send: Callable[[str, dict[str, Any]], Awaitable[None]],
) -> Answer:
    """Send the citizen's answer about `own`, their complaint as `own_complaint` found it
    for this request (so the integration view is asked once)."""
    if not result.errors:
        try:
            await send(own["code"], result.values["body"])
        except Refused as refused:
            if refused.status != NOT_WAITING:
                raise
            result.refuse("", "error.aduan.not_waiting")
    return result


async def rate(ctx: Context, own: Mapping[str, Any], form: Mapping[str, str]) -> Answer:
    return await _answer(ctx, own, read_rating(form), ctx.complaints.rate)


async def reopen(ctx: Context, own: Mapping[str, Any], form: Mapping[str, str]) -> Answer:
    return await _answer(ctx, own, read_reopen(form), ctx.complaints.reopen)
