"""The clinic workspace's use cases: a facility's polyclinics with today's queue, calling
the next number and setting a visit's BPJS task, the bed board, all through the health
service's officer API with the officer's own token; and the waiting-room display's
state, read from the public queue board (no token, no personal data).

Authorisation stays in the health service: its 403 (another facility's queue or wards)
is `NotAllowed`, the workspace's "not authorised" page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from services.portal import klinik_rules as rules
from services.portal.clients.base import Unavailable
from services.portal.domain import Answer
from services.portal.handlers import Context
from services.portal.petugas_cases import NotFound, Signed, as_officer
from shared.kit.codes import WIB

# The display asks the health service this often: a number called shows within 2 s.
POLL_SECONDS = 1.0
# A comment this often keeps an idle stream open through proxies.
KEEP_ALIVE_SECONDS = 15.0
# A stream ends after this (the browser reconnects at once): no connection lives forever.
STREAM_SECONDS = 600.0


def _code(value: str) -> str:
    found = rules.known_code(value)
    if found is None:
        raise NotFound
    return found


async def facilities(ctx: Context) -> list[dict[str, Any]]:
    """The health service's facilities; none while it is away (the development sign-in
    still signs in the other officers)."""
    try:
        return await ctx.health.facilities()
    except Unavailable:
        return []


async def facility(ctx: Context, code: str) -> dict[str, Any]:
    found = await ctx.health.facility(_code(code))
    if found is None:
        raise NotFound
    return found


@dataclass
class Polyclinic:
    code: str
    name: str
    board: dict[str, Any]  # the health service's day list: the board and its appointments


async def today(ctx: Context, officer: Signed, facility_code: str) -> tuple[dict[str, Any], list[Polyclinic]]:
    """The facility and each polyclinic's queue today, as its officers see it."""
    found = await facility(ctx, facility_code)
    boards = await asyncio.gather(
        *(_day_list(ctx, officer, found["code"], p["code"]) for p in found.get("polyclinics", []))
    )
    return found, [
        Polyclinic(p["code"], p["name"], board) for p, board in zip(found["polyclinics"], boards, strict=True)
    ]


async def _day_list(ctx: Context, officer: Signed, facility_code: str, polyclinic: str) -> dict[str, Any]:
    found = await as_officer(lambda: ctx.health.day_list(officer.token, facility_code, polyclinic))
    if found is None:
        raise NotFound
    return found


async def polyclinic(ctx: Context, officer: Signed, facility_code: str, code: str) -> Polyclinic:
    """One polyclinic's queue today, every appointment in queue order."""
    board = await _day_list(ctx, officer, _code(facility_code), _code(code))
    return Polyclinic(board["polyclinic"], board["polyclinic_name"], board)


async def call_next(ctx: Context, officer: Signed, facility_code: str, code: str) -> str:
    """The queue number called; `Refused` (409) when nobody waits."""
    f, p = _code(facility_code), _code(code)
    called = await as_officer(lambda: ctx.health.call_next(officer.token, f, p))
    return str(called["queue_code"])


async def set_task(ctx: Context, officer: Signed, form: dict[str, str]) -> Answer:
    """A visit's next task; `Refused` (409) out of order, `NotAllowed` at another facility."""
    answer = rules.read_task(form)
    if not answer.errors:
        code, task = answer.values["code"], answer.values["task"]
        await as_officer(lambda: ctx.health.set_task(officer.token, code, task))
    return answer


async def wards(ctx: Context, facility_code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    found = await facility(ctx, facility_code)
    return found, await ctx.health.wards(found["code"])


async def update_beds(
    ctx: Context, officer: Signed, facility_code: str, ward: str, form: dict[str, str]
) -> Answer:
    """Read a ward's bed form and save it; `Refused` carries the service's reasons."""
    answer = rules.read_beds(form)
    if not answer.errors:
        f, w, body = _code(facility_code), _code(ward), answer.values["body"]
        await as_officer(lambda: ctx.health.put_beds(officer.token, f, w, body))
    return answer


@dataclass
class Doctor:
    code: str
    name: str
    polyclinic: str
    schedules: dict[int, dict[str, Any]]  # by weekday (0 = Monday)


def _doctors(found: dict[str, Any]) -> list[Doctor]:
    names = {p["code"]: p["name"] for p in found.get("polyclinics", [])}
    return [
        Doctor(
            d["code"],
            d["name"],
            names.get(d["polyclinic"], d["polyclinic"]),
            {s["weekday"]: s for s in found.get("schedules", []) if s["doctor"] == d["code"]},
        )
        for d in found.get("doctors", [])
    ]


async def doctors(ctx: Context, facility_code: str) -> tuple[dict[str, Any], list[Doctor]]:
    """The facility's doctors with their weekly sessions and quotas."""
    found = await facility(ctx, facility_code)
    return found, _doctors(found)


async def doctor(ctx: Context, facility_code: str, code: str) -> tuple[dict[str, Any], Doctor]:
    found, listed = await doctors(ctx, facility_code)
    for d in listed:
        if d.code == _code(code):
            return found, d
    raise NotFound


async def update_schedule(
    ctx: Context, officer: Signed, facility_code: str, code: str, weekday: int, form: dict[str, str]
) -> Answer:
    """Read a weekday's session form and save it; `Refused` carries the service's reasons."""
    _, found = await doctor(ctx, facility_code, code)
    answer = rules.read_schedule(form)
    if not answer.errors:
        body = answer.values["body"]
        await as_officer(lambda: ctx.health.put_schedule(officer.token, found.code, weekday, body))
    return answer


async def change_date(ctx: Context, officer: Signed, facility_code: str, form: dict[str, str]) -> Answer:
    """Read the form changing one date of a doctor's session and send it; the answer's
    `cancelled` is how many bookings the health service cancelled (their patients are
    told and offered another date)."""
    _, listed = await doctors(ctx, facility_code)
    answer = rules.read_date_change(form, {d.code for d in listed}, ctx.clock().astimezone(WIB).date())
    if not answer.errors:
        doctor, day, body = answer.values["doctor"], answer.values["date"], answer.values["body"]
        done = await as_officer(lambda: ctx.health.change_session(officer.token, doctor, day, body))
        answer.values["cancelled"] = int(done.get("cancelled_bookings", 0))
    return answer


# ----- the waiting-room display (public) -----------------------------------------------------


async def queue_board(ctx: Context, facility_code: str, code: str) -> dict[str, Any]:
    """The polyclinic's public board today; `NotFound` for an unknown polyclinic."""
    found = await ctx.health.queue(_code(facility_code), _code(code))
    if found is None:
        raise NotFound
    return found


async def display(ctx: Context, facility_code: str, code: str) -> dict[str, Any]:
    """What the display shows now, with the facility's and polyclinic's names."""
    board = await queue_board(ctx, facility_code, code)
    found = await facility(ctx, facility_code)
    return {**rules.display_state(board), "facility": found["name"], "polyclinic": board["polyclinic_name"]}


async def display_events(
    ctx: Context, facility_code: str, code: str, stopping: Callable[[], bool]
) -> AsyncIterator[str]:
    """Server-Sent Events: the display's state at once, then each time it changes (the
    number called, the next ones), asked of the health service every `POLL_SECONDS`; a
    comment now and then keeps the connection open. A health service away sends nothing
    new: the display keeps its last numbers."""
    f, p = _code(facility_code), _code(code)
    loop = asyncio.get_running_loop()
    ends, quiet_since = loop.time() + STREAM_SECONDS, loop.time()
    last: dict[str, Any] | None = None
    yield "retry: 2000\n\n"
    while loop.time() < ends and not stopping():
        try:
            state = rules.display_state(await ctx.health.queue(f, p))
        except Unavailable:
            state = last
        if state is not None and state != last:
            last, quiet_since = state, loop.time()
            yield f"event: antrean\ndata: {json.dumps(state)}\n\n"
        elif loop.time() - quiet_since > KEEP_ALIVE_SECONDS:
            quiet_since = loop.time()
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)
