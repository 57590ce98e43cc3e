"""Consumer processes (the notification service, then the integration view) killed with
SIGKILL inside a batch transaction, then restarted: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.faults.support import Rig, ServiceProcess, batch_held, every_domain, metric_sum, send_attempts

RATE = 4.0  # writes per second per domain
# The table whose lock holds each consumer's batch transaction open: the view's batch
# has written its inbox rows and waits to write its history; the notification service's
# batch waits at its inbox rows (its delivery worker, which writes the notification
# tables, keeps sending meanwhile).
HELD_AT = {"notifications": "inbox", "integration": "history"}


async def kill_mid_batch(service: ServiceProcess) -> tuple[int, float]:
    """SIGKILL the consumer while a batch transaction of it is open (held on a table lock);
    returns the batches that were waiting and how long they were held."""
    async with batch_held(service.database_url, HELD_AT[service.name]) as (_, waiting):
        held = time.monotonic()
        await asyncio.sleep(1.0)  # more events pile up behind the held batch
        stopped = await service.stop(signal.SIGKILL, timeout=10)
        assert stopped.exit_code == -signal.SIGKILL
        return waiting, time.monotonic() - held


@pytest.mark.timeout(300)
async def test_consumers_killed_mid_batch_lose_and_double_nothing(rig: Rig) -> None:
    redelivered: dict[str, float] = {}
    held: dict[str, tuple[int, float]] = {}
    async with rig.consumers() as consumers, rig.citizens(every_domain(RATE)) as citizens:
        citizens.start()
        await asyncio.sleep(4)
        for victim, group in (
            (consumers.notifications[0], consumers.notifications_group),
            (consumers.integration[0], consumers.integration_group),
        ):
            held[victim.name] = await kill_mid_batch(victim)
            await victim.start()
            await asyncio.sleep(3)
            redelivered[victim.name] = metric_sum(
                await victim.metrics(), "sinergi_inbox_duplicates_skipped_total", consumer=group
            )
        await asyncio.sleep(3)
        await citizens.stop()
        assert citizens.errors() == []

        result = await rig.tally(consumers, citizens.all_codes)
        attempts = await send_attempts(consumers.notifications_db, result.codes)
        assert result.problems(attempts) == []
        # The killed batch had not committed, so its redelivery was applied afresh:
        # nothing was recognised as a duplicate.
        assert redelivered == {"notifications": 0, "integration": 0}, redelivered

    retried = sum(1 for c in result.codes if attempts.get(c, 0) > 1)
    print(
        f"FIGURES consumer-sigkill: {3 * RATE:.0f} writes/s for {citizens.duration:.0f} s, {result.writes}"
        f" accepted; notifications and integration view each SIGKILLed once inside an open batch"
        f" transaction ("
        + ", ".join(f"{n}: {w} batch waiting on {HELD_AT[n]}, held {t:.1f} s" for n, (w, t) in held.items())
        + ") and restarted;"
        f" the killed batches were rolled back whole and redelivered (inbox duplicates after the"
        f" restart: notifications {redelivered['notifications']:.0f}, integration"
        f" {redelivered['integration']:.0f});"
        f" sends interrupted and retried after the lease: {retried}; {result.summary()}"
    )
