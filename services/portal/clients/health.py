"""The health service's citizen API (facilities, places left, booking, cancelling and
following a polyclinic booking, the public queue board) and its officer API, called with
the officer's own access token (the clinic workspace)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.portal.clients.base import Upstream, bearer


class HealthClient(Upstream):
    name = "health"

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

    async def queue(self, facility: str, polyclinic: str) -> dict[str, Any] | None:
        """Today's public board of a polyclinic (no personal data): the waiting-room display."""
        return await self.get(f"/facilities/{facility}/polyclinics/{polyclinic}/queue")

    # ----- officers (their token's facility decides what they may see and do) ---------------

    async def day_list(self, token: str, facility: str, polyclinic: str) -> dict[str, Any] | None:
        """Today's board and appointments of a polyclinic, in queue order."""
        path = f"/facilities/{facility}/polyclinics/{polyclinic}/appointments"
        return await self.get(path, headers=bearer(token))

    async def call_next(self, token: str, facility: str, polyclinic: str) -> dict[str, Any]:
        """The visit called (task 4); `Refused` with 409 when nobody waits."""
        path = f"/facilities/{facility}/polyclinics/{polyclinic}/call-next"
        return dict(await self.post(path, headers=bearer(token)))

    async def set_task(self, token: str, code: str, task: int) -> dict[str, Any]:
        """A visit's next BPJS task; `Refused` with 409 out of order."""
        return dict(
            await self.post(f"/appointments/{code}/tasks", json={"task_id": task}, headers=bearer(token))
        )

    async def wards(self, facility: str) -> list[dict[str, Any]]:
        return await self.get(f"/facilities/{facility}/wards") or []

    async def put_beds(self, token: str, facility: str, ward: str, body: dict[str, Any]) -> dict[str, Any]:
        """`Refused` with the service's field messages (422) or 403 for another facility."""
        path = f"/facilities/{facility}/wards/{ward}/beds"
        return dict(await self.write("PUT", path, json=body, headers=bearer(token)))

    async def put_schedule(
        self, token: str, doctor: str, weekday: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A doctor's session on a weekday; `Refused` with field messages or 403."""
        path = f"/doctors/{doctor}/schedules/{weekday}"
        return dict(await self.write("PUT", path, json=body, headers=bearer(token)))

    async def change_session(
        self, token: str, doctor: str, day: date, body: dict[str, Any]
    ) -> dict[str, Any]:
        """One date of a doctor's session (on leave, other quotas): how many bookings it cancelled."""
        path = f"/doctors/{doctor}/sessions/{day.isoformat()}"
        return dict(await self.write("PUT", path, json=body, headers=bearer(token)))
