"""The permits service's applicant API (the catalogue of permit types, uploading a
document, applying, following an application and sending the documents an officer found
missing) and its officer API, called with the officer's own access token (the officers'
workspace)."""

from __future__ import annotations

from typing import Any

from services.portal.clients.base import Download, Upstream, bearer


class PermitsClient(Upstream):
    name = "permits"

    async def application(self, code: str) -> dict[str, Any] | None:
        return await self.get(f"/applications/{code}")

    async def permit_types(self) -> list[dict[str, Any]]:
        """Each type with its documents, type-specific fields and SLA in working days."""
        return await self.get("/permit-types") or []

    async def upload_document(self, content: bytes, filename: str, media_type: str) -> str:
        """The id of the document as staged (type read from the content); `Refused` with
        the service's message under "file" when it is no PDF, JPEG or PNG, or too large."""
        answer = await self.post("/applications/documents", files={"file": (filename, content, media_type)})
        return str(answer["id"])

    async def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """The application as submitted (its tracking code, SLA); `Refused` with the
        service's field messages."""
        return dict(await self.post("/applications", json=body))

    async def resubmit(self, code: str, documents: dict[str, str], session: str) -> dict[str, Any]:
        """Send the missing documents (code -> upload id) with the citizen session of the
        applicant's phone or email (another contact's gets the 404 of an unknown code);
        the SLA clock resumes."""
        body = {"documents": [{"code": c, "upload": u} for c, u in documents.items()]}
        return dict(await self.post(f"/applications/{code}/resubmission", json=body, headers=bearer(session)))

    # ----- officers (their token decides what they may see and do) -------------------------

    async def officer_list(self, token: str, **filters: str | int) -> dict[str, Any]:
        return dict(await self.get("/officer/applications", params=filters, headers=bearer(token)) or {})

    async def officer_application(self, token: str, code: str) -> dict[str, Any] | None:
        return await self.get(f"/officer/applications/{code}", headers=bearer(token))

    async def document_check(self, token: str, code: str, body: dict[str, Any]) -> dict[str, Any]:
        """`Refused` with the service's reasons (403, or 409 once checked already)."""
        return dict(
            await self.post(f"/officer/applications/{code}/document-check", json=body, headers=bearer(token))
        )

    async def officer_step(self, token: str, code: str, command: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /officer/applications/{code}/{command}` (inspection, inspection/result,
        approve, reject, issue, revoke): the application after it; `Refused` with the
        service's reasons (403, 409 in a status that does not allow it, 422)."""
        return dict(
            await self.post(f"/officer/applications/{code}/{command}", json=body, headers=bearer(token))
        )

    async def document(self, token: str, code: str, document_id: str) -> Download | None:
        """An uploaded document of the application, to stream on (`open_file`)."""
        return await self.open_file(f"/officer/applications/{code}/documents/{document_id}", bearer(token))
