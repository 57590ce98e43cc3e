"""Layanan saya's use cases: what the signed-in contact started (the integration view)
and their notification preferences (the notification service), both with the citizen
session the sign-in keeps; an expired or refused session sends the citizen to sign in
again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from services.portal.antrean_cases import SignInNeeded, session_of, signed_in
from services.portal.clients.base import Refused, Unavailable
from services.portal.domain import Answer
from services.portal.handlers import Context
from services.portal.layanan_rules import PAGE_SIZE, form_of, read_preferences

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
