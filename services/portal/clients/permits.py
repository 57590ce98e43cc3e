"""The permits service's applicant API (following an application) and its officer API,
called with the officer's own access token (the officers' workspace)."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Upstream, bearer


class PermitsClient(Upstream):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__("permits", base_url, timeout)

    async def application(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/applications/{code}")

    # ----- officers (their token decides what they may see and do) -------------------------

    async def permit_types(self) -> list[dict[str, Any]]:
        return await self.get("/permit-types") or []

    async def officer_list(self, token: str, **filters: str | int) -> dict[str, Any]:
        return dict(await self.get("/officer/applications", params=filters, headers=bearer(token)) or {})

    async def officer_application(self, token: str, code: str) -> dict[str, Any] | None:
        return await self.get(f"/officer/applications/{code}", headers=bearer(token))

    async def document_check(self, token: str, code: str, body: dict[str, Any]) -> dict[str, Any]:
        """`Refused` with the service's reasons (403, or 409 once checked already)."""
        return dict(
            await self.post(f"/officer/applications/{code}/document-check", json=body, headers=bearer(token))
        )
