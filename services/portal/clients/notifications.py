"""The notification service's citizen API: one-time codes, sessions, preferences."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Upstream, bearer


class NotificationsClient(Upstream):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__("notifications", base_url, timeout)

    async def request_code(self, contact: str) -> dict[str, Any]:
        """Where the code went (masked) and how long it is valid; the same answer
        whether or not the contact is known."""
        return dict(await self.post("/citizen/codes", json={"contact": contact}))

    async def open_session(self, contact: str, code: str, nik: str | None) -> dict[str, Any]:
        """The session and its expiry; `Refused` on "code" for a wrong or expired code."""
        body = {"contact": contact, "code": code, **({"nik": nik} if nik else {})}
        return dict(await self.post("/citizen/sessions", json=body))

    async def preferences(self, session: str) -> dict[str, Any]:
        return dict(await self.post("/preferences/lookup", headers=bearer(session)))

    async def save_preferences(self, session: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.write("PUT", "/preferences", json=body, headers=bearer(session)))
