"""The health service's citizen API: facilities, places left, booking, cancelling and
following a polyclinic booking."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.portal.clients.base import Upstream, bearer


class HealthClient(Upstream):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__("health", base_url, timeout)

    async def appointment(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/appointments/{code}")

    async def facilities(self) -> list[dict[str, Any]]:
        return await self.get("/facilities") or []

    async def facility(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/facilities/{code}")

    async def sessions(self, facility: str, polyclinic: str, day: date) -> list[dict[str, Any]]:
        """The polyclinic's practice sessions on `day` with the places left (read live)."""
        found = await self.get(
            f"/facilities/{facility}/polyclinics/{polyclinic}/sessions", params={"date": day.isoformat()}
        )
        return found or []

    async def book(self, body: dict[str, Any], session: str) -> dict[str, Any]:
        """The booking (the same one again for the same request); `Refused` for a full
        day or a limit, with the service's message."""
        return dict(await self.post("/appointments", json=body, headers=bearer(session)))

    async def cancel(self, code: str, session: str) -> dict[str, Any]:
        return dict(await self.post(f"/appointments/{code}/cancel", json={}, headers=bearer(session)))
