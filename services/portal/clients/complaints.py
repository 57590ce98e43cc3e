"""The complaints service's citizen API (categories, photos, filing, following, and the
reporter's answer to a resolution: a rating, or reopening as not fixed) and its officer
API, called with the officer's own access token (the officers' workspace)."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Download, Refused, Upstream, bearer


class ComplaintsClient(Upstream):
    name = "complaints"

    async def categories(self) -> list[dict[str, str]]:
        return await self.get("/categories") or []

    async def upload_photo(self, content: bytes, filename: str, media_type: str) -> str:
        """The id of the photo as kept (re-encoded without EXIF); `Refused` with the
        service's message under "file" when it is not a photo it takes."""
        answer = await self.post("/complaints/photos", files={"file": (filename, content, media_type)})
        return str(answer["id"])

    async def file(self, body: dict[str, Any]) -> str:
        """The tracking code of the filed complaint."""
        return str((await self.post("/complaints", json=body))["tracking_code"])

    async def complaint(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/complaints/{code}")

    async def resolution_photo(self, code: str) -> Download | None:
        """The photo of the finished work the complaint was resolved with, to stream on
        (`open_file`); None when it has none to show."""
        return await self.open_file(f"/complaints/{code}/resolution-photo", {})

    async def rate(self, code: str, body: dict[str, Any]) -> None:
        """Rate the resolution (it closes the complaint); `Refused` with 409 when the
        complaint no longer waits for it."""
        await self.post(f"/complaints/{code}/rating", json=body)

    async def reopen(self, code: str, body: dict[str, Any]) -> None:
        """'Not fixed': back to the OPD; `Refused` with 409 once the window has passed."""
        await self.post(f"/complaints/{code}/reopen", json=body)

    # ----- officers (their token decides what they may see and do) -------------------------

    async def opds(self) -> list[dict[str, str]]:
        return await self.get("/opds") or []

    async def officer_list(self, token: str, **filters: str | int) -> dict[str, Any]:
        """A page of the officer's work list (an OPD officer's: their OPD's only)."""
        return dict(await self.get("/officer/complaints", params=filters, headers=bearer(token)) or {})

    async def officer_complaint(self, token: str, code: str) -> dict[str, Any] | None:
        return await self.get(f"/officer/complaints/{code}", headers=bearer(token))

    async def officer_step(self, token: str, code: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /officer/complaints/{code}/{command}`; `Refused` with the service's
        reasons (403 when the officer may not, 409 in a status that does not allow it)."""
        return dict(
            await self.post(f"/officer/complaints/{code}/{command}", json=body, headers=bearer(token))
        )

    async def officer_photo(self, token: str, code: str, photo_id: str) -> Download | None:
        """A photo of the complaint, to stream on (`open_file`)."""
        return await self.open_file(f"/officer/complaints/{code}/photos/{photo_id}", bearer(token))


__all__ = ["ComplaintsClient", "Refused"]
