"""Admission control without I/O (shared/kit/admission.py): the count, the latency budget,
the refusal and what always passes, against an app that holds its requests until told."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter

from shared.kit.admission import Admission


class Holding:
    """An ASGI app whose requests stay in flight until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inside = 0
        self.arrived: asyncio.Queue[str] = asyncio.Queue()

    async def arrivals(self, count: int) -> None:
        for _ in range(count):
            await self.arrived.get()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        self.arrived.put_nowait(scope["path"])
        if scope["path"] not in ("/health", "/stream"):
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class Clock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(
    limit: int, budget: float, floor: int = 1, interval: float = 0, clock: Clock | None = None
) -> tuple[Holding, Counter, httpx.AsyncClient]:
    app = Holding()
    refused = Counter("refused", "refused", registry=CollectorRegistry())
    guarded = Admission(
        app, limit=limit, floor=floor, budget=budget, interval=interval, retry_after=2, refused=refused,
        exempt=["/stream"], **({"clock": clock} if clock else {}),
    )  # fmt: skip
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://t")
    return app, refused, client


async def test_past_the_limit_a_request_is_refused_at_once_with_retry_after() -> None:
    app, refused, client = admitted(limit=3, budget=3600)
    held = [asyncio.create_task(client.get("/complaints")) for _ in range(3)]
    await app.arrivals(3)
    busy = await client.get("/complaints")
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert "try again" in busy.json()["detail"]
    assert refused._value.get() == 1
    # What always passes while the service is full: liveness and the named streams.
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/stream")).status_code == 200
    app.release.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200, 200]
    assert (await client.get("/complaints")).status_code == 200  # the places are back


async def test_past_the_latency_budget_a_newcomer_is_refused_until_the_oldest_is_answered() -> None:
    app, refused, client = admitted(limit=100, budget=0.001)
    oldest = asyncio.create_task(client.get("/a"))
    await app.arrivals(1)
    await asyncio.sleep(0.01)  # the request in flight is now older than the budget
    behind = await client.get("/b")
    assert behind.status_code == 503 and behind.headers["retry-after"] == "2"
    assert app.inside == 1 and refused._value.get() == 1, "refused before the app saw it"
    app.release.set()
    assert (await oldest).status_code == 200
    assert (await client.get("/c")).status_code == 200, "nothing in flight: admitted"
    assert refused._value.get() == 1


async def test_the_floor_is_taken_however_old_the_oldest_in_flight() -> None:
    app, refused, client = admitted(limit=100, budget=0.001, floor=3)
    held = [asyncio.create_task(client.get("/a"))]
    await app.arrivals(1)
    await asyncio.sleep(0.01)  # older than the budget, but fewer than the floor in flight
    held += [asyncio.create_task(client.get(f"/{i}")) for i in range(2)]
    await app.arrivals(2)
    await asyncio.sleep(0.01)  # now the floor's three are all older than the budget
    busy = await asyncio.wait_for(client.get("/d"), 5)
    assert busy.status_code == 503, "the floor reached, all of it too old"
    app.release.set()
    assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200, 200]
    assert refused._value.get() == 1


async def test_a_burst_is_taken_while_the_oldest_in_flight_is_within_the_budget() -> None:
    app, refused, client = admitted(limit=100, budget=3600)
    burst = [asyncio.create_task(client.get(f"/{i}")) for i in range(20)]
    await app.arrivals(20)
    app.release.set()
    assert [r.status_code for r in await asyncio.gather(*burst)] == [200] * 20
    assert refused._value.get() == 0


async def test_a_stall_shorter_than_the_interval_is_not_refused_a_standing_delay_is() -> None:
    clock = Clock()
    app, refused, client = admitted(limit=100, budget=0.05, floor=2, interval=0.1, clock=clock)
    held = [asyncio.create_task(client.get(f"/{i}")) for i in range(2)]
    await app.arrivals(2)
    clock.now += 0.06  # the oldest is over the budget: behind from now
    stalled = [asyncio.create_task(client.get("/stall"))]
    await app.arrivals(1)
    clock.now += 0.09  # behind for less than the interval: still taken
    stalled.append(asyncio.create_task(client.get("/still-taken")))
    await asyncio.sleep(0)
    assert refused._value.get() == 0
    await app.arrivals(1)
    clock.now += 0.02  # behind for longer than the interval: refused
    assert (await client.get("/refused")).status_code == 503
    app.release.set()
    assert [r.status_code for r in await asyncio.gather(*held, *stalled)] == [200] * 4
    assert refused._value.get() == 1


async def test_behind_again_soon_after_refusing_is_refused_at_once_long_after_given_the_interval() -> None:
    clock = Clock()
    app, refused, client = admitted(limit=100, budget=0.05, floor=1, interval=0.1, clock=clock)

    async def taken(path: str) -> asyncio.Task[httpx.Response]:
        task = asyncio.create_task(client.get(path))
        arrived = asyncio.create_task(app.arrivals(1))
        await asyncio.wait({task, arrived}, return_when=asyncio.FIRST_COMPLETED)
        assert arrived.done(), f"{path} was answered {(await task).status_code} before the app saw it"
        return task

    async def caught_up(*tasks: asyncio.Task[httpx.Response]) -> None:
        app.release.set()
        assert [(await t).status_code for t in tasks] == [200] * len(tasks)
        app.release = asyncio.Event()

    first = await taken("/a")
    clock.now += 0.06
    behind = await taken("/b")  # behind: the interval starts, the newcomer is taken
    clock.now += 0.11
    assert (await client.get("/c")).status_code == 503  # behind for the interval
    await caught_up(first, behind)
    # Behind again within the memory of that refusal: refused at once.
    second = await taken("/d")
    clock.now += 0.06
    assert (await client.get("/e")).status_code == 503
    await caught_up(second)
    assert refused._value.get() == 2
    # Long after the last refusal, a new stall is given its interval again.
    clock.now += 2.0
    third = await taken("/f")
    clock.now += 0.06
    stall = await taken("/g")  # behind: the interval starts again
    clock.now += 0.11
    assert (await client.get("/h")).status_code == 503
    await caught_up(third, stall)
    assert refused._value.get() == 3


async def test_one_slow_request_does_not_refuse_the_quick_ones_passing_it() -> None:
    clock = Clock()
    app, refused, client = admitted(limit=100, budget=0.05, floor=2, clock=clock)
    slow = asyncio.create_task(client.get("/export"))
    await app.arrivals(1)
    clock.now += 1.0  # far over the budget: only this one
    quick = asyncio.create_task(client.get("/quick"))
    await app.arrivals(1)
    # Two in flight, the floor, but only one of them over the budget: not behind.
    newcomer = asyncio.create_task(client.get("/newcomer"))
    arrived = asyncio.create_task(app.arrivals(1))
    await asyncio.wait({newcomer, arrived}, return_when=asyncio.FIRST_COMPLETED)
    assert arrived.done() and refused._value.get() == 0
    clock.now += 0.06  # now the two oldest are over it: behind
    assert (await asyncio.wait_for(client.get("/refused"), 5)).status_code == 503
    app.release.set()
    assert [(await t).status_code for t in (slow, quick, newcomer)] == [200] * 3
