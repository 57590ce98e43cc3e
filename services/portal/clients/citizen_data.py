"""The kit's citizen data export, the same on every service (shared/kit/citizen_data.py):
by NIK with the data protection officer's own token, or by the contact a citizen proved
with the citizen's session. Each answer is the service's part of one document."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Upstream, bearer


async def officer_export(upstream: Upstream, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the service holds about the citizen `body` names (NIK, phone, email)."""
    return dict(await upstream.post("/admin/citizens/export", json=body, headers=bearer(token)))


async def own_export(upstream: Upstream, session: str, contact: str, export_id: str) -> dict[str, Any]:
    """What the service holds linked to the contact the citizen's session proved."""
    body = {"contact": contact, "export_id": export_id}
    return dict(await upstream.post("/citizen/export", json=body, headers=bearer(session)))
