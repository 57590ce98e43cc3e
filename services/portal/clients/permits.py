"""The permits service's applicant API: following an application."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Upstream


class PermitsClient(Upstream):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__("permits", base_url, timeout)

    async def application(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/applications/{code}")
