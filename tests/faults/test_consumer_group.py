"""Two instances of each consumer (notifications, integration view) in one group; one of
each stopped with SIGTERM mid-stream: the other takes over its partitions, and every
event still takes effect exactly once."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.faults.support import Rig, every_domain, metric_sum, partitions_of
from tests.harness import wait_for

RATE = 4.0  # writes per second per domain


@pytest.mark.timeout(300)
async def test_two_instances_per_group_one_stopped_mid_stream(rig: Rig) -> None:
    shares: dict[str, list[float]] = {}
    async with rig.consumers(instances=2) as consumers, rig.citizens(every_domain(RATE)) as citizens:
        citizens.start()
        groups = (
            (consumers.notifications, consumers.notifications_group),
            (consumers.integration, consumers.integration_group),
        )

        async def both_instances_work() -> bool:
            """Each instance of each group has applied events (the group shares its partitions)."""
            for instances, group in groups:
                shares[instances[0].name] = [
                    metric_sum(await p.metrics(), "sinergi_consumer_events_total", consumer=group)
                    for p in instances
                ]
            return all(n > 0 for counts in shares.values() for n in counts)

        await wait_for(both_instances_work, timeout=60, interval=1.0)
        await asyncio.sleep(3)
        await both_instances_work()
        remaining = (consumers.notifications[0], consumers.integration[0])
        owned_before = {p.name: await partitions_of(p) for p in remaining}
        stops = await asyncio.gather(
            consumers.notifications[1].stop(signal.SIGTERM), consumers.integration[1].stop(signal.SIGTERM)
        )
        stopped_at = time.monotonic()
        # The remaining instance takes over the partitions of the one that left (while
        # the citizens keep writing).
        owned_after: dict[str, set[tuple[str, str]]] = {}
        took_over: dict[str, float] = {}

        async def taken_over() -> bool:
            for p in remaining:
                owned_after[p.name] = await partitions_of(p)
                if owned_after[p.name] > owned_before[p.name] and p.name not in took_over:
                    took_over[p.name] = time.monotonic() - stopped_at
            return len(took_over) == len(remaining)

        await wait_for(taken_over, timeout=60, interval=0.5)
        await asyncio.sleep(3)
        await citizens.stop()
        assert citizens.errors() == []
        for stopped in stops:
            assert stopped.exit_code in (0, -signal.SIGTERM) and stopped.seconds < 25

        result = await rig.tally(consumers, citizens.all_codes)
        assert result.problems() == []

    print(
        f"FIGURES consumer-group: {3 * RATE:.0f} writes/s for {citizens.duration:.0f} s, {result.writes}"
        f" accepted; 2 instances per group, events applied per instance before the stop:"
        f" notifications {shares['notifications']}, integration {shares['integration']}; one instance"
        f" of each stopped (SIGTERM, exited in {max(s.seconds for s in stops):.1f} s), the other took"
        f" over its partitions (partitions consumed by the remaining instance before -> after, and"
        f" when: "
        + ", ".join(
            f"{n} {len(owned_before[n])} -> {len(owned_after[n])} after {took_over[n]:.1f} s"
            for n in owned_before
        )
        + ");"
        f" {result.summary()}"
    )
