"""The broker unreachable for 15 s while citizens keep writing at a steady rate."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from shared.runtime.embedded import KafkaProtocolBroker
from tests.faults.support import Rig, ServiceProcess, every_domain, percentile
from tests.harness import wait_for

OUTAGE_SECONDS = 15.0
RATE = 5.0  # writes per second per domain


@pytest.mark.timeout(300)
async def test_broker_outage_loses_and_duplicates_nothing(
    rig: Rig, broker_process: KafkaProtocolBroker
) -> None:
    producers = rig.producers
    degraded: dict[str, int] = {p.name: 0 for p in producers.all}
    probes: dict[str, int] = {p.name: 0 for p in producers.all}
    async with rig.consumers() as consumers, rig.citizens(every_domain(RATE)) as citizens:
        citizens.start()
        await asyncio.sleep(4)
        before = citizens.written
        broker_process.pause()
        paused_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=10) as client:

                async def probe(service: ServiceProcess) -> None:
                    ready = await client.get(f"{service.base}/ready")
                    probes[service.name] += 1
                    body = ready.json()
                    if ready.status_code == 503 and body["status"] == "degraded":
                        assert body["checks"]["broker"] == "down" and body["checks"]["database"] == "up"
                        degraded[service.name] += 1

                while time.monotonic() - paused_at < OUTAGE_SECONDS - 1:
                    await asyncio.gather(*(probe(p) for p in producers.all), asyncio.sleep(1.0))
                await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - paused_at)))
            during = citizens.written - before
            pending_peak = await producers.outbox_pending()
        finally:
            broker_process.resume()
        resumed_at = time.monotonic()
        outage = resumed_at - paused_at
        await asyncio.sleep(5)
        await citizens.stop()

        # Every write succeeded: the outbox buffered it while the broker was away.
        assert citizens.errors() == []
        for domain, outcome in citizens.outcomes.items():
            assert set(outcome.statuses) == {201}, (domain, outcome.statuses)
        assert all(degraded[name] > 0 for name in degraded), (degraded, probes)
        # Writes kept flowing at the offered rate (the open-loop citizens allow 10 % for
        # scheduling on a busy machine).
        assert during >= 0.9 * 3 * RATE * OUTAGE_SECONDS, during

        # The relays catch up by themselves.
        async def drained() -> bool:
            return not any((await producers.outbox_pending()).values())

        await wait_for(drained, timeout=60, interval=0.5)
        caught_up = time.monotonic() - resumed_at

        codes = citizens.all_codes
        result = await rig.tally(consumers, codes)
        assert result.problems() == []

    latencies = [x for o in citizens.outcomes.values() for x in o.latencies]
    print(
        f"FIGURES broker-outage: {outage:.1f} s outage (broker SIGSTOPped), {3 * RATE:.0f} writes/s offered for"
        f" {citizens.duration:.0f} s; accepted {result.writes} (complaints {len(codes['complaints'])},"
        f" permits {len(codes['permits'])}, bookings {len(codes['health'])}), {during} during the outage,"
        f" refused {sum(o.refused for o in citizens.outcomes.values())}, errors 0;"
        f" /ready degraded in {sum(degraded.values())}/{sum(probes.values())} probes;"
        f" outbox peak {pending_peak}; relays caught up {caught_up:.1f} s after the broker returned;"
        f" {result.summary()};"
        f" write latency p50 {percentile(latencies, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
