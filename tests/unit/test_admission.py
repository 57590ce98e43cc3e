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


def admitted(limit: int, budget: float, floor: int = 1) -> tuple[Holding, Counter, httpx.AsyncClient]:
    app = Holding()
    refused = Counter("refused", "refused", registry=CollectorRegistry())
    guarded = Admission(
        app, limit=limit, floor=floor, budget=budget, retry_after=2, refused=refused, exempt=["/stream"]
    )
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
    assert (await client.get("/d")).status_code == 503, "the floor reached, the oldest too old"
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
