"""The notification service's citizen API (one-time codes, sessions, preferences) and
the delivery log its officers search and resend from."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Unavailable, Upstream, bearer


class NotificationsClient(Upstream):
    name = "notifications"

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

    async def deliveries(
        self, token: str, statuses: tuple[str, ...], page: int, page_size: int
    ) -> dict[str, Any]:
        """A page of the delivery log in any of `statuses`, newest first."""
        params: dict[str, Any] = {"status": list(statuses), "page": page, "page_size": page_size}
        found = await self.get("/notifications", params=params, headers=bearer(token))
        if found is None:
            raise Unavailable(self.name)
        return dict(found)

    async def resend(self, token: str, notification_id: str) -> dict[str, Any]:
        """Send a failed notification again; `Refused` 409 when it is not failed."""
        return dict(await self.post(f"/notifications/{notification_id}/resend", headers=bearer(token)))
