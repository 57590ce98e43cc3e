"""A sustained mixed load for 60 s: no errors, memory of every service flat, and no
backlog left behind (outboxes drained, consumers caught up)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.support import ADMIN, Consumers, Rig, ServiceProcess, consumer_lag, percentile
from tests.harness import wait_for

DURATION = 60.0
RATES = {"complaints": 7.0, "permits": 7.0, "health": 6.0}  # 20 writes/s
# Memory must level off: the last third's peak at most 10 % (plus 16 MB of allocator
# slack) over the first third's. Measured runs grow by 0-1 MB.
MEMORY_GROWTH = 1.10
MEMORY_SLACK = 16 * 1024 * 1024
READ_RATE = 10.0
MB = 1024 * 1024


async def outbox_pending(service: ServiceProcess) -> int:
    async with service.client() as client:
        return int((await client.get("/admin/outbox", headers=ADMIN)).json()["pending"])


def readers(consumers: Consumers) -> list[tuple[ServiceProcess, str]]:
    """What is read besides the citizens' own items: the view's dashboard and OPD list,
    the notification officer's list."""
    notifications, integration = consumers.notifications[0], consumers.integration[0]
    return [
        (integration, "/api/dashboard"),
        (integration, "/api/opds"),
        (notifications, "/notifications?page_size=20"),
    ]


@pytest.mark.timeout(400)
async def test_sustained_mixed_load_keeps_memory_flat_and_leaves_no_backlog(rig: Rig) -> None:
    producers = rig.producers
    async with (
        rig.consumers() as consumers,
        rig.citizens(RATES, read_rate=READ_RATE, readers=readers(consumers)) as citizens,
    ):
        notifications, integration = consumers.notifications[0], consumers.integration[0]
        services = [*producers.all, notifications, integration]
        samples: dict[str, list[int]] = {s.name: [] for s in services}
        citizens.start()
        began = time.monotonic()
        while time.monotonic() - began < DURATION:
            for s in services:
                rss = s.rss()
                assert rss is not None, f"{s.name} is not running:\n{s.log()[-2000:]}"
                samples[s.name].append(rss)
            await asyncio.sleep(1.0)
        await citizens.stop()

        assert citizens.errors() == []
        for domain, outcome in citizens.outcomes.items():
            assert set(outcome.statuses) == {201}, (domain, outcome.statuses)
        achieved = sum(len(o.accepted) for o in citizens.outcomes.values()) / citizens.duration
        assert achieved >= 0.95 * sum(RATES.values()), f"{achieved:.1f} writes/s achieved"
        assert set(citizens.reads.statuses) == {200}, citizens.reads.statuses

        # No backlog: every outbox drains and both consumers catch up.
        drain_began = time.monotonic()

        async def drained() -> bool:
            pending = [await outbox_pending(s) for s in [*producers.all, notifications]]
            return not any(pending)

        await wait_for(drained, timeout=30, interval=0.5)
        drained_after = time.monotonic() - drain_began

        async def caught_up() -> bool:
            return (
                await consumer_lag(notifications, consumers.notifications_group) == 0
                and await consumer_lag(integration, consumers.integration_group) == 0
            )

        await wait_for(caught_up, timeout=30, interval=0.5)
        lag_zero_after = time.monotonic() - drain_began

        codes = citizens.all_codes
        result = await rig.tally(consumers, codes)
        assert result.problems() == []

        # Memory: the last third of the run does not keep growing over the first third.
        memory = {}
        for name, values in samples.items():
            third = max(1, len(values) // 3)
            first, last = max(values[:third]), max(values[-third:])
            memory[name] = (first / MB, last / MB)
            assert last <= first * MEMORY_GROWTH + MEMORY_SLACK, (name, first / MB, last / MB)

    writes = [x for o in citizens.outcomes.values() for x in o.latencies]
    rate = result.writes / citizens.duration
    print(
        f"FIGURES sustained-load: {citizens.duration:.0f} s, {rate:.1f} writes/s achieved"
        f" ({sum(RATES.values()):.0f} offered: complaints {len(codes['complaints'])}, permits"
        f" {len(codes['permits'])}, bookings {len(codes['health'])}) + {len(citizens.reads.accepted)} reads"
        f" ({READ_RATE:.0f}/s offered); errors 0; write latency p50 {percentile(writes, 0.5) * 1000:.0f} ms,"
        f" p95 {percentile(writes, 0.95) * 1000:.0f} ms, p99 {percentile(writes, 0.99) * 1000:.0f} ms;"
        f" read latency p95 {percentile(citizens.reads.latencies, 0.95) * 1000:.0f} ms;"
        f" RSS MB first third max -> last third max: "
        + ", ".join(f"{n} {a:.0f}->{b:.0f}" for n, (a, b) in memory.items())
        + f"; outboxes empty {drained_after:.1f} s and consumer lag 0 {lag_zero_after:.1f} s after the load;"
        f" {result.summary()}"
    )
