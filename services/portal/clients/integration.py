"""The integration view's citizen API: everything a verified contact started."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Unavailable, Upstream, bearer


class IntegrationClient(Upstream):
    name = "integration"

    async def my_services(
        self, session: str, page: int, page_size: int, lang: str, code: str | None = None
    ) -> dict[str, Any]:
        """One page of the complaints, applications and appointments the session's
        contact started (only the one of `code`, if given), newest first: items, total,
        page, page_size. `Refused` with 401 when the session is no longer valid."""
        params: dict[str, Any] = {"page": page, "page_size": page_size, "lang": lang}
        if code is not None:
            params["code"] = code
        found = await self.get("/citizen/services", params=params, headers=bearer(session))
        if found is None:  # a view without the route is no answer, not an empty list
            raise Unavailable(self.name)
        return dict(found)
