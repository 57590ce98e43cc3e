"""The health service's citizen API: following a polyclinic booking."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Upstream


class HealthClient(Upstream):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__("health", base_url, timeout)

    async def appointment(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/appointments/{code}")
